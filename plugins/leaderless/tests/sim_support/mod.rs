//! The leaderless policy on the deterministic keyed world of `replab-sim`:
//! the per-seed configuration and schedule bounds, and the invariants
//! (`checker.rs`).

#![allow(dead_code)]

pub mod checker;

use replab_api::{KeyedPolicy, NodeId, PluginRng};
use replab_leaderless::{Bug, Leaderless, LeaderlessConfig};
use replab_sim::keyed::chaos::{self, KeyedChaosOptions, KeyedChaosReport};
use replab_sim::keyed::{KeyedBuilder, KeyedSim, KeyedViolation};
use replab_sim::mix_seed;

pub use checker::{LeaderlessChecker, Model};

/// One seed's cluster, configuration and schedule.
#[derive(Clone, Debug)]
pub struct Setup {
    pub members: usize,
    pub config: LeaderlessConfig,
    pub options: KeyedChaosOptions,
}

fn choose<T: Copy>(rng: &mut PluginRng, items: &[T]) -> T {
    items[rng.range_inclusive(0, items.len() as u64 - 1) as usize]
}

/// Draws a seed's setup: 3 to 5 members, N = 3, R and W anywhere in 1..=3
/// (partial quorums included), read repair on or off, an anti-entropy
/// interval, digest buckets and ring points, request timeouts, and small
/// checkpoint intervals (or none) so that checkpoints and recovery from
/// them happen. At most N - W nodes down at once in half the seeds, more
/// in the others. With `wipes`, half the seeds with W > 1 also lose up to
/// W - 1 nodes' disks whole.
pub fn setup(seed: u64, bug: Bug, wipes: bool) -> Setup {
    let mut rng = PluginRng::from_seed_u64(mix_seed(seed, 0x1ead_1e55));
    let members = rng.range_inclusive(3, 5) as usize;
    let replicas = 3;
    let write_quorum = rng.range_inclusive(1, 3) as usize;
    let read_quorum = rng.range_inclusive(1, 3) as usize;
    let anti_entropy_interval_ms = choose(&mut rng, &[20, 50, 100, 250, 500]);
    let request_timeout_ms = choose(&mut rng, &[50, 200, 1_000]);
    let config = LeaderlessConfig {
        replicas,
        write_quorum,
        read_quorum,
        request_timeout_ms,
        read_repair: rng.chance(0.7),
        anti_entropy_interval_ms,
        anti_entropy_buckets: choose(&mut rng, &[1, 8, 64]),
        ring_vnodes: choose(&mut rng, &[1, 4, 16]),
        checkpoint_every_records: if rng.chance(0.2) { 0 } else { rng.range_inclusive(2, 30) },
        bug,
    };
    let tolerated = (replicas - write_quorum).max(1);
    let max_down =
        if rng.chance(0.5) { tolerated } else { rng.range_inclusive(tolerated as u64, members as u64 - 1) as usize };
    let max_wiped = if rng.chance(0.5) && wipes { write_quorum - 1 } else { 0 };
    let options = KeyedChaosOptions {
        nodes: members,
        duration_us: 4_000_000,
        keys: rng.range_inclusive(2, 8) as usize,
        max_down,
        max_wiped,
        tick_interval_us: 10_000,
        // Forwarded puts wait twice the timeout; then anti-entropy gets
        // at least 60 rounds per node to converge.
        settle_min_us: 2 * request_timeout_ms * 1_000 + 100_000,
        settle_bound_us: (60 * anti_entropy_interval_ms * 1_000).max(10_000_000),
        replay_command: String::new(),
    };
    Setup { members, config, options }
}

pub fn builder<R: Model>(config: LeaderlessConfig) -> KeyedBuilder {
    Box::new(move |ctx, recovered| {
        Leaderless::<R>::recover(ctx, config.clone(), recovered).map(|node| Box::new(node) as Box<dyn KeyedPolicy>)
    })
}

pub fn checker<R: Model>(setup: &Setup) -> LeaderlessChecker<R> {
    let members: Vec<NodeId> = (1..=setup.members as NodeId).collect();
    LeaderlessChecker::<R>::new(&members, setup.config.ring_vnodes, setup.config.replicas, setup.config.write_quorum)
}

/// How a seed runs besides its drawn setup.
#[derive(Clone, Copy, Debug)]
pub struct Variant {
    pub bug: Bug,
    /// Disks lost whole in some seeds (see [`setup`]).
    pub wipes: bool,
    /// The `DurableAck` invariant (off only to show what the end-state
    /// invariants see alone).
    pub durable_acks: bool,
    /// Flag forwarded puts answered `Failed` although applied, as any
    /// other put (off: count them, the lenient reading the CI seeds used
    /// while a duplicated forward could cause it; see `checker.rs`).
    pub flag_forwarded_failures: bool,
}

impl Variant {
    /// The CI runs: no bug, lost disks under both resolvers, every failed
    /// put checked strictly.
    pub fn ci<R: Model>() -> Variant {
        Variant { bug: Bug::None, wipes: true, durable_acks: true, flag_forwarded_failures: true }
    }

    pub fn bug<R: Model>(bug: Bug) -> Variant {
        Variant { bug, ..Variant::ci::<R>() }
    }
}

pub fn bug_name(bug: Bug) -> &'static str {
    match bug {
        Bug::None => "none",
        Bug::AckBeforePersist => "ack_before_persist",
        Bug::IgnoreContext => "ignore_context",
        Bug::CorruptReplicaValue => "corrupt_replica_value",
        Bug::AntiEntropyOverwrites => "anti_entropy_overwrites",
        Bug::ForgetIncarnation => "forget_incarnation",
        Bug::CoordinateDuplicates => "coordinate_duplicates",
    }
}

/// The command that replays a seed of this resolver and variant.
pub fn replay<R: Model>(variant: Variant) -> String {
    let mut env = "REPLAB_SIM_SEED={seed}".to_string();
    if R::LOSES_CONCURRENT_WRITES {
        env += " REPLAB_SIM_RESOLVER=lww";
    }
    if variant.bug != Bug::None {
        env += &format!(" REPLAB_SIM_BUG={}", bug_name(variant.bug));
    }
    if variant.wipes != Variant::ci::<R>().wipes {
        env += &format!(" REPLAB_SIM_WIPES={}", u8::from(variant.wipes));
    }
    if !variant.durable_acks {
        env += " REPLAB_SIM_DURABLE_ACKS=0";
    }
    if !variant.flag_forwarded_failures {
        env += " REPLAB_SIM_FLAG_FORWARDED_FAILURES=0";
    }
    format!("{env} cargo test --release -p replab-leaderless --test simulation -- --exact replay_one_seed")
}

/// The variant `replay` names, read back from the environment.
pub fn variant_from_env<R: Model>() -> Variant {
    let var = |name: &str| std::env::var(name).ok();
    let mut variant = Variant::ci::<R>();
    if let Some(name) = var("REPLAB_SIM_BUG") {
        let bug = [
            Bug::None,
            Bug::AckBeforePersist,
            Bug::IgnoreContext,
            Bug::CorruptReplicaValue,
            Bug::AntiEntropyOverwrites,
            Bug::ForgetIncarnation,
            Bug::CoordinateDuplicates,
        ]
        .into_iter()
        .find(|b| bug_name(*b) == name);
        variant.bug = bug.unwrap_or_else(|| panic!("no bug switch {name:?}"));
    }
    if let Some(wipes) = var("REPLAB_SIM_WIPES") {
        variant.wipes = wipes == "1";
    }
    if let Some(acks) = var("REPLAB_SIM_DURABLE_ACKS") {
        variant.durable_acks = acks != "0";
    }
    if let Some(flag) = var("REPLAB_SIM_FLAG_FORWARDED_FAILURES") {
        variant.flag_forwarded_failures = flag != "0";
    }
    variant
}

/// Runs one seed with the resolver `R`.
pub fn run_seed<R: Model>(seed: u64, variant: Variant) -> Result<KeyedChaosReport, KeyedViolation> {
    run_keeping_world::<R>(seed, variant).1
}

pub fn run_keeping_world<R: Model>(
    seed: u64,
    variant: Variant,
) -> (Option<KeyedSim>, Result<KeyedChaosReport, KeyedViolation>) {
    let mut setup = setup(seed, variant.bug, variant.wipes);
    setup.options.replay_command = replay::<R>(variant);
    let check_durable_acks = variant.durable_acks;
    let mut checker = checker::<R>(&setup);
    checker.check_durable_acks = check_durable_acks;
    checker.flag_forwarded_failures = variant.flag_forwarded_failures;
    chaos::run_keeping_world(seed, &setup.options, builder::<R>(setup.config.clone()), Box::new(checker))
}
