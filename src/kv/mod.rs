//! The replicated state machine: a versioned key-value store with client
//! sessions.
//!
//! Applied from the log in order, on every replica, so it must be a pure
//! function of the entries: no clock, no randomness, no I/O. That also lets
//! the simulated world run it unchanged. Each value carries its version:
//! the log index of the entry that wrote it.

pub mod command;
pub mod sessions;

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use replab_api::{Entry, EntryKind, LogIndex, LogPosition, Snapshot, SnapshotMeta};

pub use command::{Applied, Command, KvError, LoggedCommand, WriteOp, WriteResult};
use sessions::{Admission, Sessions};

/// Store settings (the `[kv]` config section). Every replica must use the
/// same values: they decide replicated outcomes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KvConfig {
    /// A session without requests for this long is forgotten.
    pub session_expiry_ms: u64,
    /// Responses a session may hold before the client acknowledges some.
    pub max_saved_responses: usize,
}

impl Default for KvConfig {
    fn default() -> KvConfig {
        KvConfig { session_expiry_ms: 600_000, max_saved_responses: 1024 }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versioned {
    pub value: Bytes,
    /// Index of the entry that wrote the value.
    pub version: LogIndex,
}

/// Everything a snapshot holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    data: BTreeMap<Bytes, Versioned>,
    sessions: Sessions,
    applied: LogPosition,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kv {
    state: State,
    config: KvConfig,
}

impl Kv {
    pub fn new(config: KvConfig) -> Kv {
        Kv { state: State::default(), config }
    }

    /// The store as of a snapshot. The bytes came from disk or a peer, so a
    /// malformed snapshot is an error, not a panic.
    pub fn restore(snapshot: &Snapshot, config: KvConfig) -> Result<Kv, String> {
        let state: State =
            postcard::from_bytes(&snapshot.data).map_err(|e| format!("undecodable key-value snapshot: {e}"))?;
        if state.applied != snapshot.meta.last_included {
            return Err(format!(
                "snapshot metadata says index {} term {}, its data says index {} term {}",
                snapshot.meta.last_included.index,
                snapshot.meta.last_included.term,
                state.applied.index,
                state.applied.term
            ));
        }
        Ok(Kv { state, config })
    }

    pub fn snapshot(&self) -> Snapshot {
        let data = postcard::to_allocvec(&self.state).expect("the store serializes");
        Snapshot { meta: SnapshotMeta { last_included: self.state.applied }, data: Bytes::from(data) }
    }

    /// The last entry applied.
    pub fn applied(&self) -> LogPosition {
        self.state.applied
    }

    pub fn get(&self, key: &[u8]) -> Option<&Versioned> {
        self.state.data.get(key)
    }

    pub fn len(&self) -> usize {
        self.state.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.state.data.is_empty()
    }

    pub fn sessions(&self) -> usize {
        self.state.sessions.len()
    }

    /// Key -> value, for convergence checks and reports.
    pub fn dump(&self) -> BTreeMap<Bytes, Bytes> {
        self.state.data.iter().map(|(k, v)| (k.clone(), v.value.clone())).collect()
    }

    /// A fingerprint of the data (not the sessions): equal stores have equal
    /// digests, so replicas can be compared without shipping the data.
    pub fn digest(&self) -> u64 {
        let mut hasher = std::hash::DefaultHasher::new();
        for (key, v) in &self.state.data {
            key.hash(&mut hasher);
            v.value.hash(&mut hasher);
            v.version.hash(&mut hasher);
        }
        hasher.finish()
    }

    /// Applies the next committed entry. Entries come in log order without
    /// gaps; anything else is a bug in the caller.
    pub fn apply(&mut self, entry: &Entry) -> Option<Applied> {
        assert_eq!(
            entry.index,
            self.state.applied.index + 1,
            "entries apply in order: expected {}, got {}",
            self.state.applied.index + 1,
            entry.index
        );
        self.state.applied = entry.position();
        if entry.kind == EntryKind::Noop {
            return None;
        }
        let logged = match LoggedCommand::decode(&entry.data) {
            Ok(logged) => logged,
            Err(e) => return Some(Applied::Invalid(KvError::BadCommand(e.to_string()))),
        };
        self.state.sessions.advance_clock(logged.at_ms, self.config.session_expiry_ms);
        Some(match logged.command {
            Command::Register => {
                self.state.sessions.register(entry.index);
                Applied::Registered { client: entry.index }
            }
            Command::Request { client, seq, ack_below, op } => {
                match self.state.sessions.admit(client, seq, ack_below, self.config.max_saved_responses) {
                    Admission::Duplicate(result) => Applied::Write { client, seq, result, duplicate: true },
                    Admission::Refused(e) => {
                        Applied::Write { client, seq, result: WriteResult::Failed(e), duplicate: false }
                    }
                    Admission::Apply => {
                        let result = self.write(entry.index, op);
                        self.state.sessions.record(client, seq, result.clone());
                        Applied::Write { client, seq, result, duplicate: false }
                    }
                }
            }
        })
    }

    fn write(&mut self, index: LogIndex, op: WriteOp) -> WriteResult {
        let data = &mut self.state.data;
        match op {
            WriteOp::Put { key, value } => {
                set(data, key, Versioned { value, version: index });
                WriteResult::Put { version: index }
            }
            WriteOp::Delete { key } => WriteResult::Deleted { existed: data.remove(&key).is_some() },
            WriteOp::Cas { key, expected, new } => {
                let current = data.get(&key);
                if current.map(|v| &v.value) == expected.as_ref() {
                    set(data, key, Versioned { value: new, version: index });
                    WriteResult::Cas { succeeded: true, current: None, version: index }
                } else {
                    let version = current.map_or(0, |v| v.version);
                    WriteResult::Cas { succeeded: false, current: current.map(|v| v.value.clone()), version }
                }
            }
            WriteOp::Incr { key, by } => {
                let name = || String::from_utf8_lossy(&key).into_owned();
                let now = match data.get(&key) {
                    None => 0,
                    Some(v) => match std::str::from_utf8(&v.value).ok().and_then(|s| s.parse::<i64>().ok()) {
                        Some(n) => n,
                        None => return WriteResult::Failed(KvError::NotANumber { key: name() }),
                    },
                };
                let Some(value) = now.checked_add(by) else {
                    return WriteResult::Failed(KvError::Overflow { key: name() });
                };
                set(data, key, Versioned { value: Bytes::from(value.to_string()), version: index });
                WriteResult::Incr { value, version: index }
            }
        }
    }
}

/// Stores `versioned` under `key`. Decoded keys are slices of their log
/// entry (`LoggedCommand::decode`), and a map keeps the key it first
/// stored: a new key is copied into its own allocation, so it does not
/// hold that entry's buffer for as long as the key lives. Values are kept
/// as slices; a value is most of its entry, and an overwrite frees it.
fn set(data: &mut BTreeMap<Bytes, Versioned>, key: Bytes, versioned: Versioned) {
    match data.get_mut(&key) {
        Some(slot) => *slot = versioned,
        None => {
            data.insert(Bytes::copy_from_slice(&key), versioned);
        }
    }
}

/// Encodes a command for the log.
pub fn encode(at_ms: u64, command: Command) -> Bytes {
    Bytes::from(postcard::to_allocvec(&LoggedCommand { at_ms, command }).expect("commands serialize"))
}

#[cfg(test)]
mod tests;
