//! Plugin names to factories: the one place that names concrete plugins.
//!
//! Config selects a policy by name (`policy.replication = "raft"`); the
//! registry validates that plugin's typed section and builds instances.
//! Adding a policy means a line here and a section in config/default.toml.

use replab_api::{ConfigError, FailureDetector, NodeId, PolicyContext, PolicyFactory, Recovered, ReplicationPolicy};
use replab_gossip::GossipDetector;
use replab_heartbeat::HeartbeatDetector;
use replab_raft::RaftFactory;

use crate::config::Settings;

/// The replication policies users can select.
pub const REPLICATION_POLICIES: &[&str] = &[RaftFactory::NAME];

/// The failure detectors users can select.
pub const FAILURE_DETECTORS: &[&str] = &[GossipDetector::NAME, HeartbeatDetector::NAME];

/// Members the cluster will have: the configured list in process mode,
/// `cluster.nodes` in-process.
pub fn cluster_size(settings: &Settings) -> usize {
    if settings.cluster.members.is_empty() { settings.cluster.nodes as usize } else { settings.cluster.members.len() }
}

/// Checks that the selected policy exists and that its section is valid.
/// Errors name the full key (`raft.election_timeout_max_ms`).
pub fn validate(settings: &Settings) -> Result<(), ConfigError> {
    let members = cluster_size(settings);
    match settings.policy.replication.as_str() {
        RaftFactory::NAME => RaftFactory::validate(&settings.raft, members).map_err(|e| prefixed("raft", e))?,
        other => return Err(unknown_policy(other)),
    }
    match settings.policy.failure_detector.as_str() {
        GossipDetector::NAME => settings.gossip.validate().map_err(|e| prefixed("gossip", e)),
        HeartbeatDetector::NAME => settings.heartbeat.validate().map_err(|e| prefixed("heartbeat", e)),
        other => Err(unknown_detector(other)),
    }
}

/// Builds the configured failure detector for node `me` of `members`.
/// `settings` were validated.
/// `generation` must grow from one start of the node to the next.
pub fn build_detector(
    settings: &Settings,
    me: NodeId,
    members: &[NodeId],
    seed: u64,
    generation: u64,
) -> Result<Box<dyn FailureDetector>, ConfigError> {
    match settings.policy.failure_detector.as_str() {
        GossipDetector::NAME => {
            Ok(Box::new(GossipDetector::new(me, members, settings.gossip.clone(), seed, generation)))
        }
        HeartbeatDetector::NAME => Ok(Box::new(HeartbeatDetector::new(me, members, settings.heartbeat.clone()))),
        other => Err(unknown_detector(other)),
    }
}

/// Builds the configured policy for one node. `settings` were validated.
pub fn build(
    settings: &Settings,
    ctx: PolicyContext,
    recovered: Recovered,
) -> Result<Box<dyn ReplicationPolicy>, ConfigError> {
    match settings.policy.replication.as_str() {
        RaftFactory::NAME => Ok(RaftFactory::build(ctx, settings.raft.clone(), recovered)),
        other => Err(unknown_policy(other)),
    }
}

fn prefixed(section: &str, e: ConfigError) -> ConfigError {
    ConfigError { key: format!("{section}.{}", e.key), message: e.message }
}

fn unknown_policy(name: &str) -> ConfigError {
    ConfigError {
        key: "policy.replication".into(),
        message: format!("`{name}` is not a replication policy; known: {}", REPLICATION_POLICIES.join(", ")),
    }
}

fn unknown_detector(name: &str) -> ConfigError {
    ConfigError {
        key: "policy.failure_detector".into(),
        message: format!("`{name}` is not a failure detector; known: {}", FAILURE_DETECTORS.join(", ")),
    }
}
