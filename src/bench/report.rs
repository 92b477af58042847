//! `replab bench report`: how long writing report.html takes, and how big
//! it gets, for a large run.
//!
//! The history comes from `check::simulate` (10 clients, seeded, a few
//! failed and unknown operations), with a crash window over the middle of
//! the run and a leader change inside it, so the page has everything a
//! real run's has. The time covers what `replab run --out` spends on the
//! report: drawing every plot, assembling the page and writing the file.
//!
//! Target (issue 15, docs/PERFORMANCE.md): 100,000 operations written in
//! under 2 s, under 5 MB.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::check::History;
use crate::check::simulate::{SimulationParams, simulate_history};
use crate::progress::Progress;
use crate::report::{REPORT_FILE, RunInput, run_report};
use crate::scenario::fault_windows::{FaultKind, FaultLog};
use crate::scenario::leader_watch::{self, LeaderState, Leadership};
use crate::scenario::results::{self, RunReport};

use super::median;

pub const TARGET_OPS: usize = 100_000;
pub const TARGET_SECONDS: f64 = 2.0;
pub const TARGET_BYTES: u64 = 5_000_000;

pub struct ReportBenchArgs {
    pub ops: usize,
    pub repeats: usize,
    pub seed: u64,
    /// Keep the report here to look at (default: a temporary directory).
    pub out: Option<std::path::PathBuf>,
}

/// The median run's figures.
pub struct ReportBenchRow {
    pub ops: usize,
    pub seconds: f64,
    pub bytes: u64,
}

pub fn run(args: &ReportBenchArgs) -> Result<ReportBenchRow, String> {
    if args.ops == 0 || args.repeats == 0 {
        return Err("--ops and --repeats must be above 0".to_string());
    }
    let params =
        SimulationParams { seed: args.seed, ops: args.ops, unknown_rate: 0.002, ..SimulationParams::default() };
    let history = simulate_history(&params);
    let report = synthetic_report(&history, args.seed);
    let temp = tempfile::tempdir().map_err(|e| format!("cannot make a temporary directory: {e}"))?;
    let dir = args.out.as_deref().unwrap_or(temp.path());
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let progress = Progress::new("bench report", args.repeats as u64);
    let (mut seconds, mut bytes) = (Vec::new(), 0);
    for i in 0..args.repeats {
        progress.start_step(&format!("{} operations, run {}/{}", args.ops, i + 1, args.repeats));
        let (elapsed, size) = write_once(&history, &report, dir)?;
        progress.set_ops(args.ops as u64);
        progress.finish_step();
        seconds.push(elapsed.as_secs_f64());
        bytes = size;
    }
    progress.finish();
    let row = ReportBenchRow { ops: args.ops, seconds: median(seconds), bytes };
    println!("\nreport.html for a simulated run (10 clients, a crash window, a leader change)\n");
    println!("| operations | write time (median of {}) | size |", args.repeats);
    println!("|---:|---:|---:|");
    println!("| {} | {:.3} s | {:.2} MB |", row.ops, row.seconds, row.bytes as f64 / 1e6);
    if row.ops >= TARGET_OPS && (row.seconds >= TARGET_SECONDS || row.bytes >= TARGET_BYTES) {
        return Err(format!(
            "the target is under {TARGET_SECONDS} s and {} MB for {TARGET_OPS} operations",
            TARGET_BYTES as f64 / 1e6
        ));
    }
    Ok(row)
}

/// Draws and writes the report once: (time taken, file size).
pub fn write_once(history: &History, report: &RunReport, dir: &std::path::Path) -> Result<(Duration, u64), String> {
    let started = Instant::now();
    let input = RunInput { report, history, evidence: &[] };
    let html = run_report(&input)?;
    let path = dir.join(REPORT_FILE);
    std::fs::write(&path, &html).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok((started.elapsed(), html.len() as u64))
}

/// What a run of this history would report: a crash over the middle
/// fifth, the leader moving from node 1 to node 2 inside it.
pub fn synthetic_report(history: &History, seed: u64) -> RunReport {
    let end_s = history.iter().filter_map(|op| op.complete_us).max().unwrap_or(0) as f64 / 1e6;
    let (crash_s, restart_s) = (end_s * 0.4, end_s * 0.6);
    let mut faults = FaultLog::default();
    faults.open(crash_s, FaultKind::Crash, "node 1".into(), "crash node 1".into(), vec![1]);
    faults.close(restart_s, FaultKind::Crash, "node 1");
    let leadership = vec![vec![
        Leadership { at_s: 0.0, state: LeaderState::Leader { leader: 1, term: 1 } },
        Leadership { at_s: crash_s, state: LeaderState::NoLeader },
        Leadership { at_s: crash_s + end_s * 0.02, state: LeaderState::Leader { leader: 2, term: 2 } },
        Leadership { at_s: end_s, state: LeaderState::Stopped },
    ]];
    let operations = results::op_counts(history);
    let (throughput, latency) = results::performance(history);
    RunReport {
        script: "bench report (simulated history)".into(),
        seed,
        exit_code: crate::scenario::exit::PASS,
        error: None,
        duration_s: end_s,
        cluster: Default::default(),
        operations,
        throughput_ops_per_s: throughput,
        latency,
        timeline: Vec::new(),
        fault_windows: faults.windows(end_s),
        availability: leader_watch::availability(&leadership[0], end_s),
        leadership,
        checks: Vec::new(),
        notes: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size half of the target, which does not depend on the machine:
    /// past the threshold the plot is a sample, and says so.
    #[test]
    fn a_report_of_100_000_operations_stays_under_5_mb_and_says_it_is_sampled() {
        let params = SimulationParams { ops: TARGET_OPS, ..SimulationParams::default() };
        let history = simulate_history(&params);
        let html = run_report(&RunInput { report: &synthetic_report(&history, 1), history: &history, evidence: &[] })
            .expect("the report draws");
        assert!((html.len() as u64) < TARGET_BYTES, "{} bytes", html.len());
        assert!(html.contains("sampled: "), "the plot says it is a sample");
        assert_eq!(html.matches("class=\"fault\"").count(), 2, "one crash band on each plot");
    }
}
