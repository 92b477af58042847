//! Plugin names to factories: the one place that names concrete plugins.
//!
//! Config selects plugins by name (`policy.replication = "raft"`,
//! `policy.failure_detector = "gossip"`, `policy.conflict_resolver =
//! "lww"`); the registry validates each selected plugin's typed section and
//! builds instances. Adding a policy takes a line here and a section in
//! config/default.toml.

use replab_api::{
    ConfigError, ConflictResolver, FailureDetector, KeyedFactory, KeyedPolicy, KeyedRecovered, NodeId, PolicyContext,
    PolicyFactory, Recovered, ReplicationPolicy,
};
use replab_gossip::{GossipConfig, GossipDetector};
use replab_heartbeat::{HeartbeatConfig, HeartbeatDetector};
use replab_leaderless::LeaderlessFactory;
use replab_lww::Lww;
use replab_primary_backup::PrimaryBackupFactory;
use replab_raft::RaftFactory;
use replab_version_vector::VersionVectors;

use crate::config::Settings;

/// The two shapes of policy (docs/ARCHITECTURE.md): a log the engine
/// applies, or data the policy keeps per key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Log,
    Keyed,
}

/// What the registry knows about one replication policy: its names, its
/// shape, and its factory's functions with the config section read for it.
pub struct PolicyEntry {
    pub name: &'static str,
    /// The config section (`[raft]`, `[primary_backup]`).
    pub section: &'static str,
    pub shape: Shape,
    validate: fn(&Settings, usize) -> Result<(), ConfigError>,
    describe: fn(&Settings, usize) -> Result<String, ConfigError>,
    build: Builder,
}

type BuildLog = fn(&Settings, PolicyContext, Recovered) -> Result<Box<dyn ReplicationPolicy>, ConfigError>;
type BuildKeyed = fn(&Settings, PolicyContext, KeyedRecovered) -> Result<Box<dyn KeyedPolicy>, ConfigError>;

/// Each shape's policies are built from their own kind of recovered state.
enum Builder {
    Log(BuildLog),
    Keyed(BuildKeyed),
}

/// The replication policies users can select. Adding one is a line here
/// and its section in config/default.toml.
pub const REPLICATION_POLICIES: &[PolicyEntry] =
    &[log_policy::<RaftFactory>(), keyed_policy::<LeaderlessFactory>(), log_policy::<PrimaryBackupFactory>()];

const fn log_policy<F: PolicyFactory>() -> PolicyEntry {
    PolicyEntry {
        name: F::NAME,
        section: F::SECTION,
        shape: Shape::Log,
        validate: |settings, members| {
            F::validate(&settings.plugin(F::SECTION)?, members).map_err(|e| prefixed(F::SECTION, e))
        },
        describe: |settings, members| Ok(F::describe(&settings.plugin(F::SECTION)?, members)),
        build: Builder::Log(|settings, ctx, recovered| Ok(F::build(ctx, settings.plugin(F::SECTION)?, recovered))),
    }
}

const fn keyed_policy<F: KeyedFactory>() -> PolicyEntry {
    PolicyEntry {
        name: F::NAME,
        section: F::SECTION,
        shape: Shape::Keyed,
        validate: |settings, members| {
            F::validate(&settings.plugin(F::SECTION)?, members).map_err(|e| prefixed(F::SECTION, e))
        },
        describe: |settings, members| Ok(F::describe(&settings.plugin(F::SECTION)?, members)),
        build: Builder::Keyed(with_resolver::<F>),
    }
}

/// The entry `policy.replication` names.
fn selected(settings: &Settings) -> Result<&'static PolicyEntry, ConfigError> {
    let name = settings.policy.replication.as_str();
    REPLICATION_POLICIES.iter().find(|p| p.name == name).ok_or_else(|| unknown_policy(name))
}

/// The failure detectors users can select.
pub const FAILURE_DETECTORS: &[&str] = &[GossipDetector::NAME, HeartbeatDetector::NAME];

/// The conflict resolvers users can select.
pub const CONFLICT_RESOLVERS: &[&str] = &[Lww::NAME, VersionVectors::NAME];

/// `policy.conflict_resolver` for a policy that orders every write.
pub const NO_RESOLVER: &str = "none";

/// Members the cluster will have: the configured list in process mode,
/// `cluster.nodes` in-process.
pub fn cluster_size(settings: &Settings) -> usize {
    if settings.cluster.members.is_empty() { settings.cluster.nodes as usize } else { settings.cluster.members.len() }
}

/// The shape of the selected policy (validated settings).
pub fn shape(settings: &Settings) -> Shape {
    selected(settings).map_or(Shape::Log, |p| p.shape)
}

/// One line about the selected policy's configuration, from its factory,
/// and the resolver (validated settings).
pub fn describe(settings: &Settings) -> Result<String, ConfigError> {
    let policy = (selected(settings)?.describe)(settings, cluster_size(settings))?;
    Ok(match settings.policy.conflict_resolver.as_str() {
        NO_RESOLVER => policy,
        resolver => format!("{policy}; conflicts resolved by {resolver}"),
    })
}

/// Checks that the selected plugins exist, that their sections are valid,
/// and that nothing is configured for a plugin that is not selected.
/// Errors name the full key (`raft.election_timeout_max_ms`).
pub fn validate(settings: &Settings) -> Result<(), ConfigError> {
    let entry = selected(settings)?;
    (entry.validate)(settings, cluster_size(settings))?;
    let (policy, shape) = (entry.name, entry.shape);
    let resolver = settings.policy.conflict_resolver.as_str();
    match shape {
        Shape::Log if resolver != NO_RESOLVER => {
            return Err(ConfigError {
                key: "policy.conflict_resolver".into(),
                message: format!(
                    "`{resolver}` means nothing under {policy}, which orders every write so that none is \
                     concurrent; leave it \"{NO_RESOLVER}\""
                ),
            });
        }
        Shape::Keyed if !CONFLICT_RESOLVERS.contains(&resolver) => {
            return Err(ConfigError {
                key: "policy.conflict_resolver".into(),
                message: format!(
                    "`{resolver}` is not a conflict resolver; {policy} needs one of: {}",
                    CONFLICT_RESOLVERS.join(", ")
                ),
            });
        }
        _ => {}
    }
    for other in REPLICATION_POLICIES.iter().filter(|p| p.name != policy) {
        refuse_if_set(settings, other, policy)?;
    }
    match settings.policy.failure_detector.as_str() {
        GossipDetector::NAME => {
            settings.plugin::<GossipConfig>("gossip")?.validate().map_err(|e| prefixed("gossip", e))
        }
        HeartbeatDetector::NAME => {
            settings.plugin::<HeartbeatConfig>("heartbeat")?.validate().map_err(|e| prefixed("heartbeat", e))
        }
        other => Err(unknown_detector(other)),
    }
}

/// A section configured for a policy that is not selected is a mistake
/// (the user believes it takes effect): refused, naming its first key and
/// the policy it belongs to.
fn refuse_if_set(settings: &Settings, owner: &PolicyEntry, selected: &str) -> Result<(), ConfigError> {
    let section = owner.section;
    let defaults: toml::Table = crate::config::DEFAULT_TOML.parse().expect("the embedded default.toml is valid TOML");
    let (Some(toml::Value::Table(given)), Some(toml::Value::Table(default))) =
        (settings.plugins.get(section), defaults.get(section))
    else {
        return Ok(());
    };
    for (key, value) in given {
        if default.get(key).is_some_and(|d| !same_value(d, value)) {
            return Err(ConfigError {
                key: format!("{section}.{key}"),
                message: format!(
                    "is set, but policy.replication is \"{selected}\", so it would have no effect; set \
                     policy.replication = \"{}\" or remove it",
                    owner.name
                ),
            });
        }
    }
    Ok(())
}

/// Equal as configured values: layers give numbers as integers or floats.
fn same_value(a: &toml::Value, b: &toml::Value) -> bool {
    match (a, b) {
        (toml::Value::Integer(x), toml::Value::Float(y)) | (toml::Value::Float(y), toml::Value::Integer(x)) => {
            *x as f64 == *y
        }
        _ => a == b,
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
            Ok(Box::new(GossipDetector::new(me, members, settings.plugin("gossip")?, seed, generation)))
        }
        HeartbeatDetector::NAME => Ok(Box::new(HeartbeatDetector::new(me, members, settings.plugin("heartbeat")?))),
        other => Err(unknown_detector(other)),
    }
}

/// Builds the configured log-based policy for one node. `settings` were
/// validated.
pub fn build(
    settings: &Settings,
    ctx: PolicyContext,
    recovered: Recovered,
) -> Result<Box<dyn ReplicationPolicy>, ConfigError> {
    match selected(settings)?.build {
        Builder::Log(build) => build(settings, ctx, recovered),
        Builder::Keyed(_) => Err(wrong_shape(settings, "a log-based")),
    }
}

/// Builds the configured keyed policy for one node, with the configured
/// resolver. `settings` were validated; a recovery that fails is an error
/// naming the policy.
pub fn build_keyed(
    settings: &Settings,
    ctx: PolicyContext,
    recovered: KeyedRecovered,
) -> Result<Box<dyn KeyedPolicy>, ConfigError> {
    match selected(settings)?.build {
        Builder::Keyed(build) => build(settings, ctx, recovered),
        Builder::Log(_) => Err(wrong_shape(settings, "a keyed")),
    }
}

fn wrong_shape(settings: &Settings, wanted: &str) -> ConfigError {
    ConfigError {
        key: "policy.replication".into(),
        message: format!("`{}` is not {wanted} policy", settings.policy.replication),
    }
}

/// `F` with the resolver `policy.conflict_resolver` names.
fn with_resolver<F: KeyedFactory>(
    settings: &Settings,
    ctx: PolicyContext,
    recovered: KeyedRecovered,
) -> Result<Box<dyn KeyedPolicy>, ConfigError> {
    let config: F::Config = settings.plugin(F::SECTION)?;
    let built = match settings.policy.conflict_resolver.as_str() {
        Lww::NAME => F::build::<Lww>(ctx, config, recovered),
        VersionVectors::NAME => F::build::<VersionVectors>(ctx, config, recovered),
        other => {
            return Err(ConfigError {
                key: "policy.conflict_resolver".into(),
                message: format!("`{other}` is not a conflict resolver; known: {}", CONFLICT_RESOLVERS.join(", ")),
            });
        }
    };
    built.map_err(|message| ConfigError { key: F::NAME.into(), message: format!("cannot recover: {message}") })
}

fn prefixed(section: &str, e: ConfigError) -> ConfigError {
    ConfigError { key: format!("{section}.{}", e.key), message: e.message }
}

fn unknown_policy(name: &str) -> ConfigError {
    let known: Vec<&str> = REPLICATION_POLICIES.iter().map(|p| p.name).collect();
    ConfigError {
        key: "policy.replication".into(),
        message: format!("`{name}` is not a replication policy; known: {}", known.join(", ")),
    }
}

fn unknown_detector(name: &str) -> ConfigError {
    ConfigError {
        key: "policy.failure_detector".into(),
        message: format!("`{name}` is not a failure detector; known: {}", FAILURE_DETECTORS.join(", ")),
    }
}
