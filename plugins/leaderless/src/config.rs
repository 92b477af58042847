//! The `[leaderless]` configuration section and its validation.

use replab_api::ConfigError;
use serde::{Deserialize, Serialize};

use crate::message::{MAX_BUCKETS, MAX_VNODES};

/// Deliberately wrong behaviours, for tests only: each breaks one rule of
/// the protocol so that the simulation's invariant checkers can be shown
/// to catch it. Never set one in a real deployment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bug {
    /// The correct protocol.
    #[default]
    None,
    /// Replicas acknowledge a `Store` at once, before the record holding
    /// it is durable: a crash right after can lose a write the client was
    /// told is on W replicas.
    AckBeforePersist,
    /// A put supersedes every version its coordinator holds, whatever
    /// context the client read: under version vectors, a concurrent write
    /// is silently lost, as under last-writer-wins.
    IgnoreContext,
    /// A replica that takes a new register from a `Store` keeps its first
    /// value with the last byte changed: a value no client wrote.
    CorruptReplicaValue,
    /// Anti-entropy replaces a replica's register with the peer's instead
    /// of merging them: versions only the local replica held are lost.
    AntiEntropyOverwrites,
    /// The node writes versions under its node id whatever its
    /// incarnation: after losing its disk it starts its version-vector
    /// counters over and names new writes with dots its peers already
    /// hold, which they drop as old.
    ForgetIncarnation,
    /// The coordinator takes every copy of a forwarded put (`Coordinate`)
    /// the network delivers as a new put, and answers a copy it refuses for
    /// lack of live owners `Failed`: that answer can reach the forwarder
    /// first although another copy was applied.
    CoordinateDuplicates,
}

/// Tunables of one leaderless node. Every node of a cluster must use the
/// same `replicas`, `ring_vnodes` and `anti_entropy_buckets`: they decide
/// who owns a key and how digests are cut.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LeaderlessConfig {
    /// N: how many members replicate each key (its preference list).
    pub replicas: usize,
    /// W: owners that must hold a put durably before it is `Written`.
    pub write_quorum: usize,
    /// R: owners whose registers a get merges before answering.
    pub read_quorum: usize,
    /// How long a coordinator waits for W acknowledgements or R replies;
    /// a node that forwarded a put waits twice this for the coordinator.
    pub request_timeout_ms: u64,
    /// After a get, send the merged register to every owner that answered
    /// with something different.
    pub read_repair: bool,
    /// How often a node compares digests with one peer; 0 turns
    /// anti-entropy off.
    pub anti_entropy_interval_ms: u64,
    /// How many buckets the keys two nodes share are hashed into for one
    /// digest exchange: more buckets, larger digests but fewer keys sent
    /// per differing bucket.
    pub anti_entropy_buckets: usize,
    /// Points each member puts on the hash ring.
    pub ring_vnodes: u32,
    /// Emit a `Checkpoint` (every key's register) after this many records;
    /// 0 never checkpoints.
    pub checkpoint_every_records: u64,
    /// Test-only fault switch; see [`Bug`].
    pub bug: Bug,
}

impl Default for LeaderlessConfig {
    fn default() -> LeaderlessConfig {
        LeaderlessConfig {
            replicas: 3,
            write_quorum: 2,
            read_quorum: 2,
            request_timeout_ms: 1_000,
            read_repair: true,
            anti_entropy_interval_ms: 1_000,
            anti_entropy_buckets: 64,
            ring_vnodes: 16,
            checkpoint_every_records: 10_000,
            bug: Bug::None,
        }
    }
}

/// Below this, anti-entropy rounds would follow each other faster than a
/// round trip on a loaded LAN and mostly add load.
pub const MIN_ANTI_ENTROPY_INTERVAL_MS: u64 = 10;

fn error(key: &str, message: String) -> ConfigError {
    ConfigError { key: key.to_string(), message }
}

fn require_between(key: &str, value: u64, lo: u64, hi: u64, why: &str) -> Result<(), ConfigError> {
    if value < lo || value > hi {
        Err(error(key, format!("must be between {lo} and {hi} ({why}), not {value}")))
    } else {
        Ok(())
    }
}

impl LeaderlessConfig {
    /// Checks ranges and the relations between values; the error names the
    /// offending key. R + W > N is *not* required: partial quorums are an
    /// experiment this lab runs (see [`LeaderlessConfig::quorums_overlap`]).
    pub fn validate(&self, members: usize) -> Result<(), ConfigError> {
        if members == 0 {
            return Err(error("members", "a leaderless cluster needs at least one member".to_string()));
        }
        let members = members as u64;
        require_between("replicas", self.replicas as u64, 1, members, "at most the number of members")?;
        let n = self.replicas as u64;
        require_between("write_quorum", self.write_quorum as u64, 1, n, "at most replicas")?;
        require_between("read_quorum", self.read_quorum as u64, 1, n, "at most replicas")?;
        if self.request_timeout_ms == 0 {
            return Err(error("request_timeout_ms", "must be greater than 0".to_string()));
        }
        if self.anti_entropy_interval_ms != 0 && self.anti_entropy_interval_ms < MIN_ANTI_ENTROPY_INTERVAL_MS {
            return Err(error(
                "anti_entropy_interval_ms",
                format!(
                    "must be 0 (off) or at least {MIN_ANTI_ENTROPY_INTERVAL_MS}, not {}",
                    self.anti_entropy_interval_ms
                ),
            ));
        }
        require_between(
            "anti_entropy_buckets",
            self.anti_entropy_buckets as u64,
            1,
            MAX_BUCKETS as u64,
            "a digest is one number per bucket",
        )?;
        require_between("ring_vnodes", u64::from(self.ring_vnodes), 1, u64::from(MAX_VNODES), "points per member")?;
        Ok(())
    }

    /// True if every read quorum intersects every write quorum (R + W > N):
    /// then, without failures or concurrent writes, a get that answers
    /// after a put was `Written` sees that put. With R + W <= N a read can
    /// miss an acknowledged write until read repair or anti-entropy
    /// carries it over (a "partial quorum", as in PBS: Bailis et al.,
    /// "Probabilistically Bounded Staleness", 2012). Neither case is
    /// linearizable: quorums overlap on members, not on time, and a write
    /// that timed out (`Unknown`) may surface later.
    pub fn quorums_overlap(&self) -> bool {
        self.read_quorum + self.write_quorum > self.replicas
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_pairs(pairs: &[(&'static str, u64)]) -> Result<LeaderlessConfig, serde::de::value::Error> {
        use serde::de::value::MapDeserializer;
        LeaderlessConfig::deserialize(MapDeserializer::new(pairs.iter().copied()))
    }

    #[test]
    fn defaults_are_valid_and_overlap() {
        assert_eq!(LeaderlessConfig::default().validate(3), Ok(()));
        assert!(LeaderlessConfig::default().quorums_overlap());
    }

    #[test]
    fn a_partial_section_keeps_the_other_defaults() {
        let config = from_pairs(&[("replicas", 5), ("write_quorum", 1)]).unwrap();
        assert_eq!((config.replicas, config.write_quorum, config.read_quorum), (5, 1, 2));
        assert_eq!(config.bug, Bug::None);
        assert!(!config.quorums_overlap(), "R=2 + W=1 <= N=5");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = from_pairs(&[("quorum", 2)]).unwrap_err();
        assert!(err.to_string().contains("unknown field `quorum`"), "{err}");
    }

    #[test]
    fn bug_switches_are_named_in_snake_case() {
        use serde::de::value::{Error, StrDeserializer};
        for (name, bug) in [
            ("none", Bug::None),
            ("ack_before_persist", Bug::AckBeforePersist),
            ("ignore_context", Bug::IgnoreContext),
            ("corrupt_replica_value", Bug::CorruptReplicaValue),
            ("anti_entropy_overwrites", Bug::AntiEntropyOverwrites),
            ("forget_incarnation", Bug::ForgetIncarnation),
            ("coordinate_duplicates", Bug::CoordinateDuplicates),
        ] {
            assert_eq!(Bug::deserialize(StrDeserializer::<Error>::new(name)).unwrap(), bug);
        }
    }
}
