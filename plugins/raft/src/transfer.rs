//! Leader transfer (Raft thesis §3.10): the leader stops taking proposals,
//! brings the target's log up to date, then sends it TimeoutNow; the target
//! campaigns at once, without PreVote, and voters grant it even inside
//! their leader lease. If no new leader shows up within an election
//! timeout, the transfer is abandoned and proposals resume.

use replab_api::{Effects, Instant, NodeId, Role, StepError};

use crate::message::Message;
use crate::raft::Raft;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transfer {
    pub target: NodeId,
    pub deadline: Instant,
    pub timeout_now_sent: bool,
}

impl Raft {
    pub(crate) fn transfer_leader(&mut self, to: NodeId, out: &mut Effects) -> Result<(), StepError> {
        if self.role != Role::Leader {
            return Err(StepError::Rejected(format!(
                "leader transfer asked of node {}, which is not the leader (leader: {:?})",
                self.id, self.leader
            )));
        }
        if to == self.id {
            return Ok(());
        }
        if !self.tracker.is_peer(to) {
            return Err(StepError::Rejected(format!("leader transfer to node {to}, which is not a member")));
        }
        if self.transfer.is_some_and(|t| t.target == to) {
            return Ok(());
        }
        let deadline = self.now.add_millis(self.config.election_timeout_min_ms);
        self.transfer = Some(Transfer { target: to, deadline, timeout_now_sent: false });
        self.stats.transfers_started += 1;
        if !self.maybe_send_timeout_now(to, out) {
            self.maybe_send_append(to, true, out);
        }
        Ok(())
    }

    /// Sends TimeoutNow once the target holds the whole log.
    pub(crate) fn maybe_send_timeout_now(&mut self, peer: NodeId, out: &mut Effects) -> bool {
        let Some(transfer) = self.transfer else { return false };
        if transfer.target != peer || transfer.timeout_now_sent {
            return false;
        }
        if self.match_index_of(peer) != Some(self.log.last_index()) {
            return false;
        }
        self.transfer = Some(Transfer { timeout_now_sent: true, ..transfer });
        let term = self.hard_state.term;
        self.send(peer, &Message::TimeoutNow { term }, false, out);
        true
    }

    pub(crate) fn tick_transfer(&mut self) {
        if self.transfer.is_some_and(|t| self.now >= t.deadline) {
            self.transfer = None;
            self.stats.transfers_aborted += 1;
        }
    }
}
