//! The leader's and candidate's view of the other voters: per-follower
//! replication progress, votes received, and the quorum questions asked of
//! them (what is committed, is a quorum alive, which read round is
//! confirmed). Peers are few, so lookups are linear scans over small
//! vectors, and a scratch buffer keeps the quorum math allocation-free.

use replab_api::{LogIndex, NodeId};

use crate::progress::Progress;
use crate::quorum::{self, VoteResult};

pub struct ProgressTracker {
    self_id: NodeId,
    /// Every voter but this node, ascending.
    peers: Vec<NodeId>,
    progress: Vec<Progress>,
    /// One slot per voter (peers, then self): granted, rejected or unknown.
    votes: Vec<Option<bool>>,
    scratch: Vec<u64>,
}

impl ProgressTracker {
    pub fn new(self_id: NodeId, peers: Vec<NodeId>, max_inflight_messages: usize, max_inflight_bytes: usize) -> Self {
        let progress = peers.iter().map(|_| Progress::new(1, max_inflight_messages, max_inflight_bytes)).collect();
        let voters = peers.len() + 1;
        ProgressTracker { self_id, peers, progress, votes: vec![None; voters], scratch: Vec::with_capacity(voters) }
    }

    pub fn voters(&self) -> usize {
        self.peers.len() + 1
    }

    pub fn peers(&self) -> &[NodeId] {
        &self.peers
    }

    fn slot(&self, id: NodeId) -> Option<usize> {
        self.peers.iter().position(|p| *p == id)
    }

    pub fn is_peer(&self, id: NodeId) -> bool {
        self.slot(id).is_some()
    }

    pub fn get(&self, id: NodeId) -> Option<&Progress> {
        self.slot(id).map(|i| &self.progress[i])
    }

    pub fn get_mut(&mut self, id: NodeId) -> Option<&mut Progress> {
        self.slot(id).map(move |i| &mut self.progress[i])
    }

    /// A new leader knows nothing about its followers yet.
    pub fn reset_for_leader(&mut self, next_index: LogIndex) {
        for p in &mut self.progress {
            p.reset(next_index);
        }
    }

    /// The highest index stored durably by a quorum: the leader counts
    /// itself at `self_durable`, followers at their acknowledged match.
    pub fn committed_index(&mut self, self_durable: LogIndex) -> LogIndex {
        self.scratch.clear();
        self.scratch.push(self_durable);
        self.scratch.extend(self.progress.iter().map(|p| p.match_index));
        quorum::committed_index(&mut self.scratch)
    }

    /// The highest read round confirmed by a quorum (the leader confirms
    /// every round it started).
    pub fn read_acked(&mut self, self_seq: u64) -> u64 {
        self.scratch.clear();
        self.scratch.push(self_seq);
        self.scratch.extend(self.progress.iter().map(|p| p.read_ack));
        quorum::committed_index(&mut self.scratch)
    }

    /// CheckQuorum: did a quorum (this node included) talk to us since the
    /// last check?
    pub fn quorum_active(&self) -> bool {
        let active = 1 + self.progress.iter().filter(|p| p.recent_active).count();
        active >= quorum::majority(self.voters())
    }

    pub fn reset_recent_active(&mut self) {
        for p in &mut self.progress {
            p.recent_active = false;
        }
    }

    pub fn reset_votes(&mut self) {
        self.votes.iter_mut().for_each(|v| *v = None);
    }

    /// Records a vote; the first answer from a voter counts, duplicates are
    /// ignored. Unknown voters are ignored too.
    pub fn record_vote(&mut self, id: NodeId, granted: bool) {
        let slot = if id == self.self_id { Some(self.peers.len()) } else { self.slot(id) };
        if let Some(slot) = slot
            && self.votes[slot].is_none()
        {
            self.votes[slot] = Some(granted);
        }
    }

    pub fn vote_result(&self) -> VoteResult {
        let granted = self.votes.iter().filter(|v| **v == Some(true)).count();
        let rejected = self.votes.iter().filter(|v| **v == Some(false)).count();
        quorum::vote_result(granted, rejected, self.voters())
    }

    pub fn iter(&self) -> impl Iterator<Item = (NodeId, &Progress)> {
        self.peers.iter().copied().zip(self.progress.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leader_counts_itself_only_up_to_its_durable_index() {
        let mut t = ProgressTracker::new(1, vec![2, 3], 4, 1000);
        t.get_mut(2).unwrap().maybe_update(7);
        // Follower 3 has nothing, leader durable at 0: only 1 of 3 at 7.
        assert_eq!(t.committed_index(0), 0);
        assert_eq!(t.committed_index(5), 5);
        assert_eq!(t.committed_index(9), 7);
    }

    #[test]
    fn duplicate_votes_count_once() {
        let mut t = ProgressTracker::new(1, vec![2, 3, 4, 5], 4, 1000);
        t.record_vote(1, true);
        t.record_vote(2, true);
        t.record_vote(2, true);
        assert_eq!(t.vote_result(), VoteResult::Pending);
        t.record_vote(9, true);
        assert_eq!(t.vote_result(), VoteResult::Pending);
        t.record_vote(3, true);
        assert_eq!(t.vote_result(), VoteResult::Won);
    }

    #[test]
    fn check_quorum_counts_the_leader() {
        let mut t = ProgressTracker::new(1, vec![2, 3], 4, 1000);
        assert!(!t.quorum_active());
        t.get_mut(3).unwrap().recent_active = true;
        assert!(t.quorum_active());
        t.reset_recent_active();
        assert!(!t.quorum_active());
    }
}
