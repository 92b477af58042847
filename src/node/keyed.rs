//! The node runtime for a keyed policy (leaderless): client operations go
//! to the policy typed and with their key, its records to the log, its
//! answers (siblings and a causal context) back to the clients.
//!
//! The log runtime's batching, waiting lists, state machine and sessions
//! do not apply: the policy keeps the data and decides where each request
//! goes. What stays the engine's: the sockets, the log thread, the rule
//! that a send promising durability waits for the writes before it, the
//! clocks, and a deadline on every request it holds.

use std::collections::HashMap;

use bytes::Bytes;
use tokio::time::Instant;
use tracing::warn;

use replab_api::{
    Clocks, KeyedEffect, KeyedEffects, KeyedInput, KeyedOp, KeyedPolicy, KeyedReply, RequestId, StepError,
};

use super::event_loop::NodeLoop;
use super::requests::ReplyTo;
use super::storage::POLICY_RECORD;
use crate::client::protocol::{ErrorKind, Request, RequestBody, ResponseBody};
use crate::kv::WriteOp;
use crate::wal::RecordBatch;

/// A keyed policy and the client requests it holds.
pub struct KeyedReplica {
    pub policy: Box<dyn KeyedPolicy>,
    effects: KeyedEffects,
    pending: HashMap<RequestId, Pending>,
    next_request: RequestId,
    /// Session ids handed to clients that register: a keyed policy has no
    /// sessions (its writes are versioned, not numbered), but the client
    /// protocol opens one before the first write.
    next_session: u64,
    /// The index of the last record handed to the log.
    last_record: u64,
}

struct Pending {
    to: ReplyTo,
    deadline: Instant,
    write: bool,
}

impl KeyedReplica {
    pub fn new(policy: Box<dyn KeyedPolicy>, last_record: u64, node: u64) -> KeyedReplica {
        KeyedReplica {
            policy,
            effects: KeyedEffects::new(),
            pending: HashMap::new(),
            next_request: 0,
            next_session: node << 40,
            last_record,
        }
    }
}

/// What a keyed reply tells the client, in the client protocol.
fn response(reply: KeyedReply, node: u64) -> ResponseBody {
    match reply {
        KeyedReply::Values { values, context } => ResponseBody::Siblings { values, context, node },
        KeyedReply::Written { context } => ResponseBody::Stored { context },
        // Certainly not applied: the client may try again elsewhere.
        KeyedReply::Failed { reason } => ResponseBody::Error { kind: ErrorKind::Unavailable, message: reason },
        // May have been applied: the client retries or reports unknown.
        KeyedReply::Unknown { reason } => ResponseBody::Error { kind: ErrorKind::Timeout, message: reason },
    }
}

impl NodeLoop {
    fn keyed(&mut self) -> &mut KeyedReplica {
        self.keyed_replica().expect("called only on a node that runs a keyed policy")
    }

    /// Feeds one input to the keyed policy and carries out its effects.
    pub(super) fn step_keyed(&mut self, input: KeyedInput) {
        let clocks = Clocks { now: self.now(), wall_ms: self.wall_ms() };
        let id = self.id;
        let replica = self.keyed();
        let mut effects = std::mem::take(&mut replica.effects);
        match replica.policy.step(clocks, input, &mut effects) {
            Ok(()) => {}
            Err(StepError::Decode { from, reason }) => {
                warn!(node = id, "dropped an undecodable message from node {from}: {reason}")
            }
            Err(e) => warn!(node = id, "input refused: {e}"),
        }
        self.carry_out_keyed(&mut effects);
        let replica = self.keyed();
        if replica.effects.is_empty() {
            replica.effects = effects;
        }
    }

    fn carry_out_keyed(&mut self, effects: &mut KeyedEffects) {
        // Consecutive records go to the log as one write.
        let mut records = RecordBatch::new();
        for effect in effects.drain() {
            if !matches!(effect, KeyedEffect::Persist { .. }) && !records.is_empty() {
                self.submit_records(std::mem::take(&mut records));
            }
            match effect {
                KeyedEffect::Persist { record } => records.push(POLICY_RECORD, &record),
                KeyedEffect::Send { to, bytes, after_persist } => self.send_after(to, bytes, after_persist),
                KeyedEffect::Reply { id, reply } => {
                    let node = self.id;
                    // None: answered at its deadline already.
                    if let Some(pending) = self.keyed().pending.remove(&id) {
                        count_reply(&mut self.stats, &reply, pending.write);
                        pending.to.send(response(reply, node));
                    }
                }
                KeyedEffect::Checkpoint { state } => {
                    let covers = self.keyed().last_record;
                    self.storage.save_checkpoint(&state, covers);
                    self.stats.snapshots_taken += 1;
                }
            }
        }
        if !records.is_empty() {
            self.submit_records(records);
        }
    }

    fn submit_records(&mut self, records: RecordBatch) {
        self.keyed().last_record += records.len() as u64;
        self.storage.append_records(records);
    }

    /// A client request at a node that runs a keyed policy.
    pub(super) fn keyed_client(&mut self, request: Request, to: ReplyTo, deadline: Instant) {
        let op = match request.body {
            RequestBody::Status => return to.send(ResponseBody::Status(Box::new(self.status()))),
            RequestBody::Admin(admin) => return self.on_admin(admin, to),
            RequestBody::Register => {
                let replica = self.keyed();
                replica.next_session += 1;
                let client = replica.next_session;
                return to.send(ResponseBody::Registered { client });
            }
            // Every read is the policy's: a stale read (one node's replica
            // at once) has no meaning apart from its read quorum.
            RequestBody::Read { key, .. } => KeyedOp::Get { key },
            RequestBody::Write { op, context, .. } => match op {
                WriteOp::Put { key, value } => {
                    KeyedOp::Put { key, value: Some(value), context: context.unwrap_or_default() }
                }
                WriteOp::Delete { key } => KeyedOp::Put { key, value: None, context: context.unwrap_or_default() },
                WriteOp::Cas { .. } | WriteOp::Incr { .. } => {
                    self.stats.bad_requests += 1;
                    return to.error(
                        ErrorKind::BadRequest,
                        "cas and incr need one order of writes per key, which a leaderless store does not have; \
                         read the values and their context, then put with that context",
                    );
                }
            },
        };
        let (max_key_bytes, max_value_bytes) = (self.settings.node.max_key_bytes, self.settings.node.max_value_bytes);
        let max_pending = self.settings.node.max_pending_requests;
        if let KeyedOp::Put { key, value, context } = &op {
            let size = key.len() + value.as_ref().map_or(0, Bytes::len) + context.len();
            if key.len() > max_key_bytes || size - key.len() > max_value_bytes {
                self.stats.bad_requests += 1;
                return to.error(ErrorKind::BadRequest, format!("key or value above the limits ({size} bytes)"));
            }
        }
        if self.keyed().pending.len() >= max_pending {
            return to.error(ErrorKind::Busy, format!("{max_pending} requests already waiting; retry later"));
        }
        let write = matches!(op, KeyedOp::Put { .. });
        let replica = self.keyed();
        replica.next_request += 1;
        let id = replica.next_request;
        replica.pending.insert(id, Pending { to, deadline, write });
        self.step_keyed(KeyedInput::Client { id, op });
    }

    /// Answers the requests whose deadline passed (the policy should have
    /// answered first; this bounds what a client waits). Returns how many.
    pub(super) fn expire_keyed(&mut self, now: Instant) -> u64 {
        let replica = self.keyed();
        let due: Vec<RequestId> =
            replica.pending.iter().filter(|(_, p)| p.deadline <= now).map(|(id, _)| *id).collect();
        for id in &due {
            let pending = replica.pending.remove(id).expect("listed above");
            // A write may have reached replicas: unknown, never failed.
            pending.to.error(ErrorKind::Timeout, "no answer from the policy in time");
        }
        due.len() as u64
    }

    /// Everything waiting is answered: the node is going away. A write
    /// may already be on some replicas, so it is unknown, never failed.
    pub(super) fn fail_keyed(&mut self, message: &str) {
        for (_, pending) in self.keyed().pending.drain() {
            let kind = if pending.write { ErrorKind::Timeout } else { ErrorKind::Unavailable };
            pending.to.error(kind, message);
        }
    }
}

fn count_reply(stats: &mut crate::client::protocol::NodeStats, reply: &KeyedReply, write: bool) {
    match reply {
        KeyedReply::Values { .. } => stats.reads_served += 1,
        KeyedReply::Written { .. } if write => stats.writes_ok += 1,
        KeyedReply::Unknown { .. } => stats.timeouts += 1,
        _ => {}
    }
}
