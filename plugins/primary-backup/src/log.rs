//! The in-memory log: the entries after the latest snapshot and the
//! watermarks that move along them (durable, committed, applied).
//!
//! Unlike Raft's log, the committed prefix here is not sacred: under
//! `async` a node can have committed and applied entries that the next
//! primary never had. The only way back is [`PrimaryBackupLog::restore`],
//! which replaces everything with the primary's snapshot, even one that
//! lies below the applied index (a rollback).

use replab_api::{Entry, LogIndex, LogPosition, Snapshot, Term};

pub struct PrimaryBackupLog {
    /// The position the snapshot ends at (index 0, generation 0 when none).
    base: LogPosition,
    /// The latest durable snapshot, kept to send to backups.
    snapshot: Option<Snapshot>,
    /// `entries[k]` has index `base.index + 1 + k`.
    entries: Vec<Entry>,
    pub durable: LogIndex,
    pub committed: LogIndex,
    pub applied: LogIndex,
}

impl PrimaryBackupLog {
    /// Every recovered entry is durable; only the snapshot is known to be
    /// applied (the engine restored the state machine from it).
    pub fn recover(snapshot: Option<Snapshot>, entries: Vec<Entry>) -> PrimaryBackupLog {
        let base = snapshot.as_ref().map_or(LogPosition::default(), |s| s.meta.last_included);
        let continues = entries.iter().zip(base.index + 1..).all(|(entry, index)| entry.index == index);
        assert!(continues, "recovered entries must continue the snapshot at {base:?} without gaps");
        let last = base.index + entries.len() as u64;
        PrimaryBackupLog { base, snapshot, entries, durable: last, committed: base.index, applied: base.index }
    }

    pub fn base(&self) -> LogPosition {
        self.base
    }

    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn first_index(&self) -> LogIndex {
        self.base.index + 1
    }

    pub fn last_index(&self) -> LogIndex {
        self.base.index + self.entries.len() as u64
    }

    pub fn last_position(&self) -> LogPosition {
        self.entries.last().map_or(self.base, Entry::position)
    }

    /// The generation of the entry at `index`; `None` below the snapshot
    /// (unknown) or past the end.
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index == self.base.index {
            return Some(self.base.term);
        }
        let offset = index.checked_sub(self.first_index())?;
        self.entries.get(usize::try_from(offset).ok()?).map(|e| e.term)
    }

    pub fn matches(&self, position: LogPosition) -> bool {
        self.term_at(position.index) == Some(position.term)
    }

    /// The position of `index` when the log knows its generation.
    pub fn position_at(&self, index: LogIndex) -> Option<LogPosition> {
        self.term_at(index).map(|term| LogPosition { index, term })
    }

    /// Entries from `from` on: at most `max_entries` and `max_bytes`, but
    /// at least one when there is any, so one large entry cannot stall
    /// replication. Returns the batch and its size in bytes.
    pub fn batch_from(&self, from: LogIndex, max_entries: usize, max_bytes: usize) -> (&[Entry], usize) {
        assert!(from >= self.first_index(), "batch from {from}, below the log's first index {}", self.first_index());
        let start = ((from - self.first_index()) as usize).min(self.entries.len());
        let mut bytes = 0;
        let taken = self.entries[start..]
            .iter()
            .take(max_entries)
            .take_while(|e| {
                let fits = bytes == 0 || bytes + e.size_bytes() <= max_bytes;
                if fits {
                    bytes += e.size_bytes();
                }
                fits
            })
            .count();
        (&self.entries[start..start + taken], bytes)
    }

    /// Committed entries not yet applied; marks them applied.
    pub fn take_unapplied(&mut self) -> Vec<Entry> {
        assert!(self.applied >= self.base.index, "applied {} below the snapshot {:?}", self.applied, self.base);
        let from = (self.applied - self.base.index) as usize;
        let to = (self.committed - self.base.index) as usize;
        self.applied = self.committed;
        self.entries[from..to].to_vec()
    }

    /// The backup's answer to a probe at `prev` that did not match: its
    /// last entry at or below `prev.index` of generation at most
    /// `prev.term`. `None` when that walk would pass below the snapshot:
    /// the snapshot's own entry is then of a later generation than the
    /// primary's entry at `prev`, so the primary's entry at the snapshot
    /// index differs from ours (generations never decrease along a log).
    pub fn hint_below(&self, prev: LogPosition) -> Option<LogPosition> {
        let mut index = prev.index.min(self.last_index());
        loop {
            let term = self.term_at(index).expect("between the snapshot and the last entry");
            if term <= prev.term {
                return Some(LogPosition { index, term });
            }
            if index == self.base.index {
                return None;
            }
            index -= 1;
        }
    }

    /// The first incoming entry that the log does not already hold.
    pub fn first_new(&self, incoming: &[Entry]) -> Option<LogIndex> {
        incoming.iter().find(|e| !self.matches(e.position())).map(|e| e.index)
    }

    pub fn append(&mut self, entries: &[Entry]) {
        for entry in entries {
            assert_eq!(entry.index, self.last_index() + 1, "appended entries must continue the log");
            assert!(entry.term >= self.last_position().term, "generations in a log never decrease");
            self.entries.push(entry.clone());
        }
    }

    /// Deletes `from` and everything after it. Never a committed entry:
    /// those only go with a rollback ([`PrimaryBackupLog::restore`]).
    pub fn truncate_from(&mut self, from: LogIndex) {
        assert!(from > self.committed, "truncating at {from} would delete committed entries");
        assert!(from > self.base.index, "truncating at {from} inside the snapshot");
        self.entries.truncate((from - self.first_index()) as usize);
        self.durable = self.durable.min(from - 1);
    }

    /// A snapshot of our own applied state is durable: drop what it covers.
    pub fn compact(&mut self, snapshot: Snapshot) {
        let covered = snapshot.meta.last_included;
        assert!(covered.index > self.base.index, "compaction moves forward");
        assert!(covered.index <= self.applied && self.matches(covered), "snapshot {covered:?} is not our applied log");
        self.entries.drain(..(covered.index - self.base.index) as usize);
        self.base = covered;
        self.snapshot = Some(snapshot);
    }

    /// Replaces the log and the state with the primary's snapshot: forward
    /// (catch-up) or backward (rollback of a divergent applied suffix).
    pub fn restore(&mut self, snapshot: Snapshot) {
        let covered = snapshot.meta.last_included;
        self.entries.clear();
        self.base = covered;
        self.snapshot = Some(snapshot);
        self.committed = covered.index;
        self.applied = covered.index;
        self.durable = covered.index;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use replab_api::{EntryKind, SnapshotMeta};

    fn log(terms: &[Term]) -> PrimaryBackupLog {
        let entries = (1..).zip(terms).map(|(index, &term)| entry(index, term, 0)).collect();
        PrimaryBackupLog::recover(None, entries)
    }

    fn entry(index: LogIndex, term: Term, payload: usize) -> Entry {
        Entry { index, term, kind: EntryKind::Command, data: Bytes::from(vec![7u8; payload]) }
    }

    fn at(index: LogIndex, term: Term) -> LogPosition {
        LogPosition { index, term }
    }

    #[test]
    fn hints_walk_back_to_an_older_generation() {
        let l = log(&[1, 1, 2, 2, 3]);
        assert_eq!(l.hint_below(at(9, 2)), Some(at(4, 2)));
        assert_eq!(l.hint_below(at(5, 1)), Some(at(2, 1)));
        assert_eq!(l.hint_below(at(5, 0)), Some(at(0, 0)));
        assert_eq!(l.hint_below(at(u64::MAX, 9)), Some(at(5, 3)));
    }

    #[test]
    fn a_hint_that_would_pass_the_snapshot_means_divergence() {
        let mut l = log(&[1, 2, 2]);
        l.committed = 3;
        l.applied = 3;
        let snapshot = Snapshot { meta: SnapshotMeta { last_included: at(2, 2) }, data: Bytes::new() };
        l.compact(snapshot);
        assert_eq!(l.hint_below(at(3, 1)), None);
        assert_eq!(l.hint_below(at(3, 2)), Some(at(3, 2)));
        assert_eq!(l.term_at(1), None);
    }

    #[test]
    fn batches_carry_at_least_one_entry() {
        let mut l = log(&[]);
        l.append(&(1..=6).map(|i| entry(i, 1, 83)).collect::<Vec<_>>());
        assert_eq!(l.batch_from(1, 4, 10_000).0.len(), 4);
        assert_eq!(l.batch_from(1, 64, 250), (&l.entries()[0..2], 200));
        assert_eq!(l.batch_from(2, 64, 1).0.len(), 1);
        assert!(l.batch_from(7, 64, 10_000).0.is_empty());
    }

    #[test]
    fn restore_can_go_backwards() {
        let mut l = log(&[1, 1, 1, 1]);
        l.committed = 4;
        l.applied = 4;
        let snapshot = Snapshot { meta: SnapshotMeta { last_included: at(2, 2) }, data: Bytes::new() };
        l.restore(snapshot);
        assert_eq!((l.last_position(), l.committed, l.applied), (at(2, 2), 2, 2));
    }
}
