//! What the replicated log carries for the key-value store, and what
//! applying it answers.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use replab_api::{ClientId, LogIndex, Seq};

/// One log entry's payload. `at_ms` is the proposing leader's wall clock:
/// every replica applies the same value, so session expiry, which depends
/// on it, is decided identically everywhere.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedCommand {
    pub at_ms: u64,
    pub command: Command,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Opens a client session; its id is this entry's log index, unique
    /// and the same on every replica.
    Register,
    /// A write within a session. `ack_below` is the client's lowest
    /// sequence number still awaiting a response: saved responses below it
    /// can be forgotten.
    Request { client: ClientId, seq: Seq, ack_below: Seq, op: WriteOp },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WriteOp {
    Put {
        key: Bytes,
        value: Bytes,
    },
    Delete {
        key: Bytes,
    },
    /// Writes `new` if the current value equals `expected` (`None`: the key
    /// is absent).
    Cas {
        key: Bytes,
        expected: Option<Bytes>,
        new: Bytes,
    },
    /// Adds `by` to the value read as a decimal i64 (absent: 0). Not
    /// idempotent, which is what makes it the test of exactly-once.
    Incr {
        key: Bytes,
        by: i64,
    },
}

impl WriteOp {
    pub fn key(&self) -> &Bytes {
        match self {
            WriteOp::Put { key, .. }
            | WriteOp::Delete { key }
            | WriteOp::Cas { key, .. }
            | WriteOp::Incr { key, .. } => key,
        }
    }

    /// Key and value bytes, for size limits.
    pub fn size_bytes(&self) -> usize {
        match self {
            WriteOp::Put { key, value } => key.len() + value.len(),
            WriteOp::Delete { key } => key.len(),
            WriteOp::Cas { key, expected, new } => key.len() + expected.as_ref().map_or(0, Bytes::len) + new.len(),
            WriteOp::Incr { key, .. } => key.len() + 8,
        }
    }
}

impl LoggedCommand {
    /// Decodes a log entry's payload without copying: keys and values
    /// come out as slices of `data`, which every replica already holds in
    /// memory, rather than one allocation and copy each per applied write.
    /// A stored value keeps `data` alive, so `data` must be the entry's
    /// own buffer, not a slice of a larger one: every entry is (the leader
    /// encodes each command into its own allocation; the Raft message and
    /// WAL record decoders copy each entry's data out of their buffers).
    pub fn decode(data: &Bytes) -> Result<LoggedCommand, postcard::Error> {
        let borrowed: wire::LoggedCommand<'_> = postcard::from_bytes(data)?;
        Ok(borrowed.into_owned(data))
    }
}

/// The borrowed shape of [`LoggedCommand`]: the same postcard encoding
/// (serde writes `Bytes` and `&[u8]` alike, as length-prefixed bytes), read
/// in place.
mod wire {
    use bytes::Bytes;
    use serde::Deserialize;

    use replab_api::{ClientId, Seq};

    #[derive(Deserialize)]
    pub struct LoggedCommand<'a> {
        at_ms: u64,
        #[serde(borrow)]
        command: Command<'a>,
    }

    #[derive(Deserialize)]
    enum Command<'a> {
        Register,
        Request {
            client: ClientId,
            seq: Seq,
            ack_below: Seq,
            #[serde(borrow)]
            op: WriteOp<'a>,
        },
    }

    #[derive(Deserialize)]
    enum WriteOp<'a> {
        Put { key: &'a [u8], value: &'a [u8] },
        Delete { key: &'a [u8] },
        Cas { key: &'a [u8], expected: Option<&'a [u8]>, new: &'a [u8] },
        Incr { key: &'a [u8], by: i64 },
    }

    impl LoggedCommand<'_> {
        /// `data` is the buffer this was decoded from: every slice is a
        /// part of it, so `slice_ref` shares it instead of copying.
        pub fn into_owned(self, data: &Bytes) -> super::LoggedCommand {
            let share = |part: &[u8]| data.slice_ref(part);
            let command = match self.command {
                Command::Register => super::Command::Register,
                Command::Request { client, seq, ack_below, op } => super::Command::Request {
                    client,
                    seq,
                    ack_below,
                    op: match op {
                        WriteOp::Put { key, value } => super::WriteOp::Put { key: share(key), value: share(value) },
                        WriteOp::Delete { key } => super::WriteOp::Delete { key: share(key) },
                        WriteOp::Cas { key, expected, new } => {
                            super::WriteOp::Cas { key: share(key), expected: expected.map(share), new: share(new) }
                        }
                        WriteOp::Incr { key, by } => super::WriteOp::Incr { key: share(key), by },
                    },
                },
            };
            super::LoggedCommand { at_ms: self.at_ms, command }
        }
    }
}

/// The answer to a write; saved in the session so a retry gets it again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WriteResult {
    Put { version: LogIndex },
    Deleted { existed: bool },
    Cas { succeeded: bool, current: Option<Bytes>, version: LogIndex },
    Incr { value: i64, version: LogIndex },
    Failed(KvError),
}

/// Why the store refused a command. Refusals are replicated decisions:
/// every replica refuses the same command the same way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum KvError {
    #[error("session {client} is unknown; register a new session")]
    UnknownSession { client: ClientId },
    #[error("session {client} expired after {idle_ms} ms without requests; register a new session")]
    SessionExpired { client: ClientId, idle_ms: u64 },
    #[error(
        "request {seq} of session {client} was already acknowledged (the client reported all below {ack_below} done)"
    )]
    AlreadyAcknowledged { client: ClientId, seq: Seq, ack_below: Seq },
    #[error("session {client} holds {saved} unacknowledged responses, the limit; acknowledge some first")]
    TooManyUnacknowledged { client: ClientId, saved: usize },
    #[error("value of {key:?} is not a decimal integer")]
    NotANumber { key: String },
    #[error("incrementing {key:?} overflows i64")]
    Overflow { key: String },
    #[error("undecodable command in the log: {0}")]
    BadCommand(String),
}

impl KvError {
    /// A refusal by the session table rather than by the operation: it
    /// says nothing about whether an earlier attempt of the same request
    /// was applied (the session that would have remembered is gone or
    /// cannot answer).
    pub fn is_session_refusal(&self) -> bool {
        matches!(
            self,
            KvError::UnknownSession { .. }
                | KvError::SessionExpired { .. }
                | KvError::AlreadyAcknowledged { .. }
                | KvError::TooManyUnacknowledged { .. }
        )
    }
}

/// What applying one entry produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    Registered {
        client: ClientId,
    },
    Write {
        client: ClientId,
        seq: Seq,
        result: WriteResult,
        duplicate: bool,
    },
    /// The entry carried nothing the store understands (it answers no one).
    Invalid(KvError),
}
