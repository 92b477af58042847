//! How the engine builds a policy: the factory trait the registry uses.
//!
//! Each plugin declares a typed configuration section (`[raft]` for the
//! Raft plugin) and a factory that validates it and builds an instance,
//! fresh or from recovered durable state.

use serde::de::DeserializeOwned;

use crate::entry::Entry;
use crate::generation::HardState;
use crate::ids::NodeId;
use crate::memory::Memory;
use crate::policy::ReplicationPolicy;
use crate::snapshot::Snapshot;

/// Who the new instance is and where its randomness comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyContext {
    pub id: NodeId,
    /// Every voting member, this node included, in ascending order.
    pub members: Vec<NodeId>,
    /// Seed for the instance's [`crate::PluginRng`]. The engine derives it
    /// from the run's seed and the node id, so runs replay.
    pub seed: u64,
}

impl PolicyContext {
    pub fn peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.members.iter().copied().filter(move |m| *m != self.id)
    }
}

/// The durable state a node recovered from its disk on restart. A fresh
/// node gets `Recovered::default()`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    pub hard_state: HardState,
    /// The latest durable snapshot; the state machine has been restored
    /// from it before the policy is built.
    pub snapshot: Option<Snapshot>,
    /// The durable log entries after the snapshot, contiguous, in order.
    pub entries: Vec<Entry>,
    /// Whether this node lost durable state it may have made promises
    /// about (see [`Memory`]).
    pub memory: Memory,
}

/// A configuration value that is out of range, named by its key inside
/// the plugin's section (`election_timeout_min_ms`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl std::error::Error for ConfigError {}

pub trait PolicyFactory {
    /// The name users select in config (`policy = "raft"`); also the name
    /// of the plugin's config section.
    const NAME: &'static str;

    /// The config section the plugin's settings live in: its name unless
    /// that is not a TOML-friendly key (`primary-backup` reads
    /// `[primary_backup]`).
    const SECTION: &'static str = Self::NAME;

    type Config: DeserializeOwned + Default + Clone + Send + 'static;

    /// Checks ranges and relations between values (min below max, ...).
    fn validate(config: &Self::Config, members: usize) -> Result<(), ConfigError>;

    /// One line for the user about what this configuration means (shown by
    /// `replab config` and at the start of a run).
    fn describe(_config: &Self::Config, members: usize) -> String {
        format!("{} on {members} members", Self::NAME)
    }

    fn build(ctx: PolicyContext, config: Self::Config, recovered: Recovered) -> Box<dyn ReplicationPolicy>;
}
