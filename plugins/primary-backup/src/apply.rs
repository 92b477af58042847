//! Moving the watermarks: commit, apply, durability reports, and the
//! snapshots that compact the log or repair a backup.
//!
//! Apply follows commit in the same step, so the engine sees each
//! committed entry once per incarnation, in order, and a `TakeSnapshot`
//! pushed right after an `Apply` finds the state machine at exactly the
//! index it names.

use replab_api::{Effect, Effects, LogIndex, LogPosition, Role, Snapshot, StepError};

use crate::config::Mode;
use crate::node::PrimaryBackup;
use crate::progress::Flow;

impl PrimaryBackup {
    pub(crate) fn commit_to(&mut self, index: LogIndex, out: &mut Effects) {
        assert!(index <= self.log.last_index(), "committing {index} beyond the log ({})", self.log.last_index());
        if index <= self.log.committed {
            return;
        }
        let was_committed_in_generation = self.committed_in_generation();
        if self.role == Role::Leader && self.ack_mode() == Mode::Async && self.peers.members() > 1 {
            // Acknowledged on the primary's disk alone: what no backup
            // holds yet is what a failover can take back.
            let replicated = self.peers.max_match().max(self.log.committed);
            self.stats.acks_before_replication += index - index.min(replicated);
        }
        self.log.committed = index;
        out.push(Effect::Committed { index });
        let entries = self.log.take_unapplied();
        if !entries.is_empty() {
            out.push(Effect::Apply { entries });
        }
        if self.role == Role::Leader && !was_committed_in_generation && self.committed_in_generation() {
            self.on_first_commit_in_generation(out);
        }
        self.maybe_take_snapshot_for_threshold(out);
        self.maybe_take_snapshot_for_backups(out);
    }

    /// True once the commit index reached an entry of this generation: the
    /// primary's commit index then covers everything earlier primaries
    /// committed.
    pub(crate) fn committed_in_generation(&self) -> bool {
        self.log.term_at(self.log.committed) == Some(self.hard_state.term)
    }

    pub(crate) fn on_persisted(&mut self, position: LogPosition, out: &mut Effects) {
        // A report about an entry since truncated and replaced says nothing
        // about the new one at that index.
        if position.index > self.log.durable && self.log.matches(position) {
            self.log.durable = position.index;
            self.maybe_commit(out);
        }
    }

    fn request_snapshot(&mut self, out: &mut Effects) {
        let index = self.log.applied;
        self.snapshot_requested = Some(index);
        out.push(Effect::TakeSnapshot { index });
    }

    fn maybe_take_snapshot_for_threshold(&mut self, out: &mut Effects) {
        let threshold = self.config.snapshot_threshold_entries;
        if threshold > 0 && self.snapshot_requested.is_none() && self.log.applied - self.log.base().index >= threshold {
            self.request_snapshot(out);
        }
    }

    /// A backup waits for a snapshot we do not have yet (it diverged before
    /// we ever took one). Ask once something is applied: a snapshot of the
    /// empty state at index 0 is no snapshot.
    pub(crate) fn maybe_take_snapshot_for_backups(&mut self, out: &mut Effects) {
        let waiting = self.peers.iter().any(|p| matches!(p.progress.flow, Flow::Snapshot { index: 0, .. }));
        if self.role == Role::Leader && waiting && self.snapshot_requested.is_none() && self.log.applied > 0 {
            self.request_snapshot(out);
        }
    }

    pub(crate) fn on_snapshot_taken(&mut self, snapshot: Snapshot, out: &mut Effects) -> Result<(), StepError> {
        let covered = snapshot.meta.last_included;
        if self.snapshot_requested == Some(covered.index) {
            self.snapshot_requested = None;
        }
        if covered.index <= self.log.base().index {
            // A newer snapshot was installed from the primary meanwhile.
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
        if self.role == Role::Leader {
            for peer in self.peers.ids() {
                if let Flow::Snapshot { index: 0, replace, .. } = self.peers.progress_mut(peer).flow {
                    self.send_snapshot(peer, replace, out);
                }
            }
        }
        self.maybe_take_snapshot_for_threshold(out);
        Ok(())
    }
}
