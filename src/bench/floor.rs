//! The physical floor of one durable put on this machine, measured by
//! `replab bench cluster --processes` before each run.
//!
//! The floor the acceptance target uses is the issue's: one client round
//! trip on loopback, one leader-to-follower round trip, one fdatasync. It
//! assumes a member's fdatasync does not wait for another's. Three members
//! on one disk do wait: a commit needs two of three syncs, and the device
//! serves concurrent flushes one after another. So the bench also measures
//! that commit on the members' disks, with no software in the way, and
//! reports it beside the floor: the gap between it and replab is what the
//! engine costs, the gap between it and the floor is what sharing a disk
//! costs. With `--member-dirs` on disks of their own, each member's syncs
//! go to its own disk, here as in the cluster, and that second gap should
//! narrow (not measured: the machine this was written on has one disk).

use std::io::{Read, Seek, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// A commit with three members on their disks (this one disk, unless
    /// `--member-dirs` named others) and no software in the way (see
    /// [`shared_disk_commit`]): p50, from the leader's write to the moment
    /// two of three are durable and acknowledged.
    pub shared_disk_commit_p50_us: f64,
    /// How many file systems (devices, as `stat` counts them) the
    /// members' directories are on: 1, they share one disk; more, they
    /// may not (two partitions of one disk count as two).
    pub disks: usize,
}

impl Floor {
    /// The acceptance target's floor.
    pub fn put_us(&self) -> f64 {
        2.0 * self.loopback_rtt_p50_us + self.fdatasync_p50_us
    }

    /// A put with the members' syncs on their disks: the client's round
    /// trip plus the commit (which holds the leader-follower round trip).
    pub fn shared_disk_put_us(&self) -> f64 {
        self.loopback_rtt_p50_us + self.shared_disk_commit_p50_us
    }

    /// Where the members' syncs went, for the bench's output.
    pub fn disks_phrase(&self) -> String {
        match self.disks {
            1 => "with the members sharing this disk".to_string(),
            n => format!("with the members on {n} file systems (--member-dirs)"),
        }
    }
}

/// How many file systems (devices) `dirs` are on.
pub fn distinct_devices(dirs: &[PathBuf]) -> Result<usize, String> {
    let mut devices = Vec::new();
    for dir in dirs {
        let dev = std::fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?.dev();
        if !devices.contains(&dev) {
            devices.push(dev);
        }
    }
    Ok(devices.len())
}

/// Measures the floor's parts: `round_trips` plain TCP ping-pongs of a
/// put-sized message between two threads, and `syncs` write+fdatasync of
/// a record in the members' directories `dirs` (the same one three times
/// when they share it): alone in the first, three at once and as the
/// commits of three members, each member in its own (the first plays the
/// leader). Each bounded by `budget`.
pub fn measure_floor(dirs: &[PathBuf; 3], round_trips: u64, syncs: u64, budget: Duration) -> Result<Floor, String> {
    let disks = distinct_devices(dirs)?;
    let dir = dirs[0].as_path();
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
        .zip(dirs.iter().cloned())
        .map(|(i, dir)| std::thread::spawn(move || sync_latency(&dir, i, syncs, budget, true)))
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
    let commit = shared_disk_commit(dirs, one_way, syncs, budget)?;
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
        disks,
    })
}

fn new_histogram() -> Histogram<u64> {
    Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

fn record_us(histogram: &mut Histogram<u64>, elapsed: Duration) {
    histogram.record((elapsed.as_micros() as u64).clamp(1, 60_000_000)).expect("within bounds");
}

/// Times `op` up to `count` times, stopping early once `budget` is spent.
fn timed(count: u64, budget: Duration, mut op: impl FnMut() -> std::io::Result<()>) -> Result<Histogram<u64>, String> {
    let mut histogram = new_histogram();
    let start = Instant::now();
    for _ in 0..count {
        if start.elapsed() > budget {
            break;
        }
        let t = Instant::now();
        op().map_err(|e| e.to_string())?;
        record_us(&mut histogram, t.elapsed());
    }
    Ok(histogram)
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
    let rtt = {
        let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut buf = [7u8; RECORD_BYTES];
        // Dropping the stream at the end of this block ends the echo.
        timed(round_trips, budget, || s.write_all(&buf).and_then(|()| s.read_exact(&mut buf)))?
    };
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
    timed(syncs, budget, || file.write_all(&record).and_then(|()| file.sync_data()))
        .map_err(|e| format!("{}: {e}", dir.display()))
}

/// When a put commits, given when each member's copy was durable (from
/// the leader's write; a follower's time includes the hop that brought it
/// the append): the leader counts when its own sync returns, a follower
/// when its acknowledgement arrives, `hop` after its sync. Two of three is
/// a majority.
pub fn commit_time(leader_durable: Duration, followers_durable: [Duration; 2], hop: Duration) -> Duration {
    let mut acked = [leader_durable, followers_durable[0] + hop, followers_durable[1] + hop];
    acked.sort_unstable();
    acked[1]
}

/// `rounds` commits of three members, each member a thread writing a
/// put-sized record over zeros to its own file in its own directory of
/// `dirs` (leader first) and fdatasyncing it. In each round the leader
/// starts at once and the followers one `hop` later (the append's way to
/// them), and the round's commit is [`commit_time`]. Nothing else runs:
/// no event loop, no thread hand-off, no encoding. Bounded by `budget`.
///
/// Each member times its part from its own start of the round, as if the
/// three had started together, so how late the barrier woke one of them
/// is not counted. A follower waits for the hop by yielding rather than
/// sleeping (a sleep overshoots by more than the hop) or plain spinning
/// (on two cores two spinners would hold the leader's write back).
fn shared_disk_commit(
    dirs: &[PathBuf; 3],
    hop: Duration,
    rounds: u64,
    budget: Duration,
) -> Result<Histogram<u64>, String> {
    // Every file exists before any thread waits at the barrier, so a
    // failed setup leaves no thread behind.
    let files = (0..3u32)
        .zip(dirs)
        .map(|(member, dir)| record_file(dir, 10 + member, rounds, true))
        .collect::<Result<Vec<_>, _>>()?;
    commit_rounds(files, hop, rounds, budget).map_err(|e| {
        let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        format!("{e} (the members' directories: {})", dirs.join(", "))
    })
}

/// The rounds of [`shared_disk_commit`] over the members' open files.
fn commit_rounds(
    files: Vec<std::fs::File>,
    hop: Duration,
    rounds: u64,
    budget: Duration,
) -> Result<Histogram<u64>, String> {
    assert_eq!(files.len(), 3, "a leader and two followers");
    let barrier = Arc::new(Barrier::new(3));
    // The first round no member runs. A round number, not a flag: a member
    // still reading it in round r must not see a stop meant for r + 1.
    let stop_at = Arc::new(AtomicU64::new(u64::MAX));
    let start = Instant::now();
    let members: Vec<_> = files
        .into_iter()
        .enumerate()
        .map(|(member, mut file)| {
            let (barrier, stop_at) = (Arc::clone(&barrier), Arc::clone(&stop_at));
            std::thread::spawn(move || -> Result<Vec<Duration>, String> {
                let record = [b'r'; RECORD_BYTES];
                let mut took = Vec::with_capacity(rounds as usize);
                let mut failure = None;
                for round in 0.. {
                    if member == 0 && (round == rounds || start.elapsed() > budget) {
                        stop_at.fetch_min(round, Ordering::Relaxed);
                    }
                    // Orders every store made before it (the leader's stop
                    // for this round, a failure in the last) before the
                    // loads after it.
                    barrier.wait();
                    if round >= stop_at.load(Ordering::Relaxed) {
                        break;
                    }
                    let began = Instant::now();
                    if member > 0 {
                        while began.elapsed() < hop {
                            std::thread::yield_now();
                        }
                    }
                    match file.write_all(&record).and_then(|()| file.sync_data()) {
                        Ok(()) => took.push(began.elapsed()),
                        // Every member, this one too, stops at the next
                        // round's barrier: nobody waits there alone.
                        Err(e) => {
                            failure.get_or_insert(format!("member {member}: {e}"));
                            stop_at.fetch_min(round + 1, Ordering::Relaxed);
                        }
                    }
                }
                failure.map_or(Ok(took), Err)
            })
        })
        .collect();
    let mut took = Vec::new();
    for member in members {
        took.push(member.join().map_err(|_| "a member thread panicked".to_string())??);
    }
    let [leader, first, second] = <[Vec<Duration>; 3]>::try_from(took).expect("three members");
    let mut commit = new_histogram();
    for ((&leader, &first), &second) in leader.iter().zip(&first).zip(&second) {
        record_us(&mut commit, commit_time(leader, [first, second], hop));
    }
    Ok(commit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_is_measured_and_positive() {
        let members: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let dirs = [0, 1, 2].map(|i| members[i].path().to_path_buf());
        let floor = measure_floor(&dirs, 200, 20, Duration::from_secs(5)).unwrap();
        assert!(floor.loopback_rtt_p50_us > 0.0 && floor.fdatasync_p50_us > 0.0, "{floor:?}");
        assert!(floor.put_us() > floor.fdatasync_p50_us);
        assert!(floor.shared_disk_commit_p50_us > 0.0, "{floor:?}");
        assert!(floor.shared_disk_put_us() > floor.shared_disk_commit_p50_us);
        assert_eq!(floor.disks, 1, "three directories on one file system share its disk");
        assert_eq!(floor.disks_phrase(), "with the members sharing this disk");
        for dir in &dirs {
            let left: Vec<_> = std::fs::read_dir(dir).unwrap().collect();
            assert!(left.is_empty(), "the measurement leaves no file behind: {left:?}");
        }
    }

    #[test]
    fn one_directory_for_all_three_members_is_one_disk() {
        // What every bench without --member-dirs measures.
        let dir = tempfile::tempdir().unwrap();
        let dirs = [0, 1, 2].map(|_| dir.path().to_path_buf());
        let floor = measure_floor(&dirs, 100, 10, Duration::from_secs(5)).unwrap();
        assert!(floor.shared_disk_commit_p50_us > 0.0 && floor.concurrent_fdatasync_p50_us > 0.0, "{floor:?}");
        assert_eq!(floor.disks, 1);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no file left behind");
    }

    #[test]
    fn devices_are_counted_and_each_members_probe_uses_its_own_directory() {
        let dir = tempfile::tempdir().unwrap();
        let same = [dir.path().to_path_buf(), dir.path().join("."), dir.path().to_path_buf()];
        assert_eq!(distinct_devices(&same).unwrap(), 1);
        // procfs is a device of its own on every Linux system.
        let two = [dir.path().to_path_buf(), PathBuf::from("/proc")];
        assert_eq!(distinct_devices(&two).unwrap(), 2);
        // A third member whose directory is missing: the probes that give
        // each member its own directory fail on it, naming it.
        let missing = dir.path().join("no-such-member");
        let dirs = [dir.path().to_path_buf(), dir.path().to_path_buf(), missing.clone()];
        let err = shared_disk_commit(&dirs, Duration::from_micros(10), 5, Duration::from_secs(5)).unwrap_err();
        assert!(err.contains(&missing.display().to_string()), "{err}");
        let err = sync_latency(&missing, 3, 5, Duration::from_secs(5), true).unwrap_err();
        assert!(err.contains(&missing.display().to_string()), "{err}");
        let err = measure_floor(&dirs, 10, 2, Duration::from_secs(1)).unwrap_err();
        assert!(err.contains(&missing.display().to_string()), "{err}");
    }

    fn member_files(dir: &Path, rounds: u64) -> Vec<std::fs::File> {
        (0..3).map(|n| record_file(dir, n, rounds, true).unwrap()).collect()
    }

    #[test]
    fn shared_disk_commits_run_every_round_or_stop_at_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let hop = Duration::from_micros(10);
        let all = commit_rounds(member_files(dir.path(), 50), hop, 50, Duration::from_secs(30)).unwrap();
        assert_eq!(all.len(), 50);
        let none = commit_rounds(member_files(dir.path(), 50), hop, 50, Duration::ZERO).unwrap();
        assert!(none.len() <= 1, "a spent budget stops the rounds: {} ran", none.len());
    }

    #[test]
    fn a_member_whose_write_fails_is_reported_and_no_member_is_left_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = member_files(dir.path(), 20);
        // Read-only: its first write fails while the other two succeed.
        let path = dir.path().join("read-only");
        std::fs::write(&path, b"").unwrap();
        files[1] = std::fs::File::open(&path).unwrap();
        let err = commit_rounds(files, Duration::from_micros(10), 20, Duration::from_secs(30)).unwrap_err();
        assert!(!err.is_empty());
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
