//! A member that lost durable state, and how it gets it back safely.
//!
//! Raft's safety rests on every voter remembering what it acknowledged: a
//! committed entry is on a majority, and a voter grants its vote only to a
//! candidate at least as up to date as itself, so every majority that
//! elects a leader includes someone holding that entry. A voter that lost
//! the entry (a wiped disk, a log cut by `--repair-wal`) and voted as if
//! its shorter log were all it ever had could elect a leader without it,
//! and the new leader would overwrite a committed entry.
//!
//! What the node knows about its loss ([`Memory`]) decides what it may do:
//!
//! * `Truncated { reached }`: it grants a vote only to a candidate at least
//!   as up to date as `reached`, the log it had before the cut, and never
//!   campaigns itself.
//! * `Blank`: it grants no vote and never campaigns. It asks every peer
//!   whether it holds any data (`MemoryQuery`): if every other member
//!   answers that its log and snapshot are empty, nothing was ever
//!   committed, so nothing can have been forgotten (a first start).
//!
//! Either way the node still accepts appends from a leader and acknowledges
//! them (those acknowledgements are true), and it tells the leader, in
//! every rejection, that its log may be shorter than what it acknowledged
//! before. The leader then forgets its match index for the node and probes
//! it from scratch (or sends a snapshot); without that the leader would
//! take the rejections for stale ones and the node would never catch up.
//!
//! The loss is over once the node holds, durably, an entry of its leader's
//! term at or below the leader's commit index: the leader committed in its
//! own term, so every entry committed before (by any majority this node
//! was part of) is in the leader's log before that entry, and now in ours.
//! A `Truncated` node is also restored once its durable log is again as up
//! to date as `reached`. The node then pushes `Effect::MemoryRestored` and
//! votes like any other member.
//!
//! What remains: a wiped node also lost the record of its vote. If it had
//! voted in a term higher than any it sees after the wipe, for a candidate
//! that then won, it could vote again in that term once restored. Closing
//! that needs a vote record that survives the disk, which no single member
//! can give; docs/RAFT.md discusses it.

use replab_api::{Effect, Effects, LogPosition, Memory, NodeId, Role};

use crate::message::Message;
use crate::raft::Raft;

impl Raft {
    /// Whether what this node may have forgotten allows a vote for a
    /// candidate whose log ends at `candidate_last`.
    pub(crate) fn memory_allows_vote(&self, candidate_last: LogPosition) -> bool {
        match self.memory {
            Memory::Intact => true,
            Memory::Truncated { reached } => candidate_last.at_least_as_up_to_date_as(reached),
            Memory::Blank => false,
        }
    }

    /// Whether this node's own log holds nothing a peer could need.
    pub(crate) fn holds_data(&self) -> bool {
        self.log.last_index() > 0 || matches!(self.memory, Memory::Truncated { .. })
    }

    /// A blank node asks every peer that has not yet said it holds no
    /// data. Called at the first step and at every election timeout.
    pub(crate) fn query_memory(&mut self, out: &mut Effects) {
        let term = self.hard_state.term;
        let bytes = Message::MemoryQuery { term }.encode();
        for i in 0..self.tracker.peers().len() {
            let peer = self.tracker.peers()[i];
            if !self.peers_without_data.contains(&peer) {
                self.push_send(peer, bytes.clone(), false, out);
            }
        }
    }

    pub(crate) fn answer_memory_query(&mut self, from: NodeId, out: &mut Effects) {
        let term = self.hard_state.term;
        let has_data = self.holds_data();
        self.send(from, &Message::MemoryReport { term, has_data }, false, out);
    }

    pub(crate) fn handle_memory_report(&mut self, from: NodeId, has_data: bool, out: &mut Effects) {
        if has_data {
            self.peers_without_data.remove(&from);
        } else {
            self.peers_without_data.insert(from);
        }
        if self.memory == Memory::Blank && self.peers_without_data.len() == self.tracker.peers().len() {
            self.stats.memory_restored_by_empty_cluster += 1;
            self.restore_memory(out);
        }
    }

    /// Checks, after every step of a node that lost state, whether it has
    /// caught up with what it may have lost.
    pub(crate) fn maybe_restore_memory(&mut self, out: &mut Effects) {
        if self.memory.is_intact() {
            return;
        }
        let durable = self.log.durable;
        let durable_position = LogPosition { index: durable, term: self.log.term_at(durable).unwrap_or(0) };
        let reached_again = match self.memory {
            Memory::Truncated { reached } => durable_position.at_least_as_up_to_date_as(reached),
            _ => false,
        };
        let committed = self.log.committed;
        let caught_up_with_leader = self.role == Role::Follower
            && self.leader.is_some()
            && committed > 0
            && committed <= durable
            && self.log.term_at(committed) == Some(self.hard_state.term);
        if reached_again || caught_up_with_leader {
            self.stats.memory_restored_by_catch_up += 1;
            self.restore_memory(out);
        }
    }

    fn restore_memory(&mut self, out: &mut Effects) {
        self.memory = Memory::Intact;
        self.peers_without_data.clear();
        out.push(Effect::MemoryRestored);
    }
}
