//! Moving the watermarks: commit, apply, durability reports, and the
//! snapshot cycle that moves the low watermark (compaction).
//!
//! Apply follows commit within the same step, so the engine sees every
//! committed entry exactly once per incarnation, in order. A snapshot is
//! requested right after the `Apply` that crosses the threshold, so the
//! state machine has applied exactly the requested index when it is taken.

use replab_api::{Effect, Effects, LogIndex, LogPosition, Role, Snapshot, StepError};

use crate::raft::Raft;

impl Raft {
    pub(crate) fn commit_to(&mut self, index: LogIndex, out: &mut Effects) {
        assert!(index <= self.log.last_index(), "committing {index} beyond the log ({})", self.log.last_index());
        if index <= self.log.committed {
            return;
        }
        let had_committed_in_term = self.committed_in_term();
        self.log.committed = index;
        out.push(Effect::Committed { index });
        self.apply_committed(out);
        if self.role == Role::Leader && !had_committed_in_term && self.committed_in_term() {
            self.on_first_commit_in_term(out);
        }
    }

    fn apply_committed(&mut self, out: &mut Effects) {
        if self.log.applied < self.log.committed {
            let entries = self.log.slice(self.log.applied + 1, self.log.committed).to_vec();
            self.log.applied = self.log.committed;
            out.push(Effect::Apply { entries });
        }
        self.maybe_request_snapshot(out);
    }

    fn maybe_request_snapshot(&mut self, out: &mut Effects) {
        let threshold = self.config.snapshot_threshold_entries;
        if threshold == 0 || self.snapshot_requested.is_some() {
            return;
        }
        if self.log.applied - self.log.snapshot_index() >= threshold {
            let index = self.log.applied;
            self.snapshot_requested = Some(index);
            out.push(Effect::TakeSnapshot { index });
        }
    }

    pub(crate) fn on_persisted(&mut self, position: LogPosition, out: &mut Effects) {
        // A report about an entry that was since truncated and replaced
        // says nothing about the new one at that index.
        if position.index > self.log.durable && self.log.matches(position) {
            self.log.durable = position.index;
            self.maybe_commit(out);
        }
    }

    pub(crate) fn on_snapshot_taken(&mut self, snapshot: Snapshot, out: &mut Effects) -> Result<(), StepError> {
        let covered = snapshot.meta.last_included;
        if self.snapshot_requested == Some(covered.index) {
            self.snapshot_requested = None;
        }
        if covered.index <= self.log.snapshot_index() {
            // A newer snapshot was installed from the leader meanwhile.
            return Ok(());
        }
        if covered.index > self.log.applied || !self.log.matches(covered) {
            return Err(StepError::Rejected(format!(
                "snapshot at {covered:?} does not match the applied log (applied {})",
                self.log.applied
            )));
        }
        self.log.compact(snapshot);
        out.push(Effect::CompactLog { up_to: covered.index });
        // The threshold may already be crossed again.
        self.maybe_request_snapshot(out);
        Ok(())
    }
}
