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
//!   disk): it promises nothing and never claims. It asks every peer
//!   whether it holds any data (`MemoryQuery`, at the first tick and every
//!   `takeover_timeout_ms`): if every other member answers that its log
//!   and snapshot are empty, nothing was ever acknowledged, so nothing can
//!   have been forgotten. That is a first start of the whole cluster (a
//!   `replab node` cluster starts this way), and the node is whole.
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
//! As under Raft, only unanimity restores a blank node without catching
//! up: a cluster whose majority lost its disks while one member kept its
//! data elects no primary until that member's data reaches them, and one
//! that lost a majority for good needs an operator (docs/PRIMARY_BACKUP.md).

use replab_api::{Effect, Effects, LogPosition, Memory, NodeId, Role};

use crate::message::Message;
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
            self.stats.memory_restored += 1;
            self.restore_memory(out);
        }
    }

    fn restore_memory(&mut self, out: &mut Effects) {
        self.memory = Memory::Intact;
        self.peers_without_data.clear();
        out.push(Effect::MemoryRestored);
    }

    /// Whether this node's log or snapshot holds anything a peer could
    /// need (a truncated node held data by definition).
    fn holds_data(&self) -> bool {
        self.log.last_index() > 0 || matches!(self.memory, Memory::Truncated { .. })
    }

    /// A blank node asks every peer that has not yet said it holds no data.
    pub(crate) fn query_memory(&mut self, out: &mut Effects) {
        let generation = self.hard_state.term;
        let unanswered: Vec<NodeId> =
            self.peers.ids().into_iter().filter(|p| !self.peers_without_data.contains(p)).collect();
        for peer in unanswered {
            self.send(peer, &Message::MemoryQuery { generation }, out);
        }
    }

    pub(crate) fn answer_memory_query(&mut self, from: NodeId, out: &mut Effects) {
        let generation = self.hard_state.term;
        let has_data = self.holds_data();
        self.send(from, &Message::MemoryReport { generation, has_data }, out);
    }

    pub(crate) fn handle_memory_report(&mut self, from: NodeId, has_data: bool, out: &mut Effects) {
        if has_data {
            self.peers_without_data.remove(&from);
        } else {
            self.peers_without_data.insert(from);
        }
        if self.memory == Memory::Blank && self.peers_without_data.len() == self.peers.ids().len() {
            self.stats.memory_restored_by_empty_cluster += 1;
            self.restore_memory(out);
        }
    }
}
