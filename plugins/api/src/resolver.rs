//! Conflict resolvers: the third kind of plugin.
//!
//! Where writes to one key can happen concurrently (a leaderless store, a
//! primary-backup failover), a replica must decide what to keep when two
//! versions meet. A resolver defines one key's state on one replica (its
//! *register*), how a coordinator writes it, how two registers merge, and
//! what a read returns. Merging must be commutative, associative and
//! idempotent, so replicas that exchanged the same versions in any order
//! hold the same register: that is what lets read repair and anti-entropy
//! converge.
//!
//! The *context* is opaque to everyone but the resolver: a read returns
//! one, the client passes it back with its next write, and the resolver
//! decides what that write supersedes. Version vectors use it to replace
//! exactly the siblings the client saw; last-writer-wins ignores it.
//!
//! Resolvers are pure: no clock but the hybrid clock the caller passes,
//! fed by the engine's wall-clock input.

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::hybrid_clock::{HybridClock, HybridTimestamp};
use crate::ids::NodeId;

/// The name under which a node writes versions: its id while it has all
/// the state it ever made durable (`incarnation` 0), a fresh name for each
/// later incarnation (see `KeyedRecovered::incarnation`).
///
/// Why: a resolver that names versions by their writer (a version vector's
/// dot `(actor, counter)`) relies on the writer never naming two versions
/// alike. A node that lost its disk has forgotten the counters it used;
/// under its old name it would hand out dots its peers already hold, and
/// they would drop the new versions as already seen. Under a new name its
/// counters start over safely. The cost is one more entry, per incarnation
/// that writes to a key, in that key's version vectors (Riak's vnodes pay
/// the same for a new vnode id).
///
/// A later incarnation's name has the top bit set and is a hash of the
/// node and the incarnation, so it never equals a node id (members must be
/// below 2^63) and two incarnations collide with odds of about 2^-63.
pub fn actor_id(node: NodeId, incarnation: u64) -> u64 {
    if incarnation == 0 {
        return node;
    }
    // splitmix64's finalizer over both numbers: stable on every platform.
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let hashed = mix(mix(node.wrapping_add(0x9e37_79b9_7f4a_7c15)) ^ incarnation);
    ACTOR_BIT | (hashed >> 1)
}

/// Set in the name of every incarnation after the first (see [`actor_id`]).
pub const ACTOR_BIT: u64 = 1 << 63;

/// A client write as its coordinator applies it to its own register.
#[derive(Clone, Copy, Debug)]
pub struct LocalWrite<'a> {
    /// The coordinating node: a replica of the key.
    pub node: NodeId,
    /// The name the new version is written under ([`actor_id`] of the
    /// coordinator and its incarnation). Resolvers that name versions by
    /// their writer use this, never `node`.
    pub actor: u64,
    /// `None`: a delete.
    pub value: Option<&'a Bytes>,
    /// What the client read (empty: a blind write).
    pub context: &'a [u8],
    /// The coordinator's wall clock, as the engine reads it.
    pub wall_ms: u64,
}

pub trait ConflictResolver: Send + 'static {
    /// The name users select (`policy.conflict_resolver = "lww"`).
    const NAME: &'static str;

    /// One key's state on one replica. `Default` is "never written".
    type Register: Clone + std::fmt::Debug + Default + PartialEq + Serialize + DeserializeOwned + Send + 'static;

    /// Applies a client write at its coordinator. A context that does not
    /// decode is an error naming what is wrong (the register is unchanged).
    fn write(register: &mut Self::Register, write: LocalWrite<'_>, clock: &mut HybridClock) -> Result<(), String>;

    /// Takes what `other` holds that this register does not supersede;
    /// true if this register changed.
    fn merge(register: &mut Self::Register, other: &Self::Register) -> bool;

    /// Every live value (a delete leaves none; concurrent writes leave
    /// several, sorted) and the context for the client's next write.
    fn read(register: &Self::Register) -> (Vec<Bytes>, Bytes);

    /// The newest timestamp in the register, for the node's hybrid clock
    /// to observe: a node that has seen a version stamps its own writes
    /// after it. `None` for resolvers without timestamps.
    fn newest_stamp(_register: &Self::Register) -> Option<HybridTimestamp> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_later_incarnation_never_writes_under_a_node_id_or_an_earlier_name() {
        assert_eq!(actor_id(3, 0), 3, "the first incarnation keeps vectors as small as before");
        let mut seen = std::collections::BTreeSet::new();
        for node in 1..=5u64 {
            for incarnation in [1u64, 2, 3, 1_700_000_000_000_000, 1_700_000_000_000_001, u64::MAX] {
                let actor = actor_id(node, incarnation);
                assert!(actor & ACTOR_BIT != 0, "{actor} could be a node id");
                assert!(seen.insert(actor), "({node}, {incarnation}) shares the name {actor}");
                assert_eq!(actor, actor_id(node, incarnation), "stable");
            }
        }
    }
}
