//! The leaderless policy on the deterministic keyed world: thousands of
//! seeds with crashes, restarts from checkpoints, partitions, drops,
//! duplicates, reordering, stalled disks and clock skew, under version
//! vectors and under last-writer-wins, every record and reply checked
//! against the policy's own invariants (`sim_support/checker.rs`), then
//! everything healed, the replicas left to converge by anti-entropy and
//! checked again.
//!
//! `REPLAB_SIM_SEEDS=N` sets the number of version-vector seeds (default
//! 1000), `REPLAB_SIM_LWW_SEEDS=N` the last-writer-wins ones (default 400);
//! `REPLAB_SIM_SEED=S` with `replay_one_seed` replays one seed, as the
//! replay line of a violation spells it. Two ignored tests produce the
//! figures of `docs/SIMULATION.md`: `seed_timings` (the dearest seeds) and
//! `bug_catch_rates` (how often each invariant catches each bug switch).

mod sim_support;

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use replab_leaderless::Bug;
use replab_lww::Lww;
use replab_sim::keyed::{KeyedChaosReport, KeyedViolation, OpCounts, WorldStats};
use replab_version_vector::VersionVectors;
use sim_support::{Model, Variant, run_seed, variant_from_env};

const DEFAULT_VV_SEEDS: u64 = 1_000;
const DEFAULT_LWW_SEEDS: u64 = 400;
const VV_SHARDS: u64 = 4;
const LWW_SHARDS: u64 = 2;

static RUN_STARTED: OnceLock<Instant> = OnceLock::new();
static SHARDS_DONE: AtomicU64 = AtomicU64::new(0);
static SEEDS_DONE: AtomicU64 = AtomicU64::new(0);

fn env_count(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// What a shard saw, summed over its seeds.
#[derive(Default)]
struct Coverage {
    seeds: u64,
    ops: OpCounts,
    world: WorldStats,
    counters: BTreeMap<&'static str, u64>,
    checker: BTreeMap<&'static str, u64>,
    dropped: u64,
    duplicated: u64,
    slowest_settle_us: u64,
}

impl Coverage {
    fn add(&mut self, r: &KeyedChaosReport) {
        self.seeds += 1;
        self.ops.add(&r.ops);
        let w = &mut self.world;
        w.crashes += r.world.crashes;
        w.wipes += r.world.wipes;
        w.restarts += r.world.restarts;
        w.restarts_from_checkpoint += r.world.restarts_from_checkpoint;
        w.checkpoints += r.world.checkpoints;
        w.kept_unsynced += r.world.kept_unsynced;
        w.held_sends += r.world.held_sends;
        w.told_dead += r.world.told_dead;
        w.step_errors += r.world.step_errors;
        for (name, value) in &r.counters {
            *self.counters.entry(name).or_default() += value;
        }
        for (name, value) in &r.checker {
            *self.checker.entry(name).or_default() += value;
        }
        self.dropped += r.network.dropped;
        self.duplicated += r.network.duplicated;
        self.slowest_settle_us = self.slowest_settle_us.max(r.settle_us.expect("settled, or the checker said why"));
    }

    fn counter(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }

    fn checked(&self, name: &str) -> u64 {
        self.checker.get(name).copied().unwrap_or(0)
    }

    /// The faults must have bitten and every path been taken.
    fn assert_bit(&self, siblings: bool, wipes: bool) {
        let (o, w) = (&self.ops, &self.world);
        let summary = format!("{:?} {:?} {:?} {:?}", o, w, self.counters, self.checker);
        assert!(w.crashes > 0 && w.restarts_from_checkpoint > 0 && w.kept_unsynced > 0, "no crash bit: {summary}");
        assert!(self.dropped > 0 && self.duplicated > 0 && w.told_dead > 0, "the network never bit: {summary}");
        assert!(o.written > 0 && o.unknown_puts > 0 && o.failed_puts > 0 && o.unanswered > 0, "{summary}");
        assert!(o.values_read > 0 && o.failed_reads > 0 && o.updates > 0 && o.deletes > 0, "{summary}");
        assert!(!siblings || o.reads_with_siblings > 0, "no read ever saw siblings: {summary}");
        assert!(!wipes || w.wipes > 0, "no disk was ever lost: {summary}");
        for counter in [
            "read_repairs",
            "anti_entropy_rounds",
            "anti_entropy_keys_repaired",
            "forwarded",
            "failed_fast",
            "duplicate_forwards",
        ] {
            assert!(self.counter(counter) > 0, "{counter} never happened: {summary}");
        }
        assert!(self.checked("durable_acks_checked") > 0 && self.checked("superseded_writes") > 0, "{summary}");
        assert_eq!(w.step_errors, 0, "a correct cluster refused inputs: {summary}");
    }
}

fn run_shard<R: Model>(name: &str, seeds: u64, shards: u64, shard: u64, total_shards: u64) {
    let started = Instant::now();
    let run_started = *RUN_STARTED.get_or_init(Instant::now);
    let mut coverage = Coverage::default();
    for seed in (0..seeds).filter(|s| s % shards == shard) {
        let report = run_seed::<R>(seed, Variant::ci::<R>()).unwrap_or_else(|violation| panic!("{violation}"));
        coverage.add(&report);
    }
    let wall = started.elapsed().as_secs_f64();
    let c = &coverage;
    eprintln!(
        "{name} shard {shard}: {} seeds in {wall:.1}s wall ({:.1} seeds/s); crashes {}, lost disks {}, restarts \
         from checkpoint {}, reads {} ({} with siblings, {} failed), puts {} ({} written, {} unknown, {} failed, {} \
         unanswered), read repairs {}, anti-entropy rounds {} ({} keys repaired), told dead {}, slowest settle \
         {}ms; checker {:?}",
        c.seeds,
        c.seeds as f64 / wall.max(1e-9),
        c.world.crashes,
        c.world.wipes,
        c.world.restarts_from_checkpoint,
        c.ops.values_read + c.ops.failed_reads,
        c.ops.reads_with_siblings,
        c.ops.failed_reads,
        c.ops.puts,
        c.ops.written,
        c.ops.unknown_puts,
        c.ops.failed_puts,
        c.ops.unanswered,
        c.counter("read_repairs"),
        c.counter("anti_entropy_rounds"),
        c.counter("anti_entropy_keys_repaired"),
        c.world.told_dead,
        c.slowest_settle_us / 1_000,
        c.checker,
    );
    let done = SEEDS_DONE.fetch_add(c.seeds, Ordering::SeqCst) + c.seeds;
    if SHARDS_DONE.fetch_add(1, Ordering::SeqCst) + 1 == total_shards {
        let wall = run_started.elapsed().as_secs_f64();
        eprintln!(
            "all {total_shards} shards: {done} seeds in {wall:.1}s wall, {:.1} seeds/s",
            done as f64 / wall.max(1e-9)
        );
    }
    if c.seeds >= 50 {
        coverage.assert_bit(!R::LOSES_CONCURRENT_WRITES, Variant::ci::<R>().wipes);
    }
}

const ALL_SHARDS: u64 = VV_SHARDS + LWW_SHARDS;

fn vv_shard(shard: u64) {
    run_shard::<VersionVectors>(
        "version-vector",
        env_count("REPLAB_SIM_SEEDS", DEFAULT_VV_SEEDS),
        VV_SHARDS,
        shard,
        ALL_SHARDS,
    );
}

fn lww_shard(shard: u64) {
    run_shard::<Lww>("lww", env_count("REPLAB_SIM_LWW_SEEDS", DEFAULT_LWW_SEEDS), LWW_SHARDS, shard, ALL_SHARDS);
}

#[test]
fn version_vector_seeds_shard_0() {
    vv_shard(0);
}

#[test]
fn version_vector_seeds_shard_1() {
    vv_shard(1);
}

#[test]
fn version_vector_seeds_shard_2() {
    vv_shard(2);
}

#[test]
fn version_vector_seeds_shard_3() {
    vv_shard(3);
}

#[test]
fn lww_seeds_shard_0() {
    lww_shard(0);
}

#[test]
fn lww_seeds_shard_1() {
    lww_shard(1);
}

/// Replays one seed: `REPLAB_SIM_SEED=S`, with `REPLAB_SIM_RESOLVER=lww`,
/// `REPLAB_SIM_BUG=<switch>`, `REPLAB_SIM_WIPES=0|1`,
/// `REPLAB_SIM_DURABLE_ACKS=0` and `REPLAB_SIM_FLAG_FORWARDED_FAILURES=0` as
/// a violation's replay line names them.
#[test]
fn replay_one_seed() {
    let Some(seed) = std::env::var("REPLAB_SIM_SEED").ok().and_then(|s| s.parse().ok()) else {
        eprintln!("set REPLAB_SIM_SEED to replay a seed (see the replay line of a violation)");
        return;
    };
    fn replay<R: Model>(seed: u64) {
        let variant = variant_from_env::<R>();
        eprintln!("seed {seed}, {variant:?}, {:?}", sim_support::setup(seed, variant.bug, variant.wipes));
        match run_seed::<R>(seed, variant) {
            Ok(report) => eprintln!("seed {seed} passed: {report:#?}"),
            Err(violation) => panic!("{violation}"),
        }
    }
    if std::env::var("REPLAB_SIM_RESOLVER").is_ok_and(|r| r == "lww") {
        replay::<Lww>(seed);
    } else {
        replay::<VersionVectors>(seed);
    }
}

/// Runs seeds with a bug switched on until the checker reports one of
/// `expected`; fails if none shows up within `max_seeds`.
fn catches<R: Model>(variant: Variant, expected: &[&str], max_seeds: u64) -> KeyedViolation {
    let bug = variant.bug;
    for seed in 0..max_seeds {
        if let Err(violation) = run_seed::<R>(seed, variant) {
            assert!(expected.contains(&violation.invariant), "{bug:?} tripped an unexpected invariant: {violation}");
            assert!(violation.replay.contains(&format!("REPLAB_SIM_SEED={seed} ")), "{}", violation.replay);
            eprintln!("{variant:?} caught at seed {seed}: {violation}");
            return violation;
        }
    }
    panic!("{bug:?} went unnoticed for {max_seeds} seeds");
}

#[test]
fn checker_catches_corrupt_replica_value() {
    catches::<VersionVectors>(Variant::bug::<VersionVectors>(Bug::CorruptReplicaValue), &["Provenance"], 20);
    catches::<Lww>(Variant::bug::<Lww>(Bug::CorruptReplicaValue), &["Provenance"], 20);
}

#[test]
fn checker_catches_anti_entropy_overwrites() {
    // Replacing a register can also drop the node's own latest dot, which
    // it then hands out again (VersionReuse), and a durable copy an owner
    // acknowledged (DurableAck).
    let expected = ["Convergence", "LostWrite", "DurableAck", "VersionReuse"];
    catches::<VersionVectors>(Variant::bug::<VersionVectors>(Bug::AntiEntropyOverwrites), &expected, 100);
    catches::<Lww>(Variant::bug::<Lww>(Bug::AntiEntropyOverwrites), &expected, 100);
}

#[test]
fn checker_catches_ignore_context() {
    catches::<VersionVectors>(Variant::bug::<VersionVectors>(Bug::IgnoreContext), &["LostWrite"], 100);
}

/// Caught when the acknowledgement is given, by `DurableAck`. The state at
/// the end cannot show it without lost disks: the coordinator counts itself
/// only once its own record is durable, so a crash never takes its copy,
/// and anti-entropy spreads it again (0 of 200 seeds catch it with
/// `DurableAck` off; see `docs/SIMULATION.md`).
#[test]
fn checker_catches_ack_before_persist() {
    catches::<VersionVectors>(Variant::bug::<VersionVectors>(Bug::AckBeforePersist), &["DurableAck"], 100);
    catches::<Lww>(Variant::bug::<Lww>(Bug::AckBeforePersist), &["DurableAck"], 100);
}

/// The harness's first finding, fixed. Under version vectors a node that
/// lost its disk started its dot counters over and named new writes with
/// dots its peers had already seen; they dropped them as old, and a put
/// acknowledged `Written` vanished. Now a node that finds its state
/// missing gets a new incarnation and writes under a new actor
/// (`replab_api::actor_id`). `Bug::ForgetIncarnation` writes under the node
/// id again: the checker must catch it, and the seed that shows it must
/// pass with the fix. (The CI seeds lose disks under both resolvers.)
#[test]
fn a_lost_disk_no_longer_reuses_dots_under_version_vectors() {
    let broken = Variant::bug::<VersionVectors>(Bug::ForgetIncarnation);
    assert!(broken.wipes, "the CI seeds lose disks");
    let v = catches::<VersionVectors>(broken, &["VersionReuse", "LostWrite"], 300);
    assert!(v.detail.contains("already named") || v.invariant == "LostWrite", "{v}");
    let fixed = run_seed::<VersionVectors>(v.seed, Variant::ci::<VersionVectors>()).unwrap_or_else(|v| panic!("{v}"));
    assert!(fixed.world.wipes > 0, "seed {} loses a disk: {:?}", v.seed, fixed.world);
}

/// The harness's second finding, fixed. A put sent to a node that owns
/// none of its key is forwarded to an owner (`Coordinate`); when the
/// network duplicated that message, the owner coordinated the put twice,
/// and if its failure detector changed its mind in between, the second
/// copy failed fast and its `Failed` could reach the forwarder before the
/// first copy's answer: the client heard "certainly not applied anywhere"
/// about a put every replica held. Now the coordinator remembers forwarded
/// puts and answers a copy with the first answer (`idempotence.rs`), and
/// answers a forwarded put it refuses for lack of live owners `Unknown`.
/// `Bug::CoordinateDuplicates` restores the old coordinator: the checker,
/// which now flags every failed put strictly (as the CI seeds do), must
/// catch it, and the seed that shows it must pass with the fix.
#[test]
fn a_duplicated_forward_no_longer_fails_a_put_that_was_applied() {
    let broken = Variant::bug::<Lww>(Bug::CoordinateDuplicates);
    assert!(broken.flag_forwarded_failures, "the CI seeds flag forwarded failures");
    let v = catches::<Lww>(broken, &["FailedApplied"], 400);
    assert!(v.detail.contains("answered Failed"), "{v}");
    let fixed = run_seed::<Lww>(v.seed, Variant::ci::<Lww>()).unwrap_or_else(|v| panic!("{v}"));
    let copies = fixed.counters.get("duplicate_forwards").copied().unwrap_or(0);
    assert!(copies > 0, "seed {} duplicates a forward: {:?}", v.seed, fixed.counters);
}

/// A seed is a pure function of itself: the same run twice gives the same
/// report, event for event.
#[test]
fn a_seed_replays_exactly() {
    for seed in [3, 17] {
        let first = run_seed::<VersionVectors>(seed, Variant::ci::<VersionVectors>()).expect("a passing seed");
        let second = run_seed::<VersionVectors>(seed, Variant::ci::<VersionVectors>()).expect("a passing seed");
        assert_eq!(format!("{first:?}"), format!("{second:?}"));
        let lww = |s| format!("{:?}", run_seed::<Lww>(s, Variant::ci::<Lww>()).expect("a passing seed"));
        assert_eq!(lww(seed), lww(seed));
    }
}

#[test]
#[ignore]
fn seed_timings() {
    let n = env_count("REPLAB_SIM_SEEDS", 200);
    let mut times = Vec::new();
    for seed in 0..n {
        let t = Instant::now();
        let r = run_seed::<VersionVectors>(seed, Variant::ci::<VersionVectors>()).unwrap_or_else(|v| panic!("{v}"));
        times.push((t.elapsed().as_secs_f64(), seed, r.events, r.settle_us));
    }
    times.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap());
    for t in times.iter().take(8) {
        eprintln!(
            "{:.3}s seed {} events {} settle {:?} {:?}",
            t.0,
            t.1,
            t.2,
            t.3,
            sim_support::setup(t.1, Bug::None, false).config
        );
    }
}

#[test]
#[ignore]
fn bug_catch_rates() {
    let n = env_count("REPLAB_SIM_SEEDS", 100);
    fn rate<R: Model>(name: &str, variant: Variant, n: u64) {
        let mut by: BTreeMap<&'static str, (u64, u64)> = BTreeMap::new();
        for seed in 0..n {
            if let Err(v) = run_seed::<R>(seed, variant) {
                by.entry(v.invariant).or_insert((seed, 0)).1 += 1;
            }
        }
        eprintln!("{name} {variant:?}: of {n} seeds, by invariant (first seed, count): {by:?}");
    }
    for bug in [Bug::CorruptReplicaValue, Bug::AntiEntropyOverwrites, Bug::IgnoreContext, Bug::AckBeforePersist] {
        rate::<VersionVectors>("vv", Variant::bug::<VersionVectors>(bug), n);
        rate::<Lww>("lww", Variant::bug::<Lww>(bug), n);
    }
    for wipes in [false, true] {
        let v = Variant { bug: Bug::AckBeforePersist, wipes, durable_acks: false, flag_forwarded_failures: true };
        rate::<VersionVectors>("vv", v, n);
        rate::<Lww>("lww", v, n);
    }
    rate::<VersionVectors>("vv", Variant::bug::<VersionVectors>(Bug::ForgetIncarnation), n);
    rate::<VersionVectors>("vv", Variant::bug::<VersionVectors>(Bug::CoordinateDuplicates), n);
    rate::<Lww>("lww", Variant::bug::<Lww>(Bug::CoordinateDuplicates), n);
}
