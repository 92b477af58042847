//! # replab-api: the plugin contract
//!
//! Every consistency policy in replab is a deterministic, sans-IO state
//! machine, the way etcd-io/raft and tikv/raft-rs are. The engine feeds it
//! [`Input`]s together with the current [`Instant`], and carries out the
//! ordered [`Effect`]s it returns. Same inputs and same seed give the same
//! effects, which is what lets the deterministic harness (`replab-sim`) and
//! the real tokio engine run the very same plugin code.
//!
//! A plugin never sees a socket, a file, a thread, tokio or the wall clock.
//! Its randomness comes from [`PluginRng`], seeded by the engine.
//!
//! Two policy shapes share the rules: log-based policies
//! ([`ReplicationPolicy`]) order commands the engine applies; per-key
//! policies ([`KeyedPolicy`]) own the data and answer with siblings and a
//! causal context, using a [`ConflictResolver`].
//!
//! This crate also holds the vocabulary that plugins share: ids, the
//! generation clock (term), log entries and hard state, the Lamport and
//! hybrid logical clocks, and version vectors.
//!
//! The rules of the contract are spelled out in `docs/ARCHITECTURE.md`.

pub mod detector;
pub mod effect;
pub mod entry;
pub mod factory;
pub mod generation;
pub mod hybrid_clock;
pub mod ids;
pub mod keyed;
pub mod lamport;
pub mod liveness;
pub mod memory;
pub mod policy;
pub mod resolver;
pub mod rng;
pub mod snapshot;
pub mod time;
pub mod version_vector;

pub use detector::{DetectorEffects, DetectorInput, FailureDetector, PeerView};
pub use effect::{Effect, Effects, RejectReason};
pub use entry::{Entry, EntryKind, LogPosition};
pub use factory::{ConfigError, PolicyContext, PolicyFactory, Recovered};
pub use generation::{HardState, Term};
pub use hybrid_clock::{HybridClock, HybridTimestamp};
pub use ids::{ClientId, LogIndex, NodeId, ProposalId, ReadId, Seq};
pub use keyed::{
    Clocks, KeyState, KeyedEffect, KeyedEffects, KeyedFactory, KeyedInput, KeyedOp, KeyedPolicy, KeyedRecovered,
    KeyedReply, RequestId,
};
pub use lamport::LamportClock;
pub use liveness::Liveness;
pub use memory::Memory;
pub use policy::{Input, PolicyStatus, ReplicationPolicy, Role, StepError};
pub use resolver::{ACTOR_BIT, ConflictResolver, LocalWrite, actor_id};
pub use rng::PluginRng;
pub use snapshot::{Snapshot, SnapshotMeta};
pub use time::Instant;
pub use version_vector::{Causality, VersionVector};
