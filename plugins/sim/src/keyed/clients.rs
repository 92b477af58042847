//! Client operations sent into the keyed world and what became of each:
//! the reply (ok, failed, unknown, or the values a read returned), or none
//! because the node was down or crashed before answering.

use std::collections::HashMap;

use bytes::Bytes;
use replab_api::{KeyedOp, KeyedReply, NodeId, RequestId};

/// Why a client sent an operation; the checkers use it (final reads are
/// compared with the converged replicas, for one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A get whose answer nobody acts on.
    Read,
    /// A get whose context the client passes to its next put.
    ReadForUpdate,
    /// A put (or delete) with an empty context.
    Blind,
    /// A put (or delete) carrying the context of an earlier read.
    Update,
    /// A get after the heal, once the replicas have converged.
    FinalRead,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Handed to the node, no answer yet.
    Pending,
    Replied(KeyedReply),
    /// The node was down: the request never reached it (certainly not
    /// applied).
    NodeDown,
    /// The node crashed before answering: a put may or may not have been
    /// applied, like `Unknown`.
    Unanswered,
}

#[derive(Clone, Debug)]
pub struct OpRecord {
    /// The position in [`crate::keyed::KeyedSim::ops`].
    pub index: usize,
    pub node: NodeId,
    pub request: RequestId,
    pub op: KeyedOp,
    pub purpose: Purpose,
    pub submitted_us: u64,
    pub answered_us: Option<u64>,
    pub outcome: Outcome,
}

impl OpRecord {
    pub fn key(&self) -> &Bytes {
        self.op.key()
    }

    pub fn is_put(&self) -> bool {
        matches!(self.op, KeyedOp::Put { .. })
    }

    /// The value a put wrote (`None` for a delete or a get).
    pub fn value(&self) -> Option<&Bytes> {
        match &self.op {
            KeyedOp::Put { value, .. } => value.as_ref(),
            KeyedOp::Get { .. } => None,
        }
    }

    /// The context a put carried (empty: blind, or a get).
    pub fn context(&self) -> &[u8] {
        match &self.op {
            KeyedOp::Put { context, .. } => context,
            KeyedOp::Get { .. } => &[],
        }
    }

    pub fn reply(&self) -> Option<&KeyedReply> {
        match &self.outcome {
            Outcome::Replied(reply) => Some(reply),
            _ => None,
        }
    }

    pub fn is_written(&self) -> bool {
        matches!(self.reply(), Some(KeyedReply::Written { .. }))
    }

    /// A put that may have been applied: written, unknown, unanswered or
    /// still pending (not failed, not refused by a down node).
    pub fn may_have_applied(&self) -> bool {
        self.is_put()
            && match &self.outcome {
                Outcome::Pending | Outcome::Unanswered => true,
                Outcome::NodeDown => false,
                Outcome::Replied(reply) => !matches!(reply, KeyedReply::Failed { .. }),
            }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Clients {
    pub(crate) ops: Vec<OpRecord>,
    /// Requests waiting for a reply, by (node, request id).
    pending: HashMap<(NodeId, RequestId), usize>,
    next_request: RequestId,
}

impl Clients {
    pub(crate) fn add(&mut self, node: NodeId, op: KeyedOp, purpose: Purpose, now_us: u64, up: bool) -> usize {
        self.next_request += 1;
        let index = self.ops.len();
        let outcome = if up { Outcome::Pending } else { Outcome::NodeDown };
        let request = self.next_request;
        self.ops.push(OpRecord { index, node, request, op, purpose, submitted_us: now_us, answered_us: None, outcome });
        if up {
            self.pending.insert((node, request), index);
        }
        index
    }

    /// Records a reply; `None` if the node answered a request it does not
    /// have (an unknown id, or an answer twice).
    pub(crate) fn answer(&mut self, node: NodeId, request: RequestId, reply: KeyedReply, now_us: u64) -> Option<usize> {
        let index = self.pending.remove(&(node, request))?;
        let op = &mut self.ops[index];
        op.outcome = Outcome::Replied(reply);
        op.answered_us = Some(now_us);
        Some(index)
    }

    /// The node crashed: its waiting requests will never be answered.
    pub(crate) fn crashed(&mut self, node: NodeId) {
        let lost: Vec<(NodeId, RequestId)> = self.pending.keys().filter(|(n, _)| *n == node).copied().collect();
        for key in lost {
            let index = self.pending.remove(&key).expect("listed");
            self.ops[index].outcome = Outcome::Unanswered;
        }
    }

    pub(crate) fn pending(&self) -> usize {
        self.pending.len()
    }
}
