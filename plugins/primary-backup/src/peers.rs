//! Everything a node keeps per peer: the failure detector's latest verdict,
//! the peer's log position as last heard (for ranking successors), its
//! answer to this node's claim, and, while this node is primary, its
//! replication progress. The quorum questions (what is committed, who
//! ranks first, did a majority promise) are asked here.

use std::cmp::Reverse;

use replab_api::{Liveness, LogIndex, LogPosition, NodeId};

use crate::config::Mode;
use crate::progress::Progress;

pub struct Peer {
    pub id: NodeId,
    /// The detectors start with every peer alive, and so does this.
    pub liveness: Liveness,
    /// The peer's last log position as this node last heard it (from a
    /// primary's heartbeat, a claim or a claim answer).
    pub known: LogPosition,
    /// Its answer to this node's current claim.
    pub promise: Option<bool>,
    pub progress: Progress,
}

/// Outcome of a claim so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimResult {
    Won,
    Lost,
    Pending,
}

pub fn majority(members: usize) -> usize {
    assert!(members > 0, "a quorum needs at least one member");
    members / 2 + 1
}

pub struct Peers {
    list: Vec<Peer>,
    /// Reused for the quorum arithmetic, so acknowledgements do not
    /// allocate.
    scratch: Vec<u64>,
}

impl Peers {
    /// `ids`: every member but this node.
    pub fn new(mut ids: Vec<NodeId>, max_inflight: usize) -> Peers {
        ids.sort_unstable();
        ids.dedup();
        let list = ids
            .iter()
            .map(|&id| Peer {
                id,
                liveness: Liveness::Alive,
                known: LogPosition::default(),
                promise: None,
                progress: Progress::new(1, max_inflight),
            })
            .collect();
        Peers { scratch: Vec::with_capacity(ids.len() + 1), list }
    }

    pub fn members(&self) -> usize {
        self.list.len() + 1
    }

    pub fn ids(&self) -> Vec<NodeId> {
        self.list.iter().map(|p| p.id).collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Peer> {
        self.list.iter()
    }

    pub fn get(&self, id: NodeId) -> Option<&Peer> {
        self.list.iter().find(|p| p.id == id)
    }

    pub fn get_mut(&mut self, id: NodeId) -> Option<&mut Peer> {
        self.list.iter_mut().find(|p| p.id == id)
    }

    pub fn progress_mut(&mut self, id: NodeId) -> &mut Progress {
        &mut self.get_mut(id).unwrap_or_else(|| panic!("node {id} is not a peer")).progress
    }

    pub fn is_alive(&self, id: NodeId) -> bool {
        self.get(id).is_some_and(|p| p.liveness == Liveness::Alive)
    }

    pub fn set_known(&mut self, id: NodeId, position: LogPosition) {
        if let Some(peer) = self.get_mut(id) {
            peer.known = position;
        }
    }

    pub fn reset_progress(&mut self, next_index: LogIndex) {
        self.list.iter_mut().for_each(|p| p.progress.reset(next_index));
    }

    pub fn reset_promises(&mut self) {
        self.list.iter_mut().for_each(|p| p.promise = None);
    }

    /// The first answer of each peer counts; this node promised itself.
    pub fn record_promise(&mut self, id: NodeId, promised: bool) {
        if let Some(peer) = self.get_mut(id) {
            peer.promise.get_or_insert(promised);
        }
    }

    pub fn claim_result(&self) -> ClaimResult {
        let needed = majority(self.members());
        let granted = 1 + self.list.iter().filter(|p| p.promise == Some(true)).count();
        let refused = self.list.iter().filter(|p| p.promise == Some(false)).count();
        if granted >= needed {
            ClaimResult::Won
        } else if self.members() - refused < needed {
            ClaimResult::Lost
        } else {
            ClaimResult::Pending
        }
    }

    /// How many live nodes rank before this one as successor: a better
    /// known log position ((generation, index) descending), or the same
    /// one and a lower id. Only peers whose latest verdict is alive count.
    pub fn rank_of(&self, id: NodeId, own: LogPosition) -> u64 {
        let key = |position: LogPosition, id: NodeId| (Reverse(position.term), Reverse(position.index), id);
        let mine = key(own, id);
        self.list.iter().filter(|p| p.liveness == Liveness::Alive && key(p.known, p.id) < mine).count() as u64
    }

    /// The highest index the acknowledgement rule of `mode` lets the
    /// primary commit, counting itself at `own_durable`.
    pub fn ack_index(&mut self, mode: Mode, own_durable: LogIndex) -> LogIndex {
        let matches = self.list.iter().map(|p| p.progress.match_index);
        match mode {
            Mode::Async => own_durable,
            Mode::Sync => matches.fold(own_durable, LogIndex::min),
            Mode::Quorum => {
                self.scratch.clear();
                self.scratch.push(own_durable);
                self.scratch.extend(matches);
                self.kth_highest(majority(self.list.len() + 1))
            }
        }
    }

    /// The highest read round a majority (this node at `own_seq`) echoed.
    pub fn read_acked(&mut self, own_seq: u64) -> u64 {
        self.scratch.clear();
        self.scratch.push(own_seq);
        self.scratch.extend(self.list.iter().map(|p| p.progress.read_ack));
        self.kth_highest(majority(self.list.len() + 1))
    }

    fn kth_highest(&mut self, k: usize) -> u64 {
        self.scratch.sort_unstable_by(|a, b| b.cmp(a));
        self.scratch[k - 1]
    }

    /// The furthest any backup is known to hold.
    pub fn max_match(&self) -> LogIndex {
        self.list.iter().map(|p| p.progress.match_index).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(index: LogIndex, term: u64) -> LogPosition {
        LogPosition { index, term }
    }

    #[test]
    fn ranking_prefers_later_generations_then_longer_logs_then_lower_ids() {
        let mut peers = Peers::new(vec![1, 3, 4], 4);
        peers.set_known(1, at(9, 1));
        peers.set_known(3, at(5, 2));
        peers.set_known(4, at(5, 2));
        assert_eq!(peers.rank_of(2, at(5, 2)), 0, "nodes 3 and 4 tie with node 2 but it has the lower id");
        assert_eq!(peers.rank_of(2, at(4, 2)), 2);
        assert_eq!(peers.rank_of(2, at(1, 3)), 0, "a later generation beats a longer log");
        peers.get_mut(3).unwrap().liveness = Liveness::Suspect;
        assert_eq!(peers.rank_of(2, at(4, 2)), 1, "only live peers rank");
    }

    #[test]
    fn each_mode_counts_its_own_acknowledgements() {
        let mut peers = Peers::new(vec![2, 3, 4, 5], 4);
        for (id, index) in [(2, 7), (3, 4), (4, 0), (5, 9)] {
            peers.progress_mut(id).match_index = index;
        }
        assert_eq!(peers.ack_index(Mode::Async, 6), 6);
        assert_eq!(peers.ack_index(Mode::Sync, 6), 0);
        assert_eq!(peers.ack_index(Mode::Quorum, 6), 6, "6, 7 and 9 make three of five");
        assert_eq!(peers.ack_index(Mode::Quorum, 3), 4);
    }

    #[test]
    fn claims_are_won_and_lost_by_majorities() {
        let mut peers = Peers::new(vec![2, 3], 4);
        assert_eq!(peers.claim_result(), ClaimResult::Pending);
        peers.record_promise(2, false);
        peers.record_promise(2, true);
        assert_eq!(peers.claim_result(), ClaimResult::Pending, "the first answer counts");
        peers.record_promise(3, false);
        assert_eq!(peers.claim_result(), ClaimResult::Lost);
        assert_eq!(Peers::new(vec![], 4).claim_result(), ClaimResult::Won);
    }
}
