//! The in-memory Raft log: entries after the latest snapshot, plus the
//! watermarks (committed, applied, durable) that move along it.
//!
//! Index arithmetic lives here and nowhere else. The log is
//! `snapshot.last_included` (the offset, index 0 and term 0 for an empty
//! log) followed by `entries`, whose indexes continue without gaps.

use replab_api::{Entry, LogIndex, LogPosition, Snapshot, Term};

pub struct RaftLog {
    /// Position of the last entry covered by the snapshot (the low
    /// watermark). `(0, 0)` when nothing was ever compacted.
    offset: LogPosition,
    /// The latest durable snapshot, kept whole so it can be sent to a
    /// follower that fell behind the compaction point.
    snapshot: Option<Snapshot>,
    entries: Vec<Entry>,
    /// The high watermark: entries up to here are committed.
    pub committed: LogIndex,
    /// Entries up to here were handed to the state machine.
    pub applied: LogIndex,
    /// Entries up to here are durable on this node.
    pub durable: LogIndex,
}

impl RaftLog {
    /// Rebuilds the log from recovered durable state. Every recovered entry
    /// is durable; nothing beyond the snapshot is known to be committed.
    pub fn recover(snapshot: Option<Snapshot>, entries: Vec<Entry>) -> RaftLog {
        let offset = snapshot.as_ref().map(|s| s.meta.last_included).unwrap_or_default();
        for (i, entry) in entries.iter().enumerate() {
            assert_eq!(
                entry.index,
                offset.index + 1 + i as u64,
                "recovered entries must continue the snapshot at {} without gaps",
                offset.index
            );
        }
        let last = offset.index + entries.len() as u64;
        RaftLog { offset, snapshot, entries, committed: offset.index, applied: offset.index, durable: last }
    }

    pub fn first_index(&self) -> LogIndex {
        self.offset.index + 1
    }

    pub fn last_index(&self) -> LogIndex {
        self.offset.index + self.entries.len() as u64
    }

    pub fn last_position(&self) -> LogPosition {
        match self.entries.last() {
            Some(entry) => entry.position(),
            None => self.offset,
        }
    }

    pub fn snapshot_index(&self) -> LogIndex {
        self.offset.index
    }

    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The term of the entry at `index`, or `None` if it was compacted away
    /// or is beyond the end of the log.
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index == self.offset.index {
            return Some(self.offset.term);
        }
        if index < self.offset.index || index > self.last_index() {
            return None;
        }
        Some(self.entries[(index - self.offset.index - 1) as usize].term)
    }

    pub fn matches(&self, position: LogPosition) -> bool {
        self.term_at(position.index) == Some(position.term)
    }

    /// Raft §5.4.1: a candidate's log is at least as up to date as ours if
    /// its last term is higher, or equal with an index at least as high.
    pub fn is_up_to_date(&self, candidate_last: LogPosition) -> bool {
        candidate_last.at_least_as_up_to_date_as(self.last_position())
    }

    /// Entries `from ..= to`, both inside the log.
    pub fn slice(&self, from: LogIndex, to: LogIndex) -> &[Entry] {
        assert!(from >= self.first_index() && to <= self.last_index(), "slice {from}..={to} outside the log");
        if from > to {
            return &[];
        }
        let lo = (from - self.first_index()) as usize;
        let hi = (to - self.first_index()) as usize;
        &self.entries[lo..=hi]
    }

    /// A batch for one append message starting at `from`: at most
    /// `max_entries` entries and `max_bytes` bytes, but always at least one
    /// entry when there is any, so a huge entry cannot stall replication.
    pub fn batch_from(&self, from: LogIndex, max_entries: usize, max_bytes: usize) -> (&[Entry], usize) {
        if from > self.last_index() {
            return (&[], 0);
        }
        assert!(from >= self.first_index(), "batch from {from} below the first index {}", self.first_index());
        let lo = (from - self.first_index()) as usize;
        let mut bytes = 0usize;
        let mut count = 0usize;
        for entry in &self.entries[lo..] {
            let size = entry.size_bytes();
            if count == max_entries || (count > 0 && bytes + size > max_bytes) {
                break;
            }
            bytes += size;
            count += 1;
        }
        (&self.entries[lo..lo + count], bytes)
    }

    /// The index of the first entry of `incoming` that is not already in
    /// the log with the same term: a conflict or the first new entry.
    /// `None` when every incoming entry is already present.
    pub fn find_conflict(&self, incoming: &[Entry]) -> Option<LogIndex> {
        incoming.iter().find(|e| !self.matches(e.position())).map(|e| e.index)
    }

    /// The last position at or below `index` whose term is at most `term`
    /// (etcd's `findConflictByTerm`, Raft thesis §5.3). A follower answers
    /// a rejected append with it, and the leader uses it to skip a whole
    /// term of conflicting entries per round trip instead of one entry.
    /// Returns term 0 when the search reaches the compacted prefix, whose
    /// terms are unknown.
    pub fn find_conflict_by_term(&self, index: LogIndex, term: Term) -> LogPosition {
        let mut index = index.min(self.last_index());
        loop {
            match self.term_at(index) {
                Some(found) if found > term => {
                    // term_at(0) is 0, which is never above `term`, so the
                    // walk stops before going below zero.
                    assert!(index > 0, "term 0 at index 0 is never above {term}");
                    index -= 1;
                }
                Some(found) => return LogPosition { index, term: found },
                None => return LogPosition { index, term: 0 },
            }
        }
    }

    /// Appends entries that continue the log.
    pub fn append(&mut self, entries: &[Entry]) {
        for entry in entries {
            assert_eq!(entry.index, self.last_index() + 1, "appended entries must continue the log");
            assert!(entry.term >= self.last_position().term, "terms in the log never decrease");
            self.entries.push(entry.clone());
        }
    }

    /// Deletes the entry at `from` and everything after it.
    pub fn truncate_from(&mut self, from: LogIndex) {
        assert!(
            from > self.committed,
            "truncating at {from} would delete committed entries (commit {})",
            self.committed
        );
        assert!(from >= self.first_index(), "truncating at {from} inside the snapshot");
        if from > self.last_index() {
            return;
        }
        self.entries.truncate((from - self.first_index()) as usize);
        self.durable = self.durable.min(from - 1);
    }

    /// The snapshot a `TakeSnapshot` asked for is durable: drop the entries
    /// it covers.
    pub fn compact(&mut self, snapshot: Snapshot) {
        let covered = snapshot.meta.last_included;
        assert!(covered.index > self.offset.index, "compaction must move forward");
        assert!(covered.index <= self.applied, "a snapshot covers only applied entries");
        assert!(self.matches(covered), "snapshot position {covered:?} is not in the log");
        let drop = (covered.index - self.offset.index) as usize;
        self.entries.drain(..drop);
        self.offset = covered;
        self.snapshot = Some(snapshot);
        self.durable = self.durable.max(covered.index);
    }

    /// Replaces the whole log with a snapshot received from the leader.
    pub fn restore(&mut self, snapshot: Snapshot) {
        let covered = snapshot.meta.last_included;
        assert!(covered.index > self.committed, "a restored snapshot must be newer than the commit index");
        self.entries.clear();
        self.offset = covered;
        self.snapshot = Some(snapshot);
        self.committed = covered.index;
        self.applied = covered.index;
        self.durable = self.durable.min(covered.index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use replab_api::{EntryKind, SnapshotMeta};

    fn log_of(terms: &[Term]) -> RaftLog {
        let entries = terms
            .iter()
            .enumerate()
            .map(|(i, &term)| Entry { index: i as u64 + 1, term, kind: EntryKind::Command, data: Bytes::new() })
            .collect();
        RaftLog::recover(None, entries)
    }

    fn at(index: LogIndex, term: Term) -> LogPosition {
        LogPosition { index, term }
    }

    #[test]
    fn term_lookup_covers_offset_entries_and_beyond() {
        let log = log_of(&[1, 1, 2]);
        assert_eq!(log.term_at(0), Some(0));
        assert_eq!(log.term_at(3), Some(2));
        assert_eq!(log.term_at(4), None);
        assert_eq!(log.term_at(u64::MAX), None);
    }

    #[test]
    fn conflict_by_term_on_figure_7_followers() {
        // Leader of term 8 in the Raft paper's Figure 7.
        let leader = log_of(&[1, 1, 1, 4, 4, 5, 5, 6, 6, 6]);
        // (f) answers a probe at (10, 6) with its last entry of term <= 6
        // at or below index 10: (10, 3).
        let f = log_of(&[1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3]);
        let hint = f.find_conflict_by_term(10, 6);
        assert_eq!(hint, at(10, 3));
        // The leader then skips to its last entry of term <= 3: index 3.
        assert_eq!(leader.find_conflict_by_term(hint.index, hint.term), at(3, 1));
        // (e): hint (7, 4); the leader's last entry with term <= 4 is 5.
        let e = log_of(&[1, 1, 1, 4, 4, 4, 4]);
        let hint = e.find_conflict_by_term(10, 6);
        assert_eq!(hint, at(7, 4));
        assert_eq!(leader.find_conflict_by_term(hint.index, hint.term), at(5, 4));
        // (b): shorter log, the hint is simply its last entry.
        let b = log_of(&[1, 1, 1, 4]);
        assert_eq!(b.find_conflict_by_term(10, 6), at(4, 4));
        // (d): longer log with later terms; the probe at 10 matches there.
        let d = log_of(&[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7]);
        assert_eq!(d.find_conflict_by_term(10, 6), at(10, 6));
        // An index far beyond the log neither panics nor overflows.
        assert_eq!(d.find_conflict_by_term(u64::MAX, 0), at(0, 0));
    }

    #[test]
    fn conflict_search_stops_at_the_compacted_prefix() {
        let mut log = log_of(&[1, 2, 3, 4]);
        log.committed = 4;
        log.applied = 4;
        let snapshot = Snapshot { meta: SnapshotMeta { last_included: at(2, 2) }, data: Bytes::new() };
        log.compact(snapshot);
        assert_eq!(log.first_index(), 3);
        assert_eq!(log.term_at(1), None);
        assert_eq!(log.find_conflict_by_term(4, 1), at(1, 0));
        assert_eq!(log.find_conflict_by_term(4, 2), at(2, 2));
    }

    #[test]
    fn find_conflict_skips_matching_entries() {
        let log = log_of(&[1, 1, 2]);
        let e = |index, term| Entry { index, term, kind: EntryKind::Command, data: Bytes::new() };
        assert_eq!(log.find_conflict(&[e(2, 1), e(3, 2)]), None);
        assert_eq!(log.find_conflict(&[e(2, 1), e(3, 3)]), Some(3));
        assert_eq!(log.find_conflict(&[e(3, 2), e(4, 2)]), Some(4));
    }

    #[test]
    fn batches_respect_count_and_bytes_but_carry_one_entry() {
        let mut log = log_of(&[]);
        let entries: Vec<Entry> = (1..=10)
            .map(|i| Entry { index: i, term: 1, kind: EntryKind::Command, data: Bytes::from(vec![0u8; 83]) })
            .collect();
        log.append(&entries);
        // Each entry costs 100 bytes.
        assert_eq!(log.batch_from(1, 4, 10_000).0.len(), 4);
        assert_eq!(log.batch_from(1, 64, 250).0.len(), 2);
        assert_eq!(log.batch_from(1, 64, 10).0.len(), 1);
        assert_eq!(log.batch_from(9, 64, 10_000).0.len(), 2);
        assert_eq!(log.batch_from(11, 64, 10_000).0.len(), 0);
    }

    #[test]
    fn truncation_lowers_the_durable_index() {
        let mut log = log_of(&[1, 1, 1]);
        assert_eq!(log.durable, 3);
        log.truncate_from(2);
        assert_eq!(log.last_index(), 1);
        assert_eq!(log.durable, 1);
    }
}
