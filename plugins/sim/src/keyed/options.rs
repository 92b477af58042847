//! How a keyed world is set up.

use crate::options::{DiskConfig, LinkConfig};

/// The failure-detector oracle: it knows who is down and which links are
/// cut, and tells each node about its peers the way a heartbeat detector
/// would, late: a peer that has not been able to reach the node for
/// `suspect_after_us` is `Suspect`, for `dead_after_us` `Dead`, and
/// `Alive` again as soon as it gets through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DetectorConfig {
    /// How often the oracle looks.
    pub interval_us: u64,
    pub suspect_after_us: u64,
    pub dead_after_us: u64,
}

impl Default for DetectorConfig {
    fn default() -> DetectorConfig {
        DetectorConfig { interval_us: 20_000, suspect_after_us: 100_000, dead_after_us: 300_000 }
    }
}

#[derive(Clone, Debug)]
pub struct KeyedOptions {
    /// Every random choice of the world and every node's seed derive from
    /// it, so a seed replays the run.
    pub seed: u64,
    /// Nodes get ids `1 ..= nodes`; every node is a member.
    pub nodes: usize,
    /// Every live node gets `KeyedInput::Tick` this often (each with its
    /// own phase).
    pub tick_interval_us: u64,
    pub link: LinkConfig,
    pub disk: DiskConfig,
    pub detector: DetectorConfig,
    /// Wall clock at virtual time 0; a node's `wall_ms` is this plus
    /// virtual time plus its skew.
    pub wall_start_ms: u64,
    /// A crash keeps a random prefix of the unsynced writes (a disk cache
    /// that reached the platter anyway) instead of losing them all.
    pub crash_keeps_unsynced_prefix: bool,
    /// `{seed}` is replaced by the seed; printed with every violation.
    pub replay_command: String,
}

impl KeyedOptions {
    pub fn new(seed: u64, nodes: usize) -> KeyedOptions {
        KeyedOptions {
            seed,
            nodes,
            tick_interval_us: 10_000,
            link: LinkConfig::BENIGN,
            disk: DiskConfig::default(),
            detector: DetectorConfig::default(),
            wall_start_ms: 1_700_000_000_000,
            crash_keeps_unsynced_prefix: false,
            replay_command: "REPLAB_SIM_SEED={seed} (rerun the failing test)".to_string(),
        }
    }

    pub fn replay_line(&self) -> String {
        self.replay_command.replace("{seed}", &self.seed.to_string())
    }
}
