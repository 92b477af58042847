//! Acknowledged writes that vanished.
//!
//! Definition: an acknowledged write w (an Ok put, delete, swapped cas or
//! incr) is lost iff the key's final value (read after heal and quiesce)
//! is not what w wrote, and no write that could have produced the final
//! value could have been linearized after w. A producer could come after
//! w unless it completed before w was invoked; a producer is any Ok or
//! Unknown write whose value is the final one (an Unknown write may take
//! effect at any time; an Unknown incr, whose result nobody saw, could
//! produce any integer). If no write could have produced the final value
//! (the key ends absent with no delete, or with a value nobody wrote),
//! every acknowledged write that differs from it is lost. Failed
//! operations never count. Equal times count as concurrent.
//!
//! Deciding from the final value's possible writers, not from "any other
//! write", matters exactly when losses happen: a failover leaves Unknown
//! writes behind, and an Unknown write of some *other* value cannot
//! explain why the key ended with a value written before w began.
//!
//! This is deliberately narrower than linearizability: it needs only the
//! final state, it runs in O(n) per key, and what it reports is a loss
//! beyond any doubt: nothing that happened could have replaced the value
//! the client was told was stored.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::history::{History, Operation};
use super::report::{CheckReport, CheckStatus};
use super::value::{Value, show};

/// Lost writes printed in a report (all are kept in `lost`).
const LOST_SHOWN: usize = 10;

/// The first lost writes (or updates), one per line, and how many more:
/// a witness short enough to read whatever the run lost.
pub(super) fn first_lost<T: fmt::Display>(lost: &[T]) -> String {
    let mut text = String::new();
    for one in lost.iter().take(LOST_SHOWN) {
        text.push_str(&format!("{one}\n"));
    }
    if lost.len() > LOST_SHOWN {
        text.push_str(&format!("... and {} more\n", lost.len() - LOST_SHOWN));
    }
    text
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LostWrite {
    pub op: Operation,
    /// The key's value at the end.
    pub final_value: Option<Value>,
    /// The write that could have produced the final value and was
    /// linearized latest (it still completed before `op` began); `None` if
    /// no write could have produced the final value.
    pub final_writer: Option<Operation>,
}

impl fmt::Display for LostWrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} was acknowledged but is lost: {} ends as {}",
            self.op,
            self.op.key(),
            show(self.final_value.as_ref())
        )?;
        match &self.final_writer {
            Some(writer) => write!(f, ", written by {writer}, which completed before it began"),
            None => write!(f, ", which no write in the history could have produced"),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct LostWritesReport {
    pub acknowledged_writes: usize,
    /// Every lost write, in history order.
    pub lost: Vec<LostWrite>,
    #[serde(rename = "elapsed_s", serialize_with = "super::report::serialize_secs")]
    pub elapsed: Duration,
}

impl LostWritesReport {
    pub fn summary(&self) -> String {
        if self.lost.is_empty() {
            format!("no lost writes among {} acknowledged writes", self.acknowledged_writes)
        } else {
            format!(
                "{} of {} acknowledged writes lost; first: {}",
                self.lost.len(),
                self.acknowledged_writes,
                self.lost[0].op
            )
        }
    }

    pub fn witness(&self) -> String {
        first_lost(&self.lost)
    }

    pub fn to_check_report(&self) -> CheckReport {
        CheckReport {
            name: "no_lost_writes".to_string(),
            status: if self.lost.is_empty() { CheckStatus::Pass } else { CheckStatus::Fail },
            summary: self.summary(),
            witness: self.witness(),
            violations: Some(self.lost.len() as u64),
            elapsed: self.elapsed,
        }
    }
}

/// `final_values` holds every key present at the end; a key missing from
/// it is absent.
pub fn check_lost_writes(history: &History, final_values: &BTreeMap<Value, Value>) -> LostWritesReport {
    let sets: FinalValues = final_values.iter().map(|(k, v)| (k.clone(), vec![v.clone()])).collect();
    check_lost_writes_among(history, &sets)
}

/// Each key's values at the end: one under a policy that orders writes,
/// possibly several concurrent ones (siblings) under leaderless. A key
/// missing, or with no values, is absent.
pub type FinalValues = BTreeMap<Value, Vec<Value>>;

/// As [`check_lost_writes`], where a key may end with several values: a
/// write is kept if its value is among them.
pub fn check_lost_writes_among(history: &History, final_values: &FinalValues) -> LostWritesReport {
    let started = Instant::now();
    let mut report = LostWritesReport { acknowledged_writes: 0, lost: Vec::new(), elapsed: Duration::ZERO };
    for (key, indexes) in history.by_key() {
        let writes: Vec<&Operation> =
            indexes.iter().map(|&i| &history.ops[i]).filter(|op| op.may_have_written()).collect();
        let finals: &[Value] = final_values.get(key).map_or(&[], Vec::as_slice);
        // Among the writes that could have produced a final value, the
        // one that may have taken effect latest: it excuses every write
        // invoked before it completed.
        let latest_writer = writes
            .iter()
            .filter(|op| could_have_produced(op, finals))
            .max_by_key(|op| (op.effective_complete_us(), op.id))
            .copied();
        let final_value = match finals {
            [] => None,
            [one] => Some(one.clone()),
            several => Some(Value::new(super::history::show_siblings(several))),
        };
        for op in &writes {
            let Some(written) = op.acknowledged_write() else {
                continue;
            };
            report.acknowledged_writes += 1;
            let kept = match &written {
                Some(value) => finals.contains(value),
                None => finals.is_empty(),
            };
            if kept {
                continue;
            }
            if latest_writer.is_some_and(|writer| writer.effective_complete_us() >= op.invoke_us) {
                continue;
            }
            report.lost.push(LostWrite {
                op: (*op).clone(),
                final_value: final_value.clone(),
                final_writer: latest_writer.cloned(),
            });
        }
    }
    report.lost.sort_by_key(|lost| (lost.op.invoke_us, lost.op.id));
    report.elapsed = started.elapsed();
    report
}

/// Whether `op`, if it took effect, could have left one of `finals` (a
/// delete: an absent key).
fn could_have_produced(op: &Operation, finals: &[Value]) -> bool {
    match op.possible_write() {
        Some(Some(written)) => finals.contains(&written),
        Some(None) => finals.is_empty(),
        // An Unknown incr: its result was never seen, so it could have
        // produced any integer.
        None => op.may_have_written() && finals.iter().any(|v| v.canonical_i64().is_some()),
    }
}
