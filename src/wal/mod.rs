//! Segmented write-ahead log.
//!
//! Every replication policy stands on this: an entry is acknowledged only
//! once it is here and durable, and after a crash the node replays what is
//! here. The log is a directory of segment files, each named by the index
//! of its first record; records carry a CRC32 so recovery can tell a torn
//! write from good data. Byte layouts: `docs/WAL.md`.
//!
//! Index rules: records are numbered without gaps. A fresh log starts at
//! index 1; `first_index()` rises as `compact_prefix` deletes old segments
//! (the low watermark), `last_index()` falls on `truncate_suffix` (a leader
//! overruled this node's tail), and `reset` restarts the numbering after a
//! snapshot was installed.
//!
//! Durability rules:
//! * A sealed segment (every one but the last) is fsynced before the next
//!   one is created, so damage inside it is real corruption, never a torn
//!   write: open refuses it, naming the file and offset.
//! * A damaged tail of the last segment with nothing valid after it is what
//!   a crash mid-append leaves: open cuts it off and reports how much was
//!   dropped.
//! * Damage with valid records after it, or a damaged header on a segment
//!   that holds records, is written data that changed: open refuses,
//!   naming the file, offset and record. [`repair`] cuts the log there on
//!   an operator's request, and says what was lost (`docs/WAL.md`).
//! * Truncation and compaction remove files newest-first and
//!   oldest-first respectively, so a crash at any point leaves a log that
//!   is contiguous and only shorter.
//! * A failed fdatasync poisons the log (see `WalError::SyncFailed`).
//!
//! `Wal` itself is single-threaded and synchronous. [`group_commit`] runs it
//! on a dedicated thread and gives concurrent appenders one shared fdatasync.

mod atomic_file;
mod damage;
mod error;
pub mod group_commit;
mod record;
mod repair;
mod segment;
mod side_files;

use std::fs::{self, File};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use atomic_file::{load_incarnation_in, store_incarnation_in};
pub use error::WalError;
use error::io_err;
pub use group_commit::{WalHandle, WalStatsSnapshot};
pub use record::{HEADER_SIZE_BYTES, Record, RecordBatch, RecordRef};
pub use repair::{DamageFound, inspect, repair};
use segment::Segment;
pub use side_files::{load_hard_state_in, load_memory_in, store_memory_in};

/// When appends reach stable storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FsyncPolicy {
    /// fdatasync after every append call, before it returns.
    Always,
    /// Group commit: appends that queue up while an fdatasync runs share
    /// the next one. Each appender is told when its own record is durable.
    Batch,
    /// fdatasync at most every `fsync_interval_ms`; appenders are told
    /// durable at that sync. Bounded loss window, fewer syncs than batch.
    Interval,
    /// Never fdatasync. Appends are acknowledged once written to the page
    /// cache: fast, and lost on a machine crash. For experiments only.
    Never,
}

impl FsyncPolicy {
    /// The config spelling.
    pub fn name(self) -> &'static str {
        match self {
            FsyncPolicy::Always => "always",
            FsyncPolicy::Batch => "batch",
            FsyncPolicy::Interval => "interval",
            FsyncPolicy::Never => "never",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalOptions {
    /// A new segment is started once the open one reaches this size.
    pub segment_size_bytes: u64,
    /// Larger records are refused (and, at recovery, treated as damage).
    pub max_record_bytes: u32,
    pub fsync: FsyncPolicy,
    pub fsync_interval_ms: u64,
    /// With `batch`: how long a group may wait for the other writers of the
    /// previous group before its fdatasync (0: never wait).
    pub group_commit_wait_us: u64,
    /// Zeros written ahead of the open segment's last record whenever an
    /// append grows the file, so that the appends after it sync their data
    /// without a metadata commit (see `segment.rs`). 0: plain appends.
    pub preallocate_bytes: u64,
}

impl Default for WalOptions {
    fn default() -> WalOptions {
        WalOptions {
            segment_size_bytes: 64 * 1024 * 1024,
            max_record_bytes: 16 * 1024 * 1024,
            fsync: FsyncPolicy::Batch,
            fsync_interval_ms: 10,
            group_commit_wait_us: 100,
            preallocate_bytes: 1024 * 1024,
        }
    }
}

impl WalOptions {
    fn validate(&self) -> Result<(), WalError> {
        if self.segment_size_bytes < 4096 || self.segment_size_bytes > (1 << 31) {
            return Err(WalError::BadOptions(format!(
                "segment_size_bytes {} must be within 4096..=2147483648",
                self.segment_size_bytes
            )));
        }
        if self.max_record_bytes == 0 || self.max_record_bytes > (1 << 30) {
            return Err(WalError::BadOptions(format!(
                "max_record_bytes {} must be within 1..=1073741824",
                self.max_record_bytes
            )));
        }
        if self.preallocate_bytes > (1 << 30) {
            return Err(WalError::BadOptions(format!(
                "preallocate_bytes {} must be within 0..=1073741824",
                self.preallocate_bytes
            )));
        }
        Ok(())
    }
}

/// What recovery found and did when the log was opened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub segments: usize,
    pub records: u64,
    /// Bytes cut off the torn tail of the last segment.
    pub truncated_bytes: u64,
    /// Records (complete or not) in the cut-off tail.
    pub dropped_records: u64,
    /// The index of the first record cut off, if any was.
    pub cut_at_index: Option<u64>,
    /// Where and why the tail was cut, if it was.
    pub damage: Option<String>,
}

/// How a refusal to open tells the operator the way out.
const REPAIR_HINT: &str = "refusing to open rather than drop it silently (to cut the log here and rebuild this \
                           replica from its peers, see the Repair section of docs/WAL.md)";

/// Counters for benchmarks and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalStats {
    pub append_calls: u64,
    pub records: u64,
    pub bytes: u64,
    pub fdatasyncs: u64,
}

#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    dir_file: File,
    opts: WalOptions,
    /// Oldest first; never empty. The last one is open for appends.
    segments: Vec<Segment>,
    hard_state: Option<Vec<u8>>,
    scratch: Vec<u8>,
    poisoned: Option<String>,
    stats: WalStats,
}

impl Wal {
    /// Opens (or creates) the log in `dir` and recovers it: every record of
    /// every segment is verified. See the module docs for what happens to
    /// damage.
    pub fn open(dir: impl AsRef<Path>, opts: WalOptions) -> Result<(Wal, RecoveryReport), WalError> {
        opts.validate()?;
        let dir = dir.as_ref().to_path_buf();
        if dir.exists() && !dir.is_dir() {
            return Err(WalError::NotADirectory(dir));
        }
        fs::create_dir_all(&dir).map_err(|e| io_err("create directory", &dir, e))?;
        let dir_file = File::open(&dir).map_err(|e| io_err("open directory", &dir, e))?;
        let hard_state = atomic_file::HARD_STATE.load(&dir)?;

        let names = list_segments(&dir)?;

        let mut report = RecoveryReport::default();
        let mut segments: Vec<Segment> = Vec::with_capacity(names.len().max(1));
        let count = names.len();
        for (position, (first_index, path)) in names.into_iter().enumerate() {
            let is_last = position + 1 == count;
            if let Some(prev) = segments.last()
                && prev.next_index() != first_index
            {
                return Err(WalError::Corrupt {
                    path,
                    offset: 0,
                    reason: format!(
                        "gap in the log: previous segment ends before index {}; {REPAIR_HINT}",
                        prev.next_index()
                    ),
                });
            }
            let (mut seg, damage) = Segment::scan(path, first_index, opts.max_record_bytes)?;
            if let Some(damage) = damage {
                if !is_last {
                    return Err(seg.corrupt(
                        damage.offset,
                        format!(
                            "{} (in a sealed segment, which was made durable before the next one was created; {}); \
                             {REPAIR_HINT}",
                            damage.reason,
                            damage.survivors.as_ref().map_or("nothing valid follows".to_string(), |s| s.describe())
                        ),
                    ));
                }
                if !damage.is_torn_write() {
                    // Written data changed on disk. Cutting here would drop
                    // records that may have been acknowledged.
                    return Err(seg.corrupt(
                        damage.offset,
                        format!("{}; {}; {REPAIR_HINT}", damage.reason, damage.not_torn_because()),
                    ));
                }
                report.truncated_bytes = damage.dropped_bytes;
                report.dropped_records = damage.dropped_records;
                report.cut_at_index = Some(damage.index);
                report.damage = Some(format!(
                    "{} at offset {}: {} (a torn tail: nothing valid follows it)",
                    seg.path.display(),
                    damage.offset,
                    damage.reason
                ));
                if damage.offset == 0 {
                    // The header itself was torn: the segment was being
                    // created when the node died, so it holds nothing.
                    fs::remove_file(&seg.path).map_err(|e| io_err("remove torn segment", &seg.path, e))?;
                    seg = Segment::create(&dir, first_index)?;
                } else {
                    seg.set_len(damage.offset)?;
                }
            }
            segments.push(seg);
        }
        if segments.is_empty() {
            segments.push(Segment::create(&dir, 1)?);
        }
        dir_file.sync_all().map_err(|e| WalError::SyncFailed { path: dir.clone(), source: e })?;
        report.segments = segments.len();
        report.records = segments.iter().map(Segment::record_count).sum();

        let wal = Wal {
            dir,
            dir_file,
            opts,
            segments,
            hard_state,
            scratch: Vec::with_capacity(64 * 1024),
            poisoned: None,
            stats: WalStats::default(),
        };
        Ok((wal, report))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn options(&self) -> &WalOptions {
        &self.opts
    }

    pub fn stats(&self) -> WalStats {
        self.stats
    }

    /// The oldest index still in the log. Equals `last_index() + 1` when
    /// the log is empty.
    pub fn first_index(&self) -> u64 {
        self.segments[0].first_index
    }

    /// The newest index in the log, or `first_index() - 1` when empty.
    pub fn last_index(&self) -> u64 {
        self.open_segment().next_index() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.last_index() < self.first_index()
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    fn open_segment(&self) -> &Segment {
        self.segments.last().expect("the log always has an open segment")
    }

    fn check_usable(&self) -> Result<(), WalError> {
        match &self.poisoned {
            Some(why) => Err(WalError::Poisoned(why.clone())),
            None => Ok(()),
        }
    }

    /// Appends records and returns the index range they got. With fsync
    /// `always` they are durable when this returns; otherwise after the
    /// next `sync`. Every record is size-checked before any is written, so
    /// a refused call writes nothing.
    pub fn append<'a>(
        &mut self,
        records: impl IntoIterator<Item = RecordRef<'a>> + Clone,
    ) -> Result<Range<u64>, WalError> {
        self.check_usable()?;
        for record in records.clone() {
            if record.payload.len() > self.opts.max_record_bytes as usize {
                return Err(WalError::RecordTooLarge {
                    size_bytes: record.payload.len(),
                    max_bytes: self.opts.max_record_bytes,
                });
            }
        }
        let open = self.open_segment();
        if open.len_bytes >= self.opts.segment_size_bytes && open.record_count() > 0 {
            self.roll()?;
        }

        let first = self.open_segment().next_index();
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let mut count = 0u64;
        for record in records.clone() {
            record::encode_into(&mut scratch, first + count, record);
            count += 1;
        }
        let lens = records.into_iter().map(|r| (HEADER_SIZE_BYTES + r.payload.len()) as u64);
        let preallocate_bytes = self.opts.preallocate_bytes;
        let result = self.segments.last_mut().expect("open segment").write(&scratch, lens, preallocate_bytes);
        self.stats.append_calls += 1;
        self.stats.records += count;
        self.stats.bytes += scratch.len() as u64;
        self.scratch = scratch;
        result?;
        if self.opts.fsync == FsyncPolicy::Always {
            self.sync()?;
        }
        Ok(first..first + count)
    }

    /// Appends every record of a batch; see [`Wal::append`].
    pub fn append_batch(&mut self, batch: &RecordBatch) -> Result<Range<u64>, WalError> {
        self.append(batch.iter())
    }

    /// Makes every appended record durable with one fdatasync. On failure
    /// the log is poisoned: see [`WalError::SyncFailed`].
    pub fn sync(&mut self) -> Result<(), WalError> {
        self.check_usable()?;
        let open = self.segments.last_mut().expect("open segment");
        if open.synced_len_bytes == open.len_bytes {
            return Ok(());
        }
        match open.sync() {
            Ok(()) => {
                self.stats.fdatasyncs += 1;
                Ok(())
            }
            Err(e) => {
                self.poisoned = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// Index of the last record that is on stable storage.
    pub fn durable_index(&self) -> u64 {
        let open = self.open_segment();
        // Syncs happen at record boundaries, so the records that start
        // inside the synced part are exactly the complete, durable ones.
        let durable = open.offsets.partition_point(|off| u64::from(*off) < open.synced_len_bytes);
        open.first_index + durable as u64 - 1
    }

    /// Seals the open segment (durably) and starts a new one.
    fn roll(&mut self) -> Result<(), WalError> {
        self.sync()?;
        self.segments.last_mut().expect("open segment").trim_zeros().inspect_err(|e| {
            if e.is_fatal() {
                self.poisoned = Some(e.to_string());
            }
        })?;
        let next = self.open_segment().next_index();
        let seg = Segment::create(&self.dir, next)?;
        self.sync_dir()?;
        self.segments.push(seg);
        Ok(())
    }

    fn sync_dir(&mut self) -> Result<(), WalError> {
        self.dir_file.sync_all().map_err(|e| {
            let err = WalError::SyncFailed { path: self.dir.clone(), source: e };
            self.poisoned = Some(err.to_string());
            err
        })
    }

    pub fn read(&self, index: u64) -> Result<Record, WalError> {
        self.check_usable()?;
        if index < self.first_index() || index > self.last_index() {
            return Err(self.out_of_range(index));
        }
        let slot = self.segments.partition_point(|s| s.first_index <= index) - 1;
        self.segments[slot].read(index, self.opts.max_record_bytes)
    }

    /// Reads the records with indexes in `range` (end exclusive).
    pub fn read_range(&self, range: Range<u64>) -> Result<Vec<Record>, WalError> {
        self.check_usable()?;
        if range.start >= range.end {
            return Ok(Vec::new());
        }
        if range.start < self.first_index() || range.end > self.last_index() + 1 {
            let bad = if range.start < self.first_index() { range.start } else { range.end - 1 };
            return Err(self.out_of_range(bad));
        }
        let mut out = Vec::with_capacity((range.end - range.start) as usize);
        let mut slot = self.segments.partition_point(|s| s.first_index <= range.start) - 1;
        let mut index = range.start;
        while index < range.end {
            let seg = &self.segments[slot];
            let seg_end = seg.next_index().min(range.end);
            while index < seg_end {
                out.push(seg.read(index, self.opts.max_record_bytes)?);
                index += 1;
            }
            slot += 1;
        }
        Ok(out)
    }

    fn out_of_range(&self, index: u64) -> WalError {
        WalError::OutOfRange { index, first: self.first_index(), last: self.last_index() }
    }

    /// Removes the record at `index` and every later one, durably. Later
    /// segments are deleted; the segment holding `index` is cut and becomes
    /// the open one. `index == last_index() + 1` removes nothing.
    pub fn truncate_suffix(&mut self, index: u64) -> Result<(), WalError> {
        self.check_usable()?;
        if index < self.first_index() || index > self.last_index() + 1 {
            return Err(self.out_of_range(index));
        }
        if index == self.last_index() + 1 {
            return Ok(());
        }
        // Newest first, so a crash midway leaves a contiguous, shorter log.
        let mut removed = false;
        while self.segments.len() > 1 && self.open_segment().first_index >= index {
            let seg = self.segments.pop().expect("more than one segment");
            fs::remove_file(&seg.path).map_err(|e| io_err("remove segment", &seg.path, e))?;
            removed = true;
        }
        if removed {
            self.sync_dir()?;
        }
        let open = self.segments.last_mut().expect("open segment");
        if index < open.next_index() {
            open.truncate_at(index).inspect_err(|e| {
                if e.is_fatal() {
                    self.poisoned = Some(e.to_string());
                }
            })?;
        }
        debug_assert_eq!(self.last_index(), index - 1);
        Ok(())
    }

    /// Deletes whole segments whose records all have index `<= index` (the
    /// low watermark moved up to `index`). The open segment is never
    /// deleted, so `first_index()` may stay below `index + 1`. Returns how
    /// many segments were deleted.
    pub fn compact_prefix(&mut self, index: u64) -> Result<usize, WalError> {
        self.check_usable()?;
        let mut removed = 0;
        // Oldest first, so a crash midway leaves a contiguous, shorter log.
        while self.segments.len() > 1 && self.segments[0].last_index().is_some_and(|last| last <= index) {
            let seg = self.segments.remove(0);
            fs::remove_file(&seg.path).map_err(|e| io_err("remove segment", &seg.path, e))?;
            removed += 1;
        }
        if removed > 0 {
            self.sync_dir()?;
        }
        Ok(removed)
    }

    /// Deletes every record and restarts the numbering at `next_index`,
    /// durably. Used after installing a snapshot newer than the whole log.
    pub fn reset(&mut self, next_index: u64) -> Result<(), WalError> {
        self.check_usable()?;
        assert!(next_index >= 1, "log indexes start at 1");
        while let Some(seg) = self.segments.pop() {
            fs::remove_file(&seg.path).map_err(|e| io_err("remove segment", &seg.path, e))?;
        }
        self.sync_dir()?;
        self.segments.push(Segment::create(&self.dir, next_index)?);
        self.sync_dir()
    }

    /// The open segment's file and how many of its bytes are synced: what a
    /// power loss would leave of the log.
    pub fn synced_point(&self) -> (&Path, u64) {
        let open = self.open_segment();
        (&open.path, open.synced_len_bytes)
    }

    /// Test support: the open segment's file and how many of its bytes are
    /// synced, so a test can simulate a crash that loses unsynced writes.
    #[doc(hidden)]
    pub fn open_segment_sync_state(&self) -> (PathBuf, u64, u64) {
        let open = self.open_segment();
        (open.path.clone(), open.synced_len_bytes, open.len_bytes)
    }
}

/// The segment files in `dir`, by first index.
fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, WalError> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| io_err("list directory", dir, e))? {
        let entry = entry.map_err(|e| io_err("list directory", dir, e))?;
        if let Some(first) = entry.file_name().to_str().and_then(segment::parse_file_name) {
            names.push((first, entry.path()));
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// fdatasync on a pipe fails with EINVAL: a real failing syscall,
    /// standing in for a disk that reports an I/O error.
    #[test]
    fn a_failed_fdatasync_is_fatal_and_never_retried() {
        let dir = tempfile::tempdir().unwrap();
        let opts = WalOptions { fsync: FsyncPolicy::Never, ..WalOptions::default() };
        let (mut wal, _) = Wal::open(dir.path(), opts).unwrap();
        wal.append([RecordRef { kind: 0, payload: b"unsynced" }]).unwrap();
        let (_reader, writer) = std::io::pipe().unwrap();
        let pipe_file = File::from(std::os::fd::OwnedFd::from(writer));
        wal.segments.last_mut().unwrap().file = pipe_file;

        let err = wal.sync().unwrap_err();
        assert!(matches!(err, WalError::SyncFailed { .. }), "{err}");
        assert!(err.is_fatal());
        // Nothing is retried or accepted afterwards.
        assert!(matches!(wal.sync(), Err(WalError::Poisoned(_))));
        assert!(matches!(wal.append([RecordRef { kind: 0, payload: b"x" }]), Err(WalError::Poisoned(_))));
        assert!(matches!(wal.read(1), Err(WalError::Poisoned(_))));
        assert_eq!(wal.stats().fdatasyncs, 0);
    }
}
