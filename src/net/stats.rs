//! Per-link counters, updated lock-free on the hot path.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::Serialize;

#[derive(Debug, Default)]
pub struct LinkCounters {
    pub frames_out: AtomicU64,
    pub bytes_out: AtomicU64,
    pub frames_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub connects: AtomicU64,
    pub dropped_queue: AtomicU64,
    pub dropped_fault: AtomicU64,
    pub dropped_disconnect: AtomicU64,
    pub duplicated: AtomicU64,
    pub reordered: AtomicU64,
    pub connected: AtomicBool,
}

/// A copy of one link's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LinkStats {
    pub frames_out: u64,
    pub bytes_out: u64,
    pub frames_in: u64,
    pub bytes_in: u64,
    /// Successful connections after the first one.
    pub reconnects: u64,
    /// Dropped because the outbound queue was full (the oldest goes).
    pub dropped_queue: u64,
    /// Dropped by the fault layer (drop probability or a cut).
    pub dropped_fault: u64,
    /// Taken from the queue but lost when the connection broke mid-write.
    pub dropped_disconnect: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub connected: bool,
}

impl LinkCounters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> LinkStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        LinkStats {
            frames_out: get(&self.frames_out),
            bytes_out: get(&self.bytes_out),
            frames_in: get(&self.frames_in),
            bytes_in: get(&self.bytes_in),
            reconnects: get(&self.connects).saturating_sub(1),
            dropped_queue: get(&self.dropped_queue),
            dropped_fault: get(&self.dropped_fault),
            dropped_disconnect: get(&self.dropped_disconnect),
            duplicated: get(&self.duplicated),
            reordered: get(&self.reordered),
            connected: self.connected.load(Ordering::Relaxed),
        }
    }
}

/// The most recent reasons connections were refused or closed, so a user
/// (and a test) can see *why* without reading logs.
#[derive(Debug, Default)]
pub struct ConnectionLog {
    recent: Mutex<VecDeque<String>>,
}

impl ConnectionLog {
    const KEEP: usize = 64;

    pub fn record(&self, reason: String) {
        let mut recent = self.recent.lock().expect("connection log lock");
        if recent.len() == Self::KEEP {
            recent.pop_front();
        }
        recent.push_back(reason);
    }

    pub fn recent(&self) -> Vec<String> {
        self.recent.lock().expect("connection log lock").iter().cloned().collect()
    }
}
