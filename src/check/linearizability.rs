//! Is the history linearizable? A real decision procedure, not a sample.
//!
//! Linearizability is compositional (Herlihy & Wing): a history is
//! linearizable iff each key's sub-history is. So each key is checked on
//! its own, as a register supporting put, get, delete, cas and incr, by
//! Wing & Gong's search with Lowe's memoization (`search`), the approach
//! of Knossos and Porcupine. Keys are checked smallest first, so that a
//! budget spent on one hard key still leaves the easy ones decided.
//!
//! Outcomes: Fail operations are dropped (they did not take effect). An
//! Unknown operation may take effect at any time after its invocation, or
//! never; an Unknown get constrains nothing. The whole check shares one
//! time budget and one memory budget; when either runs out the verdict is
//! Unknown, never a hang, and the report says which keys were decided.

mod model;
mod search;
mod visited;
mod witness;

use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use witness::{StuckOp, Witness};

use super::history::{History, Operation};
use super::report::{CheckReport, CheckStatus};
use super::value::Value;
use model::{KeyModel, Observers};
use search::{KeyOp, Limits, SearchResult};

pub const DEFAULT_TIME_BUDGET: Duration = Duration::from_secs(30);
pub const DEFAULT_MEMORY_BUDGET_BYTES: usize = 1 << 30;
/// Undecided keys named in a report (the rest are counted).
const UNDECIDED_SHOWN: usize = 10;

#[derive(Clone, Copy, Debug)]
pub struct LinearizabilityOptions {
    /// Wall-clock time for the whole check, all keys together.
    pub time_budget: Duration,
    /// Memory for the memo of any one key's search.
    pub memory_budget_bytes: usize,
}

impl Default for LinearizabilityOptions {
    fn default() -> LinearizabilityOptions {
        LinearizabilityOptions { time_budget: DEFAULT_TIME_BUDGET, memory_budget_bytes: DEFAULT_MEMORY_BUDGET_BYTES }
    }
}

impl LinearizabilityOptions {
    pub fn with_time_budget(time_budget: Duration) -> LinearizabilityOptions {
        LinearizabilityOptions { time_budget, ..LinearizabilityOptions::default() }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    Linearizable,
    NotLinearizable { key: Value, witness: Box<Witness> },
    Unknown { reason: String },
}

impl Verdict {
    pub fn is_linearizable(&self) -> bool {
        matches!(self, Verdict::Linearizable)
    }

    pub fn is_violation(&self) -> bool {
        matches!(self, Verdict::NotLinearizable { .. })
    }

    pub fn is_unknown(&self) -> bool {
        matches!(self, Verdict::Unknown { .. })
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct LinearizabilityReport {
    pub verdict: Verdict,
    pub keys_total: usize,
    /// Keys proven linearizable (all of them when the verdict is
    /// Linearizable).
    pub keys_linearizable: usize,
    /// Keys whose search did not finish (budget spent, or not reached).
    pub undecided_keys: Vec<Value>,
    /// Operations given to the search (Fail ops and Unknown gets are
    /// left out).
    pub ops_checked: usize,
    /// Unknown writes left out because nothing could observe them.
    pub unobserved_unknown_skipped: usize,
    #[serde(rename = "elapsed_s", serialize_with = "super::report::serialize_secs")]
    pub elapsed: Duration,
}

impl LinearizabilityReport {
    /// One line for a table or a log.
    pub fn summary(&self) -> String {
        match &self.verdict {
            Verdict::Linearizable => format!(
                "linearizable: {} keys, {} operations checked in {:.3}s",
                self.keys_total,
                self.ops_checked,
                self.elapsed.as_secs_f64()
            ),
            Verdict::NotLinearizable { witness, .. } => {
                format!("not linearizable: {}", witness.headline())
            }
            Verdict::Unknown { reason } => format!("unknown: {reason}"),
        }
    }
}

impl LinearizabilityReport {
    pub fn to_check_report(&self) -> CheckReport {
        let (status, witness) = match &self.verdict {
            Verdict::Linearizable => (CheckStatus::Pass, String::new()),
            Verdict::NotLinearizable { witness, .. } => (CheckStatus::Fail, witness.to_string()),
            Verdict::Unknown { .. } => (CheckStatus::Unknown, String::new()),
        };
        CheckReport {
            name: "linearizable".to_string(),
            status,
            summary: self.summary(),
            witness,
            violations: None,
            elapsed: self.elapsed,
        }
    }
}

impl fmt::Display for LinearizabilityReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.summary())?;
        if let Verdict::NotLinearizable { witness, .. } = &self.verdict {
            write!(f, "{witness}")?;
        }
        Ok(())
    }
}

/// One key's operations, ready for the search.
struct KeyHistory<'h> {
    model: KeyModel,
    /// `history_ops[i]` is the operation behind `key_ops[i]`.
    history_ops: Vec<&'h Operation>,
    key_ops: Vec<KeyOp>,
    skipped_unobserved: usize,
}

impl<'h> KeyHistory<'h> {
    fn of(history: &'h History, indexes: &[usize]) -> KeyHistory<'h> {
        let mut model = KeyModel::default();
        let mut ops: Vec<(&Operation, KeyOp)> = Vec::with_capacity(indexes.len());
        for &index in indexes {
            let op = &history.ops[index];
            // Fail ops and Unknown gets constrain nothing.
            let Some(step) = model.step_of(op) else {
                continue;
            };
            let complete_us = if op.outcome.is_ok() { op.complete_us } else { None };
            ops.push((op, KeyOp { step, invoke_us: op.invoke_us, complete_us }));
        }
        let observers = Observers::of(ops.iter().map(|(_, key_op)| key_op.step));
        let before = ops.len();
        ops.retain(|(_, key_op)| !(key_op.complete_us.is_none() && observers.can_skip(&model, key_op.step)));
        let skipped_unobserved = before - ops.len();
        // The memo's windowed sets assume invocation order (a history
        // read from a file need not be in it); the sort is stable, so
        // ties keep history order.
        ops.sort_by_key(|(_, key_op)| key_op.invoke_us);
        KeyHistory {
            model,
            history_ops: ops.iter().map(|(op, _)| *op).collect(),
            key_ops: ops.iter().map(|(_, key_op)| *key_op).collect(),
            skipped_unobserved,
        }
    }
}

/// Checks with the default budgets.
pub fn check_linearizable(history: &History) -> LinearizabilityReport {
    check_linearizable_with(history, &LinearizabilityOptions::default())
}

pub fn check_linearizable_with(history: &History, options: &LinearizabilityOptions) -> LinearizabilityReport {
    let started = Instant::now();
    let deadline = started.checked_add(options.time_budget).unwrap_or(started);
    let limits = Limits { deadline, memory_budget_bytes: options.memory_budget_bytes };
    let by_key = history.by_key();
    let mut report = LinearizabilityReport {
        verdict: Verdict::Linearizable,
        keys_total: by_key.len(),
        keys_linearizable: 0,
        undecided_keys: Vec::new(),
        ops_checked: 0,
        unobserved_unknown_skipped: 0,
        elapsed: Duration::ZERO,
    };
    if let Err(e) = history.validate() {
        report.verdict = Verdict::Unknown { reason: format!("the history is malformed: {e}") };
        report.undecided_keys = by_key.keys().map(|k| (*k).clone()).collect();
        report.elapsed = started.elapsed();
        return report;
    }

    let mut keys: Vec<(&Value, Vec<usize>)> = by_key.into_iter().collect();
    keys.sort_by(|a, b| a.1.len().cmp(&b.1.len()).then_with(|| a.0.cmp(b.0)));
    let mut out_of_memory: Vec<Value> = Vec::new();
    let mut out_of_time = false;
    for (key, indexes) in &keys {
        if out_of_time {
            report.undecided_keys.push((*key).clone());
            continue;
        }
        let KeyHistory { model, history_ops, key_ops, skipped_unobserved } = KeyHistory::of(history, indexes);
        report.unobserved_unknown_skipped += skipped_unobserved;
        report.ops_checked += key_ops.len();
        match search::search(&model, &key_ops, &limits) {
            SearchResult::Linearizable => report.keys_linearizable += 1,
            SearchResult::Violation { longest_prefix } => {
                let all_ops: Vec<&Operation> = indexes.iter().map(|&i| &history.ops[i]).collect();
                let witness = witness::build(key, &all_ops, &history_ops, &key_ops, &model, &longest_prefix);
                report.verdict = Verdict::NotLinearizable { key: (*key).clone(), witness: Box::new(witness) };
                report.elapsed = started.elapsed();
                return report;
            }
            SearchResult::OutOfTime => {
                out_of_time = true;
                report.undecided_keys.push((*key).clone());
            }
            SearchResult::OutOfMemory => {
                out_of_memory.push((*key).clone());
                report.undecided_keys.push((*key).clone());
            }
        }
    }
    report.elapsed = started.elapsed();
    if !report.undecided_keys.is_empty() {
        let mut why = Vec::new();
        if out_of_time {
            why.push(format!("the time budget of {:.3}s ran out", options.time_budget.as_secs_f64()));
        }
        if !out_of_memory.is_empty() {
            why.push(format!(
                "{} key(s) exceeded the memory budget of {} MiB",
                out_of_memory.len(),
                options.memory_budget_bytes >> 20
            ));
        }
        let named: Vec<String> = report.undecided_keys.iter().take(UNDECIDED_SHOWN).map(Value::to_string).collect();
        let more = report.undecided_keys.len().saturating_sub(UNDECIDED_SHOWN);
        report.verdict = Verdict::Unknown {
            reason: format!(
                "{}; {} of {} keys proven linearizable, undecided: {}{}",
                why.join(" and "),
                report.keys_linearizable,
                report.keys_total,
                named.join(", "),
                if more > 0 { format!(" and {more} more") } else { String::new() }
            ),
        };
    }
    assert!(
        report.keys_linearizable + report.undecided_keys.len() == report.keys_total || report.verdict.is_violation(),
        "every key is decided or listed as undecided"
    );
    report
}
