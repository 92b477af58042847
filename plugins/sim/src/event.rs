//! The event queue of virtual time: events ordered by (time, sequence
//! number), so events at the same microsecond run in the order they were
//! scheduled and a run is a pure function of its seed.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use bytes::Bytes;
use replab_api::NodeId;

use crate::detectors::Channel;

#[derive(Debug)]
pub enum EventKind {
    /// Step the node with `Input::Tick`, if it is still the incarnation
    /// that scheduled it.
    Tick { node: NodeId, incarnation: u64 },
    Deliver {
        /// The policy's traffic or the failure detector's.
        channel: Channel,
        from: NodeId,
        to: NodeId,
        bytes: Bytes,
    },
    /// An fsync finished: writes up to sequence number `up_to` are durable.
    SyncDone { node: NodeId, incarnation: u64, up_to: u64 },
}

#[derive(Debug)]
pub struct Event {
    pub at_us: u64,
    seq: u64,
    pub kind: EventKind,
}

impl PartialEq for Event {
    fn eq(&self, other: &Event) -> bool {
        (self.at_us, self.seq) == (other.at_us, other.seq)
    }
}

impl Eq for Event {}

impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Event) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Event {
    // Reversed: BinaryHeap is a max-heap and the earliest event goes first.
    fn cmp(&self, other: &Event) -> Ordering {
        (other.at_us, other.seq).cmp(&(self.at_us, self.seq))
    }
}

#[derive(Debug, Default)]
pub struct EventQueue {
    heap: BinaryHeap<Event>,
    next_seq: u64,
}

impl EventQueue {
    pub fn schedule(&mut self, at_us: u64, kind: EventKind) {
        self.next_seq += 1;
        self.heap.push(Event { at_us, seq: self.next_seq, kind });
    }

    pub fn peek_time(&self) -> Option<u64> {
        self.heap.peek().map(|e| e.at_us)
    }

    pub fn pop(&mut self) -> Option<Event> {
        self.heap.pop()
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_times_keep_scheduling_order() {
        let mut q = EventQueue::default();
        q.schedule(5, EventKind::Tick { node: 3, incarnation: 0 });
        q.schedule(1, EventKind::Tick { node: 1, incarnation: 0 });
        q.schedule(5, EventKind::Tick { node: 2, incarnation: 0 });
        let order: Vec<_> = std::iter::from_fn(|| q.pop())
            .map(|e| match e.kind {
                EventKind::Tick { node, .. } => (e.at_us, node),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(order, vec![(1, 1), (5, 3), (5, 2)]);
    }
}
