//! Lamport clock: a logical clock that orders events by causality.
//!
//! Each node keeps a counter. A local event increments it; a message
//! carries the sender's counter and the receiver jumps past it. Then if
//! event a happened-before event b, `clock(a) < clock(b)`. The converse does
//! not hold: two concurrent events get some order. Version vectors
//! ([`crate::VersionVector`]) are the tool that can tell concurrency apart.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LamportClock {
    time: u64,
}

impl LamportClock {
    pub fn new() -> LamportClock {
        LamportClock { time: 0 }
    }

    /// The last value handed out.
    pub fn current(&self) -> u64 {
        self.time
    }

    /// A local event (or a send): the clock advances by one.
    pub fn tick(&mut self) -> u64 {
        self.time += 1;
        self.time
    }

    /// A receive of a message stamped `remote`: the clock moves past both
    /// its own value and the sender's.
    pub fn observe(&mut self, remote: u64) -> u64 {
        self.time = self.time.max(remote) + 1;
        self.time
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_events_strictly_increase() {
        let mut c = LamportClock::new();
        assert_eq!(c.tick(), 1);
        assert_eq!(c.tick(), 2);
        assert_eq!(c.current(), 2);
    }

    #[test]
    fn receive_jumps_past_the_sender() {
        let mut a = LamportClock::new();
        let mut b = LamportClock::new();
        for _ in 0..10 {
            a.tick();
        }
        let sent = a.tick();
        let received = b.observe(sent);
        assert!(received > sent, "send happened-before receive");
    }

    #[test]
    fn receive_of_an_older_stamp_still_advances() {
        let mut c = LamportClock::new();
        for _ in 0..5 {
            c.tick();
        }
        assert_eq!(c.observe(2), 6);
    }

    #[test]
    fn causal_chain_across_three_nodes_is_ordered() {
        let (mut a, mut b, mut c) = (LamportClock::new(), LamportClock::new(), LamportClock::new());
        let e1 = a.tick();
        let e2 = b.observe(e1);
        let e3 = c.observe(b.tick());
        assert!(e1 < e2 && e2 < e3);
    }
}
