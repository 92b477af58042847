//! Log entries: the unit of the replicated log.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::generation::Term;
use crate::ids::LogIndex;

/// What an entry means to the state machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryKind {
    /// A new leader's first entry. It carries no command; committing it
    /// commits every earlier entry (Raft §5.4.2) and lets the leader serve
    /// ReadIndex reads.
    Noop,
    /// An opaque command for the replicated state machine.
    Command,
}

/// One entry of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub index: LogIndex,
    pub term: Term,
    pub kind: EntryKind,
    pub data: Bytes,
}

impl Entry {
    /// Bytes this entry costs in a message or in memory, used for the
    /// byte limits of batches and in-flight windows.
    pub fn size_bytes(&self) -> usize {
        // index + term + kind tag, then the payload.
        17 + self.data.len()
    }

    pub fn position(&self) -> LogPosition {
        LogPosition { index: self.index, term: self.term }
    }
}

/// A (index, term) pair. Two logs that hold an entry with the same index
/// and term are identical up to that index (the Log Matching property).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LogPosition {
    pub index: LogIndex,
    pub term: Term,
}

impl LogPosition {
    /// Raft's "at least as up to date" (§5.4.1): a log ending in a later
    /// term wins; with equal last terms, the longer log. (The derived
    /// `Ord` compares the index first and is not this order.)
    pub fn at_least_as_up_to_date_as(&self, other: LogPosition) -> bool {
        self.term > other.term || (self.term == other.term && self.index >= other.index)
    }
}
