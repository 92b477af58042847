//! The replication-policy trait and its inputs.
//!
//! A policy is driven through a single entry point, [`ReplicationPolicy::step`],
//! as in etcd-io/raft: the engine hands in one [`Input`] and the current
//! [`Instant`], and collects the ordered [`crate::Effect`]s the policy pushes
//! into an [`crate::Effects`] buffer. The engine carries out the effects in
//! order; see `docs/ARCHITECTURE.md` for what each one obliges it to do.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::effect::Effects;
use crate::entry::LogPosition;
use crate::generation::Term;
use crate::ids::{LogIndex, NodeId, ProposalId, ReadId};
use crate::liveness::Liveness;
use crate::snapshot::Snapshot;
use crate::time::Instant;

/// Everything that can happen to a policy.
#[derive(Clone, Debug)]
pub enum Input {
    /// Time has passed. The engine steps every policy at its tick interval
    /// (and the simulator whenever virtual time moves); timeouts are
    /// measured against the `now` handed in with every input.
    Tick,
    /// A message from a peer, in the policy's own encoding. The engine has
    /// authenticated the sender; the bytes are otherwise untrusted.
    Message { from: NodeId, bytes: Bytes },
    /// Client commands to append to the log, batched by the engine. The
    /// policy answers with `Effect::Proposed` or `Effect::ProposalRejected`.
    Propose { id: ProposalId, commands: Vec<Bytes> },
    /// Linearizable reads ask for a safe read index: every read that
    /// arrived in one turn of the engine's loop, so a policy can confirm
    /// them all with one round (ReadIndex batching). The policy answers
    /// each with `Effect::ReadReady` or `Effect::ReadRejected`.
    Read { ids: Vec<ReadId> },
    /// Every log write and hard-state save the policy requested before the
    /// entry at `position` was appended is now durable.
    Persisted { position: LogPosition },
    /// The state machine took the snapshot a `TakeSnapshot` effect asked
    /// for, and the engine stored it durably.
    SnapshotTaken { snapshot: Snapshot },
    /// The failure detector's verdict on a peer changed.
    PeerLiveness { peer: NodeId, liveness: Liveness },
    /// An operator asks the leader to hand leadership to `to`.
    TransferLeader { to: NodeId },
}

/// An input the policy refused. The engine logs it and goes on; a bad
/// message from a peer never stops a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepError {
    /// A peer message could not be decoded.
    Decode { from: NodeId, reason: String },
    /// The input is well formed but not acceptable now (wrong target,
    /// unknown peer, ...).
    Rejected(String),
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepError::Decode { from, reason } => write!(f, "undecodable message from node {from}: {reason}"),
            StepError::Rejected(why) => write!(f, "input rejected: {why}"),
        }
    }
}

impl std::error::Error for StepError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Follower,
    /// Raft PreVote: probing whether an election could be won, without
    /// raising the term.
    PreCandidate,
    Candidate,
    Leader,
    /// A policy without leaders (leaderless quorums): every node is a peer.
    Peer,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Role::Follower => "follower",
            Role::PreCandidate => "pre-candidate",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
            Role::Peer => "peer",
        };
        f.write_str(s)
    }
}

/// A policy's view of itself, for status displays, tests and checks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyStatus {
    pub id: NodeId,
    pub role: Role,
    pub term: Term,
    pub leader: Option<NodeId>,
    /// First index still in the log; entries below it live only in the
    /// snapshot (the low watermark is `first_index - 1`).
    pub first_index: LogIndex,
    pub last_index: LogIndex,
    /// The high watermark: entries up to here are committed.
    pub commit_index: LogIndex,
    /// Entries up to here were handed to the state machine.
    pub applied_index: LogIndex,
    /// Entries up to here are durable on this node.
    pub durable_index: LogIndex,
}

/// A consistency policy: a deterministic state machine.
///
/// Determinism contract: given the same construction arguments (including
/// the seed) and the same sequence of `(now, input)` pairs, a policy pushes
/// the same effects. It never reads the wall clock, a file, a socket or a
/// thread-local, and never spawns anything.
pub trait ReplicationPolicy: Send {
    /// Feeds one input. Effects are appended to `out` in the order the
    /// engine must carry them out.
    fn step(&mut self, now: Instant, input: Input, out: &mut Effects) -> Result<(), StepError>;

    fn status(&self) -> PolicyStatus;

    /// What the policy counts about itself, by name, for status pages and
    /// reports (`c:stats().policy`): elections, transfers, repairs, ...
    /// Names are snake_case and stable; values only grow within one
    /// incarnation.
    fn counters(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }

    /// Whether a read this policy marks ready has seen every write
    /// acknowledged before it began. Raft's ReadIndex confirms leadership
    /// with a quorum first, so it has; a policy that answers at once
    /// (primary-backup async: a deposed primary does not know it yet) says
    /// `false`, and the engine labels its reads unconfirmed instead of
    /// linearizable, so no client is told a guarantee nobody gave.
    fn reads_are_linearizable(&self) -> bool {
        true
    }
}
