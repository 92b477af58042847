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

/// A client write as its coordinator applies it to its own register.
#[derive(Clone, Copy, Debug)]
pub struct LocalWrite<'a> {
    /// The coordinating node: a replica of the key.
    pub node: NodeId,
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
