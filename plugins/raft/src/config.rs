//! The `[raft]` configuration section and its validation.

use replab_api::ConfigError;
use serde::{Deserialize, Serialize};

/// Deliberately wrong behaviours, for tests only: each one breaks a Raft
/// safety rule so that the simulation's invariant checkers can be shown to
/// catch it. Never set one in a real deployment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bug {
    /// Correct Raft.
    #[default]
    None,
    /// The leader commits (and acknowledges) an entry as soon as it is in
    /// its own log, without waiting for a durable quorum.
    CommitWithoutQuorum,
    /// Votes are granted to every candidate, ignoring the term, an earlier
    /// vote in the same term and whether the candidate's log is up to date.
    VoteWithoutTermCheck,
    /// Any node answers a read at once with its local commit index, without
    /// the leader confirming its leadership with a quorum.
    ReadWithoutReadIndex,
    /// The leader commits any index a durable quorum stores, whatever the
    /// term of its entry: the commit rule without the current-term
    /// condition (Raft §5.4.2). An older-term entry counted on a majority
    /// can then be overwritten by a leader that never had it (the paper's
    /// Figure 8).
    CommitPreviousTerm,
}

/// Tunables of one Raft node. Defaults suit a LAN with millisecond RTTs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RaftConfig {
    /// Lower bound of the randomized election timeout. Also the leader-lease
    /// length (CheckQuorum) and the leader-transfer deadline.
    pub election_timeout_min_ms: u64,
    /// Upper bound (inclusive) of the randomized election timeout.
    pub election_timeout_max_ms: u64,
    pub heartbeat_interval_ms: u64,
    /// Probe with a PreVote round before raising the term (thesis §9.6).
    pub pre_vote: bool,
    /// A leader that has not heard from a quorum within an election timeout
    /// steps down, and followers that hear from a live leader ignore votes.
    pub check_quorum: bool,
    /// Most entries carried by one append message (at least one is always
    /// sent, whatever its size).
    pub max_entries_per_append: usize,
    /// Most entry bytes ([`replab_api::Entry::size_bytes`]) in one append.
    pub max_bytes_per_append: usize,
    /// Append messages in flight to one follower before the leader waits
    /// for acknowledgements.
    pub max_inflight_appends: usize,
    /// Entry bytes in flight to one follower before the leader waits.
    pub max_inflight_bytes: usize,
    /// Ask for a snapshot once this many entries were applied since the last
    /// one; 0 never snapshots.
    pub snapshot_threshold_entries: u64,
    /// Proposals are rejected with `Busy` while the leader holds this many
    /// uncommitted entries (backpressure on a stalled quorum).
    pub max_uncommitted_entries: u64,
    /// Reads waiting for leadership confirmation before new ones are
    /// rejected with `Busy`.
    pub max_pending_reads: usize,
    /// Test-only fault switch; see [`Bug`].
    pub bug: Bug,
}

impl Default for RaftConfig {
    fn default() -> RaftConfig {
        RaftConfig {
            election_timeout_min_ms: 150,
            election_timeout_max_ms: 300,
            heartbeat_interval_ms: 50,
            pre_vote: true,
            check_quorum: true,
            max_entries_per_append: 64,
            max_bytes_per_append: 1024 * 1024,
            max_inflight_appends: 16,
            max_inflight_bytes: 8 * 1024 * 1024,
            snapshot_threshold_entries: 0,
            max_uncommitted_entries: 100_000,
            max_pending_reads: 10_000,
            bug: Bug::None,
        }
    }
}

fn error(key: &str, message: String) -> ConfigError {
    ConfigError { key: key.to_string(), message }
}

fn require_nonzero(key: &str, value: u64) -> Result<(), ConfigError> {
    if value == 0 { Err(error(key, "must be greater than 0".to_string())) } else { Ok(()) }
}

impl RaftConfig {
    /// Checks ranges and the relations between values; the error names the
    /// offending key.
    pub fn validate(&self, members: usize) -> Result<(), ConfigError> {
        if members == 0 {
            return Err(error("members", "a Raft cluster needs at least one member".to_string()));
        }
        require_nonzero("election_timeout_min_ms", self.election_timeout_min_ms)?;
        if self.election_timeout_max_ms <= self.election_timeout_min_ms {
            return Err(error(
                "election_timeout_max_ms",
                format!(
                    "must be greater than election_timeout_min_ms ({} <= {})",
                    self.election_timeout_max_ms, self.election_timeout_min_ms
                ),
            ));
        }
        require_nonzero("heartbeat_interval_ms", self.heartbeat_interval_ms)?;
        if self.heartbeat_interval_ms >= self.election_timeout_min_ms {
            return Err(error(
                "heartbeat_interval_ms",
                format!(
                    "must be less than election_timeout_min_ms ({} >= {})",
                    self.heartbeat_interval_ms, self.election_timeout_min_ms
                ),
            ));
        }
        require_nonzero("max_entries_per_append", self.max_entries_per_append as u64)?;
        require_nonzero("max_bytes_per_append", self.max_bytes_per_append as u64)?;
        require_nonzero("max_inflight_appends", self.max_inflight_appends as u64)?;
        require_nonzero("max_inflight_bytes", self.max_inflight_bytes as u64)?;
        require_nonzero("max_uncommitted_entries", self.max_uncommitted_entries)?;
        require_nonzero("max_pending_reads", self.max_pending_reads as u64)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_pairs(pairs: &[(&'static str, u64)]) -> Result<RaftConfig, serde::de::value::Error> {
        use serde::de::value::MapDeserializer;
        RaftConfig::deserialize(MapDeserializer::new(pairs.iter().copied()))
    }

    #[test]
    fn a_partial_section_keeps_the_other_defaults() {
        let config = from_pairs(&[("election_timeout_min_ms", 500), ("election_timeout_max_ms", 900)]).unwrap();
        assert_eq!((config.election_timeout_min_ms, config.election_timeout_max_ms), (500, 900));
        assert_eq!(config.heartbeat_interval_ms, 50);
        assert_eq!(config.bug, Bug::None);
    }

    #[test]
    fn bug_switches_are_named_in_snake_case() {
        use serde::de::value::{Error, StrDeserializer};
        let bug = Bug::deserialize(StrDeserializer::<Error>::new("commit_previous_term")).unwrap();
        assert_eq!(bug, Bug::CommitPreviousTerm);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = from_pairs(&[("heartbeat_ms", 10)]).unwrap_err();
        assert!(err.to_string().contains("unknown field `heartbeat_ms`"), "{err}");
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(RaftConfig::default().validate(3), Ok(()));
    }

    #[test]
    fn errors_name_the_key() {
        let cases: Vec<(RaftConfig, &str)> = vec![
            (RaftConfig { election_timeout_max_ms: 150, ..RaftConfig::default() }, "election_timeout_max_ms"),
            (RaftConfig { heartbeat_interval_ms: 150, ..RaftConfig::default() }, "heartbeat_interval_ms"),
            (RaftConfig { heartbeat_interval_ms: 0, ..RaftConfig::default() }, "heartbeat_interval_ms"),
            (RaftConfig { election_timeout_min_ms: 0, ..RaftConfig::default() }, "election_timeout_min_ms"),
            (RaftConfig { max_entries_per_append: 0, ..RaftConfig::default() }, "max_entries_per_append"),
            (RaftConfig { max_bytes_per_append: 0, ..RaftConfig::default() }, "max_bytes_per_append"),
            (RaftConfig { max_inflight_appends: 0, ..RaftConfig::default() }, "max_inflight_appends"),
            (RaftConfig { max_inflight_bytes: 0, ..RaftConfig::default() }, "max_inflight_bytes"),
            (RaftConfig { max_uncommitted_entries: 0, ..RaftConfig::default() }, "max_uncommitted_entries"),
            (RaftConfig { max_pending_reads: 0, ..RaftConfig::default() }, "max_pending_reads"),
        ];
        for (config, key) in cases {
            let err = config.validate(3).expect_err(key);
            assert_eq!(err.key, key, "{err}");
        }
        assert_eq!(RaftConfig::default().validate(0).unwrap_err().key, "members");
    }
}
