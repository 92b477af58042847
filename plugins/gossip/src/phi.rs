//! Phi-accrual suspicion (Hayashibara et al., 2004), as Cassandra and Akka
//! use it.
//!
//! Instead of a yes/no timeout, the detector keeps a window of the
//! intervals between heartbeats and asks: given that distribution, how
//! unlikely is a silence this long? `phi = -log10(P(silence >= elapsed))`,
//! so phi 1 means a 10% chance the peer is merely slow, phi 3 a 0.1%
//! chance. A noisy network widens the distribution and the detector grows
//! patient by itself; a steady one makes it quick.

use std::collections::VecDeque;

/// The largest phi reported: a probability below `f64::MIN_POSITIVE`.
pub const PHI_MAX: f64 = 307.0;

/// Recent heartbeat inter-arrival times, in milliseconds.
#[derive(Clone, Debug)]
pub struct ArrivalWindow {
    intervals_ms: VecDeque<f64>,
    capacity: usize,
    sum: f64,
    sum_of_squares: f64,
}

impl ArrivalWindow {
    /// A window primed with an expected interval, so a peer that was never
    /// heard is judged against a plausible distribution (mean `expected_ms`,
    /// standard deviation a quarter of it), as Akka primes its own.
    pub fn primed(capacity: usize, expected_ms: f64) -> ArrivalWindow {
        assert!(capacity >= 2, "the window must hold the two priming samples");
        let mut window = ArrivalWindow { intervals_ms: VecDeque::new(), capacity, sum: 0.0, sum_of_squares: 0.0 };
        window.push(expected_ms - expected_ms / 4.0);
        window.push(expected_ms + expected_ms / 4.0);
        window
    }

    pub fn push(&mut self, interval_ms: f64) {
        debug_assert!(interval_ms.is_finite() && interval_ms >= 0.0, "interval {interval_ms}");
        if self.intervals_ms.len() == self.capacity {
            let old = self.intervals_ms.pop_front().expect("full, so not empty");
            self.sum -= old;
            self.sum_of_squares -= old * old;
        }
        self.intervals_ms.push_back(interval_ms);
        self.sum += interval_ms;
        self.sum_of_squares += interval_ms * interval_ms;
    }

    pub fn mean_ms(&self) -> f64 {
        self.sum / self.intervals_ms.len() as f64
    }

    pub fn std_dev_ms(&self) -> f64 {
        let n = self.intervals_ms.len() as f64;
        let mean = self.mean_ms();
        // Running sums can leave a tiny negative variance behind.
        (self.sum_of_squares / n - mean * mean).max(0.0).sqrt()
    }

    /// Phi after `elapsed_ms` of silence; the standard deviation is at
    /// least `min_std_dev_ms`, so a perfectly regular peer does not become
    /// suspect a microsecond late.
    pub fn phi(&self, elapsed_ms: f64, min_std_dev_ms: f64) -> f64 {
        phi(elapsed_ms, self.mean_ms(), self.std_dev_ms().max(min_std_dev_ms))
    }
}

/// `-log10` of the normal distribution's upper tail at `elapsed_ms`, with
/// the logistic approximation of the CDF that Akka uses (error below 1e-4,
/// and no erf needed).
pub fn phi(elapsed_ms: f64, mean_ms: f64, std_dev_ms: f64) -> f64 {
    assert!(std_dev_ms > 0.0, "a zero standard deviation makes every delay infinitely suspicious");
    let y = (elapsed_ms - mean_ms) / std_dev_ms;
    let e = (-y * (1.5976 + 0.070566 * y * y)).exp();
    let tail = if elapsed_ms > mean_ms { e / (1.0 + e) } else { 1.0 - 1.0 / (1.0 + e) };
    (-tail.max(f64::MIN_POSITIVE).log10()).clamp(0.0, PHI_MAX)
}
