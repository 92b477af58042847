//! Group commit: one fdatasync for every append that queued up meanwhile.
//!
//! An fdatasync costs far more than the write before it, and it costs about
//! the same for one record as for a thousand. So the log runs on its own
//! thread: while it waits for one fdatasync, new requests pile up in its
//! channel; when the sync returns it takes *all* of them, writes them with
//! one write call each, and covers them with the next single fdatasync.
//! Under load the number of syncs per record falls toward zero with no
//! timer and no added latency at low load (a lone append is synced at once).
//!
//! Every request carries its own completion, which runs only after the sync
//! that covers it returned. That is how each appender learns exactly when
//! its own record is durable, and why a node can hold back an
//! acknowledgement until then.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{FsyncPolicy, RecordBatch, Wal, WalError};
use crate::histogram::LatencyHistogram;

/// Upper bound on requests folded into one group, so one sync never waits
/// behind an unbounded amount of writing.
const MAX_GROUP_REQUESTS: usize = 4096;

/// A request to the log thread. Each is applied in submission order.
#[derive(Debug)]
pub enum Op {
    Append(RecordBatch),
    TruncateSuffix(u64),
    CompactPrefix(u64),
    Reset(u64),
    SaveHardState(Vec<u8>),
    /// The node's record of lost state (`replab_api::Memory`).
    SaveMemory(Vec<u8>),
    /// Stores a snapshot the node took itself; the log is left alone (the
    /// policy compacts it later with `CompactPrefix`).
    SaveSnapshot(Vec<u8>),
    /// Stores a snapshot, then drops the log records it covers: compacts up
    /// to `index`, or restarts the log at `index + 1` if it ends before.
    InstallSnapshot {
        payload: Vec<u8>,
        index: u64,
    },
    /// Completes once everything submitted before it is durable.
    Flush,
}

/// What a completed request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    Appended(Range<u64>),
    Truncated,
    Compacted { segments_removed: usize },
    Reset,
    HardStateSaved,
    SnapshotSaved,
    SnapshotInstalled,
    Flushed,
}

/// How a request's submitter learns that its write is durable (or failed).
/// It runs on the log thread, so it must be short: send on a channel, no
/// blocking. A node passes a plain value (its write's number, sent on its
/// loop's channel), so a write costs no allocation; a closure works too.
pub trait Completion: Send + 'static {
    fn complete(self, result: Result<Done, WalError>);
}

impl<F: FnOnce(Result<Done, WalError>) + Send + 'static> Completion for F {
    fn complete(self, result: Result<Done, WalError>) {
        self(result)
    }
}

/// A completion for callers that want a closure of any type.
pub type Reply = Box<dyn FnOnce(Result<Done, WalError>) + Send>;

struct Request<C> {
    op: Op,
    reply: C,
}

#[derive(Debug, Default)]
struct SharedStats {
    append_calls: AtomicU64,
    records: AtomicU64,
    fdatasyncs: AtomicU64,
    /// Highest index known durable; published before replies go out.
    durable_index: AtomicU64,
    /// How long each group's fdatasync took (the metrics endpoint reads it).
    sync_latency: Arc<LatencyHistogram>,
    /// The open segment and how many of its bytes are synced: what a power
    /// loss would leave of the log (every other file is synced).
    synced_point: Mutex<(PathBuf, u64)>,
}

/// A copy of the log thread's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalStatsSnapshot {
    pub append_calls: u64,
    pub records: u64,
    pub fdatasyncs: u64,
    pub durable_index: u64,
}

/// The handle to a log running on its own thread.
pub struct WalHandle<C: Completion = Reply> {
    tx: Option<mpsc::Sender<Request<C>>>,
    stats: Arc<SharedStats>,
    abandoned: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl<C: Completion> WalHandle<C> {
    /// Starts the log thread for requests whose completions are `C`.
    pub fn spawn_with(wal: Wal) -> WalHandle<C> {
        let (tx, rx) = mpsc::channel();
        let stats = Arc::new(SharedStats::default());
        stats.durable_index.store(wal.durable_index(), Ordering::Release);
        let (path, synced_len_bytes) = wal.synced_point();
        *stats.synced_point.lock().expect("synced point lock") = (path.to_path_buf(), synced_len_bytes);
        let thread_stats = Arc::clone(&stats);
        let abandoned = Arc::new(AtomicBool::new(false));
        let committer = Committer {
            wal,
            rx,
            stats: thread_stats,
            abandoned: Arc::clone(&abandoned),
            waiting: Vec::new(),
            staged: Vec::new(),
        };
        let thread = std::thread::Builder::new()
            .name("replab-wal".into())
            .spawn(move || committer.run())
            .expect("spawn the log thread");
        WalHandle { tx: Some(tx), stats, abandoned, thread: Some(thread) }
    }

    /// Queues a request; `reply` runs on the log thread once it is durable
    /// (or failed). Keep `reply` short: send on a channel, no blocking.
    pub fn submit(&self, op: Op, reply: C) {
        let request = Request { op, reply };
        if let Err(mpsc::SendError(request)) = self.tx.as_ref().expect("handle is open").send(request) {
            request.reply.complete(Err(WalError::Poisoned("the log thread has stopped".into())));
        }
    }

    fn shutdown(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl WalHandle {
    /// Starts the log thread for requests completed by closures.
    pub fn spawn(wal: Wal) -> WalHandle {
        WalHandle::spawn_with(wal)
    }

    /// Submits and waits for durability.
    pub async fn run(&self, op: Op) -> Result<Done, WalError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(
            op,
            Box::new(move |result| {
                let _ = tx.send(result);
            }),
        );
        rx.await.unwrap_or_else(|_| Err(WalError::Poisoned("the log thread has stopped".into())))
    }

    /// Appends a batch and returns its index range once it is durable
    /// (as the fsync policy defines durable).
    pub async fn append(&self, batch: RecordBatch) -> Result<Range<u64>, WalError> {
        match self.run(Op::Append(batch)).await? {
            Done::Appended(range) => Ok(range),
            other => unreachable!("append answered with {other:?}"),
        }
    }

    /// Blocking variant for threads outside a runtime.
    pub fn run_blocking(&self, op: Op) -> Result<Done, WalError> {
        let (tx, rx) = mpsc::channel();
        self.submit(
            op,
            Box::new(move |result| {
                let _ = tx.send(result);
            }),
        );
        rx.recv().unwrap_or_else(|_| Err(WalError::Poisoned("the log thread has stopped".into())))
    }
}

impl<C: Completion> WalHandle<C> {
    /// The latency of every group fdatasync this log made.
    pub fn sync_latency(&self) -> Arc<LatencyHistogram> {
        Arc::clone(&self.stats.sync_latency)
    }

    pub fn stats(&self) -> WalStatsSnapshot {
        WalStatsSnapshot {
            append_calls: self.stats.append_calls.load(Ordering::Acquire),
            records: self.stats.records.load(Ordering::Acquire),
            fdatasyncs: self.stats.fdatasyncs.load(Ordering::Acquire),
            durable_index: self.stats.durable_index.load(Ordering::Acquire),
        }
    }

    /// Syncs what is queued, stops the thread and waits for it.
    pub fn close(mut self) {
        self.shutdown();
    }

    /// Stops the thread at once, as a killed process would: requests not
    /// yet written are dropped unanswered and nothing more is synced. What
    /// was already written stays in the page cache, as after a SIGKILL.
    pub fn abandon(mut self) {
        self.abandoned.store(true, Ordering::Release);
        self.shutdown();
    }

    /// Abandons the log as a power loss would: besides what `abandon`
    /// drops, whatever was written but not yet fdatasynced is gone. Only
    /// the open segment can hold such bytes (segments are synced when
    /// sealed, truncations and the small files at once), so it is cut back
    /// to its synced length once the thread has stopped.
    pub fn abandon_losing_unsynced(mut self) -> std::io::Result<()> {
        self.abandoned.store(true, Ordering::Release);
        self.shutdown();
        let (path, synced_len_bytes) = self.stats.synced_point.lock().expect("synced point lock").clone();
        std::fs::OpenOptions::new().write(true).open(&path)?.set_len(synced_len_bytes)
    }
}

impl<C: Completion> Drop for WalHandle<C> {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Committer<C> {
    wal: Wal,
    rx: mpsc::Receiver<Request<C>>,
    stats: Arc<SharedStats>,
    abandoned: Arc<AtomicBool>,
    /// Applied but not yet covered by a sync, in submission order.
    waiting: Vec<(Done, C)>,
    /// Appends received but not yet written: consecutive appends are
    /// written with one write call (write coalescing).
    staged: Vec<(RecordBatch, C)>,
}

impl<C: Completion> Committer<C> {
    fn run(mut self) {
        let policy = self.wal.options().fsync;
        let interval = Duration::from_millis(self.wal.options().fsync_interval_ms.max(1));
        let mut last_sync = Instant::now();
        let group_wait = Duration::from_micros(self.wal.options().group_commit_wait_us);
        // Requests the previous sync covered: concurrent writers that will be
        // back soon.
        let mut last_group = 0usize;
        loop {
            let first = if policy == FsyncPolicy::Interval && !self.waiting.is_empty() {
                let deadline = last_sync + interval;
                match self.rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(request) => Some(request),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match self.rx.recv() {
                    Ok(request) => Some(request),
                    Err(_) => break,
                }
            };
            if self.abandoned.load(Ordering::Acquire) {
                return;
            }
            if let Some(first) = first {
                self.apply(first);
                // Everything that queued while we were busy joins this group.
                for _ in 1..MAX_GROUP_REQUESTS {
                    match self.rx.try_recv() {
                        Ok(request) => self.apply(request),
                        Err(_) => break,
                    }
                }
                if policy == FsyncPolicy::Batch {
                    self.wait_for_siblings(last_group, group_wait);
                }
                last_group = self.staged.len() + self.waiting.len();
                self.write_staged();
            }
            let sync_now = match policy {
                FsyncPolicy::Batch => true,
                FsyncPolicy::Interval => last_sync.elapsed() >= interval,
                FsyncPolicy::Always | FsyncPolicy::Never => true,
            };
            if sync_now && !self.waiting.is_empty() {
                self.sync_and_reply(policy);
                last_sync = Instant::now();
            }
        }
        if self.abandoned.load(Ordering::Acquire) {
            return;
        }
        self.write_staged();
        if !self.waiting.is_empty() {
            self.sync_and_reply(policy);
        }
    }

    fn apply(&mut self, request: Request<C>) {
        let Request { op, reply } = request;
        if let Op::Append(batch) = op {
            // Refuse an oversized record alone, before it is merged with
            // other requests whose writes must not fail because of it.
            let max = self.wal.options().max_record_bytes;
            if let Some(big) = batch.iter().find(|r| r.payload.len() > max as usize) {
                reply.complete(Err(WalError::RecordTooLarge { size_bytes: big.payload.len(), max_bytes: max }));
            } else {
                self.staged.push((batch, reply));
            }
            return;
        }
        // Other operations apply in order after the appends before them.
        self.write_staged();
        let result = match op {
            Op::Append(_) => unreachable!("handled above"),
            Op::TruncateSuffix(index) => self.wal.truncate_suffix(index).map(|()| Done::Truncated),
            Op::CompactPrefix(index) => {
                self.wal.compact_prefix(index).map(|segments_removed| Done::Compacted { segments_removed })
            }
            Op::Reset(next) => self.wal.reset(next).map(|()| Done::Reset),
            Op::SaveHardState(bytes) => self.wal.save_hard_state(&bytes).map(|()| Done::HardStateSaved),
            Op::SaveSnapshot(payload) => self.wal.save_snapshot(&payload).map(|()| Done::SnapshotSaved),
            Op::SaveMemory(payload) => self.wal.save_memory(&payload).map(|()| Done::HardStateSaved),
            Op::InstallSnapshot { payload, index } => self.install_snapshot(&payload, index),
            Op::Flush => Ok(Done::Flushed),
        };
        // Truncations and resets change the open segment or sync it.
        self.publish_synced_point();
        match result {
            Ok(done) => self.waiting.push((done, reply)),
            Err(e) => reply.complete(Err(e)),
        }
    }

    /// The snapshot is durable before any record it covers is deleted, so a
    /// crash in between leaves both, never neither.
    fn install_snapshot(&mut self, payload: &[u8], index: u64) -> Result<Done, WalError> {
        self.wal.save_snapshot(payload)?;
        if self.wal.last_index() < index || self.wal.first_index() > index + 1 {
            self.wal.reset(index + 1)?;
        } else {
            self.wal.compact_prefix(index)?;
        }
        Ok(Done::SnapshotInstalled)
    }

    /// Commit delay with siblings (PostgreSQL's commit_delay and
    /// commit_siblings): when the last group had several writers and fewer
    /// are back yet, wait a little for the rest before syncing. Each writer
    /// waits for its reply before writing again, so without this the groups
    /// settle into halves: one half syncing while the other queues. A lone
    /// writer never waits.
    fn wait_for_siblings(&mut self, last_group: usize, wait: Duration) {
        if wait.is_zero() || last_group < 2 {
            return;
        }
        let deadline = Instant::now() + wait;
        while self.staged.len() + self.waiting.len() < last_group {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            match self.rx.recv_timeout(left) {
                Ok(request) => self.apply(request),
                Err(_) => return,
            }
        }
    }

    /// Writes every staged append with one call and queues their replies
    /// for the next sync, each with its own index range.
    fn write_staged(&mut self) {
        if self.staged.is_empty() {
            return;
        }
        let records = self.staged.iter().flat_map(|(batch, _)| batch.iter());
        let result = self.wal.append(records);
        let total: u64 = self.staged.iter().map(|(b, _)| b.len() as u64).sum();
        self.stats.append_calls.fetch_add(self.staged.len() as u64, Ordering::AcqRel);
        self.stats.records.fetch_add(total, Ordering::AcqRel);
        match result {
            Ok(range) => {
                debug_assert_eq!(range.end - range.start, total);
                let mut next = range.start;
                for (batch, reply) in self.staged.drain(..) {
                    let end = next + batch.len() as u64;
                    self.waiting.push((Done::Appended(next..end), reply));
                    next = end;
                }
            }
            Err(e) => {
                let why = e.to_string();
                for (_, reply) in self.staged.drain(..) {
                    reply.complete(Err(WalError::Poisoned(why.clone())));
                }
            }
        }
        // An append may have rolled to a new segment.
        self.publish_synced_point();
    }

    /// Records what a power loss would leave, before anyone is told a
    /// write is durable. Copies the path only when the segment changed.
    fn publish_synced_point(&self) {
        let (path, synced_len_bytes) = self.wal.synced_point();
        let mut point = self.stats.synced_point.lock().expect("synced point lock");
        if point.0 != path {
            point.0 = path.to_path_buf();
        }
        point.1 = synced_len_bytes;
    }

    fn sync_and_reply(&mut self, policy: FsyncPolicy) {
        let synced = match policy {
            FsyncPolicy::Never => Ok(()),
            _ => {
                let started = Instant::now();
                let synced = self.wal.sync();
                self.stats.sync_latency.record(started.elapsed());
                synced
            }
        };
        self.publish_synced_point();
        self.stats.fdatasyncs.store(self.wal.stats().fdatasyncs, Ordering::Release);
        match synced {
            Ok(()) => {
                let durable =
                    if policy == FsyncPolicy::Never { self.wal.last_index() } else { self.wal.durable_index() };
                self.stats.durable_index.store(durable, Ordering::Release);
                for (done, reply) in self.waiting.drain(..) {
                    reply.complete(Ok(done));
                }
            }
            Err(e) => {
                let why = e.to_string();
                for (_, reply) in self.waiting.drain(..) {
                    reply.complete(Err(WalError::Poisoned(why.clone())));
                }
            }
        }
    }
}
