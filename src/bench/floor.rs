//! The physical floor of one durable put on this machine, measured by
//! `replab bench cluster --processes` before each run.
//!
//! The floor the acceptance target uses is the issue's: one client round
//! trip on loopback, one leader-to-follower round trip, one fdatasync. It
//! assumes a member's fdatasync does not wait for another's. Three members
//! on one disk do wait: a commit needs two of three syncs, and the device
//! serves concurrent flushes one after another. So the bench also measures
//! that commit on this disk, with no software in the way, and reports it
//! beside the floor: the gap between it and replab is what the engine
//! costs, the gap between it and the floor is what sharing a disk costs.

use std::io::{Read, Seek, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::load::{KEY_BYTES, VALUE_BYTES};

/// A put's record: key, value and some framing.
const RECORD_BYTES: usize = KEY_BYTES + VALUE_BYTES + 32;

/// The floor of one durable put on this machine: a loopback round trip
/// (client to leader), another (leader to follower), one fdatasync.
#[derive(Clone, Copy, Debug)]
pub struct Floor {
    pub loopback_rtt_p50_us: f64,
    /// The lowest of the three below.
    pub fdatasync_p50_us: f64,
    /// One thread appending to a file that grows with each record.
    pub lone_fdatasync_p50_us: f64,
    /// One thread writing over zeros written ahead, as replab's log does.
    pub lone_preallocated_fdatasync_p50_us: f64,
    /// Three threads syncing their own files at once, over zeros written
    /// ahead.
    pub concurrent_fdatasync_p50_us: f64,
    /// A commit with three members on this one disk and no software in
    /// the way (see [`shared_disk_commit`]): p50, from the leader's write
    /// to the moment two of three are durable and acknowledged.
    pub shared_disk_commit_p50_us: f64,
}

impl Floor {
    /// The acceptance target's floor.
    pub fn put_us(&self) -> f64 {
        2.0 * self.loopback_rtt_p50_us + self.fdatasync_p50_us
    }

    /// A put with the members' syncs sharing this disk: the client's round
    /// trip plus the commit (which holds the leader-follower round trip).
    pub fn shared_disk_put_us(&self) -> f64 {
        self.loopback_rtt_p50_us + self.shared_disk_commit_p50_us
    }
}

/// Measures the floor's parts: `round_trips` plain TCP ping-pongs of a
/// put-sized message between two threads, and `syncs` write+fdatasync of
/// a record in `dir` (the nodes' file system): alone, three at once, and
/// as the commits of three members. Each bounded by `budget`.
pub fn measure_floor(dir: &Path, round_trips: u64, syncs: u64, budget: Duration) -> Result<Floor, String> {
    let rtt = loopback_round_trips(round_trips, budget)?;
    // fdatasync latency on this machine depends on what else syncs: a
    // lone syncer measured 4 ms (a timer tick) where three concurrent ones,
    // as the three members are, measured 0.36 ms each. It also depends on
    // whether the file grows: writing over zeros written ahead skips the
    // journal commit. The floor takes the fastest, so it is never generous
    // to replab.
    let lone = sync_latency(dir, 0, syncs, budget, false)?;
    let lone_preallocated = sync_latency(dir, 0, syncs, budget, true)?;
    let threads: Vec<_> = (1..=3u32)
        .map(|i| {
            let dir = dir.to_path_buf();
            std::thread::spawn(move || sync_latency(&dir, i, syncs, budget, true))
        })
        .collect();
    let mut concurrent = new_histogram();
    for t in threads {
        let h = t.join().map_err(|_| "a sync thread panicked".to_string())??;
        concurrent.add(&h).map_err(|e| e.to_string())?;
    }
    if rtt.is_empty() || lone.is_empty() || lone_preallocated.is_empty() || concurrent.is_empty() {
        return Err("the floor measurement ran out of time before one sample".into());
    }
    let p50 = |h: &Histogram<u64>| h.value_at_quantile(0.5) as f64;
    let one_way = Duration::from_micros(rtt.value_at_quantile(0.5) / 2);
    let commit = shared_disk_commit(dir, one_way, syncs, budget)?;
    if commit.is_empty() {
        return Err("the shared-disk commit measurement ran out of time before one sample".into());
    }
    let (lone_us, preallocated_us, concurrent_us) = (p50(&lone), p50(&lone_preallocated), p50(&concurrent));
    Ok(Floor {
        loopback_rtt_p50_us: p50(&rtt),
        fdatasync_p50_us: lone_us.min(preallocated_us).min(concurrent_us),
        lone_fdatasync_p50_us: lone_us,
        lone_preallocated_fdatasync_p50_us: preallocated_us,
        concurrent_fdatasync_p50_us: concurrent_us,
        shared_disk_commit_p50_us: p50(&commit),
    })
}

fn new_histogram() -> Histogram<u64> {
    Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

fn record_us(histogram: &mut Histogram<u64>, elapsed: Duration) {
    histogram.record((elapsed.as_micros() as u64).clamp(1, 60_000_000)).expect("within bounds");
}

/// Plain TCP ping-pongs of a put-sized message between two threads.
fn loopback_round_trips(round_trips: u64, budget: Duration) -> Result<Histogram<u64>, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        let mut buf = [0u8; RECORD_BYTES];
        // Echo until the other side closes.
        while s.read_exact(&mut buf).is_ok() {
            s.write_all(&buf)?;
        }
        Ok(())
    });
    let mut rtt = new_histogram();
    {
        let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut buf = [7u8; RECORD_BYTES];
        let start = Instant::now();
        for _ in 0..round_trips {
            if start.elapsed() > budget {
                break;
            }
            let t = Instant::now();
            s.write_all(&buf).map_err(|e| e.to_string())?;
            s.read_exact(&mut buf).map_err(|e| e.to_string())?;
            record_us(&mut rtt, t.elapsed());
        }
    }
    echo.join().map_err(|_| "the echo thread panicked".to_string())?.map_err(|e| e.to_string())?;
    Ok(rtt)
}

/// A fresh file in `dir` for `n`'s records; with `preallocated`, over
/// zeros written and synced first, as replab's log writes them ahead.
fn record_file(dir: &Path, n: u32, records: u64, preallocated: bool) -> Result<std::fs::File, String> {
    let path = dir.join(format!("floor-fdatasync-{n}.bin"));
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    // Unlinked at once: the open descriptor keeps it until it is dropped.
    let _ = std::fs::remove_file(&path);
    if preallocated {
        let zeros = vec![0u8; RECORD_BYTES * records as usize];
        file.write_all(&zeros).and_then(|()| file.sync_data()).map_err(|e| e.to_string())?;
        file.rewind().map_err(|e| e.to_string())?;
    }
    Ok(file)
}

/// `syncs` appends of a put-sized record to a fresh file in `dir`, each
/// followed by fdatasync, as a log does; bounded by `budget`.
fn sync_latency(
    dir: &Path,
    n: u32,
    syncs: u64,
    budget: Duration,
    preallocated: bool,
) -> Result<Histogram<u64>, String> {
    let mut file = record_file(dir, n, syncs, preallocated)?;
    let record = [b'r'; RECORD_BYTES];
    let mut sync = new_histogram();
    let start = Instant::now();
    for _ in 0..syncs {
        if start.elapsed() > budget {
            break;
        }
        let t = Instant::now();
        file.write_all(&record).map_err(|e| e.to_string())?;
        file.sync_data().map_err(|e| e.to_string())?;
        record_us(&mut sync, t.elapsed());
    }
    Ok(sync)
}

/// When a put commits, given when each member's copy was durable (from
/// the leader's write): the leader counts when its own sync returns, a
/// follower when its acknowledgement arrives, `hop` after its sync. Two
/// of three is a majority.
pub fn commit_time(leader_durable: Duration, followers_durable: [Duration; 2], hop: Duration) -> Duration {
    let mut acked = [leader_durable, followers_durable[0] + hop, followers_durable[1] + hop];
    acked.sort_unstable();
    acked[1]
}

/// `rounds` commits of three members on this disk, each member a thread
/// writing a put-sized record over zeros to its own file and fdatasyncing
/// it. In each round the leader starts at once and the followers one `hop`
/// later (the append's way to them), and the round's commit is
/// [`commit_time`]. Nothing else runs: no event loop, no thread hand-off,
/// no encoding. Bounded by `budget`.
fn shared_disk_commit(dir: &Path, hop: Duration, rounds: u64, budget: Duration) -> Result<Histogram<u64>, String> {
    let barrier = Arc::new(Barrier::new(3));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let members: Vec<_> = (0..3u32)
        .map(|member| {
            let mut file = record_file(dir, 10 + member, rounds, true)?;
            let (barrier, stop) = (Arc::clone(&barrier), Arc::clone(&stop));
            Ok(std::thread::spawn(move || -> Result<Vec<(Instant, Instant)>, String> {
                let record = [b'r'; RECORD_BYTES];
                let mut times = Vec::with_capacity(rounds as usize);
                for round in 0.. {
                    // The leader decides for all: the barrier orders its
                    // store before the others' loads.
                    if member == 0 && (round == rounds || start.elapsed() > budget) {
                        stop.store(true, Ordering::Relaxed);
                    }
                    barrier.wait();
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let began = Instant::now();
                    if member > 0 {
                        // Spinning, not sleeping: a sleep overshoots by
                        // more than the hop itself.
                        while began.elapsed() < hop {
                            std::hint::spin_loop();
                        }
                    }
                    let written = file.write_all(&record).and_then(|()| file.sync_data());
                    let durable = Instant::now();
                    // Keep meeting the others at the barrier even after a
                    // failure, so no thread waits forever.
                    if let Err(e) = written {
                        stop.store(true, Ordering::Relaxed);
                        barrier.wait();
                        return Err(e.to_string());
                    }
                    times.push((began, durable));
                }
                Ok(times)
            }))
        })
        .collect::<Result<_, String>>()?;
    let mut times = Vec::new();
    for member in members {
        times.push(member.join().map_err(|_| "a member thread panicked".to_string())??);
    }
    let [leader, first, second] = <[Vec<(Instant, Instant)>; 3]>::try_from(times).expect("three members");
    let mut commit = new_histogram();
    for ((&(began, leader_durable), &(_, first_durable)), &(_, second_durable)) in
        leader.iter().zip(&first).zip(&second)
    {
        let since = |durable: Instant| durable.saturating_duration_since(began);
        record_us(&mut commit, commit_time(since(leader_durable), [since(first_durable), since(second_durable)], hop));
    }
    Ok(commit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_is_measured_and_positive() {
        let dir = tempfile::tempdir().unwrap();
        let floor = measure_floor(dir.path(), 200, 20, Duration::from_secs(5)).unwrap();
        assert!(floor.loopback_rtt_p50_us > 0.0 && floor.fdatasync_p50_us > 0.0, "{floor:?}");
        assert!(floor.put_us() > floor.fdatasync_p50_us);
        assert!(floor.shared_disk_commit_p50_us > 0.0, "{floor:?}");
        assert!(floor.shared_disk_put_us() > floor.shared_disk_commit_p50_us);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "the measurement leaves no file behind: {left:?}");
    }

    #[test]
    fn a_commit_waits_for_the_second_of_three_acknowledgements() {
        let us = Duration::from_micros;
        // Leader first; the faster follower's acknowledgement completes
        // the majority.
        assert_eq!(commit_time(us(100), [us(150), us(300)], us(20)), us(170));
        // A slow leader: the two followers are the majority.
        assert_eq!(commit_time(us(500), [us(160), us(150)], us(20)), us(180));
        // A follower durable first still needs its hop back.
        assert_eq!(commit_time(us(100), [us(90), us(400)], us(20)), us(110));
    }
}
