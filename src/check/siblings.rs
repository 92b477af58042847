//! Siblings: how many concurrent values reads returned.
//!
//! Version vectors lose no concurrent write, and this is what they cost:
//! a read may return several values, and the client must resolve them
//! (read them all, write one back with their context). The check counts
//! them per read: the largest number and the distribution. It fails only
//! above a maximum the script sets.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::history::History;
use super::report::{CheckReport, CheckStatus};

#[derive(Clone, Debug, Serialize)]
pub struct SiblingsReport {
    /// Ok reads examined.
    pub reads: usize,
    pub max_siblings: usize,
    /// Number of values -> reads that returned that many (0: absent).
    pub distribution: BTreeMap<usize, usize>,
    /// Keys some read found with more than one value.
    pub keys_with_siblings: usize,
    #[serde(rename = "elapsed_s", serialize_with = "super::report::serialize_secs")]
    pub elapsed: Duration,
}

impl SiblingsReport {
    pub fn reads_with_siblings(&self) -> usize {
        self.distribution.iter().filter(|(n, _)| **n > 1).map(|(_, reads)| reads).sum()
    }

    pub fn summary(&self) -> String {
        let shown: Vec<String> = self.distribution.iter().map(|(n, reads)| format!("{n} value(s): {reads}")).collect();
        format!(
            "{} of {} reads returned siblings, at most {} (on {} keys); reads by number of values: {}",
            self.reads_with_siblings(),
            self.reads,
            self.max_siblings,
            self.keys_with_siblings,
            if shown.is_empty() { "none".to_string() } else { shown.join(", ") }
        )
    }

    /// Fails if a read returned more than `max` values.
    pub fn to_check_report(&self, max: Option<usize>) -> CheckReport {
        let over = max.is_some_and(|max| self.max_siblings > max);
        let mut summary = self.summary();
        if let Some(max) = max {
            summary = format!("{summary} (allowed: {max})");
        }
        CheckReport {
            name: "siblings".to_string(),
            status: if over { CheckStatus::Fail } else { CheckStatus::Pass },
            summary,
            witness: String::new(),
            violations: Some(self.reads_with_siblings() as u64),
            elapsed: self.elapsed,
        }
    }
}

pub fn check_siblings(history: &History) -> SiblingsReport {
    let started = Instant::now();
    let mut report = SiblingsReport {
        reads: 0,
        max_siblings: 0,
        distribution: BTreeMap::new(),
        keys_with_siblings: 0,
        elapsed: Duration::ZERO,
    };
    for (_, indexes) in history.by_key() {
        let mut key_has_siblings = false;
        for op in indexes.iter().map(|&i| &history.ops[i]) {
            let Some(values) = op.read_values() else { continue };
            report.reads += 1;
            report.max_siblings = report.max_siblings.max(values.len());
            *report.distribution.entry(values.len()).or_default() += 1;
            key_has_siblings |= values.len() > 1;
        }
        report.keys_with_siblings += usize::from(key_has_siblings);
    }
    report.elapsed = started.elapsed();
    report
}
