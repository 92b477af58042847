//! The keyed world's event queue: events ordered by (time, sequence
//! number), as in the log world (`crate::event`), with the keyed world's
//! own kinds.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use bytes::Bytes;
use replab_api::NodeId;

#[derive(Debug)]
pub(crate) enum KeyedEvent {
    /// `KeyedInput::Tick`, if the node is still that incarnation.
    Tick {
        node: NodeId,
        incarnation: u64,
    },
    Deliver {
        from: NodeId,
        to: NodeId,
        bytes: Bytes,
    },
    /// An fsync finished: the disk's writes up to number `up_to` are durable.
    SyncDone {
        node: NodeId,
        incarnation: u64,
        up_to: u64,
    },
    /// The failure-detector oracle looks at who can reach whom.
    Detector,
}

#[derive(Debug)]
struct Scheduled {
    at_us: u64,
    seq: u64,
    event: KeyedEvent,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Scheduled) -> bool {
        (self.at_us, self.seq) == (other.at_us, other.seq)
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Scheduled) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    // Reversed: the earliest event is the heap's maximum.
    fn cmp(&self, other: &Scheduled) -> Ordering {
        (other.at_us, other.seq).cmp(&(self.at_us, self.seq))
    }
}

#[derive(Debug, Default)]
pub(crate) struct Queue {
    heap: BinaryHeap<Scheduled>,
    next_seq: u64,
}

impl Queue {
    pub(crate) fn schedule(&mut self, at_us: u64, event: KeyedEvent) {
        self.next_seq += 1;
        self.heap.push(Scheduled { at_us, seq: self.next_seq, event });
    }

    pub(crate) fn peek_time(&self) -> Option<u64> {
        self.heap.peek().map(|s| s.at_us)
    }

    pub(crate) fn pop(&mut self) -> Option<(u64, KeyedEvent)> {
        self.heap.pop().map(|s| (s.at_us, s.event))
    }
}
