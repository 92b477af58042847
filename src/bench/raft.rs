//! `replab bench raft`: what the Raft plugin itself costs, with no I/O.
//!
//! A 3-node cluster in the deterministic harness (virtual time, in-memory
//! network and disk, invariant checks off) commits commands proposed in
//! batches. All of it runs on one thread, so committed entries per
//! CPU-second measures the plugin's protocol work (three state machines,
//! message encoding and decoding, the harness's bookkeeping), not sockets
//! or fsync.

use std::collections::VecDeque;

use bytes::Bytes;
use replab_api::{NodeId, ProposalId};
use replab_raft::{Raft, RaftConfig};

use replab_sim::{DiskConfig, LinkConfig, ProposalStatus, Sim, SimOptions};

use super::median;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BenchReport {
    /// Commands known committed (proposals whose last entry applied).
    pub committed_entries: u64,
    pub proposals: u64,
    pub messages: u64,
    pub events: u64,
    pub virtual_time_us: u64,
}

/// Proposals allowed in flight before the client waits.
const MAX_OUTSTANDING_PROPOSALS: usize = 64;
/// Bytes of each command.
const COMMAND_BYTES: usize = 64;

#[derive(Clone, Debug)]
pub struct RaftBenchArgs {
    pub batch_sizes: Vec<usize>,
    pub entries: u64,
    pub repeats: usize,
}

impl Default for RaftBenchArgs {
    fn default() -> RaftBenchArgs {
        RaftBenchArgs { batch_sizes: vec![1, 64], entries: 200_000, repeats: 5 }
    }
}

/// One measured run.
#[derive(Clone, Copy, Debug)]
pub struct RaftRun {
    pub batch_size: usize,
    pub report: BenchReport,
    pub cpu_seconds: f64,
}

impl RaftRun {
    pub fn entries_per_cpu_second(&self) -> f64 {
        self.report.committed_entries as f64 / self.cpu_seconds.max(1e-9)
    }
}

/// Runs every batch size `repeats` times, interleaved, and prints the
/// median run of each.
pub fn run_all(args: &RaftBenchArgs) -> Vec<RaftRun> {
    let mut runs: Vec<Vec<RaftRun>> = vec![Vec::new(); args.batch_sizes.len()];
    let repeats = args.repeats.max(1);
    let progress = crate::progress::Progress::new("bench raft", (repeats * args.batch_sizes.len()) as u64);
    for repeat in 0..repeats {
        for (slot, &batch_size) in args.batch_sizes.iter().enumerate() {
            progress.start_step(&format!("batch {batch_size}, run {}/{repeats}", repeat + 1));
            let cpu_start = thread_cpu_seconds();
            let report = run(batch_size, args.entries);
            let cpu_seconds = thread_cpu_seconds() - cpu_start;
            progress.set_ops(report.committed_entries);
            progress.finish_step();
            runs[slot].push(RaftRun { batch_size, report, cpu_seconds });
        }
    }
    progress.finish();
    let chosen: Vec<RaftRun> = runs
        .into_iter()
        .map(|case| {
            let med = median(case.iter().map(RaftRun::entries_per_cpu_second).collect());
            *case.iter().find(|r| r.entries_per_cpu_second() == med).expect("median is a run")
        })
        .collect();
    println!(
        "\nRaft benchmark: 3-node in-memory harness, {} committed entries per run (median of {} runs)\n",
        args.entries, args.repeats
    );
    println!("| batch size | committed entries | CPU s | entries / CPU-second | messages / entry |");
    println!("|---:|---:|---:|---:|---:|");
    for r in &chosen {
        println!(
            "| {} | {} | {:.3} | {:.0} | {:.2} |",
            r.batch_size,
            r.report.committed_entries,
            r.cpu_seconds,
            r.entries_per_cpu_second(),
            r.report.messages as f64 / r.report.committed_entries.max(1) as f64
        );
    }
    if let (Some(first), Some(last)) = (chosen.first(), chosen.last()) {
        println!(
            "\nbatch {} / batch {}: {:.1}x entries per CPU-second",
            last.batch_size,
            first.batch_size,
            last.entries_per_cpu_second() / first.entries_per_cpu_second()
        );
    }
    chosen
}

/// CPU time this thread has used. The harness is single-threaded, so this
/// is the plugin's cost, whatever else the machine is doing.
fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into the valid pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "CLOCK_THREAD_CPUTIME_ID is available on Linux");
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// Commits at least `total_entries` commands, proposed in batches of
/// `batch_size`.
pub fn run(batch_size: usize, total_entries: u64) -> BenchReport {
    assert!(batch_size > 0, "batches need at least one command");
    let mut options = SimOptions::new(1, 3);
    options.check_invariants = false;
    options.tick_interval_us = 1_000;
    options.link = LinkConfig { delay_min_us: 20, delay_max_us: 50, ..LinkConfig::BENIGN };
    options.disk = DiskConfig { fsync_min_us: 20, fsync_max_us: 50 };
    let mut sim = Sim::new(options, |ctx, recovered| Raft::new(ctx, RaftConfig::default(), recovered));
    let command = Bytes::from(vec![0x5a; COMMAND_BYTES]);
    let mut outstanding: VecDeque<ProposalId> = VecDeque::with_capacity(MAX_OUTSTANDING_PROPOSALS);
    let mut proposed_entries = 0u64;
    let mut leader: Option<NodeId> = None;
    while sim.committed_commands() < total_entries {
        while outstanding.front().is_some_and(|&id| {
            !matches!(
                sim.proposal(id).map(|p| &p.status),
                Some(ProposalStatus::Submitted | ProposalStatus::Proposed { .. })
            )
        }) {
            let id = outstanding.pop_front().expect("checked");
            if !matches!(sim.proposal(id).map(|p| &p.status), Some(ProposalStatus::Committed { .. })) {
                let count = sim.proposal(id).map_or(0, |p| p.commands as u64);
                proposed_entries -= count;
            }
        }
        if leader.is_none() || leader != sim.leader() {
            leader = sim.wait_for_leader(10_000_000).expect("no invariant checks run");
        }
        let target = leader.expect("a fault-free cluster elects a leader");
        if outstanding.len() < MAX_OUTSTANDING_PROPOSALS && proposed_entries < total_entries {
            let id = sim.propose(target, vec![command.clone(); batch_size]).expect("no invariant checks run");
            outstanding.push_back(id);
            proposed_entries += batch_size as u64;
        } else if !sim.step().expect("no invariant checks run") {
            break;
        }
    }
    let messages: u64 = (1..=3).filter_map(|id| sim.policy(id)).map(|raft| raft.stats().messages_sent).sum();
    BenchReport {
        committed_entries: sim.committed_commands(),
        proposals: sim.proposals().len() as u64,
        messages,
        events: sim.events_processed(),
        virtual_time_us: sim.now_us(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn commits_what_it_is_asked_for() {
        let report = super::run(8, 500);
        assert!(report.committed_entries >= 500, "{report:?}");
        assert!(report.messages > 0);
    }
}
