//! Identifiers shared by the engine and every plugin.
//!
//! Plain integer aliases keep plugin arithmetic readable (`next_index =
//! match_index + 1`); the names carry the meaning.

/// A node of the cluster. Ids are chosen by configuration and never reused
/// for a different node within one cluster.
pub type NodeId = u64;

/// Position in the replicated log. The first entry has index 1; index 0
/// means "before the first entry" (the empty log).
pub type LogIndex = u64;

/// A client session, handed out by the replicated state machine when the
/// client registers. It is part of the idempotency key (client id, seq).
pub type ClientId = u64;

/// Sequence number of one request within a client session.
pub type Seq = u64;

/// Engine-chosen token that links a proposal to its outcome effect.
pub type ProposalId = u64;

/// Engine-chosen token that links a linearizable read to its outcome effect.
pub type ReadId = u64;
