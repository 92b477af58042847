//! Lost updates: acknowledged writes that vanished without anyone having
//! seen them, under a policy that lets writes be concurrent.
//!
//! Definition: an acknowledged put `w` of value `v` is a lost update iff
//! `v` is not among the key's values at the end (after heal and
//! anti-entropy) and no write superseded it knowingly. A write `w'` (ok or
//! unknown) supersedes `v` knowingly if its client had seen `v`: it carried
//! a causal context that a read returned together with `v`, or its client
//! had itself read `v` (a read that completed before `w'` was invoked). The
//! second covers policies without contexts (raft: a client that read a
//! value and then overwrote it replaced it on purpose). Values are unique
//! per write, as every workload makes them.
//!
//! This is how last-writer-wins loses data: of two concurrent writes, the
//! one with the smaller timestamp is dropped although its writer never saw
//! the other. Version vectors keep both as siblings until a write with a
//! context that covers them resolves them, so they lose none (the sibling
//! check counts what that costs readers).
//!
//! Coverage is direct (a read that returned `v`, a write that carried that
//! read's context), not transitive: if `w'` itself is then lost, `w'` is
//! reported, and `v` is not counted twice. Deletes are not updates here:
//! a delete that loses to a concurrent put leaves no value to miss.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::history::{History, OpKind, Operation, show_siblings};
use super::lost_writes::{FinalValues, first_lost};
use super::report::{CheckReport, CheckStatus};
use super::value::Value;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LostUpdate {
    pub op: Operation,
    /// The key's values at the end.
    pub final_values: Vec<Value>,
}

impl fmt::Display for LostUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let finals = match self.final_values.as_slice() {
            [] => "absent".to_string(),
            [one] => one.to_string(),
            several => show_siblings(several),
        };
        write!(
            f,
            "{} was acknowledged and is gone: {} ends as {finals}, and no write that saw it replaced it",
            self.op,
            self.op.key()
        )
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct LostUpdatesReport {
    pub acknowledged_puts: usize,
    /// Acknowledged puts whose value a write that had seen it replaced.
    pub superseded: usize,
    pub lost: Vec<LostUpdate>,
    #[serde(rename = "elapsed_s", serialize_with = "super::report::serialize_secs")]
    pub elapsed: Duration,
}

impl LostUpdatesReport {
    pub fn summary(&self) -> String {
        let base = format!(
            "{} of {} acknowledged puts lost ({} superseded by writes that saw them)",
            self.lost.len(),
            self.acknowledged_puts,
            self.superseded
        );
        match self.lost.first() {
            Some(first) => format!("{base}; first: {}", first.op),
            None => base,
        }
    }

    pub fn witness(&self) -> String {
        first_lost(&self.lost)
    }

    pub fn to_check_report(&self) -> CheckReport {
        CheckReport {
            name: "lost_updates".to_string(),
            status: if self.lost.is_empty() { CheckStatus::Pass } else { CheckStatus::Fail },
            summary: self.summary(),
            witness: self.witness(),
            violations: Some(self.lost.len() as u64),
            elapsed: self.elapsed,
        }
    }
}

pub fn check_lost_updates(history: &History, final_values: &FinalValues) -> LostUpdatesReport {
    let started = Instant::now();
    let mut report =
        LostUpdatesReport { acknowledged_puts: 0, superseded: 0, lost: Vec::new(), elapsed: Duration::ZERO };
    for (key, indexes) in history.by_key() {
        let ops: Vec<&Operation> = indexes.iter().map(|&i| &history.ops[i]).collect();
        // What each context was returned with: the values its reads saw.
        let mut seen_with: BTreeMap<&Value, BTreeSet<&Value>> = BTreeMap::new();
        for op in &ops {
            if let (Some(values), Some(context)) = (op.read_values(), &op.context) {
                seen_with.entry(context).or_default().extend(values);
            }
        }
        // What each client had read of the key, with when it completed.
        let mut read_by: BTreeMap<u64, Vec<(u64, &Value)>> = BTreeMap::new();
        for op in &ops {
            if let (Some(values), Some(done_us)) = (op.read_values(), op.complete_us) {
                read_by.entry(op.client).or_default().extend(values.into_iter().map(|v| (done_us, v)));
            }
        }
        // Values some write replaced knowingly.
        let mut covered: BTreeSet<&Value> = BTreeSet::new();
        for op in &ops {
            let writes = matches!(op.kind, OpKind::Put { .. } | OpKind::Delete { .. });
            if !writes || !op.may_have_written() {
                continue;
            }
            if let Some(seen) = op.context.as_ref().and_then(|c| seen_with.get(c)) {
                covered.extend(seen.iter().copied());
            }
            if let Some(reads) = read_by.get(&op.client) {
                covered.extend(reads.iter().filter(|(done_us, _)| *done_us <= op.invoke_us).map(|(_, v)| *v));
            }
        }
        let finals: &[Value] = final_values.get(key).map_or(&[], Vec::as_slice);
        for op in &ops {
            let (OpKind::Put { value, .. }, true) = (&op.kind, op.outcome.is_ok()) else {
                continue;
            };
            report.acknowledged_puts += 1;
            if finals.contains(value) {
                continue;
            }
            if covered.contains(value) {
                report.superseded += 1;
                continue;
            }
            report.lost.push(LostUpdate { op: (*op).clone(), final_values: finals.to_vec() });
        }
    }
    report.lost.sort_by_key(|lost| (lost.op.invoke_us, lost.op.id));
    report.elapsed = started.elapsed();
    report
}
