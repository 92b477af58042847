//! A latency histogram with fixed buckets, recorded lock-free.
//!
//! The log thread records every fdatasync into one and the node's loop
//! every client reply into another, while the metrics endpoint reads them
//! from elsewhere. Recording is a bounded scan over the bucket bounds and
//! three relaxed atomic adds: no lock, no allocation, nothing that could
//! slow the paths it measures. The buckets are Prometheus's (cumulative
//! `le` bounds in seconds when rendered).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in microseconds: 50 µs to 10 s, roughly
/// 1-2.5-5 per decade. Above the last bound a value counts only in `+Inf`.
pub const BUCKET_BOUNDS_US: [u64; 17] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000,
];

#[derive(Debug, Default)]
pub struct LatencyHistogram {
    /// Non-cumulative: `buckets[i]` counts values in (bound[i-1], bound[i]];
    /// the last slot counts values above every bound.
    buckets: [AtomicU64; BUCKET_BOUNDS_US.len() + 1],
    count: AtomicU64,
    sum_us: AtomicU64,
}

/// A consistent-enough copy for rendering (each field is read once).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// Cumulative counts per bound in [`BUCKET_BOUNDS_US`], then `+Inf`.
    pub cumulative: Vec<u64>,
    pub count: u64,
    pub sum_us: u64,
}

impl LatencyHistogram {
    pub fn record(&self, elapsed: Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let slot = BUCKET_BOUNDS_US.iter().position(|bound| us <= *bound).unwrap_or(BUCKET_BOUNDS_US.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut running = 0;
        let cumulative = self
            .buckets
            .iter()
            .map(|b| {
                running += b.load(Ordering::Relaxed);
                running
            })
            .collect();
        // The count is the `+Inf` bucket, so a reader never sees a count
        // below its own buckets' total.
        HistogramSnapshot { count: running, cumulative, sum_us: self.sum_us.load(Ordering::Relaxed) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_land_in_the_first_bucket_whose_bound_holds_them_and_counts_are_cumulative() {
        let h = LatencyHistogram::default();
        h.record(Duration::from_micros(50));
        h.record(Duration::from_micros(51));
        h.record(Duration::from_secs(60));
        let s = h.snapshot();
        assert_eq!(s.count, 3);
        assert_eq!(s.sum_us, 60_000_101);
        assert_eq!(s.cumulative[0], 1, "50 µs is within the 50 µs bound");
        assert_eq!(s.cumulative[1], 2);
        assert_eq!(s.cumulative[BUCKET_BOUNDS_US.len() - 1], 2, "a minute is above every bound");
        assert_eq!(*s.cumulative.last().unwrap(), 3);
    }
}
