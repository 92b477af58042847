//! The `[primary_backup]` configuration section and its validation.

use replab_api::ConfigError;
use serde::{Deserialize, Serialize};

/// When the primary acknowledges (commits) an entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Once the entry is durable in the primary's own log. Fastest; a
    /// failover can discard acknowledged writes (see `rollback` in
    /// docs/PRIMARY_BACKUP.md).
    Async,
    /// Once the entry is durable on every member. Nothing acknowledged is
    /// lost while a majority survives, but one member down stalls writes.
    Sync,
    /// Once the entry is durable on a majority (Raft's rule, including the
    /// current-generation condition of Raft §5.4.2).
    #[default]
    Quorum,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Async => "async",
            Mode::Sync => "sync",
            Mode::Quorum => "quorum",
        })
    }
}

/// Deliberately wrong behaviours, for tests only: each breaks one
/// invariant so a test can show that the harness catches it. Never set one
/// in a real deployment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bug {
    #[default]
    None,
    /// `quorum` and `sync` commit on local durability, like `async`.
    AckBeforeQuorum,
    /// Backups accept appends from an older generation's primary.
    AcceptLowerGeneration,
    /// A claimant becomes primary at once, without a majority of promises.
    ClaimWithoutPromises,
    /// Promises go to claimants whose logs are less up to date.
    IgnoreLongerLogs,
}

/// Tunables of one primary-backup node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrimaryBackupConfig {
    pub mode: Mode,
    /// The primary heartbeats every backup this often; a heartbeat carries
    /// the commit index and every member's acknowledged log position.
    pub heartbeat_interval_ms: u64,
    /// The failover step: the k-th ranked successor waits k times this
    /// before claiming, a claim that gathers no majority is abandoned after
    /// it, and a node that just started waits it for a primary to show up.
    pub takeover_timeout_ms: u64,
    /// Most entries carried by one append (at least one is always sent).
    pub max_entries_per_append: usize,
    /// Most entry bytes ([`replab_api::Entry::size_bytes`]) in one append.
    pub max_bytes_per_append: usize,
    /// Appends in flight to one backup before the primary waits for
    /// acknowledgements.
    pub max_inflight_appends: usize,
    /// Proposals are rejected with `Busy` while the primary holds this
    /// many uncommitted entries.
    pub max_uncommitted_entries: u64,
    /// Take a snapshot (and compact the log) once this many entries were
    /// applied since the last one; 0 snapshots only when a rollback or a
    /// lagging backup needs one.
    pub snapshot_threshold_entries: u64,
    /// Reads waiting for a confirmation round before new ones are refused
    /// with `Busy`.
    pub max_pending_reads: usize,
    /// Test-only fault switch; see [`Bug`].
    pub bug: Bug,
}

impl Default for PrimaryBackupConfig {
    fn default() -> PrimaryBackupConfig {
        PrimaryBackupConfig {
            mode: Mode::Quorum,
            heartbeat_interval_ms: 50,
            takeover_timeout_ms: 300,
            max_entries_per_append: 64,
            max_bytes_per_append: 1024 * 1024,
            max_inflight_appends: 16,
            max_uncommitted_entries: 100_000,
            snapshot_threshold_entries: 0,
            max_pending_reads: 10_000,
            bug: Bug::None,
        }
    }
}

fn positive(key: &str, value: u64) -> Result<(), ConfigError> {
    match value {
        0 => Err(ConfigError { key: key.to_string(), message: "must be greater than 0".to_string() }),
        _ => Ok(()),
    }
}

impl PrimaryBackupConfig {
    /// Checks ranges and relations; the error names the offending key
    /// (without the section prefix).
    pub fn validate(&self, members: usize) -> Result<(), ConfigError> {
        if members == 0 {
            let message = "a primary-backup cluster needs at least one member".to_string();
            return Err(ConfigError { key: "members".to_string(), message });
        }
        positive("heartbeat_interval_ms", self.heartbeat_interval_ms)?;
        positive("takeover_timeout_ms", self.takeover_timeout_ms)?;
        if self.takeover_timeout_ms <= self.heartbeat_interval_ms {
            // A backup must be able to hear a heartbeat within one step of
            // the ranking, or a freshly started node claims over a live
            // primary.
            return Err(ConfigError {
                key: "takeover_timeout_ms".to_string(),
                message: format!(
                    "must be greater than heartbeat_interval_ms ({} <= {})",
                    self.takeover_timeout_ms, self.heartbeat_interval_ms
                ),
            });
        }
        positive("max_entries_per_append", self.max_entries_per_append as u64)?;
        positive("max_bytes_per_append", self.max_bytes_per_append as u64)?;
        positive("max_inflight_appends", self.max_inflight_appends as u64)?;
        positive("max_uncommitted_entries", self.max_uncommitted_entries)?;
        positive("max_pending_reads", self.max_pending_reads as u64)
    }

    /// Members whose durable copy acknowledges an entry, for `describe`.
    pub fn ack_copies(&self, members: usize) -> usize {
        match self.mode {
            Mode::Async => 1,
            Mode::Sync => members,
            Mode::Quorum => members / 2 + 1,
        }
    }
}
