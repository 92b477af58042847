//! How a simulated world is set up: cluster size, seed, time granularity,
//! network and disk behaviour, and the state the nodes start from.

use replab_api::{NodeId, Recovered};

/// Behaviour of one directed network link.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkConfig {
    /// One-way delay, drawn uniformly from `delay_min_us ..= delay_max_us`.
    pub delay_min_us: u64,
    pub delay_max_us: u64,
    pub drop_probability: f64,
    /// Probability that a message is delivered twice (each copy with its
    /// own delay).
    pub duplicate_probability: f64,
    /// Probability that a message gets an extra delay of up to
    /// `reorder_extra_max_us`, letting later messages overtake it.
    pub reorder_probability: f64,
    pub reorder_extra_max_us: u64,
}

impl LinkConfig {
    /// A fast, lossless, in-order-ish LAN link.
    pub const BENIGN: LinkConfig = LinkConfig {
        delay_min_us: 100,
        delay_max_us: 1_000,
        drop_probability: 0.0,
        duplicate_probability: 0.0,
        reorder_probability: 0.0,
        reorder_extra_max_us: 0,
    };
}

impl Default for LinkConfig {
    fn default() -> LinkConfig {
        LinkConfig::BENIGN
    }
}

/// Behaviour of every node's disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskConfig {
    /// Latency of one fsync, drawn uniformly from `fsync_min_us ..=
    /// fsync_max_us`. One sync covers every write issued before it started.
    pub fsync_min_us: u64,
    pub fsync_max_us: u64,
}

impl Default for DiskConfig {
    fn default() -> DiskConfig {
        DiskConfig { fsync_min_us: 100, fsync_max_us: 2_000 }
    }
}

#[derive(Clone, Debug)]
pub struct SimOptions {
    /// The run seed: every random choice of the world and every node's
    /// RNG seed derive from it, so a seed replays the run exactly.
    pub seed: u64,
    /// Nodes get ids `1 ..= nodes`.
    pub nodes: usize,
    /// Every live node is stepped with `Input::Tick` this often (each node
    /// with its own random phase).
    pub tick_interval_us: u64,
    pub link: LinkConfig,
    pub disk: DiskConfig,
    /// Run the invariant checks after every step (off only for benchmarks).
    pub check_invariants: bool,
    /// Among them, [`crate::Invariant::ElectableWithoutCommitted`], which
    /// assumes Raft's vote rule. Off, an unsafe commit is caught only once
    /// a schedule actually elects a leader without the entry.
    pub check_electable_without_committed: bool,
    /// Keep every effect in [`crate::Sim::effect_log`], for tests that
    /// inspect what a node did.
    pub record_effects: bool,
    /// Durable state some nodes start from instead of an empty disk.
    pub initial_state: Vec<(NodeId, Recovered)>,
    /// Nodes that start crashed (restart them with [`crate::Sim::restart`]).
    pub initially_down: Vec<NodeId>,
    /// The command that replays a failing run; `{seed}` is replaced by the
    /// seed. Printed with every violation.
    pub replay_command: String,
}

impl SimOptions {
    pub fn new(seed: u64, nodes: usize) -> SimOptions {
        SimOptions {
            seed,
            nodes,
            tick_interval_us: 10_000,
            link: LinkConfig::BENIGN,
            disk: DiskConfig::default(),
            check_invariants: true,
            check_electable_without_committed: true,
            record_effects: false,
            initial_state: Vec::new(),
            initially_down: Vec::new(),
            replay_command: "REPLAB_SIM_SEED={seed} (rerun the failing test)".to_string(),
        }
    }

    pub fn replay_line(&self) -> String {
        self.replay_command.replace("{seed}", &self.seed.to_string())
    }
}
