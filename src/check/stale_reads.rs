//! Reads that returned a value already superseded for certain.
//!
//! Definition: an Ok get r of key k that returned v is stale iff, for
//! every write w that could have produced v (an Ok or Unknown put or
//! swapped cas of v, an Ok incr returning v, a delete or the initial
//! state for absent), some acknowledged write w' to k of a different
//! value was invoked after w completed and completed before r was
//! invoked: w' lies definitely between w and r, so v was overwritten
//! before r began. Equal times do not count as "after".
//!
//! The count is exact when every write writes a value no other write
//! writes, as replab's workloads do for puts and cas. Where values repeat
//! (counters, deletes) a read is counted only when every possible source
//! is superseded, so the count can only be low, never high. A read of a
//! value no write could produce is not stale but impossible; it is
//! counted apart (`unexplained_reads`) and is the linearizability
//! checker's business.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::history::{History, OpKind, Operation, Outcome, Reply};
use super::report::{CheckReport, CheckStatus};
use super::value::{Value, show};

/// Examples kept.
const EXAMPLES_KEPT: usize = 5;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StaleRead {
    pub read: Operation,
    /// The write that produced the value read (None: the initial, absent
    /// state).
    pub source: Option<Operation>,
    /// A later acknowledged write that definitely came in between.
    pub newer: Operation,
}

impl fmt::Display for StaleRead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = match &self.read.outcome {
            Outcome::Ok(Reply::Get(value)) => show(value.as_ref()),
            _ => "?".to_string(),
        };
        write!(f, "{} is stale: ", self.read)?;
        match &self.source {
            Some(source) => write!(f, "{value} was written by {source}, then ")?,
            None => write!(f, "{value} is the initial state, then ")?,
        }
        write!(f, "{} was written and acknowledged before this get began", self.newer)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct StaleReadsReport {
    /// Ok gets examined.
    pub reads_checked: usize,
    pub stale_reads: usize,
    /// Reads of a value no write could have produced.
    pub unexplained_reads: usize,
    /// The first few stale reads, in history order.
    pub examples: Vec<StaleRead>,
    #[serde(rename = "elapsed_s", serialize_with = "super::report::serialize_secs")]
    pub elapsed: Duration,
}

impl StaleReadsReport {
    pub fn summary(&self) -> String {
        let mut text = format!("{} stale of {} reads", self.stale_reads, self.reads_checked);
        if self.unexplained_reads > 0 {
            text.push_str(&format!("; {} reads returned a value no write produced", self.unexplained_reads));
        }
        text
    }

    pub fn witness(&self) -> String {
        self.examples.iter().map(|example| format!("{example}\n")).collect()
    }

    /// Stale reads are a measurement, not a verdict: they fail the check
    /// only where the caller asks for none (e.g. under a strongly
    /// consistent policy).
    pub fn to_check_report(&self) -> CheckReport {
        CheckReport {
            name: "stale_reads".to_string(),
            status: if self.stale_reads == 0 { CheckStatus::Pass } else { CheckStatus::Fail },
            summary: self.summary(),
            witness: self.witness(),
            violations: Some(self.stale_reads as u64),
            elapsed: self.elapsed,
        }
    }
}

/// A write as far as staleness cares.
#[derive(Clone, Copy)]
struct Write<'h, 'v> {
    op: &'h Operation,
    value: Option<&'v Value>,
}

pub fn check_stale_reads(history: &History) -> StaleReadsReport {
    let started = Instant::now();
    let mut report = StaleReadsReport {
        reads_checked: 0,
        stale_reads: 0,
        unexplained_reads: 0,
        examples: Vec::new(),
        elapsed: Duration::ZERO,
    };
    let mut found: Vec<(&Operation, Option<&Operation>, &Operation)> = Vec::new();
    for (_, indexes) in history.by_key() {
        let ops: Vec<&Operation> = indexes.iter().map(|&i| &history.ops[i]).collect();
        let written: Vec<(&Operation, Option<Value>)> =
            ops.iter().filter_map(|op| op.possible_write().map(|value| (*op, value))).collect();
        // Candidate sources of each value (Ok or Unknown writes).
        let mut sources: HashMap<Option<&Value>, Vec<&Operation>> = HashMap::new();
        for (op, value) in &written {
            sources.entry(value.as_ref()).or_default().push(*op);
        }
        // Acknowledged writes by completion, for the "in between" search.
        let mut acknowledged: Vec<Write> = written
            .iter()
            .filter(|(op, _)| op.outcome.is_ok())
            .map(|&(op, ref value)| Write { op, value: value.as_ref() })
            .collect();
        acknowledged.sort_by_key(|w| (w.op.effective_complete_us(), w.op.id));

        for read in &ops {
            // A read that found siblings is stale only if every one of its
            // values was overwritten before it began.
            let seen_values: Vec<Option<&Value>> = match (&read.kind, &read.outcome) {
                (OpKind::Get { .. }, Outcome::Ok(Reply::Get(seen))) => vec![seen.as_ref()],
                (OpKind::Get { .. }, Outcome::Ok(Reply::Siblings(values))) => values.iter().map(Some).collect(),
                _ => continue,
            };
            report.reads_checked += 1;
            let mut first_stale: Option<(Option<&Operation>, &Operation)> = None;
            let mut verdict = Staleness::Stale;
            for seen in seen_values {
                match staleness(read, seen, &sources, &acknowledged) {
                    Staleness::Stale if first_stale.is_none() => {
                        first_stale = superseded(read, seen, &sources, &acknowledged);
                    }
                    Staleness::Stale => {}
                    other => {
                        verdict = other;
                        break;
                    }
                }
            }
            match verdict {
                Staleness::Unexplained => report.unexplained_reads += 1,
                Staleness::Fresh => {}
                Staleness::Stale => {
                    report.stale_reads += 1;
                    if let Some((source, newer)) = first_stale {
                        found.push((*read, source, newer));
                    }
                }
            }
        }
    }
    // Keys are visited in key order; examples are wanted in time order.
    found.sort_by_key(|(read, _, _)| (read.invoke_us, read.id));
    report.examples = found
        .iter()
        .take(EXAMPLES_KEPT)
        .map(|(read, source, newer)| StaleRead {
            read: (*read).clone(),
            source: source.cloned(),
            newer: (*newer).clone(),
        })
        .collect();
    report.elapsed = started.elapsed();
    report
}

enum Staleness {
    Stale,
    Fresh,
    /// No write could have produced the value.
    Unexplained,
}

type Sources<'h, 'v> = HashMap<Option<&'v Value>, Vec<&'h Operation>>;

/// Whether `seen` was, for `read`, a value definitely overwritten before
/// it began: every write that could have produced it (or the initial
/// state, for absent) was followed by an acknowledged write of another
/// value that completed before the read began.
fn staleness(
    read: &Operation,
    seen: Option<&Value>,
    sources: &Sources<'_, '_>,
    acknowledged: &[Write<'_, '_>],
) -> Staleness {
    if superseded(read, seen, sources, acknowledged).is_some() {
        Staleness::Stale
    } else if sources.get(&seen).is_none_or(Vec::is_empty) && seen.is_some() {
        Staleness::Unexplained
    } else {
        Staleness::Fresh
    }
}

/// The first source of `seen` and the newer write that superseded it, if
/// every source was superseded.
fn superseded<'h>(
    read: &Operation,
    seen: Option<&Value>,
    sources: &Sources<'h, '_>,
    acknowledged: &[Write<'h, '_>],
) -> Option<(Option<&'h Operation>, &'h Operation)> {
    let no_sources = Vec::new();
    let candidates = sources.get(&seen).unwrap_or(&no_sources);
    // The initial state is a source of "absent", before all else.
    let initial = seen.is_none().then_some(None);
    let all: Vec<Option<&Operation>> = candidates.iter().map(|op| Some(*op)).chain(initial).collect();
    if all.is_empty() {
        return None;
    }
    // Acknowledged writes completed before the read began.
    let before = acknowledged.partition_point(|w| w.op.effective_complete_us() < read.invoke_us);
    let mut first: Option<(Option<&Operation>, &Operation)> = None;
    for source in &all {
        let source_complete_us = source.map(|op| op.effective_complete_us());
        let newer = acknowledged[..before]
            .iter()
            .find(|w| w.value != seen && source_complete_us.is_none_or(|complete_us| w.op.invoke_us > complete_us))?;
        first.get_or_insert((*source, newer.op));
    }
    first
}
