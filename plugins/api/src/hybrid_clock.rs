//! Hybrid logical clock (Kulkarni et al., 2014).
//!
//! A timestamp is (wall time in ms, logical counter, node id). It stays
//! close to the wall clock, so last-writer-wins picks what a human would
//! call "the later write", yet it never goes backwards and always moves
//! past any timestamp it has seen, even when the wall clock steps back
//! (NTP corrections, a VM pause). The node id breaks ties, so two distinct
//! events never compare equal, which LWW needs to be deterministic.
//!
//! Plugins cannot read the wall clock: the engine hands `wall_ms` in.

use serde::{Deserialize, Serialize};

use crate::ids::NodeId;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct HybridTimestamp {
    pub wall_ms: u64,
    pub logical: u32,
    pub node: NodeId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HybridClock {
    node: NodeId,
    last: HybridTimestamp,
}

impl HybridClock {
    pub fn new(node: NodeId) -> HybridClock {
        HybridClock { node, last: HybridTimestamp { wall_ms: 0, logical: 0, node } }
    }

    pub fn last(&self) -> HybridTimestamp {
        self.last
    }

    /// A timestamp for a local event or a send, given the wall clock now.
    pub fn now(&mut self, wall_ms: u64) -> HybridTimestamp {
        if wall_ms > self.last.wall_ms {
            self.last = HybridTimestamp { wall_ms, logical: 0, node: self.node };
        } else {
            self.bump_logical(self.last.wall_ms, self.last.logical);
        }
        self.last
    }

    /// A receive of `remote`, given the wall clock now. The result is later
    /// than both the local clock and `remote`.
    pub fn observe(&mut self, remote: HybridTimestamp, wall_ms: u64) -> HybridTimestamp {
        let wall_max = wall_ms.max(self.last.wall_ms).max(remote.wall_ms);
        if wall_max == self.last.wall_ms && wall_max == remote.wall_ms {
            let logical = self.last.logical.max(remote.logical);
            self.bump_logical(wall_max, logical);
        } else if wall_max == self.last.wall_ms {
            self.bump_logical(wall_max, self.last.logical);
        } else if wall_max == remote.wall_ms {
            self.bump_logical(wall_max, remote.logical);
        } else {
            self.last = HybridTimestamp { wall_ms: wall_max, logical: 0, node: self.node };
        }
        self.last
    }

    fn bump_logical(&mut self, wall_ms: u64, logical: u32) {
        // The counter only grows while the wall clock stands still or lags;
        // 2^32 events inside one millisecond cannot happen, but if the
        // counter did wrap, borrowing a millisecond keeps monotonicity.
        self.last = match logical.checked_add(1) {
            Some(next) => HybridTimestamp { wall_ms, logical: next, node: self.node },
            None => HybridTimestamp { wall_ms: wall_ms + 1, logical: 0, node: self.node },
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_wall_clock_when_it_advances() {
        let mut c = HybridClock::new(1);
        assert_eq!(c.now(100), HybridTimestamp { wall_ms: 100, logical: 0, node: 1 });
        assert_eq!(c.now(105), HybridTimestamp { wall_ms: 105, logical: 0, node: 1 });
    }

    #[test]
    fn stays_monotonic_when_the_wall_clock_steps_back() {
        let mut c = HybridClock::new(1);
        let a = c.now(1_000);
        let b = c.now(400); // NTP stepped the clock back 600 ms
        let d = c.now(400);
        assert!(a < b && b < d);
        assert_eq!(b.wall_ms, 1_000, "keeps the highest wall time seen");
    }

    #[test]
    fn receive_moves_past_a_remote_clock_that_runs_ahead() {
        let mut local = HybridClock::new(1);
        let mut remote = HybridClock::new(2);
        local.now(100);
        let sent = remote.now(5_000);
        let got = local.observe(sent, 101);
        assert!(got > sent);
        assert_eq!(got.wall_ms, 5_000);
        assert!(local.now(102) > got, "later local events stay after the receive");
    }

    #[test]
    fn equal_physical_parts_are_ordered_by_logical_then_node() {
        let mut a = HybridClock::new(1);
        let mut b = HybridClock::new(2);
        let ta = a.now(50);
        let tb = b.now(50);
        assert_ne!(ta, tb);
        assert!(ta < tb, "same wall and logical: node id breaks the tie");
        let tb2 = b.observe(ta, 50);
        assert!(tb2 > ta && tb2 > tb);
    }
}
