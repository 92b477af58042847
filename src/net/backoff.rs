//! Reconnect delays: exponential with full jitter.
//!
//! Doubling spreads retries out while a peer is down for long; full jitter
//! (a uniform draw below the current cap, as in the AWS architecture blog's
//! "Exponential Backoff and Jitter") keeps a cluster's nodes from
//! reconnecting in lockstep after the peer comes back.

use std::time::Duration;

use replab_api::PluginRng;

#[derive(Debug)]
pub struct Backoff {
    min_ms: u64,
    max_ms: u64,
    cap_ms: u64,
    rng: PluginRng,
}

impl Backoff {
    pub fn new(min_ms: u64, max_ms: u64, seed: u64) -> Backoff {
        assert!(min_ms >= 1 && min_ms <= max_ms, "backoff range {min_ms}..={max_ms}");
        Backoff { min_ms, max_ms, cap_ms: min_ms, rng: PluginRng::from_seed_u64(seed) }
    }

    /// The delay before the next attempt; doubles the cap for the one after.
    pub fn next_delay(&mut self) -> Duration {
        let ms = self.rng.range_inclusive(self.min_ms, self.cap_ms);
        self.cap_ms = (self.cap_ms.saturating_mul(2)).min(self.max_ms);
        Duration::from_millis(ms)
    }

    pub fn reset(&mut self) {
        self.cap_ms = self.min_ms;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_and_reset() {
        let mut b = Backoff::new(10, 1000, 1);
        let caps: Vec<u64> = (0..10).map(|_| b.next_delay().as_millis() as u64).collect();
        assert!(caps.iter().all(|d| (10..=1000).contains(d)));
        assert!(caps[0] <= 10 && caps[1] <= 20 && caps[2] <= 40);
        for _ in 0..20 {
            assert!(b.next_delay() <= Duration::from_millis(1000));
        }
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(10));
    }
}
