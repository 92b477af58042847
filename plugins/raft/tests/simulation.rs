//! Randomized simulation: thousands of seeds, 5 nodes, 10 s of virtual
//! time each, with crashes, restarts, partitions, drops, duplicates,
//! delays and stalled disks; every invariant checked after every step;
//! then everything is healed and the cluster must commit again.
//!
//! `REPLAB_SIM_SEEDS=N` sets the number of seeds (default 5000);
//! `REPLAB_SIM_SEED=S` with the `replay_one_seed` test replays one seed.

mod support;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use replab_raft::Bug;
use replab_sim::chaos::ChaosOptions;
use replab_sim::{EffectCounts, Invariant, Violation};
use support::{chaos_options, run_seed, run_seed_with};

const DEFAULT_SEEDS: u64 = 5_000;
/// The seed range runs as this many tests, so the test harness spreads it
/// over the cores.
const SHARDS: u64 = 4;

/// The whole sharded run: its start (the first shard's) and how many
/// shards and seeds are done; the last shard to finish prints the total.
static RUN_STARTED: OnceLock<Instant> = OnceLock::new();
static SHARDS_DONE: AtomicU64 = AtomicU64::new(0);
static SEEDS_DONE: AtomicU64 = AtomicU64::new(0);

fn seeds() -> u64 {
    std::env::var("REPLAB_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_SEEDS)
}

fn run_shard(shard: u64) {
    let started = Instant::now();
    let run_started = *RUN_STARTED.get_or_init(Instant::now);
    let mut committed = 0;
    let mut slowest_recovery_us = 0;
    let mut effects = EffectCounts::default();
    let mut crashes = 0;
    let mut ran = 0;
    for seed in (0..seeds()).filter(|s| s % SHARDS == shard) {
        let report = run_seed(seed, Bug::None).unwrap_or_else(|violation| panic!("{violation}"));
        let recovery = report.liveness.expect("the liveness phase ran");
        slowest_recovery_us = slowest_recovery_us.max(recovery.done_at_us - recovery.healed_at_us);
        committed += report.commands_committed;
        crashes += report.crashes;
        effects.add(&report.effects);
        ran += 1;
    }
    let wall = started.elapsed().as_secs_f64();
    eprintln!(
        "shard {shard}: {ran} seeds in {wall:.1}s wall ({:.0} seeds/s), {committed} commands committed, {crashes} \
         crashes, slowest recovery {slowest_recovery_us}us after heal; {effects:?}",
        ran as f64 / wall.max(1e-9)
    );
    let seeds_done = SEEDS_DONE.fetch_add(ran, Ordering::SeqCst) + ran;
    if SHARDS_DONE.fetch_add(1, Ordering::SeqCst) + 1 == SHARDS {
        let wall = run_started.elapsed().as_secs_f64();
        eprintln!(
            "all {SHARDS} shards: {seeds_done} seeds in {wall:.1}s wall, {:.0} seeds/s",
            seeds_done as f64 / wall.max(1e-9)
        );
    }
    // A run that never crashed, truncated or snapshotted would prove little.
    if ran >= 50 {
        assert!(crashes > 0 && effects.truncations > 0, "the faults never bit: {effects:?}");
        assert!(effects.snapshots_installed > 0 && effects.compactions > 0, "no snapshot was ever sent: {effects:?}");
        assert!(effects.reads_ready > 0 && effects.proposals_rejected > 0, "clients never got through: {effects:?}");
    }
}

#[test]
fn random_seeds_shard_0() {
    run_shard(0);
}

#[test]
fn random_seeds_shard_1() {
    run_shard(1);
}

#[test]
fn random_seeds_shard_2() {
    run_shard(2);
}

#[test]
fn random_seeds_shard_3() {
    run_shard(3);
}

#[test]
fn replay_one_seed() {
    let Some(seed) = std::env::var("REPLAB_SIM_SEED").ok().and_then(|s| s.parse().ok()) else {
        eprintln!("set REPLAB_SIM_SEED to replay a seed");
        return;
    };
    match run_seed(seed, Bug::None) {
        Ok(report) => eprintln!("seed {seed} passed: {report:?}"),
        Err(violation) => panic!("{violation}"),
    }
}

/// Runs seeds with a bug switched on until the checker reports a violation
/// of one of `expected`; fails if none shows up within `max_seeds`.
fn checker_catches(bug: Bug, expected: &[Invariant], max_seeds: u64) -> Violation {
    checker_catches_with(bug, &chaos_options(), expected, max_seeds)
}

fn checker_catches_with(bug: Bug, options: &ChaosOptions, expected: &[Invariant], max_seeds: u64) -> Violation {
    for seed in 0..max_seeds {
        if let Err(violation) = run_seed_with(seed, bug, options) {
            assert!(expected.contains(&violation.invariant), "{bug:?} tripped an unexpected invariant: {violation}");
            assert!(violation.replay.contains(&format!("REPLAB_SIM_SEED={seed} ")), "{}", violation.replay);
            return violation;
        }
    }
    panic!("{bug:?} went unnoticed for {max_seeds} seeds");
}

#[test]
fn checker_catches_commit_without_quorum() {
    let v = checker_catches(Bug::CommitWithoutQuorum, &[Invariant::CommitDurability], 20);
    eprintln!("caught: {v}");
}

#[test]
fn checker_catches_vote_without_term_check() {
    let v = checker_catches(
        Bug::VoteWithoutTermCheck,
        &[Invariant::VoteSafety, Invariant::ElectionSafety, Invariant::LeaderCompleteness],
        50,
    );
    eprintln!("caught: {v}");
}

#[test]
fn checker_catches_read_without_read_index() {
    let v = checker_catches(Bug::ReadWithoutReadIndex, &[Invariant::StaleRead], 50);
    eprintln!("caught: {v}");
}

/// The paper's Figure 8: an older-term entry committed by counting its
/// replicas. The commit itself is flagged (a node without the entry could
/// still be elected); the leader-churn windows of the chaos schedule are
/// what produce that shape.
#[test]
fn checker_catches_commit_previous_term() {
    let v = checker_catches(
        Bug::CommitPreviousTerm,
        &[
            Invariant::ElectableWithoutCommitted,
            Invariant::LeaderCompleteness,
            Invariant::CommittedEntryLost,
            Invariant::StateMachineSafety,
        ],
        200,
    );
    eprintln!("caught: {v}");
}

/// The same bug without the `ElectableWithoutCommitted` check: the schedule
/// alone must carry it through to the damage, a leader elected without a
/// committed entry, or the entry overwritten.
#[test]
fn schedule_alone_catches_commit_previous_term() {
    let options = ChaosOptions { check_electable_without_committed: false, ..chaos_options() };
    let v = checker_catches_with(
        Bug::CommitPreviousTerm,
        &options,
        &[Invariant::LeaderCompleteness, Invariant::CommittedEntryLost, Invariant::StateMachineSafety],
        1_000,
    );
    eprintln!("caught: {v}");
}
