//! Simulated storage: a node's log as a [`LogStore`] (hard state,
//! snapshot, entries), and the [`Disk`] that separates what was written
//! from what was synced.
//!
//! Writes (`Op`s) first land in a pending queue. A sync covers every write
//! issued before it started and completes after a random fsync latency;
//! only then are the writes applied to the durable store, in order, and
//! the sends held for `after_persist` released. A crash throws away the
//! pending queue and the held sends; the durable store survives.

use std::collections::VecDeque;

use bytes::Bytes;
use replab_api::{Entry, HardState, LogIndex, LogPosition, Memory, NodeId, Recovered, Snapshot, Term};

/// One write a policy asked for.
#[derive(Clone, Debug)]
pub enum Op {
    HardState(HardState),
    Truncate(LogIndex),
    Append(Vec<Entry>),
    /// A snapshot received from the leader replaces the log.
    InstallSnapshot(Snapshot),
    /// A snapshot of the local state machine (`TakeSnapshot`); stored in
    /// write order so that it never lands before the log writes that
    /// preceded it.
    StoreSnapshot(Snapshot),
    /// The node's record of what it may have lost (`Memory`).
    Memory(Memory),
}

/// A log with its hard state and latest snapshot.
#[derive(Clone, Debug, Default)]
pub struct LogStore {
    pub hard_state: HardState,
    /// What the node lost and has not yet caught up with.
    pub memory: Memory,
    snapshot: Option<Snapshot>,
    /// Position just before `entries[0]`.
    offset: LogPosition,
    entries: Vec<Entry>,
}

impl LogStore {
    pub fn from_recovered(recovered: &Recovered) -> LogStore {
        let offset = recovered.snapshot.as_ref().map(|s| s.meta.last_included).unwrap_or_default();
        let mut store = LogStore {
            hard_state: recovered.hard_state,
            memory: recovered.memory,
            snapshot: recovered.snapshot.clone(),
            offset,
            entries: Vec::new(),
        };
        store.append(&recovered.entries).expect("initial entries must continue the snapshot");
        store
    }

    /// What a restarting node finds on this disk.
    pub fn to_recovered(&self) -> Recovered {
        let after = self.snapshot_index();
        Recovered {
            hard_state: self.hard_state,
            snapshot: self.snapshot.clone(),
            entries: self.entries.iter().filter(|e| e.index > after).cloned().collect(),
            memory: self.memory,
        }
    }

    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    pub fn snapshot_index(&self) -> LogIndex {
        self.snapshot.as_ref().map_or(0, |s| s.meta.last_included.index)
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn first_index(&self) -> LogIndex {
        self.offset.index + 1
    }

    pub fn last_position(&self) -> LogPosition {
        self.entries.last().map_or(self.offset, Entry::position)
    }

    pub fn last_index(&self) -> LogIndex {
        self.last_position().index
    }

    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index == self.offset.index {
            return Some(self.offset.term);
        }
        if index < self.offset.index || index > self.last_index() {
            return None;
        }
        Some(self.entries[(index - self.offset.index - 1) as usize].term)
    }

    pub fn entry(&self, index: LogIndex) -> Option<&Entry> {
        if index <= self.offset.index || index > self.last_index() {
            return None;
        }
        Some(&self.entries[(index - self.offset.index - 1) as usize])
    }

    /// Whether this store would bring back the entry `(index, term)` after
    /// a crash: it holds it, or its snapshot covers it.
    pub fn covers(&self, index: LogIndex, term: Term) -> bool {
        self.snapshot_index() >= index || self.term_at(index) == Some(term)
    }

    pub fn apply(&mut self, op: &Op) -> Result<(), String> {
        match op {
            Op::HardState(hs) => {
                self.hard_state = *hs;
                Ok(())
            }
            Op::Memory(memory) => {
                self.memory = *memory;
                Ok(())
            }
            Op::Truncate(from) => self.truncate(*from),
            Op::Append(entries) => self.append(entries),
            Op::InstallSnapshot(snapshot) => {
                self.install(snapshot);
                Ok(())
            }
            Op::StoreSnapshot(snapshot) => {
                if snapshot.meta.last_included.index > self.snapshot_index() {
                    self.snapshot = Some(snapshot.clone());
                }
                Ok(())
            }
        }
    }

    fn truncate(&mut self, from: LogIndex) -> Result<(), String> {
        if from <= self.offset.index {
            return Err(format!(
                "truncation at {from} reaches into the compacted prefix (up to {})",
                self.offset.index
            ));
        }
        if from <= self.last_index() {
            self.entries.truncate((from - self.offset.index - 1) as usize);
        }
        Ok(())
    }

    fn append(&mut self, entries: &[Entry]) -> Result<(), String> {
        for entry in entries {
            // Entries a newer snapshot already covers are skipped (the
            // snapshot was synced with or before them).
            if entry.index <= self.offset.index {
                continue;
            }
            if entry.index != self.last_index() + 1 {
                return Err(format!("append of index {} after last index {}: a gap", entry.index, self.last_index()));
            }
            self.entries.push(entry.clone());
        }
        Ok(())
    }

    fn install(&mut self, snapshot: &Snapshot) {
        let covered = snapshot.meta.last_included;
        if self.term_at(covered.index) == Some(covered.term) {
            let keep_from = (covered.index - self.offset.index) as usize;
            self.entries.drain(..keep_from);
        } else {
            self.entries.clear();
        }
        self.offset = covered;
        self.snapshot = Some(snapshot.clone());
    }

    /// Drops entries up to `up_to`, which the snapshot must cover.
    pub fn compact(&mut self, up_to: LogIndex) -> Result<(), String> {
        if up_to > self.snapshot_index() {
            return Err(format!("compaction up to {up_to} beyond the snapshot at {}", self.snapshot_index()));
        }
        if up_to <= self.offset.index {
            return Ok(());
        }
        if up_to <= self.last_index() {
            let term = self.term_at(up_to).expect("inside the log");
            self.entries.drain(..(up_to - self.offset.index) as usize);
            self.offset = LogPosition { index: up_to, term };
        } else {
            // This store's log stops short of the snapshot; nothing of it
            // is left, and the log resumes after the snapshot.
            self.entries.clear();
            self.offset = self.snapshot.as_ref().expect("checked above").meta.last_included;
        }
        Ok(())
    }
}

/// A send held until the writes issued before it are durable.
#[derive(Debug)]
pub struct HeldSend {
    pub needs_seq: u64,
    pub to: NodeId,
    pub bytes: Bytes,
}

/// One node's disk: durable store, pending writes, held sends.
#[derive(Debug, Default)]
pub struct Disk {
    pub durable: LogStore,
    pending: VecDeque<(u64, Op)>,
    last_seq: u64,
    durable_seq: u64,
    pub sync_in_flight: Option<u64>,
    held: VecDeque<HeldSend>,
    /// While stalled, no sync starts (a slow or hung disk).
    pub stalled: bool,
}

impl Disk {
    pub fn new(durable: LogStore) -> Disk {
        Disk { durable, ..Disk::default() }
    }

    pub fn write(&mut self, op: Op) {
        self.last_seq += 1;
        self.pending.push_back((self.last_seq, op));
    }

    pub fn pending_writes(&self) -> usize {
        self.pending.len()
    }

    pub fn held_sends(&self) -> usize {
        self.held.len()
    }

    pub fn has_unsynced(&self) -> bool {
        self.last_seq > self.durable_seq
    }

    /// Holds a send until every write issued so far is durable.
    pub fn hold(&mut self, to: NodeId, bytes: Bytes) {
        self.held.push_back(HeldSend { needs_seq: self.last_seq, to, bytes });
    }

    /// The sequence number a sync started now would cover, if one should
    /// start.
    pub fn sync_to_start(&self) -> Option<u64> {
        if self.stalled || self.sync_in_flight.is_some() || !self.has_unsynced() {
            return None;
        }
        Some(self.last_seq)
    }

    /// Completes a sync up to `up_to`: applies the covered writes to the
    /// durable store, returning the snapshots that became durable and the
    /// sends that may now leave.
    pub fn complete_sync(&mut self, up_to: u64) -> Result<(Vec<Snapshot>, Vec<HeldSend>), String> {
        let mut stored = Vec::new();
        while self.pending.front().is_some_and(|(seq, _)| *seq <= up_to) {
            let (_, op) = self.pending.pop_front().expect("checked");
            self.durable.apply(&op)?;
            if let Op::StoreSnapshot(snapshot) = op {
                stored.push(snapshot);
            }
        }
        self.durable_seq = self.durable_seq.max(up_to);
        self.sync_in_flight = None;
        let mut released = Vec::new();
        while self.held.front().is_some_and(|h| h.needs_seq <= self.durable_seq) {
            released.push(self.held.pop_front().expect("checked"));
        }
        Ok((stored, released))
    }

    /// A crash: unsynced writes and held sends are lost.
    pub fn crash(&mut self) {
        self.pending.clear();
        self.held.clear();
        self.sync_in_flight = None;
        self.durable_seq = self.last_seq;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use replab_api::{EntryKind, SnapshotMeta};

    fn entry(index: LogIndex, term: Term) -> Entry {
        Entry { index, term, kind: EntryKind::Command, data: Bytes::new() }
    }

    fn snapshot(index: LogIndex, term: Term) -> Snapshot {
        Snapshot { meta: SnapshotMeta { last_included: LogPosition { index, term } }, data: Bytes::new() }
    }

    #[test]
    fn writes_become_durable_only_when_synced() {
        let mut disk = Disk::default();
        disk.write(Op::Append(vec![entry(1, 1), entry(2, 1)]));
        disk.hold(2, Bytes::from_static(b"ack"));
        let up_to = disk.sync_to_start().unwrap();
        disk.sync_in_flight = Some(up_to);
        disk.write(Op::Append(vec![entry(3, 1)]));
        disk.hold(3, Bytes::from_static(b"ack3"));
        let (_, released) = disk.complete_sync(up_to).unwrap();
        assert_eq!(released.len(), 1);
        assert_eq!(released[0].to, 2);
        assert_eq!(disk.durable.last_index(), 2);
        disk.crash();
        assert_eq!(disk.durable.last_index(), 2);
        assert!(disk.sync_to_start().is_none());
    }

    #[test]
    fn snapshots_cover_and_compact() {
        let mut log = LogStore::default();
        log.apply(&Op::Append(vec![entry(1, 1), entry(2, 1), entry(3, 2)])).unwrap();
        log.apply(&Op::StoreSnapshot(snapshot(2, 1))).unwrap();
        assert!(log.covers(1, 7), "the snapshot covers index 1 whatever its term");
        log.compact(2).unwrap();
        assert_eq!(log.first_index(), 3);
        assert_eq!(log.term_at(2), Some(1));
        let recovered = log.to_recovered();
        assert_eq!(recovered.entries.len(), 1);
        assert!(log.compact(5).is_err());
    }

    #[test]
    fn installing_a_foreign_snapshot_replaces_the_log() {
        let mut log = LogStore::default();
        log.apply(&Op::Append(vec![entry(1, 1), entry(2, 1)])).unwrap();
        log.apply(&Op::InstallSnapshot(snapshot(5, 3))).unwrap();
        assert_eq!(log.last_position(), LogPosition { index: 5, term: 3 });
        log.apply(&Op::Append(vec![entry(6, 3)])).unwrap();
        assert!(log.apply(&Op::Append(vec![entry(9, 3)])).is_err());
        assert!(log.apply(&Op::Truncate(4)).is_err());
    }
}
