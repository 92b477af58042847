//! Client requests in flight: the batcher that turns writes into
//! proposals, and the waiting lists that answer them.
//!
//! A write waits first in the open batch, then under its proposal id until
//! the policy says which log index it got, then under that index until the
//! entry is applied. The answer goes out only then: what the client hears
//! is what the replicated state machine did. Reads wait for their read
//! index to be applied. Everything waiting has a deadline.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::Instant;

use replab_api::{LogIndex, ProposalId, ReadId, Term};

use super::metrics::{NodeMetrics, ReplyClass};
use crate::client::protocol::{Consistency, ErrorKind, Response, ResponseBody};

/// Where an answer goes: the client connection and the request's id,
/// with when the request reached the loop, so the answer is timed into
/// the node's client latency histogram.
#[derive(Clone, Debug)]
pub struct ReplyTo {
    pub request_id: u64,
    pub reply: mpsc::Sender<Response>,
    pub received: Instant,
    pub metrics: Arc<NodeMetrics>,
}

impl ReplyTo {
    /// Sends without waiting: the event loop never blocks on a client. A
    /// client that does not read its responses loses them.
    pub fn send(&self, body: ResponseBody) {
        if let Some(class) = ReplyClass::of(&body) {
            self.metrics.client_replied(class, self.received.elapsed());
        }
        let _ = self.reply.try_send(Response { id: self.request_id, body });
    }

    pub fn error(&self, kind: ErrorKind, message: impl Into<String>) {
        self.send(ResponseBody::Error { kind, message: message.into() });
    }
}

#[derive(Debug)]
pub struct PendingWrite {
    pub to: ReplyTo,
    pub deadline: Instant,
    /// The encoded `LoggedCommand`.
    pub command: Bytes,
}

/// Writes not yet proposed.
#[derive(Debug, Default)]
pub struct Batch {
    writes: Vec<PendingWrite>,
    bytes: usize,
    /// When the first write of the batch arrived.
    opened: Option<Instant>,
}

impl Batch {
    pub fn push(&mut self, write: PendingWrite, now: Instant) {
        self.bytes += write.command.len();
        self.writes.push(write);
        self.opened.get_or_insert(now);
    }

    pub fn len(&self) -> usize {
        self.writes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn opened(&self) -> Option<Instant> {
        self.opened
    }

    pub fn take(&mut self) -> Vec<PendingWrite> {
        self.bytes = 0;
        self.opened = None;
        std::mem::take(&mut self.writes)
    }
}

#[derive(Debug)]
pub struct PendingRead {
    pub to: ReplyTo,
    pub deadline: Instant,
    pub key: Bytes,
}

/// Every request waiting for the replicated log.
#[derive(Debug, Default)]
pub struct Waiting {
    proposed: HashMap<ProposalId, Vec<PendingWrite>>,
    /// Writes whose entry is known: (term it was proposed in, write).
    by_index: BTreeMap<LogIndex, (Term, PendingWrite)>,
    reads: HashMap<ReadId, PendingRead>,
    /// Confirmed reads by the index they wait for, so serving them after an
    /// apply looks only at the ready ones.
    ready_reads: BTreeMap<LogIndex, Vec<ReadId>>,
}

impl Waiting {
    pub fn len(&self) -> usize {
        self.proposed.values().map(Vec::len).sum::<usize>() + self.by_index.len() + self.reads.len()
    }

    pub fn proposal_sent(&mut self, id: ProposalId, writes: Vec<PendingWrite>) {
        self.proposed.insert(id, writes);
    }

    /// The policy placed proposal `id` at `first_index ..` in `term`.
    pub fn proposal_placed(&mut self, id: ProposalId, first_index: LogIndex, term: Term) {
        let Some(writes) = self.proposed.remove(&id) else { return };
        for (offset, write) in writes.into_iter().enumerate() {
            if let Some((_, displaced)) = self.by_index.insert(first_index + offset as u64, (term, write)) {
                // A new leader reused an index whose old entry was never
                // applied here: that old write was overwritten.
                displaced.to.error(ErrorKind::NotApplied, "overwritten by a new leader's log; retry");
            }
        }
    }

    pub fn proposal_rejected(&mut self, id: ProposalId) -> Vec<PendingWrite> {
        self.proposed.remove(&id).unwrap_or_default()
    }

    /// The write waiting on entry `index`, if it is the one proposed in
    /// `term`. A write waiting there from another term lost its slot.
    pub fn applied(&mut self, index: LogIndex, term: Term) -> Option<PendingWrite> {
        let (proposed_term, write) = self.by_index.remove(&index)?;
        if proposed_term == term {
            return Some(write);
        }
        write.to.error(ErrorKind::NotApplied, format!("entry {index} was overwritten by a new leader's log; retry"));
        None
    }

    /// Writes at or below `index` that a snapshot overtook: their outcome is
    /// in the snapshot, but this node cannot tell which it was.
    pub fn overtaken_by_snapshot(&mut self, index: LogIndex) {
        let rest = self.by_index.split_off(&(index + 1));
        for (_, (_, write)) in std::mem::replace(&mut self.by_index, rest) {
            write.to.error(
                ErrorKind::Timeout,
                "outcome unknown (a snapshot replaced the log); retry with the same sequence number",
            );
        }
    }

    pub fn read_sent(&mut self, id: ReadId, read: PendingRead) {
        self.reads.insert(id, read);
    }

    pub fn read_ready(&mut self, id: ReadId, index: LogIndex) {
        if self.reads.contains_key(&id) {
            self.ready_reads.entry(index).or_default().push(id);
        }
    }

    pub fn read_rejected(&mut self, id: ReadId) -> Option<PendingRead> {
        self.reads.remove(&id)
    }

    /// Reads whose index is applied, ready to be served. (A read that
    /// expired or was rejected meanwhile is simply no longer in `reads`.)
    pub fn servable_reads(&mut self, applied: LogIndex) -> Vec<PendingRead> {
        let later = self.ready_reads.split_off(&(applied + 1));
        let due = std::mem::replace(&mut self.ready_reads, later);
        due.into_values().flatten().filter_map(|id| self.reads.remove(&id)).collect()
    }

    /// Answers everything past its deadline with a timeout; returns how many.
    pub fn expire(&mut self, now: Instant) -> u64 {
        let mut expired = 0;
        let timeout = |to: &ReplyTo| {
            to.error(
                ErrorKind::Timeout,
                "no answer in time; the outcome is unknown: retry with the same sequence number",
            )
        };
        for writes in self.proposed.values_mut() {
            writes.retain(|w| {
                let keep = w.deadline > now;
                if !keep {
                    timeout(&w.to);
                    expired += 1;
                }
                keep
            });
        }
        self.proposed.retain(|_, writes| !writes.is_empty());
        self.by_index.retain(|_, (_, w)| {
            let keep = w.deadline > now;
            if !keep {
                timeout(&w.to);
                expired += 1;
            }
            keep
        });
        self.reads.retain(|_, r| {
            let keep = r.deadline > now;
            if !keep {
                r.to.error(ErrorKind::Timeout, "read not confirmed in time");
                expired += 1;
            }
            keep
        });
        expired
    }

    /// Answers everything with `kind` (the node is stopping).
    pub fn fail_all(&mut self, kind: ErrorKind, message: &str) {
        for w in self.proposed.drain().flat_map(|(_, ws)| ws) {
            w.to.error(kind, message);
        }
        for (_, (_, w)) in std::mem::take(&mut self.by_index) {
            w.to.error(kind, message);
        }
        for (_, r) in self.reads.drain() {
            r.to.error(kind, message);
        }
        self.ready_reads.clear();
    }
}

/// A value served from the local store.
pub fn value_response(
    value: Option<&crate::kv::Versioned>,
    consistency: Consistency,
    applied_index: LogIndex,
    node: u64,
) -> ResponseBody {
    ResponseBody::Value {
        value: value.map(|v| v.value.clone()),
        version: value.map_or(0, |v| v.version),
        consistency,
        applied_index,
        node,
    }
}
