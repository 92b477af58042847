//! The in-flight window of one follower: append messages sent but not yet
//! acknowledged, bounded in messages and in bytes.
//!
//! In the replicate state the leader pipelines appends without waiting for
//! each acknowledgement; this window is what stops it from flooding a slow
//! or unreachable follower. An acknowledgement of index `n` frees every
//! message whose last entry is at or below `n`.

use std::collections::VecDeque;

use replab_api::LogIndex;

#[derive(Debug)]
pub struct Inflights {
    max_messages: usize,
    max_bytes: usize,
    /// (last index carried, entry bytes) per message, oldest first.
    queue: VecDeque<(LogIndex, usize)>,
    bytes: usize,
}

impl Inflights {
    pub fn new(max_messages: usize, max_bytes: usize) -> Inflights {
        assert!(max_messages > 0 && max_bytes > 0, "an in-flight window needs room");
        // Allocated once, so pipelining never allocates.
        Inflights { max_messages, max_bytes, queue: VecDeque::with_capacity(max_messages), bytes: 0 }
    }

    /// Full when either bound is reached. A single message larger than the
    /// byte bound may still be sent into an empty window.
    pub fn full(&self) -> bool {
        self.queue.len() >= self.max_messages || self.bytes >= self.max_bytes
    }

    pub fn count(&self) -> usize {
        self.queue.len()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn add(&mut self, last_index: LogIndex, bytes: usize) {
        assert!(!self.full(), "sending into a full in-flight window");
        if let Some(&(previous, _)) = self.queue.back() {
            assert!(last_index > previous, "in-flight messages must carry increasing indexes");
        }
        self.queue.push_back((last_index, bytes));
        self.bytes += bytes;
    }

    /// Frees every message acknowledged by a match at `index`.
    pub fn free_up_to(&mut self, index: LogIndex) {
        while let Some(&(last, bytes)) = self.queue.front() {
            if last > index {
                break;
            }
            self.queue.pop_front();
            self.bytes -= bytes;
        }
    }

    /// Frees the oldest message. Used when a heartbeat round trip proves
    /// the follower alive while the window stays full: the acks were lost,
    /// and one free slot lets a probe through to resynchronise.
    pub fn free_first_one(&mut self) {
        if let Some((_, bytes)) = self.queue.pop_front() {
            self.bytes -= bytes;
        }
    }

    pub fn reset(&mut self) {
        self.queue.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_by_message_count() {
        let mut w = Inflights::new(3, 1_000_000);
        w.add(5, 10);
        w.add(9, 10);
        assert!(!w.full());
        w.add(12, 10);
        assert!(w.full());
        w.free_up_to(8);
        assert_eq!(w.count(), 2);
        assert!(!w.full());
        w.free_up_to(12);
        assert_eq!((w.count(), w.bytes()), (0, 0));
    }

    #[test]
    fn fills_by_bytes_but_takes_one_oversized_message() {
        let mut w = Inflights::new(16, 100);
        w.add(1, 60);
        assert!(!w.full());
        w.add(2, 60);
        assert!(w.full());
        w.reset();
        w.add(3, 500);
        assert!(w.full());
        w.free_first_one();
        assert!(!w.full());
        assert_eq!(w.bytes(), 0);
    }

    #[test]
    fn stale_acks_free_nothing() {
        let mut w = Inflights::new(4, 1000);
        w.add(10, 1);
        w.add(20, 1);
        w.free_up_to(3);
        assert_eq!(w.count(), 2);
    }

    #[test]
    #[should_panic(expected = "full in-flight window")]
    fn adding_to_a_full_window_is_a_bug() {
        let mut w = Inflights::new(1, 1000);
        w.add(1, 1);
        w.add(2, 1);
    }
}
