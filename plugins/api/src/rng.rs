//! The seeded random number generator every plugin uses.
//!
//! Plugins get a seed from the engine in [`crate::PolicyContext`] and build
//! their generator with [`PluginRng::from_seed_u64`]. PCG is small, fast and
//! its output is fixed by the algorithm, so a seed replays the same choices
//! on every machine.

use rand_core::{Rng, SeedableRng};

#[derive(Clone, Debug)]
pub struct PluginRng {
    inner: rand_pcg::Pcg64Mcg,
}

impl PluginRng {
    pub fn from_seed_u64(seed: u64) -> PluginRng {
        PluginRng { inner: rand_pcg::Pcg64Mcg::seed_from_u64(seed) }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// A value uniformly drawn from `lo..=hi`.
    pub fn range_inclusive(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(lo <= hi, "empty range {lo}..={hi}");
        let span = hi - lo;
        if span == u64::MAX {
            return self.next_u64();
        }
        // Modulo bias is below 2^-40 for the spans plugins use (timeouts in
        // milliseconds); not worth rejection sampling.
        lo + self.next_u64() % (span + 1)
    }

    /// True with probability `p` (clamped to 0..=1).
    pub fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        if p >= 1.0 {
            return true;
        }
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        unit < p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_gives_the_same_sequence() {
        let mut a = PluginRng::from_seed_u64(42);
        let mut b = PluginRng::from_seed_u64(42);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn range_stays_inside_its_bounds() {
        let mut rng = PluginRng::from_seed_u64(7);
        for _ in 0..10_000 {
            let v = rng.range_inclusive(150, 300);
            assert!((150..=300).contains(&v));
        }
        assert_eq!(rng.range_inclusive(5, 5), 5);
    }
}
