//! The client protocol: requests and responses carried as the payload of
//! `ClientRequest` / `ClientResponse` envelopes on the client port.
//!
//! Every request has an id the client picks; the response carries it back,
//! so a connection can have many requests in flight. Writes carry the
//! session's (client id, sequence number): the idempotency key.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use replab_api::{ClientId, LogIndex, NodeId, PeerView, PolicyStatus, Seq};

use crate::kv::{WriteOp, WriteResult};
use crate::net::LinkFaults;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    pub body: RequestBody,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RequestBody {
    /// Opens a session; answered with `Registered`.
    Register,
    /// `ack_below`: the lowest sequence number this client still waits for;
    /// the node may forget saved responses below it. `context`: the causal
    /// context of the values the client read, for policies that keep
    /// concurrent versions (leaderless); a log-based policy refuses one.
    Write {
        client: ClientId,
        seq: Seq,
        ack_below: Seq,
        op: WriteOp,
        context: Option<Bytes>,
    },
    Read {
        key: Bytes,
        consistency: Consistency,
    },
    Status,
    /// The lab's fault injection and observation (`replab run` on
    /// processes). A node refuses it unless it was started with the lab
    /// flag `--allow-fault-injection`.
    Admin(AdminRequest),
}

/// What the lab asks of a node it started (docs/ARCHITECTURE.md, "The admin
/// channel"). Answered with `AdminDone`, `Dump`, `Replicas`, or an error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AdminRequest {
    /// Sets this node's rules for the links `from -> to` listed (a healthy
    /// `LinkFaults` clears one). In-process faults act on the sending
    /// side; a lab node applies its outgoing links' rules there, and also
    /// drops what arrives on a cut incoming link.
    Links { rules: Vec<(NodeId, NodeId, LinkFaults)> },
    /// Shifts this node's wall clock by `ms` from the real time.
    ClockSkew { ms: i64 },
    /// Loses power: whatever the node wrote and had not fdatasynced is
    /// gone, then the process exits at once with code 4. Never answered.
    PowerLoss,
    /// Every key and value of this replica's store (the convergence check).
    Dump,
    /// A keyed policy's view of every key it replicates.
    Replicas,
    /// Asks this node (the leader) to hand leadership to `to`.
    TransferLeader { to: NodeId },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Consistency {
    /// Served by the leader after a ReadIndex round: sees every write
    /// acknowledged before the read began.
    Linearizable,
    /// Served from the local replica at once, possibly behind.
    Stale,
    /// Served by the leader without confirming that it still leads (the
    /// policy says its reads are not linearizable: primary-backup async).
    /// Only a response carries it; a request asking for it is refused.
    Unconfirmed,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub id: u64,
    pub body: ResponseBody,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ResponseBody {
    Registered {
        client: ClientId,
    },
    /// `duplicate`: this was a retry, answered from the session.
    Written {
        result: WriteResult,
        duplicate: bool,
    },
    /// `version`: the index that wrote the value (0 if absent);
    /// `applied_index`: how far the serving replica had applied.
    Value {
        value: Option<Bytes>,
        version: LogIndex,
        consistency: Consistency,
        applied_index: LogIndex,
        node: NodeId,
    },
    /// A read under a policy that keeps concurrent versions: every live
    /// value (siblings, sorted; none: absent) and the context to pass to
    /// the next write.
    Siblings {
        values: Vec<Bytes>,
        context: Bytes,
        node: NodeId,
    },
    /// A write stored on enough replicas under such a policy; `context`
    /// covers it.
    Stored {
        context: Bytes,
    },
    Status(Box<NodeStatus>),
    /// Ask the leader instead (its client address when known).
    Redirect {
        leader: Option<NodeId>,
        leader_addr: Option<String>,
    },
    Error {
        kind: ErrorKind,
        message: String,
    },
    /// An admin request was carried out.
    AdminDone,
    /// The answer to `AdminRequest::Dump`.
    Dump(Vec<(Bytes, Bytes)>),
    /// The answer to `AdminRequest::Replicas`.
    Replicas(Vec<replab_api::KeyState>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    /// The request is malformed or breaks a limit; retrying won't help.
    BadRequest,
    /// The node is overloaded; retry later.
    Busy,
    /// No answer in time. The write may or may not have happened: retry
    /// with the same sequence number and the session tells.
    Timeout,
    /// Proposed, then overwritten by a new leader's log: not applied.
    /// Safe to retry.
    NotApplied,
    /// The node cannot serve now (shutting down, no leader known).
    Unavailable,
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            ErrorKind::BadRequest => "bad request",
            ErrorKind::Busy => "busy",
            ErrorKind::Timeout => "timeout",
            ErrorKind::NotApplied => "not applied",
            ErrorKind::Unavailable => "unavailable",
        };
        f.write_str(s)
    }
}

/// A node's answer to `Status`, and what `replab client status` prints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub policy: PolicyStatus,
    pub keys: u64,
    pub sessions: u64,
    /// Fingerprint of the key-value data, to compare replicas.
    pub digest: u64,
    pub stats: NodeStats,
    /// The failure detector's view of every peer.
    pub liveness: Vec<PeerView>,
    /// What the policy counts about itself, by name (`transfers_started`,
    /// ...); see `ReplicationPolicy::counters`.
    pub policy_counters: BTreeMap<String, u64>,
}

/// Counters a node keeps about itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStats {
    /// Times this node became a candidate.
    pub candidacies: u64,
    /// Times this node won an election (a term has one leader at most, so
    /// the sum over nodes counts the elections won in the cluster).
    pub became_leader: u64,
    /// Times the leader this node knows of changed.
    pub leader_changes: u64,
    /// Times the failure detector changed its verdict on a peer.
    pub liveness_changes: u64,
    pub proposals: u64,
    pub proposed_entries: u64,
    pub applied_entries: u64,
    pub writes_ok: u64,
    pub duplicate_writes: u64,
    pub reads_served: u64,
    pub redirects: u64,
    pub timeouts: u64,
    pub bad_requests: u64,
    pub snapshots_taken: u64,
    pub snapshots_installed: u64,
    pub messages_sent: u64,
    pub message_bytes_sent: u64,
    /// fdatasyncs of the log (group commit: one covers many entries).
    pub fdatasyncs: u64,
    /// Records (log entries) written to the log.
    pub log_records: u64,
}

impl Request {
    pub fn encode(&self) -> Bytes {
        Bytes::from(postcard::to_allocvec(self).expect("requests serialize"))
    }

    pub fn decode(bytes: &[u8]) -> Result<Request, String> {
        postcard::from_bytes(bytes).map_err(|e| format!("undecodable request: {e}"))
    }
}

impl Response {
    pub fn encode(&self) -> Bytes {
        Bytes::from(postcard::to_allocvec(self).expect("responses serialize"))
    }

    pub fn decode(bytes: &[u8]) -> Result<Response, String> {
        postcard::from_bytes(bytes).map_err(|e| format!("undecodable response: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn requests_round_trip() {
        let r = Request {
            id: 9,
            body: RequestBody::Write {
                client: 3,
                seq: 4,
                ack_below: 4,
                op: WriteOp::Put { key: Bytes::from_static(b"k"), value: Bytes::from_static(b"v") },
                context: Some(Bytes::from_static(&[1, 2, 3])),
            },
        };
        assert_eq!(Request::decode(&r.encode()).unwrap(), r);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_the_decoders(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Request::decode(&bytes);
            let _ = Response::decode(&bytes);
        }
    }
}
