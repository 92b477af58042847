//! A member that lost durable state, handled conservatively.
//!
//! Promises are only as good as the promiser's memory: a node that lost
//! entries it acknowledged, or the record of a promise, and went on
//! promising as if its shorter log were all it ever had, could help a
//! claimant without those entries to a majority. So, by what the node
//! knows of its loss ([`Memory`]):
//!
//! * `Truncated { reached }` (after `--repair-wal`): it promises only to
//!   claimants at least as up to date as `reached`, and never claims.
//! * `Blank` (nothing on disk, and no telling a first start from a wiped
//!   disk): it promises nothing and never claims.
//!
//! Either way it still accepts and acknowledges a primary's appends
//! (those acknowledgements are true) and flags every rejection with
//! `memory_lost`, so the primary forgets the match index it had for it
//! and probes from scratch.
//!
//! The loss is over once the node durably holds an entry of its primary's
//! generation at or below the primary's commit index (everything committed
//! before is then in its log), or, when truncated, once its durable log is
//! again as up to date as `reached`. It then pushes `MemoryRestored`.
//!
//! Unlike Raft this plugin does not ask whether every other member is
//! blank too: a cluster whose majority lost its disks elects no primary
//! until an operator intervenes (docs/PRIMARY_BACKUP.md).

use replab_api::{Effect, Effects, LogPosition, Memory, Role};

use crate::node::PrimaryBackup;

impl PrimaryBackup {
    pub(crate) fn memory_allows_promise(&self, claimant_last: LogPosition) -> bool {
        match self.memory {
            Memory::Intact => true,
            Memory::Truncated { reached } => claimant_last.at_least_as_up_to_date_as(reached),
            Memory::Blank => false,
        }
    }

    pub(crate) fn maybe_restore_memory(&mut self, out: &mut Effects) {
        if self.memory.is_intact() {
            return;
        }
        let durable = self.log.position_at(self.log.durable).unwrap_or_default();
        let reached_again = match self.memory {
            Memory::Truncated { reached } => durable.at_least_as_up_to_date_as(reached),
            _ => false,
        };
        let committed = self.log.committed;
        let caught_up_with_primary = self.role == Role::Follower
            && self.primary.is_some()
            && committed > 0
            && committed <= self.log.durable
            && self.log.term_at(committed) == Some(self.hard_state.term);
        if reached_again || caught_up_with_primary {
            self.memory = Memory::Intact;
            self.stats.memory_restored += 1;
            out.push(Effect::MemoryRestored);
        }
    }
}
