//! Carrying out a policy's effects, in the order it pushed them.
//!
//! The rules are the contract's (docs/ARCHITECTURE.md): disk writes are
//! submitted in order to the one log thread; a send that promises
//! durability waits for the last write submitted before it; committed
//! entries are applied in order, and each apply answers the client that
//! proposed the entry, if it is waiting here.

use replab_api::{Effect, Entry, RejectReason, Role};
use tracing::{info, warn};

use super::event_loop::NodeLoop;
use super::requests::value_response;
use crate::client::protocol::{ErrorKind, ResponseBody};
use crate::kv::{Applied, Kv};

impl NodeLoop {
    pub(super) fn carry_out(&mut self) {
        // Effects may trigger further steps (a snapshot taken at once), so
        // take the batch out rather than iterate it in place.
        let mut effects = std::mem::take(&mut self.effects);
        for effect in effects.drain() {
            self.carry_out_one(effect);
            if self.fatal.is_some() {
                break;
            }
        }
        // Keep the buffer's capacity, unless a nested step refilled it.
        if self.effects.is_empty() {
            self.effects = effects;
        }
    }

    fn carry_out_one(&mut self, effect: Effect) {
        match effect {
            Effect::SaveHardState(hard_state) => {
                self.storage.save_hard_state(hard_state);
            }
            Effect::TruncateLog { from } => {
                self.storage.truncate(from);
            }
            Effect::AppendLog { entries } => {
                self.storage.append(&entries);
            }
            Effect::Send { to, bytes, after_persist } => self.send_after(to, bytes, after_persist),
            Effect::Committed { index } => self.metrics.set_commit_index(index),
            Effect::Apply { entries } => self.apply(&entries),
            Effect::Proposed { id, first_index, term, count } => {
                debug_assert!(count > 0, "a proposal places at least one entry");
                self.waiting.proposal_placed(id, first_index, term);
            }
            Effect::ProposalRejected { id, reason } => {
                for write in self.waiting.proposal_rejected(id) {
                    self.reject(&write.to, &reason);
                }
            }
            Effect::ReadReady { id, index } => {
                self.waiting.read_ready(id, index);
                self.serve_reads();
            }
            Effect::ReadRejected { id, reason } => {
                if let Some(read) = self.waiting.read_rejected(id) {
                    self.reject(&read.to, &reason);
                }
            }
            Effect::TakeSnapshot { index } => {
                assert_eq!(self.kv.applied().index, index, "the policy snapshots exactly what was applied");
                self.storage.save_snapshot(self.kv.snapshot());
            }
            Effect::InstallSnapshot { snapshot } => match Kv::restore(&snapshot, self.settings.kv.clone()) {
                Ok(kv) => {
                    self.kv = kv;
                    self.stats.snapshots_installed += 1;
                    self.waiting.overtaken_by_snapshot(snapshot.meta.last_included.index);
                    self.storage.install_snapshot(&snapshot);
                    self.serve_reads();
                }
                Err(e) => self.fatal = Some(format!("cannot install the leader's snapshot: {e}")),
            },
            Effect::CompactLog { up_to } => {
                self.storage.compact(up_to);
            }
            Effect::MemoryRestored => {
                // At warn, like the loss it ends, so an operator who saw one
                // sees the other at the default log level.
                warn!(node = self.id, "caught up with the state this node had lost: it votes again");
                self.storage.save_memory(replab_api::Memory::Intact);
            }
            Effect::RoleChanged { role, term, leader } => self.role_changed(role, term, leader),
        }
    }

    fn apply(&mut self, entries: &[Entry]) {
        for entry in entries {
            let applied = self.kv.apply(entry);
            self.stats.applied_entries += 1;
            let waiting = self.waiting.applied(entry.index, entry.term);
            let (Some(applied), Some(write)) = (applied, waiting) else { continue };
            match applied {
                Applied::Registered { client } => write.to.send(ResponseBody::Registered { client }),
                Applied::Write { result, duplicate, .. } => {
                    self.stats.writes_ok += 1;
                    self.stats.duplicate_writes += u64::from(duplicate);
                    write.to.send(ResponseBody::Written { result, duplicate });
                }
                Applied::Invalid(e) => write.to.error(ErrorKind::BadRequest, e.to_string()),
            }
        }
        self.metrics.set_applied_index(self.kv.applied().index);
        self.serve_reads();
    }

    fn serve_reads(&mut self) {
        let applied = self.kv.applied().index;
        for read in self.waiting.servable_reads(applied) {
            self.stats.reads_served += 1;
            read.to.send(value_response(self.kv.get(&read.key), self.read_consistency, applied, self.id));
        }
    }

    fn reject(&mut self, to: &super::requests::ReplyTo, reason: &RejectReason) {
        match reason {
            RejectReason::NotLeader { leader_hint } => {
                self.stats.redirects += 1;
                let leader = leader_hint.filter(|l| *l != self.id);
                let leader_addr = leader.and_then(|l| self.client_addr(l));
                to.send(ResponseBody::Redirect { leader, leader_addr });
            }
            RejectReason::TransferInProgress => {
                to.error(ErrorKind::Unavailable, "leadership is being transferred; retry at the new leader")
            }
            RejectReason::Busy => to.error(ErrorKind::Busy, "the leader has too much uncommitted work; retry later"),
            RejectReason::LeadershipLost => {
                to.error(ErrorKind::Unavailable, "lost leadership before confirming; retry")
            }
        }
    }

    fn role_changed(&mut self, role: Role, term: u64, leader: Option<u64>) {
        if role == Role::Candidate && self.role != Role::Candidate {
            self.stats.candidacies += 1;
        }
        if role == Role::Leader && self.role != Role::Leader {
            self.stats.became_leader += 1;
        }
        if leader != self.leader && leader.is_some() {
            self.stats.leader_changes += 1;
            info!(node = self.id, term, "leader is now {leader:?} ({role})");
        }
        let was_leader = self.role == Role::Leader;
        self.metrics.set_role(role, term, leader);
        self.role = role;
        self.leader = leader;
        if was_leader && role != Role::Leader {
            warn!(node = self.id, term, "stepped down as leader");
            // Writes not yet proposed go to the new leader.
            for write in self.batch.take() {
                self.reject(&write.to, &RejectReason::NotLeader { leader_hint: leader });
            }
        }
    }
}
