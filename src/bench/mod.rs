//! `replab bench ...`: the benchmarks behind docs/PERFORMANCE.md.
//!
//! Every benchmark measures its baseline in the same run, on the same
//! machine and directory, so the ratios it prints compare like with like
//! on a shared, noisy host. Every load loop is bounded both in count and
//! in time.

pub mod check;
pub mod cluster;
pub mod command;
pub mod etcd;
pub mod floor;
pub mod load;
pub mod net;
pub mod process_figures;
pub mod processes;
pub mod procs;
pub mod raft;
pub mod report;
pub mod wal;

use std::time::Duration;

use hdrhistogram::Histogram;

/// One measured case: throughput and latency of one configuration.
#[derive(Clone, Debug)]
pub struct Measurement {
    pub name: String,
    pub ops: u64,
    pub bytes: u64,
    pub elapsed: Duration,
    /// Per-operation latency in microseconds.
    pub latency_us: Histogram<u64>,
    pub note: String,
}

impl Measurement {
    pub fn new(name: impl Into<String>) -> Measurement {
        Measurement {
            name: name.into(),
            ops: 0,
            bytes: 0,
            elapsed: Duration::ZERO,
            latency_us: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"),
            note: String::new(),
        }
    }

    pub fn record_latency(&mut self, latency: Duration) {
        let us = (latency.as_micros() as u64).clamp(1, 60_000_000);
        self.latency_us.record(us).expect("value within bounds");
    }

    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn p50_us(&self) -> u64 {
        self.latency_us.value_at_quantile(0.50)
    }

    pub fn p99_us(&self) -> u64 {
        self.latency_us.value_at_quantile(0.99)
    }
}

/// Prints measurements as an aligned table (also valid Markdown).
pub fn print_table(title: &str, rows: &[Measurement]) {
    println!("\n{title}\n");
    println!("| case | ops | ops/s | MB/s | p50 µs | p99 µs | note |");
    println!("|---|---:|---:|---:|---:|---:|---|");
    for m in rows {
        println!(
            "| {} | {} | {:.0} | {:.2} | {} | {} | {} |",
            m.name,
            m.ops,
            m.ops_per_sec(),
            m.mb_per_sec(),
            m.p50_us(),
            m.p99_us(),
            m.note
        );
    }
}

/// Median of repeated figures; the benchmarks repeat each case and quote
/// the median because one run on a shared machine proves little.
pub fn median(mut values: Vec<f64>) -> f64 {
    assert!(!values.is_empty(), "median of nothing");
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}
