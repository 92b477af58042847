//! Closed-loop load for `replab bench cluster --processes`, shaped like
//! etcd's `benchmark` tool (16-byte keys drawn at random from 100,000,
//! 256-byte values, one connection per client). The floor a put cannot
//! beat is `floor.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;

use crate::client::Client;

pub const KEY_BYTES: usize = 16;
pub const VALUE_BYTES: usize = 256;
pub const KEY_SPACE: u64 = 100_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Put,
    /// A linearizable read through the leader (ReadIndex).
    Get,
}

/// What one timed phase measured at the clients.
pub struct PhaseLoad {
    pub ops: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    pub latency_us: Histogram<u64>,
}

/// SplitMix64: a few lines, no dependency, different per client.
fn next_random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A 16-byte key such as `k000000000042517`.
pub fn key(n: u64) -> Bytes {
    let k = format!("k{:0width$}", n % KEY_SPACE, width = KEY_BYTES - 1);
    debug_assert_eq!(k.len(), KEY_BYTES);
    Bytes::from(k)
}

/// A phase under way: every client runs `op` in a closed loop (each sends
/// its next request when the previous one is answered). Requests before
/// [`Running::begin_measuring`] are the warm-up and are not counted.
/// Bounded in count (`max_ops` measured operations over all clients) and
/// in time ([`Running::wait`], then [`Running::finish`] stops every client
/// after at most one request timeout).
pub struct Running {
    tasks: Vec<tokio::task::JoinHandle<ClientResult>>,
    measuring: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    start: Instant,
}

type ClientResult = (Client, Histogram<u64>, u64, u64, Option<String>);

/// Starts `op` on every client in `clients` (they come back from
/// [`Running::finish`], connections kept).
pub fn start_phase(clients: &mut Vec<Client>, op: Op, max_ops: u64, seed: u64) -> Running {
    let n = clients.len().max(1) as u64;
    let per_client = max_ops.div_ceil(n).max(1);
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let value = Bytes::from(vec![b'v'; VALUE_BYTES]);
    let mut tasks = Vec::new();
    for (i, mut c) in clients.drain(..).enumerate() {
        let (measuring, stop, value) = (measuring.clone(), stop.clone(), value.clone());
        let mut rng = seed ^ (i as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407);
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
            let (mut ops, mut errors, mut first_error) = (0u64, 0u64, None);
            while !stop.load(Ordering::Relaxed) && ops + errors < per_client {
                let k = key(next_random(&mut rng));
                let was_measuring = measuring.load(Ordering::Relaxed);
                let t = Instant::now();
                let result = match op {
                    Op::Put => c.put(k, value.clone()).await.map(|_| ()),
                    Op::Get => c.get(k).await.map(|_| ()),
                };
                let took = t.elapsed();
                // A request that began in the warm-up is not measured.
                if !was_measuring {
                    continue;
                }
                match result {
                    Ok(()) => {
                        ops += 1;
                        hist.record((took.as_micros() as u64).clamp(1, 60_000_000)).expect("within bounds");
                    }
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| e.to_string());
                    }
                }
            }
            (c, hist, ops, errors, first_error)
        }));
    }
    Running { tasks, measuring, stop, start: Instant::now() }
}

impl Running {
    pub fn begin_measuring(&mut self) {
        self.start = Instant::now();
        self.measuring.store(true, Ordering::Relaxed);
    }

    /// Waits `seconds`, or less once every client reached its count; then
    /// tells the clients to stop and returns the measured wall time.
    pub async fn wait(&self, seconds: Duration) -> Duration {
        let deadline = self.start + seconds;
        while Instant::now() < deadline && !self.tasks.iter().all(|t| t.is_finished()) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.stop.store(true, Ordering::Relaxed);
        self.start.elapsed()
    }

    /// Collects every client's figures and hands the clients back.
    pub async fn finish(self, elapsed: Duration, clients: &mut Vec<Client>) -> Result<PhaseLoad, String> {
        self.stop.store(true, Ordering::Relaxed);
        let mut load = PhaseLoad {
            ops: 0,
            errors: 0,
            first_error: None,
            elapsed,
            latency_us: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
        };
        for t in self.tasks {
            let (c, hist, ops, errors, first_error) = t.await.map_err(|e| format!("a client task failed: {e}"))?;
            clients.push(c);
            load.latency_us.add(&hist).map_err(|e| e.to_string())?;
            load.ops += ops;
            load.errors += errors;
            if load.first_error.is_none() {
                load.first_error = first_error;
            }
        }
        Ok(load)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sixteen_bytes_and_spread_over_the_key_space() {
        let mut state = 1;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let k = key(next_random(&mut state));
            assert_eq!(k.len(), KEY_BYTES);
            seen.insert(k);
        }
        assert!(seen.len() > 990, "{} distinct keys of 1000", seen.len());
        assert_eq!(key(KEY_SPACE + 42), key(42));
        assert_eq!(&key(42)[..], format!("k{:015}", 42).as_bytes());
    }
}
