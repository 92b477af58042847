//! The messages primary-backup nodes exchange, and their wire encoding
//! (postcard).
//!
//! Every message carries the sender's generation; `step` compares it with
//! the node's own before anything else. Peer bytes are untrusted: decoding
//! rejects trailing bytes, and [`Message::validate`] rejects values no
//! correct peer sends (numbers near `u64::MAX`, append batches whose
//! indexes do not continue `prev`, more positions than any cluster has),
//! so later arithmetic cannot overflow.

use std::borrow::Cow;

use bytes::Bytes;
use replab_api::{Entry, LogIndex, LogPosition, NodeId, Snapshot, Term};
use serde::{Deserialize, Serialize};

/// Indexes and generations above this are nonsense from a peer and are
/// refused at decode time, so `index + 1` never overflows.
pub const MAX_SANE_VALUE: u64 = 1 << 62;

/// More member positions than this in one heartbeat is not a cluster
/// replab runs; refusing it bounds what a peer can make us allocate.
pub const MAX_POSITIONS: usize = 1024;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Append<'a> {
    pub generation: Term,
    /// The entry right before `entries`; the backup must hold it.
    pub prev: LogPosition,
    /// The primary's commit index, capped at what this append proves.
    pub commit: LogIndex,
    /// Borrowed from the primary's log when encoding, owned when decoded.
    pub entries: Cow<'a, [Entry]>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppendOutcome {
    /// The backup's log matches the primary's up to `match_index`, durably
    /// (the answer leaves after persisting).
    Accepted { match_index: LogIndex },
    /// The entry before the batch (`rejected_index`) did not match, or lies
    /// below the backup's snapshot. `hint`: the backup's last entry at or
    /// below it whose generation is at most the probe's, or its snapshot
    /// position when that is above `rejected_index` (compare there).
    /// `memory_lost`: the backup lost durable state, so what it
    /// acknowledged before may be gone.
    Rejected { rejected_index: LogIndex, hint: LogPosition, memory_lost: bool },
    /// The backup has applied entries the primary's log does not hold (an
    /// async primary acknowledged them and was replaced). They cannot be
    /// truncated; only a snapshot of the primary's state repairs it.
    Diverged { applied_index: LogIndex },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub generation: Term,
    /// min(the backup's match, the primary's commit).
    pub commit: LogIndex,
    /// The latest read-confirmation round; echoed back.
    pub read_seq: u64,
    /// Every member's acknowledged log position as the primary knows it
    /// (its own: its last entry). Backups rank successors with them.
    pub positions: Vec<(NodeId, LogPosition)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message<'a> {
    /// "Make me primary of `generation`": the claimant's last log position
    /// lets the receiver check it is at least as up to date.
    Claim {
        generation: Term,
        last: LogPosition,
    },
    /// A promise (or a refusal) and the answerer's own last position.
    ClaimAnswer {
        generation: Term,
        promised: bool,
        last: LogPosition,
    },
    Append(Append<'a>),
    /// Answers appends and snapshots.
    AppendAnswer {
        generation: Term,
        outcome: AppendOutcome,
    },
    Heartbeat(Heartbeat),
    HeartbeatAnswer {
        generation: Term,
        read_seq: u64,
    },
    /// The primary's state machine at a log position, whole. `replace`:
    /// the backup's applied state is known not to be the primary's, so it
    /// installs this even below its own snapshot (a rollback).
    Snapshot {
        generation: Term,
        snapshot: Snapshot,
        replace: bool,
    },
    /// "Your generation is over": the answer to a primary's message from
    /// an older generation, so an old primary steps down.
    Stale {
        generation: Term,
    },
    /// From a node that found no durable state (a first start or a wiped
    /// disk, it cannot tell): "do you hold any data?"
    MemoryQuery {
        generation: Term,
    },
    /// The answer: whether the sender's log or snapshot holds anything.
    MemoryReport {
        generation: Term,
        has_data: bool,
    },
}

impl Message<'_> {
    pub fn generation(&self) -> Term {
        match self {
            Message::Claim { generation, .. }
            | Message::ClaimAnswer { generation, .. }
            | Message::AppendAnswer { generation, .. }
            | Message::HeartbeatAnswer { generation, .. }
            | Message::Snapshot { generation, .. }
            | Message::Stale { generation }
            | Message::MemoryQuery { generation }
            | Message::MemoryReport { generation, .. } => *generation,
            Message::Append(m) => m.generation,
            Message::Heartbeat(m) => m.generation,
        }
    }

    /// Messages only a primary sends.
    pub fn from_primary(&self) -> bool {
        matches!(self, Message::Append(_) | Message::Heartbeat(_) | Message::Snapshot { .. })
    }

    /// Encodes into a buffer sized up front, so large appends are not
    /// copied while the vector grows.
    pub fn encode(&self) -> Bytes {
        let estimate = match self {
            Message::Append(m) => 64 + m.entries.iter().map(|e| e.size_bytes() + 8).sum::<usize>(),
            Message::Snapshot { snapshot, .. } => 64 + snapshot.data.len(),
            Message::Heartbeat(m) => 48 + 24 * m.positions.len(),
            _ => 48,
        };
        let buf = postcard::to_extend(self, Vec::with_capacity(estimate)).expect("encoding into a Vec cannot fail");
        Bytes::from(buf)
    }

    /// Decodes and validates untrusted bytes from a peer.
    pub fn decode(bytes: &[u8]) -> Result<Message<'static>, String> {
        let (message, rest) = postcard::take_from_bytes::<Message<'static>>(bytes).map_err(|e| e.to_string())?;
        if !rest.is_empty() {
            return Err(format!("{} trailing bytes", rest.len()));
        }
        message.validate()?;
        Ok(message)
    }

    /// Rejects values a correct peer never sends.
    pub fn validate(&self) -> Result<(), String> {
        let generation = self.generation();
        sane("generation", generation)?;
        match self {
            Message::Claim { last, .. } | Message::ClaimAnswer { last, .. } => sane_position("last position", last),
            Message::Append(m) => validate_append(m),
            Message::AppendAnswer { outcome, .. } => match outcome {
                AppendOutcome::Accepted { match_index } => sane("match index", *match_index),
                AppendOutcome::Rejected { rejected_index, hint, .. } => {
                    sane("rejected index", *rejected_index)?;
                    sane_position("hint", hint)
                }
                AppendOutcome::Diverged { applied_index } => sane("applied index", *applied_index),
            },
            Message::Heartbeat(m) => {
                sane("commit", m.commit)?;
                if m.positions.len() > MAX_POSITIONS {
                    return Err(format!("{} member positions", m.positions.len()));
                }
                m.positions.iter().try_for_each(|(_, p)| sane_position("member position", p))
            }
            Message::Snapshot { snapshot, .. } => {
                let covered = snapshot.meta.last_included;
                sane_position("snapshot position", &covered)?;
                if covered.term > generation || covered.index == 0 {
                    return Err(format!("snapshot at {covered:?} in a generation {generation} message"));
                }
                Ok(())
            }
            Message::HeartbeatAnswer { .. }
            | Message::Stale { .. }
            | Message::MemoryQuery { .. }
            | Message::MemoryReport { .. } => Ok(()),
        }
    }
}

fn sane(what: &str, value: u64) -> Result<(), String> {
    if value > MAX_SANE_VALUE { Err(format!("{what} {value} is out of range")) } else { Ok(()) }
}

fn sane_position(what: &str, position: &LogPosition) -> Result<(), String> {
    sane(what, position.index)?;
    sane(what, position.term)
}

/// An append's entries continue `prev` without gaps, in non-decreasing
/// generations no later than the message's.
fn validate_append(m: &Append<'_>) -> Result<(), String> {
    sane_position("prev", &m.prev)?;
    sane("commit", m.commit)?;
    if m.prev.term > m.generation {
        return Err(format!("prev generation {} above the message's {}", m.prev.term, m.generation));
    }
    let mut expected = m.prev;
    for entry in m.entries.iter() {
        if entry.index != expected.index + 1 {
            return Err(format!("entry index {} where {} was expected", entry.index, expected.index + 1));
        }
        if entry.term < expected.term || entry.term > m.generation {
            return Err(format!(
                "entry generation {} out of order in a generation {} append",
                entry.term, m.generation
            ));
        }
        expected = entry.position();
        sane("entry index", expected.index)?;
    }
    Ok(())
}
