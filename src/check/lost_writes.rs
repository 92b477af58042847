//! Acknowledged writes that vanished.
//!
//! Definition: an acknowledged write w (an Ok put, delete, swapped cas or
//! incr) is lost iff the key's final value (read after heal and quiesce)
//! is not what w wrote, and no other write w' to the key could have been
//! linearized after w. w' could come after w unless it completed before w
//! was invoked; w' counts if it is Ok or Unknown (an Unknown write may
//! take effect at any time, so it may have overwritten w). Failed
//! operations never count. Equal times count as concurrent.
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LostWrite {
    pub op: Operation,
    /// The key's value at the end.
    pub final_value: Option<Value>,
    /// The last write to the key to complete before `op` was invoked, if
    /// any: the kind of write that could not have replaced it.
    pub previous_write: Option<Operation>,
}

impl fmt::Display for LostWrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} was acknowledged but is lost: {} ends as {}, and no other write to it could come after this one",
            self.op,
            self.op.key(),
            show(self.final_value.as_ref())
        )?;
        if let Some(previous) = &self.previous_write {
            write!(f, " (the latest other write, {previous}, completed before it began)")?;
        }
        Ok(())
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
        let mut text = String::new();
        for lost in self.lost.iter().take(LOST_SHOWN) {
            text.push_str(&format!("{lost}\n"));
        }
        if self.lost.len() > LOST_SHOWN {
            text.push_str(&format!("... and {} more\n", self.lost.len() - LOST_SHOWN));
        }
        text
    }

    pub fn to_check_report(&self) -> CheckReport {
        CheckReport {
            name: "no_lost_writes".to_string(),
            status: if self.lost.is_empty() { CheckStatus::Pass } else { CheckStatus::Fail },
            summary: self.summary(),
            witness: self.witness(),
            elapsed: self.elapsed,
        }
    }
}

/// `final_values` holds every key present at the end; a key missing from
/// it is absent.
pub fn check_lost_writes(history: &History, final_values: &BTreeMap<Value, Value>) -> LostWritesReport {
    let started = Instant::now();
    let mut report = LostWritesReport { acknowledged_writes: 0, lost: Vec::new(), elapsed: Duration::ZERO };
    for (key, indexes) in history.by_key() {
        let writes: Vec<&Operation> =
            indexes.iter().map(|&i| &history.ops[i]).filter(|op| op.may_have_written()).collect();
        // The two latest completions suffice: for any write, the latest
        // completion among the others is the first of these that is not
        // the write itself.
        let mut latest: [Option<(u64, usize)>; 2] = [None, None];
        for (position, op) in writes.iter().enumerate() {
            let candidate = (op.effective_complete_us(), position);
            if latest[0].is_none_or(|top| candidate > top) {
                latest[1] = latest[0];
                latest[0] = Some(candidate);
            } else if latest[1].is_none_or(|second| candidate > second) {
                latest[1] = Some(candidate);
            }
        }
        let final_value = final_values.get(key);
        for (position, op) in writes.iter().enumerate() {
            let Some(written) = op.acknowledged_write() else {
                continue;
            };
            report.acknowledged_writes += 1;
            if written.as_ref() == final_value {
                continue;
            }
            let latest_other = latest.iter().flatten().find(|(_, p)| *p != position);
            let overwritable = latest_other.is_some_and(|(complete_us, _)| *complete_us >= op.invoke_us);
            if overwritable {
                continue;
            }
            report.lost.push(LostWrite {
                op: (*op).clone(),
                final_value: final_value.cloned(),
                previous_write: latest_other.map(|(_, p)| writes[*p].clone()),
            });
        }
    }
    report.lost.sort_by_key(|lost| (lost.op.invoke_us, lost.op.id));
    report.elapsed = started.elapsed();
    report
}
