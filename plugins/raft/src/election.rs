//! Leader election (Raft §5.2), PreVote (thesis §9.6) and the forced
//! election of a leader transfer.
//!
//! A real election raises the term and persists the vote for self before
//! any vote request leaves (`after_persist`), so a crashed candidate cannot
//! come back and vote for someone else in the term it campaigned in. A
//! PreVote round asks "would you vote for me in term + 1?" without changing
//! anyone's state, so a node that cannot win (partitioned, lagging) never
//! inflates the term and disrupts the cluster when it returns.

use replab_api::{Effects, HardState, NodeId, Role};

use crate::config::Bug;
use crate::message::{Message, VoteRequest, VoteResponse};
use crate::quorum::VoteResult;
use crate::raft::Raft;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CampaignKind {
    PreVote,
    Election,
    /// Started by TimeoutNow: no PreVote, and voters grant it despite
    /// their leader lease.
    Transfer,
}

impl Raft {
    pub(crate) fn campaign(&mut self, kind: CampaignKind, out: &mut Effects) {
        let term = if kind == CampaignKind::PreVote {
            self.become_pre_candidate();
            self.hard_state.term + 1
        } else {
            self.become_candidate(out);
            self.hard_state.term
        };
        if self.tracker.vote_result() == VoteResult::Won {
            // A single-node cluster elects itself.
            self.on_election_won(out);
            return;
        }
        let request = VoteRequest { term, last: self.log.last_position(), forced: kind == CampaignKind::Transfer };
        let message = if kind == CampaignKind::PreVote { Message::PreVote(request) } else { Message::Vote(request) };
        let bytes = message.encode();
        for i in 0..self.tracker.peers().len() {
            let peer = self.tracker.peers()[i];
            // The vote for self must be durable before it is counted
            // anywhere; a PreVote promises nothing.
            self.push_send(peer, bytes.clone(), kind != CampaignKind::PreVote, out);
        }
    }

    fn on_election_won(&mut self, out: &mut Effects) {
        match self.role {
            Role::PreCandidate => self.campaign(CampaignKind::Election, out),
            Role::Candidate => self.become_leader(out),
            role => unreachable!("a {role} does not win elections"),
        }
    }

    pub(crate) fn handle_vote_request(&mut self, from: NodeId, request: &VoteRequest, pre: bool, out: &mut Effects) {
        let term = self.hard_state.term;
        let bug = self.config.bug == Bug::VoteWithoutTermCheck && !pre;
        // One vote per term; a PreVote for a later term binds nothing.
        let can_vote = self.hard_state.vote == Some(from)
            || (self.hard_state.vote.is_none() && self.leader.is_none())
            || (pre && request.term > term);
        let grant = bug || (can_vote && self.log.is_up_to_date(request.last) && self.memory_allows_vote(request.last));
        let answer_term = if grant && (pre || bug) { request.term } else { term };
        if grant && !pre {
            self.set_hard_state(HardState { term, vote: Some(from) }, out);
            // A node that just voted should give the candidate time to win.
            self.reset_election_timer();
        }
        let response = VoteResponse { term: answer_term, granted: grant };
        let message = if pre { Message::PreVoteResponse(response) } else { Message::VoteResponse(response) };
        // The vote is part of the hard state saved above: the answer may
        // leave only once that is durable.
        self.send(from, &message, true, out);
    }

    pub(crate) fn handle_vote_response(&mut self, from: NodeId, response: &VoteResponse, pre: bool, out: &mut Effects) {
        let expected = if pre { Role::PreCandidate } else { Role::Candidate };
        if self.role != expected {
            return;
        }
        self.tracker.record_vote(from, response.granted);
        match self.tracker.vote_result() {
            VoteResult::Won => self.on_election_won(out),
            VoteResult::Lost => {
                let term = self.hard_state.term;
                self.become_follower(term, None, out);
            }
            VoteResult::Pending => {}
        }
    }

    /// A leader transfer: the old leader brought us up to date and asks us
    /// to campaign now.
    pub(crate) fn handle_timeout_now(&mut self, from: NodeId, out: &mut Effects) {
        if !matches!(self.role, Role::Follower | Role::PreCandidate) || !self.memory.is_intact() {
            return;
        }
        if !self.tracker.is_peer(from) {
            return;
        }
        self.campaign(CampaignKind::Transfer, out);
    }
}
