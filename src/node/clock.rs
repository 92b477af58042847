//! The node's wall clock: the only place the engine reads it.
//!
//! Plugins never read a clock; the node hands them time as inputs. The
//! wall clock matters wherever a time must mean the same thing on every
//! node: session expiry (the leader stamps each entry), generations, and
//! last-writer-wins timestamps. Routing every read through one clock per
//! node lets a scenario skew it (`c:clock_skew(id, ms)`) and watch what
//! breaks, as a machine whose NTP went wrong would.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A handle to one node's wall clock; clones share the skew.
#[derive(Clone, Debug, Default)]
pub struct WallClock {
    skew_ms: Arc<AtomicI64>,
}

impl WallClock {
    /// Milliseconds since the Unix epoch, as this node sees them.
    pub fn now_ms(&self) -> u64 {
        self.now_us() / 1_000
    }

    /// Microseconds since the Unix epoch, as this node sees them.
    pub fn now_us(&self) -> u64 {
        let real_us = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64);
        let skew_us = self.skew_ms.load(Ordering::Relaxed).saturating_mul(1_000);
        real_us.saturating_add(skew_us).max(0) as u64
    }

    /// Shifts this node's clock by `ms` from the real time (negative: behind).
    pub fn set_skew_ms(&self, ms: i64) {
        self.skew_ms.store(ms, Ordering::Relaxed);
    }

    pub fn skew_ms(&self) -> i64 {
        self.skew_ms.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_shifts_what_the_node_reads_and_clones_share_it() {
        let clock = WallClock::default();
        let other = clock.clone();
        let before = clock.now_ms();
        other.set_skew_ms(60_000);
        let ahead = clock.now_ms();
        assert!(ahead >= before + 60_000 && ahead < before + 61_000, "{before} -> {ahead}");
        other.set_skew_ms(-60_000);
        assert!(clock.now_ms() + 59_000 < before, "behind");
        assert_eq!(clock.skew_ms(), -60_000);
    }
}
