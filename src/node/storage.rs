//! The node's durable state: recovery at start, and the ordered stream of
//! writes the policy's effects turn into.
//!
//! Everything durable goes through one `WalHandle` in submission order:
//! log appends and truncations, the hard state, snapshots. Each write gets
//! a sequence number; the log thread completes them in order, so "write n
//! is durable" implies every earlier one is too. That single number is all
//! the node needs to hold back the messages that promise durability.

use std::path::Path;

use tokio::sync::mpsc;

use bytes::Bytes;
use replab_api::{Entry, HardState, KeyedRecovered, LogIndex, LogPosition, Memory, Recovered, Snapshot};
use tracing::warn;

use crate::kv::{Kv, KvConfig};
use crate::wal::group_commit::{Completion, Done, Op};
use crate::wal::{DamageFound, RecordBatch, RecoveryReport, Wal, WalError, WalHandle, WalOptions};

/// WAL record kind of a log entry (log-based policies).
pub const ENTRY_RECORD: u8 = 1;

/// WAL record kind of a keyed policy's own record.
pub const POLICY_RECORD: u8 = 2;

/// What a record kind says about who wrote the directory, for errors.
fn writer_of(kind: u8) -> &'static str {
    match kind {
        ENTRY_RECORD => "a log entry, written by a log-based policy (raft)",
        POLICY_RECORD => "a keyed policy's record (leaderless)",
        _ => "not a record replab writes",
    }
}

/// A node's disk, read back.
pub struct Recovery {
    pub wal: Wal,
    pub recovered: Recovered,
    pub kv: Kv,
    pub report: RecoveryReport,
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error("corrupt durable state in {dir}: {reason}")]
    Inconsistent { dir: String, reason: String },
}

/// How the node's directory came to be, as far as its owner knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The caller created this directory for a brand-new cluster (the
    /// embedded cluster's first start): an empty directory is a first
    /// start, with nothing to forget.
    NewCluster,
    /// Anything else. An empty directory may be a first start or a wiped
    /// disk, and the node must assume the worst (`Memory::Blank`).
    Existing,
}

/// Opens the node's log, hard state and snapshot, restores the key-value
/// store from the snapshot and checks that the three agree. Disagreement
/// (a snapshot that does not reach the log, terms beyond the hard state) is
/// an error naming the directory: the node must not start on a state that
/// could make it forget what it promised.
pub fn recover(dir: &Path, options: WalOptions, kv_config: KvConfig, origin: Origin) -> Result<Recovery, StorageError> {
    let bad = |reason: String| StorageError::Inconsistent { dir: dir.display().to_string(), reason };
    let (mut wal, report) = Wal::open(dir, options)?;
    let stored_memory: Option<Memory> = match wal.load_memory()? {
        Some(bytes) => Some(postcard::from_bytes(&bytes).map_err(|e| bad(format!("undecodable memory record: {e}")))?),
        None => None,
    };
    let hard_state: HardState = match wal.hard_state() {
        Some(bytes) => postcard::from_bytes(bytes).map_err(|e| bad(format!("undecodable hard state: {e}")))?,
        None => HardState::default(),
    };
    let snapshot: Option<Snapshot> = match wal.load_snapshot()? {
        Some(bytes) => Some(postcard::from_bytes(&bytes).map_err(|e| bad(format!("undecodable snapshot: {e}")))?),
        None => None,
    };
    let blank = wal.hard_state().is_none() && wal.is_empty() && snapshot.is_none();
    let memory = match stored_memory {
        Some(memory) => memory,
        None if blank && origin == Origin::Existing => {
            // Recorded before the node makes any promise, so a crash while
            // it catches up cannot make it look whole.
            let memory = Memory::Blank;
            wal.save_memory(&postcard::to_allocvec(&memory).expect("memory serializes"))?;
            memory
        }
        None => Memory::Intact,
    };
    let kv = match &snapshot {
        Some(s) => Kv::restore(s, kv_config).map_err(bad)?,
        None => Kv::new(kv_config),
    };
    let snap = snapshot.as_ref().map(|s| s.meta.last_included).unwrap_or_default();
    if wal.first_index() > snap.index + 1 {
        return Err(bad(format!(
            "the log starts at index {} but the snapshot only covers up to {}: entries in between are missing",
            wal.first_index(),
            snap.index
        )));
    }
    if wal.last_index() < snap.index {
        // The node crashed between storing an installed snapshot and
        // restarting its log after it; finish that step.
        wal.reset(snap.index + 1)?;
    }
    let from = wal.first_index().max(snap.index + 1);
    let records = wal.read_range(from..wal.last_index() + 1)?;
    let mut entries = Vec::with_capacity(records.len());
    let mut prev = snap;
    for record in records {
        if record.kind != ENTRY_RECORD {
            return Err(bad(format!(
                "record {} has kind {}, {}, where a log entry was expected: this directory belongs to another \
                 policy; start the node with that policy, or on a new directory",
                record.index,
                record.kind,
                writer_of(record.kind)
            )));
        }
        let entry: Entry = postcard::from_bytes(&record.payload)
            .map_err(|e| bad(format!("undecodable entry in record {}: {e}", record.index)))?;
        if entry.index != record.index || entry.term < prev.term {
            return Err(bad(format!(
                "record {} holds entry {} of term {} after term {}",
                record.index, entry.index, entry.term, prev.term
            )));
        }
        prev = entry.position();
        entries.push(entry);
    }
    if prev.term > hard_state.term {
        return Err(bad(format!(
            "the log holds term {} beyond the hard state's term {}: the hard state file was lost or rolled back",
            prev.term, hard_state.term
        )));
    }
    Ok(Recovery { wal, recovered: Recovered { hard_state, snapshot, entries, memory }, kv, report })
}

/// A keyed policy's disk, read back.
pub struct KeyedRecovery {
    pub wal: Wal,
    pub recovered: KeyedRecovered,
    pub report: RecoveryReport,
    /// The node found state missing and took a new incarnation.
    pub renewed: bool,
}

/// Opens the log of a node that runs a keyed policy: its latest checkpoint
/// (stored where a log-based policy keeps its snapshot) and the records
/// after it, which must all be the policy's own, and its incarnation.
///
/// A node that finds state missing (an empty directory that `origin` does
/// not vouch for as a new cluster's, or a log cut by `repair`, whose
/// `memory` record says so) gets a new incarnation before its policy
/// starts: a policy names versions by node and incarnation, and what the
/// node lost may include names its peers hold. The new one is the node's
/// generation (`now_us`, the wall clock, or above every earlier start's
/// kept in this directory), so it differs from every incarnation this node
/// had, unless its directory was lost and its clock reads exactly the
/// microsecond of an earlier start. It is durable before the policy runs;
/// only then is a repair's `memory` record cleared.
pub fn recover_keyed(
    dir: &Path,
    options: WalOptions,
    origin: Origin,
    now_us: u64,
) -> Result<KeyedRecovery, StorageError> {
    let bad = |reason: String| StorageError::Inconsistent { dir: dir.display().to_string(), reason };
    let (mut wal, report) = Wal::open(dir, options)?;
    let stored_memory: Option<Memory> = match wal.load_memory()? {
        Some(bytes) => Some(postcard::from_bytes(&bytes).map_err(|e| bad(format!("undecodable memory record: {e}")))?),
        None => None,
    };
    let checkpoint = wal.load_snapshot()?.map(Bytes::from);
    let records = wal.read_range(wal.first_index()..wal.last_index() + 1)?;
    let mut payloads = Vec::with_capacity(records.len());
    for record in records {
        if record.kind != POLICY_RECORD {
            return Err(bad(format!(
                "record {} has kind {}, {}, where a keyed policy's record was expected: this directory belongs \
                 to another policy; start the node with that policy, or on a new directory",
                record.index,
                record.kind,
                writer_of(record.kind)
            )));
        }
        payloads.push(Bytes::from(record.payload));
    }
    let blank = checkpoint.is_none() && wal.is_empty();
    let repaired = stored_memory.is_some_and(|m| !m.is_intact());
    let renewed = repaired || (blank && origin == Origin::Existing);
    let incarnation = if renewed {
        // Never 0, which means "never lost anything".
        let fresh = wal.next_generation(now_us)?.max(1);
        crate::wal::store_incarnation_in(dir, fresh)?;
        if repaired {
            wal.save_memory(&postcard::to_allocvec(&Memory::Intact).expect("memory serializes"))?;
        }
        fresh
    } else {
        crate::wal::load_incarnation_in(dir)?
    };
    let recovered = KeyedRecovered { checkpoint, records: payloads, last_seq: wal.last_index(), incarnation };
    Ok(KeyedRecovery { wal, recovered, report, renewed })
}

/// What `repair` did.
#[derive(Clone, Debug)]
pub struct Repaired {
    pub damage: DamageFound,
    /// How far the log reached before the cut, as the policy is told.
    pub reached: LogPosition,
}

/// Cuts a log that refuses to open at its first damage, on an operator's
/// request. First it records durably how far the log reached (the last
/// entry that still verifies after the damage), so that the policy knows
/// what it may have acknowledged and lost (`Memory::Truncated`); then it
/// cuts. A crash between the two leaves the damage and the record, and
/// repairing again finishes the job. Returns `None` if nothing needed
/// repair.
pub fn repair(dir: &Path, options: &WalOptions) -> Result<Option<Repaired>, StorageError> {
    let bad = |reason: String| StorageError::Inconsistent { dir: dir.display().to_string(), reason };
    let Some(damage) = crate::wal::inspect(dir, options)? else {
        return Ok(None);
    };
    let hard_state: HardState = match crate::wal::load_hard_state_in(dir)? {
        Some(bytes) => postcard::from_bytes(&bytes).map_err(|e| bad(format!("undecodable hard state: {e}")))?,
        None => HardState::default(),
    };
    let reached = match damage.last_valid.as_ref().map(|r| postcard::from_bytes::<Entry>(&r.payload)) {
        Some(Ok(entry)) => entry.position(),
        // Nothing decodable survived: the log reached at least the damaged
        // record, whose term is at most the hard state's. Assuming that
        // term may refuse a vote a perfect memory would grant, never the
        // other way round.
        _ => LogPosition { index: damage.index, term: hard_state.term },
    };
    let stored: Option<Memory> = match crate::wal::load_memory_in(dir)? {
        Some(bytes) => Some(postcard::from_bytes(&bytes).map_err(|e| bad(format!("undecodable memory record: {e}")))?),
        None => None,
    };
    let memory = stored.unwrap_or_default().merge(Memory::Truncated { reached });
    crate::wal::store_memory_in(dir, &postcard::to_allocvec(&memory).expect("memory serializes"))?;
    crate::wal::repair(dir, options, &damage)?;
    warn!(
        "repaired the log in {}: removed {} record(s) from index {} on ({}); until it catches up from its peers \
         this node votes only for candidates at least as up to date as index {} of term {}, and never campaigns",
        dir.display(),
        damage.records_removed(),
        damage.index,
        damage,
        reached.index,
        reached.term
    );
    Ok(Some(Repaired { damage, reached }))
}

/// What the log thread reports back to the event loop.
#[derive(Debug)]
pub struct StorageDone {
    pub seq: u64,
    pub result: Result<Done, WalError>,
    pub kind: WriteKind,
}

#[derive(Debug)]
pub enum WriteKind {
    /// Entries up to this position are durable.
    Append(LogPosition),
    /// A snapshot the node took: tell the policy.
    SnapshotSaved(Snapshot),
    /// A keyed policy's records (their indexes are in the completion).
    Records,
    Other,
}

/// A write's completion: its number and kind, sent back to the loop.
struct Completed {
    seq: u64,
    kind: WriteKind,
    tx: mpsc::UnboundedSender<StorageDone>,
}

impl Completion for Completed {
    fn complete(self, result: Result<Done, WalError>) {
        // The loop is gone only when the node is shutting down.
        let _ = self.tx.send(StorageDone { seq: self.seq, result, kind: self.kind });
    }
}

/// The submitting side of the node's disk.
///
/// Writes are numbered when the loop asks for them, but reach the log
/// thread only when the loop's turn ends ([`Storage::submit_queued`]),
/// after the turn's messages went out: waking the log thread mid-turn can
/// hand it the CPU before the leader's appends reach the followers, whose
/// round trip and fdatasync are the slow half of a commit. The leader's
/// own write overlaps that round trip either way.
pub struct Storage {
    handle: Option<WalHandle<Completed>>,
    done_tx: mpsc::UnboundedSender<StorageDone>,
    submitted: u64,
    queued: Vec<(Op, Completed)>,
}

impl Storage {
    pub fn new(wal: Wal) -> (Storage, mpsc::UnboundedReceiver<StorageDone>) {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        (Storage { handle: Some(WalHandle::spawn_with(wal)), done_tx, submitted: 0, queued: Vec::new() }, done_rx)
    }

    /// Sequence number of the last write asked for (numbered at once,
    /// handed to the log thread at the end of the turn).
    pub fn last_submitted(&self) -> u64 {
        self.submitted
    }

    fn submit(&mut self, op: Op, kind: WriteKind) -> u64 {
        self.submitted += 1;
        let seq = self.submitted;
        assert!(self.handle.is_some(), "storage is open");
        self.queued.push((op, Completed { seq, kind, tx: self.done_tx.clone() }));
        seq
    }

    /// Hands the log thread every write asked for since the last call, in
    /// order. The loop calls it once per turn, after its network flush.
    pub fn submit_queued(&mut self) {
        let Some(handle) = self.handle.as_ref() else { return };
        for (op, reply) in self.queued.drain(..) {
            handle.submit(op, reply);
        }
    }

    pub fn append(&mut self, entries: &[Entry]) -> u64 {
        let last = entries.last().expect("appends carry entries").position();
        let mut batch = RecordBatch::new();
        for entry in entries {
            batch.push_with(ENTRY_RECORD, |buf| {
                let encoded = postcard::to_extend(entry, std::mem::take(buf)).expect("entries serialize");
                *buf = encoded;
            });
        }
        self.submit(Op::Append(batch), WriteKind::Append(last))
    }

    pub fn truncate(&mut self, from: LogIndex) -> u64 {
        self.submit(Op::TruncateSuffix(from), WriteKind::Other)
    }

    /// Appends a keyed policy's records; the completion names their
    /// indexes, which are the policy's sequence numbers.
    pub fn append_records(&mut self, batch: RecordBatch) -> u64 {
        self.submit(Op::Append(batch), WriteKind::Records)
    }

    /// Stores a keyed policy's checkpoint, then drops the records it covers
    /// (up to `covers`) once a segment holds nothing newer.
    pub fn save_checkpoint(&mut self, state: &[u8], covers: u64) -> u64 {
        self.submit(Op::SaveSnapshot(state.to_vec()), WriteKind::Other);
        self.submit(Op::CompactPrefix(covers), WriteKind::Other)
    }

    pub fn save_memory(&mut self, memory: Memory) -> u64 {
        let bytes = postcard::to_allocvec(&memory).expect("memory serializes");
        self.submit(Op::SaveMemory(bytes), WriteKind::Other)
    }

    pub fn save_hard_state(&mut self, hard_state: HardState) -> u64 {
        let bytes = postcard::to_allocvec(&hard_state).expect("hard state serializes");
        self.submit(Op::SaveHardState(bytes), WriteKind::Other)
    }

    pub fn save_snapshot(&mut self, snapshot: Snapshot) -> u64 {
        let bytes = postcard::to_allocvec(&snapshot).expect("snapshots serialize");
        self.submit(Op::SaveSnapshot(bytes), WriteKind::SnapshotSaved(snapshot))
    }

    pub fn install_snapshot(&mut self, snapshot: &Snapshot) -> u64 {
        let bytes = postcard::to_allocvec(snapshot).expect("snapshots serialize");
        let index = snapshot.meta.last_included.index;
        self.submit(Op::InstallSnapshot { payload: bytes, index }, WriteKind::Other)
    }

    pub fn compact(&mut self, up_to: LogIndex) -> u64 {
        self.submit(Op::CompactPrefix(up_to), WriteKind::Other)
    }

    /// Writes what is queued and stops the log thread.
    pub fn close(&mut self) {
        self.submit_queued();
        if let Some(handle) = self.handle.take() {
            handle.close();
        }
    }

    /// Drops what is queued, as a killed process would. `lose_unsynced`:
    /// as a power loss would, also drop what was written but not synced.
    pub fn abandon(&mut self, lose_unsynced: bool) {
        // Asked for, never handed to the log thread: gone with the memory.
        self.queued.clear();
        if let Some(handle) = self.handle.take() {
            if lose_unsynced {
                if let Err(e) = handle.abandon_losing_unsynced() {
                    warn!("the simulated power loss could not cut the log's unsynced tail: {e}");
                }
            } else {
                handle.abandon();
            }
        }
    }

    /// The log thread's counters (fdatasyncs, records appended).
    pub fn wal_stats(&self) -> crate::wal::WalStatsSnapshot {
        self.handle.as_ref().map(WalHandle::stats).unwrap_or_default()
    }

    /// The log thread's fdatasync latencies (for the metrics endpoint).
    pub fn sync_latency(&self) -> std::sync::Arc<crate::histogram::LatencyHistogram> {
        self.handle.as_ref().map(WalHandle::sync_latency).unwrap_or_default()
    }
}
