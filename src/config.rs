//! Layered configuration: defaults < file < environment < `--set`.
//!
//! The `config` crate merges the layers; this module adds what users need
//! when something is wrong: an unknown key, a wrong type or an out-of-range
//! value is reported with the key, the value and the layer it came from
//! (`wal.fsync = "sometimes" (from --set wal.fsync=sometimes): ...`).
//!
//! The embedded `config/default.toml` is the list of known keys: a key it
//! does not have is a typo, and is refused rather than silently ignored.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::kv::KvConfig;
use crate::net::NetConfig;
use crate::wal::{FsyncPolicy, WalOptions};

pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Environment variables of the form `REPLAB_<SECTION>__<KEY>` are config.
const ENV_PREFIX: &str = "REPLAB_";
const ENV_SEPARATOR: &str = "__";

/// The engine's own sections are typed here. A plugin's section (`[raft]`,
/// `[gossip]`, `[leaderless]`, ...) is kept as given and read into the
/// plugin's typed config by the registry (`Settings::plugin`), so adding a
/// plugin takes a line in the registry and a section in default.toml, and
/// no edit here. (Unknown keys are refused against default.toml before
/// this struct is built, which is why it need not deny them.)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub cluster: ClusterSettings,
    pub policy: PolicySettings,
    pub wal: WalSettings,
    pub net: NetConfig,
    pub node: NodeSettings,
    pub kv: KvConfig,
    #[serde(flatten)]
    pub plugins: BTreeMap<String, toml::Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSettings {
    pub id: String,
    pub secret: String,
    pub seed: u64,
    pub nodes: u64,
    pub data_dir: String,
    /// `replab run`: start clusters as `replab node` processes.
    pub processes: bool,
    pub members: Vec<MemberSettings>,
}

/// One member of a multi-process cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberSettings {
    pub id: u64,
    pub peer_addr: String,
    pub client_addr: String,
    /// This member's data directory itself (no `node-<id>` beneath it);
    /// empty (the default): `<cluster.data_dir>/node-<id>`. Lets members on
    /// one machine keep their logs on disks of their own.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub data_dir: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySettings {
    pub replication: String,
    pub failure_detector: String,
    /// What replicas keep when writes to a key were concurrent
    /// ("lww", "version-vector"); "none" for policies that order writes.
    pub conflict_resolver: String,
}

/// The `[node]` section: the node runtime's batching, limits and timers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSettings {
    pub tick_interval_ms: u64,
    pub batch_max_entries: usize,
    pub batch_max_bytes: usize,
    pub batch_linger_us: u64,
    pub request_timeout_ms: u64,
    pub max_pending_requests: usize,
    pub max_key_bytes: usize,
    pub max_value_bytes: usize,
    /// `replab node`'s metrics endpoint; empty: off.
    pub metrics_addr: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalSettings {
    pub segment_size_bytes: u64,
    pub max_record_bytes: u32,
    pub fsync: FsyncSetting,
    pub fsync_interval_ms: u64,
    pub group_commit_wait_us: u64,
    pub preallocate_bytes: u64,
}

/// Serde mirror of [`FsyncPolicy`] that also serializes (for `replab config`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", try_from = "String")]
pub enum FsyncSetting {
    Always,
    Batch,
    Interval,
    Never,
}

impl TryFrom<String> for FsyncSetting {
    type Error = String;

    fn try_from(text: String) -> Result<FsyncSetting, String> {
        one_of(
            &text,
            &[
                ("always", FsyncSetting::Always),
                ("batch", FsyncSetting::Batch),
                ("interval", FsyncSetting::Interval),
                ("never", FsyncSetting::Never),
            ],
        )
    }
}

/// Parses a named choice, listing the valid names when `text` is none of
/// them (serde's own message for enums does not).
pub fn one_of<T: Copy>(text: &str, choices: &[(&str, T)]) -> Result<T, String> {
    choices.iter().find(|(name, _)| *name == text).map(|(_, v)| *v).ok_or_else(|| {
        let names: Vec<String> = choices.iter().map(|(n, _)| format!("\"{n}\"")).collect();
        format!("`{text}` is not one of {}", names.join(", "))
    })
}

impl WalSettings {
    pub fn options(&self) -> WalOptions {
        WalOptions {
            segment_size_bytes: self.segment_size_bytes,
            max_record_bytes: self.max_record_bytes,
            fsync: match self.fsync {
                FsyncSetting::Always => FsyncPolicy::Always,
                FsyncSetting::Batch => FsyncPolicy::Batch,
                FsyncSetting::Interval => FsyncPolicy::Interval,
                FsyncSetting::Never => FsyncPolicy::Never,
            },
            fsync_interval_ms: self.fsync_interval_ms,
            group_commit_wait_us: self.group_commit_wait_us,
            preallocate_bytes: self.preallocate_bytes,
        }
    }
}

/// One range or relation a value broke.
struct Problem {
    key: String,
    message: String,
}

fn check_range(problems: &mut Vec<Problem>, key: &str, value: u64, lo: u64, hi: u64) {
    if value < lo || value > hi {
        problems.push(Problem { key: key.to_string(), message: format!("must be within {lo} ..= {hi}") });
    }
}

impl Settings {
    /// Plugin `section`'s configuration, read into its typed form. A
    /// section absent from every layer reads as the plugin's defaults.
    pub fn plugin<T: serde::de::DeserializeOwned>(&self, section: &str) -> Result<T, replab_api::ConfigError> {
        let table = self.plugins.get(section).cloned().unwrap_or(toml::Value::Table(toml::Table::new()));
        // The path names the key inside the section that failed (an unknown
        // mode, a string for a number), so the error can say where it came
        // from; the bare toml error names only the section.
        serde_path_to_error::deserialize(table).map_err(|e: serde_path_to_error::Error<toml::de::Error>| {
            let path = e.path().to_string();
            replab_api::ConfigError {
                key: if path.is_empty() || path == "." { section.to_string() } else { format!("{section}.{path}") },
                message: e.into_inner().message().to_string(),
            }
        })
    }

    fn problems(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        if self.cluster.id.is_empty() {
            p.push(Problem { key: "cluster.id".into(), message: "must not be empty".into() });
        }
        if self.cluster.secret.is_empty() {
            p.push(Problem { key: "cluster.secret".into(), message: "must not be empty".into() });
        }
        check_range(&mut p, "wal.segment_size_bytes", self.wal.segment_size_bytes, 4096, 1 << 31);
        check_range(&mut p, "wal.max_record_bytes", u64::from(self.wal.max_record_bytes), 1, 1 << 30);
        check_range(&mut p, "wal.fsync_interval_ms", self.wal.fsync_interval_ms, 1, 10_000);
        check_range(&mut p, "wal.group_commit_wait_us", self.wal.group_commit_wait_us, 0, 100_000);
        check_range(&mut p, "wal.preallocate_bytes", self.wal.preallocate_bytes, 0, 1 << 30);
        let net = &self.net;
        check_range(&mut p, "net.max_frame_bytes", net.max_frame_bytes as u64, 1024, 1 << 30);
        check_range(&mut p, "net.outbound_queue_frames", net.outbound_queue_frames as u64, 1, 1_000_000);
        check_range(&mut p, "net.write_buffer_bytes", net.write_buffer_bytes as u64, 4096, 64 << 20);
        check_range(&mut p, "net.connect_timeout_ms", net.connect_timeout_ms, 1, 60_000);
        check_range(&mut p, "net.handshake_timeout_ms", net.handshake_timeout_ms, 1, 60_000);
        check_range(&mut p, "net.reconnect_backoff_min_ms", net.reconnect_backoff_min_ms, 1, 60_000);
        check_range(&mut p, "net.reconnect_backoff_max_ms", net.reconnect_backoff_max_ms, 1, 60_000);
        if net.reconnect_backoff_min_ms > net.reconnect_backoff_max_ms {
            p.push(Problem {
                key: "net.reconnect_backoff_min_ms".into(),
                message: "must not exceed net.reconnect_backoff_max_ms".into(),
            });
        }
        check_range(&mut p, "cluster.nodes", self.cluster.nodes, 1, 15);
        self.member_problems(&mut p);
        let node = &self.node;
        check_range(&mut p, "node.tick_interval_ms", node.tick_interval_ms, 1, 1_000);
        check_range(&mut p, "node.batch_max_entries", node.batch_max_entries as u64, 1, 100_000);
        check_range(&mut p, "node.batch_max_bytes", node.batch_max_bytes as u64, 1, 64 << 20);
        check_range(&mut p, "node.batch_linger_us", node.batch_linger_us, 0, 1_000_000);
        check_range(&mut p, "node.request_timeout_ms", node.request_timeout_ms, 1, 600_000);
        check_range(&mut p, "node.max_pending_requests", node.max_pending_requests as u64, 1, 1_000_000);
        check_range(&mut p, "node.max_key_bytes", node.max_key_bytes as u64, 1, 65_536);
        check_range(&mut p, "node.max_value_bytes", node.max_value_bytes as u64, 0, 16 << 20);
        if (node.max_key_bytes + node.max_value_bytes) as u64 + 4096 > u64::from(self.wal.max_record_bytes) {
            p.push(Problem {
                key: "node.max_value_bytes".into(),
                message: "a largest key and value (plus 4096 bytes of framing) must fit wal.max_record_bytes".into(),
            });
        }
        if let Err(message) = crate::node::metrics_server::parse_addr(&node.metrics_addr) {
            p.push(Problem { key: "node.metrics_addr".into(), message });
        }
        check_range(&mut p, "kv.session_expiry_ms", self.kv.session_expiry_ms, 1_000, 604_800_000);
        check_range(&mut p, "kv.max_saved_responses", self.kv.max_saved_responses as u64, 1, 1_000_000);
        if let Err(e) = crate::registry::validate(self) {
            p.push(Problem { key: e.key, message: e.message });
        }
        p
    }
}

impl Settings {
    /// Where `replab node --id <id>` keeps its log: the member's own
    /// `data_dir` if it names one, else `<cluster.data_dir>/node-<id>`
    /// (`replab-data` when that is empty).
    pub fn node_dir(&self, id: u64) -> PathBuf {
        let own = self.cluster.members.iter().find(|m| m.id == id).map(|m| m.data_dir.as_str()).unwrap_or("");
        if !own.is_empty() {
            return PathBuf::from(own);
        }
        let root = if self.cluster.data_dir.is_empty() { "replab-data" } else { self.cluster.data_dir.as_str() };
        PathBuf::from(root).join(format!("node-{id}"))
    }

    fn member_problems(&self, p: &mut Vec<Problem>) {
        let mut ids = std::collections::BTreeSet::new();
        // A directory is taken per host: members on other machines may use
        // the same path.
        let mut dirs = std::collections::BTreeMap::new();
        for (i, m) in self.cluster.members.iter().enumerate() {
            let at = format!("member #{} (id {})", i + 1, m.id);
            if m.id == 0 {
                p.push(Problem { key: "cluster.members".into(), message: format!("{at}: ids start at 1") });
            }
            if !ids.insert(m.id) {
                p.push(Problem { key: "cluster.members".into(), message: format!("{at}: duplicate id") });
            }
            let host = m.peer_addr.parse::<std::net::SocketAddr>().map(|a| a.ip()).ok();
            let dir: PathBuf =
                self.node_dir(m.id).components().filter(|c| *c != std::path::Component::CurDir).collect();
            let first = *dirs.entry((host, dir.clone())).or_insert(m.id);
            if first != m.id {
                p.push(Problem {
                    key: "cluster.members".into(),
                    message: format!(
                        "{at}: its data directory {} is member {first}'s too, on the same host; give each its own \
                         data_dir",
                        dir.display()
                    ),
                });
            }
            for (field, addr) in [("peer_addr", &m.peer_addr), ("client_addr", &m.client_addr)] {
                if addr.trim().is_empty() {
                    p.push(Problem { key: "cluster.members".into(), message: format!("{at}: {field} is missing") });
                } else if addr.parse::<std::net::SocketAddr>().is_err() {
                    p.push(Problem {
                        key: "cluster.members".into(),
                        message: format!("{at}: {field} {addr:?} is not an IP:port address"),
                    });
                }
            }
        }
    }
}

/// Where a value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Defaults,
    File(PathBuf),
    Env(String),
    Set(String),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Defaults => f.write_str("the defaults"),
            Origin::File(path) => write!(f, "config file {}", path.display()),
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::Set(arg) => write!(f, "--set {arg}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// `message` names the line and column but does not quote the line,
    /// which may hold the secret.
    #[error("config file {} is not valid TOML: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("--set expects section.key=value, got `{0}`")]
    BadSet(String),
    #[error("unknown key `{key}` in {origin}; {hint}")]
    UnknownKey { key: String, origin: Origin, hint: String },
    #[error("{key} = {value} (from {origin}): {message}")]
    Invalid { key: String, value: String, origin: Origin, message: String },
    #[error("configuration error: {0}")]
    Other(String),
}

/// What the user gave us. `env` is passed in (not read here) so tests are
/// independent of the process environment.
#[derive(Clone, Debug, Default)]
pub struct ConfigInput {
    pub file: Option<PathBuf>,
    pub env: Vec<(String, String)>,
    pub sets: Vec<String>,
}

impl ConfigInput {
    /// The file and `--set`s from the command line, and this process's
    /// `REPLAB_<SECTION>__<KEY>` environment variables.
    pub fn from_process(file: Option<PathBuf>, sets: Vec<String>) -> ConfigInput {
        ConfigInput { file, env: std::env::vars().collect(), sets }
    }
}

/// Flattened `section.key -> value` pairs of one layer.
struct Layer {
    origin_of: Box<dyn Fn(&str) -> Origin>,
    values: BTreeMap<String, Given>,
}

/// Whether `key` holds a secret, whose value is never shown: not by
/// `replab config`, not in an error, not in an origin (`--set key=...`).
fn is_secret(key: &str) -> bool {
    key.rsplit('.').next().is_some_and(|name| name.contains("secret"))
}

const REDACTED: &str = "\"<redacted>\"";

/// The value of `key` as it may be shown.
fn shown(key: &str, given: &Given) -> String {
    if is_secret(key) { REDACTED.to_string() } else { given.shown() }
}

/// The merged settings and, for display, each key's value and origin.
pub struct Loaded {
    pub settings: Settings,
    pub sources: BTreeMap<String, (String, Origin)>,
}

pub fn load(input: &ConfigInput) -> Result<Settings, ConfigError> {
    load_with_sources(input).map(|l| l.settings)
}

pub fn load_with_sources(input: &ConfigInput) -> Result<Loaded, ConfigError> {
    let defaults: toml::Table = DEFAULT_TOML.parse().expect("the embedded default.toml is valid TOML");
    let schema = flatten(&defaults);
    let mut layers = vec![Layer { origin_of: Box::new(|_| Origin::Defaults), values: typed(&schema) }];
    let mut builder =
        config::Config::builder().add_source(config::File::from_str(DEFAULT_TOML, config::FileFormat::Toml));

    if let Some(path) = &input.file {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read { path: path.clone(), source: e })?;
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Parse { path: path.clone(), message: parse_error(&text, &e) })?;
        let origin = Origin::File(path.clone());
        layers.push(Layer { origin_of: Box::new(move |_| origin.clone()), values: typed(&flatten(&table)) });
        builder = builder.add_source(config::File::from_str(&text, config::FileFormat::Toml));
    }

    let mut env_values = BTreeMap::new();
    let mut env_vars = BTreeMap::new();
    for (var, value) in &input.env {
        let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if !rest.contains(ENV_SEPARATOR) {
            continue; // REPLAB_SIM_SEED and friends are not config
        }
        let key = rest.to_lowercase().replace(ENV_SEPARATOR, ".");
        env_values.insert(key.clone(), Given::Text(value.clone()));
        env_vars.insert(key, var.clone());
    }
    if !env_values.is_empty() {
        layers.push(Layer {
            origin_of: Box::new(move |key| Origin::Env(env_vars.get(key).cloned().unwrap_or_default())),
            values: env_values,
        });
    }

    let mut set_values = BTreeMap::new();
    let mut set_args = BTreeMap::new();
    for arg in &input.sets {
        let Some((key, value)) = arg.split_once('=') else {
            return Err(ConfigError::BadSet(arg.clone()));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(ConfigError::BadSet(arg.clone()));
        }
        // One pair of quotes is allowed, as in --set 'cluster.id="lab"'.
        let value = value.trim();
        let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
        set_values.insert(key.to_string(), Given::Text(value.to_string()));
        let shown_arg = if is_secret(key) { format!("{key}=<redacted>") } else { arg.clone() };
        set_args.insert(key.to_string(), shown_arg);
    }
    if !set_values.is_empty() {
        layers.push(Layer {
            origin_of: Box::new(move |key| Origin::Set(set_args.get(key).cloned().unwrap_or_default())),
            values: set_values,
        });
    }

    check_known_keys(&layers)?;
    // Every value in its key's type (files are checked, text is read as
    // that type); then the text layers go to the crate, later ones winning.
    let mut overrides = BTreeMap::new();
    for layer in &layers[1..] {
        for (key, given) in &layer.values {
            let Some(default) = schema.get(key) else { continue };
            match types::read(key, default, given) {
                Ok(value) if matches!(given, Given::Text(_)) => {
                    overrides.insert(key.clone(), value);
                }
                Ok(_) => {}
                Err(message) => {
                    let (key, value, origin) = (key.clone(), shown(key, given), (layer.origin_of)(key));
                    return Err(ConfigError::Invalid { key, value, origin, message });
                }
            }
        }
    }
    for (key, value) in &overrides {
        builder = builder
            .set_override(key, types::to_config(value))
            .map_err(|e| ConfigError::Other(format!("cannot set {key}: {e}")))?;
    }
    // The layer that set `key`, or the closest enclosing key a layer set
    // (an array of tables such as `cluster.members` is one value).
    let origin = |key: &str| -> (String, Origin) {
        let mut probe = key;
        loop {
            for layer in layers.iter().rev() {
                if let Some(v) = layer.values.get(probe) {
                    let value = if probe == key { shown(key, v) } else { String::from("(missing)") };
                    return (value, (layer.origin_of)(probe));
                }
            }
            match probe.rfind(['.', '[']) {
                Some(cut) => probe = &probe[..cut],
                None => return (String::from("?"), Origin::Defaults),
            }
        }
    };

    let merged = builder.build().map_err(|e| translate(e, &origin))?;
    let settings: Settings = merged.try_deserialize().map_err(|e| translate(e, &origin))?;
    if let Some(problem) = settings.problems().into_iter().next() {
        let (value, origin) = origin(&problem.key);
        return Err(ConfigError::Invalid { key: problem.key, value, origin, message: problem.message });
    }
    // Show effective values as TOML renders the typed settings, so every
    // layer's spelling (env strings, --set scalars) looks the same.
    let effective = flatten(&toml::Table::try_from(&settings).expect("settings serialize to TOML"));
    let mut sources = BTreeMap::new();
    for (key, value) in effective {
        let value = if is_secret(&key) { REDACTED.to_string() } else { value.to_string() };
        sources.insert(key.clone(), (value, origin(&key).1));
    }
    Ok(Loaded { settings, sources })
}

/// A TOML error without the quoted line the `toml` crate adds: that line
/// may hold the secret.
fn parse_error(text: &str, error: &toml::de::Error) -> String {
    match error.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {}", error.message())
        }
        None => error.message().to_string(),
    }
}

fn typed(values: &BTreeMap<String, toml::Value>) -> BTreeMap<String, Given> {
    values.iter().map(|(k, v)| (k.clone(), Given::Typed(v.clone()))).collect()
}

fn flatten(table: &toml::Table) -> BTreeMap<String, toml::Value> {
    fn walk(prefix: &str, table: &toml::Table, out: &mut BTreeMap<String, toml::Value>) {
        for (k, v) in table {
            let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
            match v {
                toml::Value::Table(t) => walk(&key, t, out),
                other => {
                    out.insert(key, other.clone());
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", table, &mut out);
    out
}

fn check_known_keys(layers: &[Layer]) -> Result<(), ConfigError> {
    let known = &layers[0].values;
    for layer in &layers[1..] {
        for key in layer.values.keys() {
            if known.contains_key(key) {
                continue;
            }
            let section = key.split('.').next().unwrap_or("");
            let siblings: Vec<&str> =
                known.keys().filter_map(|k| k.strip_prefix(section).and_then(|rest| rest.strip_prefix('.'))).collect();
            let hint = if siblings.is_empty() {
                let sections: std::collections::BTreeSet<&str> =
                    known.keys().filter_map(|k| k.split('.').next()).collect();
                format!("known sections: {}", sections.into_iter().collect::<Vec<_>>().join(", "))
            } else {
                format!("known keys in [{section}]: {}", siblings.join(", "))
            };
            return Err(ConfigError::UnknownKey { key: key.clone(), origin: (layer.origin_of)(key), hint });
        }
    }
    Ok(())
}

fn translate(err: config::ConfigError, origin: &dyn Fn(&str) -> (String, Origin)) -> ConfigError {
    match err {
        config::ConfigError::Type { key: Some(key), unexpected, expected, .. } => {
            let (value, origin) = origin(&key);
            ConfigError::Invalid { key, value, origin, message: format!("expected {expected}, found {unexpected}") }
        }
        config::ConfigError::At { error, key: Some(key), .. } => {
            let (value, origin) = origin(&key);
            let message = match *error {
                config::ConfigError::Message(m) => m,
                other => other.to_string(),
            };
            ConfigError::Invalid { key, value, origin, message }
        }
        config::ConfigError::NotFound(key) => {
            // The crate spells a field of an array element `list[1]field`.
            let key = key.replace("]", "].").replace("..", ".");
            let (value, origin) = origin(&key);
            ConfigError::Invalid { key, value, origin, message: "this required key is missing".into() }
        }
        other => ConfigError::Other(other.to_string()),
    }
}

mod types;
use types::Given;

#[cfg(test)]
mod tests;
