//! The messages Raft nodes exchange, and their wire encoding (postcard).
//!
//! Every message carries the sender's term; `Raft::step` compares it with
//! its own before anything else. Peer bytes are untrusted: decoding
//! rejects trailing garbage, and [`Message::validate`] rejects values no
//! correct peer sends (indexes near `u64::MAX`, append batches whose
//! indexes do not continue `prev`) so later arithmetic cannot overflow.

use std::borrow::Cow;

use bytes::Bytes;
use replab_api::{Entry, LogIndex, LogPosition, Snapshot, Term};
use serde::{Deserialize, Serialize};

/// Indexes and terms above this are nonsense from a peer (a cluster would
/// need millennia to reach them) and are refused at decode time, so that
/// `index + 1` and friends never overflow.
pub const MAX_SANE_VALUE: u64 = 1 << 62;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteRequest {
    /// For a PreVote, the term the candidate would campaign in.
    pub term: Term,
    pub last: LogPosition,
    /// Set by a leader transfer (TimeoutNow): voters grant it even inside
    /// their leader lease.
    pub forced: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteResponse {
    pub term: Term,
    pub granted: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendRequest<'a> {
    pub term: Term,
    /// The entry right before `entries`; the follower must hold it.
    pub prev: LogPosition,
    /// The leader's commit index (high watermark).
    pub commit: LogIndex,
    /// Borrowed from the leader's log when encoding, owned when decoded.
    pub entries: Cow<'a, [Entry]>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppendOutcome {
    /// The follower's log matches the leader's up to `match_index`, and
    /// that prefix is durable (the answer is sent after persisting).
    Accepted { match_index: LogIndex },
    /// The entry before the batch (`rejected_index`) did not match.
    /// `hint` is the follower's last entry at or below it whose term is at
    /// most the leader's `prev.term` (fast backtracking). `memory_lost`:
    /// the follower lost durable state, so its log may be shorter than
    /// what it acknowledged before; the leader must forget its match index
    /// (see `amnesia.rs`).
    Rejected { rejected_index: LogIndex, hint: LogPosition, memory_lost: bool },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendResponse {
    pub term: Term,
    pub outcome: AppendOutcome,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub term: Term,
    /// min(follower's match, leader's commit): the follower is known to
    /// hold that prefix, so it may commit it.
    pub commit: LogIndex,
    /// The latest ReadIndex round; echoed back to confirm leadership.
    pub read_seq: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatResponse {
    pub term: Term,
    pub read_seq: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallSnapshotRequest {
    pub term: Term,
    pub snapshot: Snapshot,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message<'a> {
    PreVote(VoteRequest),
    PreVoteResponse(VoteResponse),
    Vote(VoteRequest),
    VoteResponse(VoteResponse),
    Append(AppendRequest<'a>),
    /// Answers both appends and snapshots.
    AppendResponse(AppendResponse),
    Heartbeat(Heartbeat),
    HeartbeatResponse(HeartbeatResponse),
    InstallSnapshot(InstallSnapshotRequest),
    /// Leader transfer: campaign now, skipping PreVote.
    TimeoutNow {
        term: Term,
    },
    /// From a node that started with no durable state: does the receiver
    /// hold any (see `amnesia.rs`)? Answered whatever the terms.
    MemoryQuery {
        term: Term,
    },
    MemoryReport {
        term: Term,
        /// The sender's log or snapshot holds entries, or it lost some.
        has_data: bool,
    },
}

impl Message<'_> {
    pub fn term(&self) -> Term {
        match self {
            Message::PreVote(m) | Message::Vote(m) => m.term,
            Message::PreVoteResponse(m) | Message::VoteResponse(m) => m.term,
            Message::Append(m) => m.term,
            Message::AppendResponse(m) => m.term,
            Message::Heartbeat(m) => m.term,
            Message::HeartbeatResponse(m) => m.term,
            Message::InstallSnapshot(m) => m.term,
            Message::TimeoutNow { term } => *term,
            Message::MemoryQuery { term } | Message::MemoryReport { term, .. } => *term,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Message::PreVote(_) => "pre-vote",
            Message::PreVoteResponse(_) => "pre-vote response",
            Message::Vote(_) => "vote",
            Message::VoteResponse(_) => "vote response",
            Message::Append(_) => "append",
            Message::AppendResponse(_) => "append response",
            Message::Heartbeat(_) => "heartbeat",
            Message::HeartbeatResponse(_) => "heartbeat response",
            Message::InstallSnapshot(_) => "install snapshot",
            Message::TimeoutNow { .. } => "timeout now",
            Message::MemoryQuery { .. } => "memory query",
            Message::MemoryReport { .. } => "memory report",
        }
    }

    /// Encodes into a buffer sized up front, so large appends are not
    /// copied while the vector grows.
    pub fn encode(&self) -> Bytes {
        let estimate = match self {
            Message::Append(m) => 64 + m.entries.iter().map(|e| e.size_bytes() + 8).sum::<usize>(),
            Message::InstallSnapshot(m) => 64 + m.snapshot.data.len(),
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
        let sane = |what: &str, v: u64| {
            if v > MAX_SANE_VALUE { Err(format!("{what} {v} is out of range")) } else { Ok(()) }
        };
        let sane_position = |what: &str, p: &LogPosition| {
            sane(what, p.index)?;
            sane(what, p.term)
        };
        sane("term", self.term())?;
        match self {
            Message::PreVote(m) | Message::Vote(m) => sane_position("last log position", &m.last),
            Message::PreVoteResponse(_)
            | Message::VoteResponse(_)
            | Message::TimeoutNow { .. }
            | Message::MemoryQuery { .. }
            | Message::MemoryReport { .. } => Ok(()),
            Message::Append(m) => {
                sane_position("prev", &m.prev)?;
                sane("commit", m.commit)?;
                if m.prev.term > m.term {
                    return Err(format!("prev term {} above the message term {}", m.prev.term, m.term));
                }
                let mut expected = m.prev.index + 1;
                let mut previous_term = m.prev.term;
                for entry in m.entries.iter() {
                    if entry.index != expected {
                        return Err(format!("entry index {} where {expected} was expected", entry.index));
                    }
                    if entry.term < previous_term || entry.term > m.term {
                        return Err(format!("entry term {} out of order in a term {} append", entry.term, m.term));
                    }
                    expected += 1;
                    previous_term = entry.term;
                }
                sane("last entry index", expected)
            }
            Message::AppendResponse(m) => match &m.outcome {
                AppendOutcome::Accepted { match_index } => sane("match index", *match_index),
                AppendOutcome::Rejected { rejected_index, hint, .. } => {
                    sane("rejected index", *rejected_index)?;
                    sane_position("hint", hint)
                }
            },
            Message::Heartbeat(m) => sane("commit", m.commit),
            Message::HeartbeatResponse(_) => Ok(()),
            Message::InstallSnapshot(m) => {
                sane_position("snapshot position", &m.snapshot.meta.last_included)?;
                if m.snapshot.meta.last_included.term > m.term {
                    return Err("snapshot term above the message term".to_string());
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use replab_api::{EntryKind, SnapshotMeta};

    fn entry(index: LogIndex, term: Term) -> Entry {
        Entry { index, term, kind: EntryKind::Command, data: Bytes::from_static(b"x") }
    }

    #[test]
    fn every_message_round_trips() {
        let entries = vec![entry(4, 2), entry(5, 3)];
        let messages = vec![
            Message::PreVote(VoteRequest { term: 3, last: LogPosition { index: 4, term: 2 }, forced: false }),
            Message::PreVoteResponse(VoteResponse { term: 3, granted: true }),
            Message::Vote(VoteRequest { term: 3, last: LogPosition { index: 4, term: 2 }, forced: true }),
            Message::VoteResponse(VoteResponse { term: 3, granted: false }),
            Message::Append(AppendRequest {
                term: 3,
                prev: LogPosition { index: 3, term: 2 },
                commit: 2,
                entries: Cow::Borrowed(&entries),
            }),
            Message::AppendResponse(AppendResponse {
                term: 3,
                outcome: AppendOutcome::Rejected {
                    rejected_index: 3,
                    hint: LogPosition { index: 2, term: 1 },
                    memory_lost: true,
                },
            }),
            Message::AppendResponse(AppendResponse { term: 3, outcome: AppendOutcome::Accepted { match_index: 9 } }),
            Message::Heartbeat(Heartbeat { term: 3, commit: 5, read_seq: 7 }),
            Message::HeartbeatResponse(HeartbeatResponse { term: 3, read_seq: 7 }),
            Message::InstallSnapshot(InstallSnapshotRequest {
                term: 3,
                snapshot: Snapshot {
                    meta: SnapshotMeta { last_included: LogPosition { index: 9, term: 3 } },
                    data: Bytes::from_static(b"state"),
                },
            }),
            Message::TimeoutNow { term: 3 },
            Message::MemoryQuery { term: 0 },
            Message::MemoryReport { term: 4, has_data: true },
        ];
        for message in messages {
            let bytes = message.encode();
            assert_eq!(Message::decode(&bytes).unwrap(), message, "{}", message.kind());
        }
    }

    #[test]
    fn garbage_and_trailing_bytes_are_errors() {
        assert!(Message::decode(&[]).is_err());
        assert!(Message::decode(&[0xff; 3]).is_err());
        let mut bytes = Message::TimeoutNow { term: 1 }.encode().to_vec();
        bytes.push(0);
        assert!(Message::decode(&bytes).unwrap_err().contains("trailing"));
    }

    #[test]
    fn nonsense_values_are_refused() {
        let huge = Message::TimeoutNow { term: u64::MAX }.encode();
        assert!(Message::decode(&huge).is_err());
        let gap = vec![entry(5, 1)];
        let append = Message::Append(AppendRequest {
            term: 1,
            prev: LogPosition { index: 3, term: 1 },
            commit: 0,
            entries: Cow::Borrowed(&gap),
        });
        assert!(Message::decode(&append.encode()).unwrap_err().contains("expected"));
        let future = vec![entry(4, 9)];
        let append = Message::Append(AppendRequest {
            term: 1,
            prev: LogPosition { index: 3, term: 1 },
            commit: 0,
            entries: Cow::Borrowed(&future),
        });
        assert!(Message::decode(&append.encode()).is_err());
    }
}
