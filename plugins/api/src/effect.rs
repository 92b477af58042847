//! Effects: what a policy asks the engine to do, in order.
//!
//! The engine carries out one step's effects front to back. Two rules make
//! the order matter:
//!
//! * **Persist before you promise.** A `Send` with `after_persist: true`
//!   (a vote, an append acknowledgement, a snapshot acknowledgement) may
//!   leave the node only once every `SaveHardState`, `TruncateLog`,
//!   `AppendLog` and `InstallSnapshot` pushed before it, in this step or an
//!   earlier one, is durable. Otherwise a crash could make the node forget
//!   a vote it cast or an entry it acknowledged. Other sends (heartbeats,
//!   appends from a leader) may leave at once, as in raft-rs's split into
//!   `messages` and `persisted_messages`.
//! * **Apply in log order.** `Apply` entries follow one another without
//!   gaps, start right after the last applied index (or the installed
//!   snapshot), and are all committed.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::entry::Entry;
use crate::generation::{HardState, Term};
use crate::ids::{LogIndex, NodeId, ProposalId, ReadId};
use crate::policy::Role;
use crate::snapshot::Snapshot;

/// Why a proposal or a read was refused. The client is told which node to
/// try instead when the policy knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectReason {
    NotLeader {
        leader_hint: Option<NodeId>,
    },
    /// Leadership is being handed over; retry at the new leader.
    TransferInProgress,
    /// The policy cannot take more work now (full queue); retry later.
    Busy,
    /// The leader lost its term before the read was confirmed.
    LeadershipLost,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Make the term and vote durable.
    SaveHardState(HardState),
    /// Delete the log entry at `from` and every entry after it (a conflict
    /// with the leader's log).
    TruncateLog {
        from: LogIndex,
    },
    /// Append entries at the end of the log. Their indexes continue the log
    /// without gaps.
    AppendLog {
        entries: Vec<Entry>,
    },
    /// Send a message to a peer; see the module docs for `after_persist`.
    Send {
        to: NodeId,
        bytes: Bytes,
        after_persist: bool,
    },
    /// The commit index (high watermark) moved forward to `index`.
    Committed {
        index: LogIndex,
    },
    /// Apply these committed entries to the state machine, in order.
    Apply {
        entries: Vec<Entry>,
    },
    /// The proposal's commands were appended as entries
    /// `first_index .. first_index + count` in `term`. They are not yet
    /// committed; the engine learns that from `Apply`. If a different term
    /// is applied at one of those indexes, the proposal was lost.
    Proposed {
        id: ProposalId,
        first_index: LogIndex,
        term: Term,
        count: u64,
    },
    ProposalRejected {
        id: ProposalId,
        reason: RejectReason,
    },
    /// The read may be served once the state machine has applied `index`.
    ReadReady {
        id: ReadId,
        index: LogIndex,
    },
    ReadRejected {
        id: ReadId,
        reason: RejectReason,
    },
    /// Take a snapshot of the state machine, which has applied exactly
    /// `index` at this point in the effect order, store it durably and
    /// answer with `Input::SnapshotTaken`.
    TakeSnapshot {
        index: LogIndex,
    },
    /// Replace the state machine with this snapshot (received from the
    /// leader) and store it durably. Log entries at or below its index are
    /// discarded; the log continues at `last_included.index + 1`.
    InstallSnapshot {
        snapshot: Snapshot,
    },
    /// Entries up to and including `up_to` are covered by a durable
    /// snapshot: the log may delete them (the low watermark moved).
    CompactLog {
        up_to: LogIndex,
    },
    /// The node has caught up with everything it may have lost (see
    /// [`crate::Memory`]): the engine durably forgets the loss, so the next
    /// restart recovers as `Memory::Intact`. Pushed only once the entries
    /// that restored it are durable.
    MemoryRestored,
    /// The node's role, term or known leader changed.
    RoleChanged {
        role: Role,
        term: Term,
        leader: Option<NodeId>,
    },
}

/// A reusable, ordered buffer of effects. The engine keeps one per node
/// and drains it after each step, so the hot path does not allocate a new
/// vector per input.
#[derive(Debug, Default)]
pub struct Effects {
    list: Vec<Effect>,
}

impl Effects {
    pub fn new() -> Effects {
        Effects { list: Vec::with_capacity(16) }
    }

    pub fn push(&mut self, effect: Effect) {
        self.list.push(effect);
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn as_slice(&self) -> &[Effect] {
        &self.list
    }

    /// Takes the effects out in order, leaving the buffer empty but with
    /// its capacity.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Effect> {
        self.list.drain(..)
    }
}
