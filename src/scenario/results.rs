//! What a run reports: the summary printed at the end and results.json.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::fault_windows::FaultWindow;
use super::leader_watch::{Availability, Leadership};
use super::run_state::TimelineEvent;
use crate::check::{CheckReport, CheckStatus, History, Outcome};
use crate::client::protocol::NodeStats;

#[derive(Clone, Debug, Default, Serialize)]
pub struct OpCounts {
    pub total: usize,
    pub ok: usize,
    pub fail: usize,
    pub unknown: usize,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Latency {
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ClusterTotals {
    /// Elections won (one per leadership term).
    pub elections: u64,
    /// Times a node stood as candidate (with PreVote, only after a
    /// successful pre-vote).
    pub candidacies: u64,
    pub messages: u64,
    pub message_bytes: u64,
    pub messages_per_op: f64,
    pub bytes_per_op: f64,
    pub snapshots_installed: u64,
    pub duplicate_writes: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub script: String,
    pub seed: u64,
    pub exit_code: u8,
    /// A Lua error (with file:line), if the script failed.
    pub error: Option<String>,
    pub duration_s: f64,
    pub operations: OpCounts,
    /// Acknowledged operations per second over the span of the history.
    pub throughput_ops_per_s: f64,
    /// Latency of acknowledged operations.
    pub latency: Latency,
    pub cluster: ClusterTotals,
    pub timeline: Vec<TimelineEvent>,
    /// The injected faults as windows on the run's clock.
    pub fault_windows: Vec<FaultWindow>,
    /// Each cluster's leader (or quorum) over time, one list per cluster.
    pub leadership: Vec<Vec<Leadership>>,
    /// Time without a leader or quorum, summed over the clusters.
    pub availability: Availability,
    pub checks: Vec<CheckReport>,
    pub notes: BTreeMap<String, serde_json::Value>,
}

pub fn op_counts(history: &History) -> OpCounts {
    let mut c = OpCounts { total: history.len(), ..OpCounts::default() };
    for op in history.iter() {
        match op.outcome {
            Outcome::Ok(_) => c.ok += 1,
            Outcome::Fail(_) => c.fail += 1,
            Outcome::Unknown(_) => c.unknown += 1,
        }
    }
    c
}

/// Throughput and latency of the acknowledged operations.
pub fn performance(history: &History) -> (f64, Latency) {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds");
    let (mut first, mut last) = (u64::MAX, 0u64);
    for op in history.iter() {
        let (Outcome::Ok(_), Some(done)) = (&op.outcome, op.complete_us) else { continue };
        hist.saturating_record(done.saturating_sub(op.invoke_us).max(1));
        first = first.min(op.invoke_us);
        last = last.max(done);
    }
    if hist.is_empty() {
        return (0.0, Latency::default());
    }
    let span_s = (last.saturating_sub(first)).max(1) as f64 / 1e6;
    let latency =
        Latency { p50_us: hist.value_at_quantile(0.5), p99_us: hist.value_at_quantile(0.99), max_us: hist.max() };
    (hist.len() as f64 / span_s, latency)
}

pub fn totals(stats: &NodeStats, ops: usize) -> ClusterTotals {
    let per_op = |n: u64| if ops == 0 { 0.0 } else { n as f64 / ops as f64 };
    ClusterTotals {
        elections: stats.became_leader,
        candidacies: stats.candidacies,
        messages: stats.messages_sent,
        message_bytes: stats.message_bytes_sent,
        messages_per_op: per_op(stats.messages_sent),
        bytes_per_op: per_op(stats.message_bytes_sent),
        snapshots_installed: stats.snapshots_installed,
        duplicate_writes: stats.duplicate_writes,
    }
}

impl RunReport {
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "\n== {} (seed {}) ==", self.script, self.seed);
        let o = &self.operations;
        let _ = writeln!(s, "operations   {} total: {} ok, {} failed, {} unknown", o.total, o.ok, o.fail, o.unknown);
        let _ = writeln!(
            s,
            "throughput   {:.0} ops/s acknowledged; latency p50 {:.2} ms, p99 {:.2} ms",
            self.throughput_ops_per_s,
            self.latency.p50_us as f64 / 1000.0,
            self.latency.p99_us as f64 / 1000.0
        );
        let c = &self.cluster;
        let _ = writeln!(
            s,
            "cluster      {} elections won ({} candidacies), {:.1} messages and {:.0} bytes per operation",
            c.elections, c.candidacies, c.messages_per_op, c.bytes_per_op
        );
        let a = &self.availability;
        if a.watched_s > 0.0 {
            let _ = writeln!(
                s,
                "availability {:.3} s of {:.1} s without a leader or quorum; {} leader change(s)",
                a.unavailable_s, a.watched_s, a.leader_changes
            );
        }
        if !self.timeline.is_empty() {
            let _ = writeln!(s, "timeline");
            for e in &self.timeline {
                let _ = writeln!(s, "  {:8.3}s  {}", e.at_s, e.event);
            }
        }
        if !self.checks.is_empty() {
            let _ = writeln!(s, "checks");
            for c in &self.checks {
                let mark = match c.status {
                    CheckStatus::Pass => "PASS",
                    CheckStatus::Fail => "FAIL",
                    CheckStatus::Unknown => "UNKNOWN",
                };
                let _ = writeln!(s, "  {mark:<8} {:<16} {}", c.name, c.summary);
            }
        }
        if let Some(e) = &self.error {
            let _ = writeln!(s, "error        {e}");
        }
        let undecided: Vec<&str> =
            self.checks.iter().filter(|c| c.status == CheckStatus::Unknown).map(|c| c.name.as_str()).collect();
        let verdict = match self.exit_code {
            super::exit::PASS => "every check passed".to_string(),
            super::exit::FAIL => "a check FAILED (witness above)".to_string(),
            super::exit::UNDECIDED => {
                format!("no check failed, but {} could not decide: {}", undecided.len(), undecided.join(", "))
            }
            _ => "the script did not run to completion".to_string(),
        };
        let _ = writeln!(s, "result       {verdict} (exit code {})", self.exit_code);
        s
    }
}
