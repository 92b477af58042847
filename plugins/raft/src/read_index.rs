//! ReadIndex (Raft thesis §6.4): linearizable reads without writing to the
//! log.
//!
//! The leader records its commit index when a read arrives, then proves it
//! is still the leader: it starts a heartbeat round numbered `seq`, and
//! once a quorum has echoed a round at or after `seq`, no newer leader can
//! have committed anything the read would miss. The read may then be served
//! once the state machine has applied the recorded index.
//!
//! A new leader does not know the commit index of its predecessor until it
//! commits an entry of its own term (its no-op). Reads that arrive before
//! that wait in `deferred`, and get their index when the no-op commits.

use std::collections::VecDeque;

use replab_api::{Effect, Effects, LogIndex, ReadId, RejectReason, Role};

use crate::config::Bug;
use crate::raft::Raft;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingRead {
    pub id: ReadId,
    pub index: LogIndex,
    /// The heartbeat round that will confirm it.
    pub seq: u64,
}

#[derive(Debug, Default)]
pub struct ReadIndexQueue {
    /// Reads waiting for this leader's first commit in its term.
    deferred: Vec<ReadId>,
    /// Reads waiting for a quorum to confirm their round, in `seq` order.
    pending: VecDeque<PendingRead>,
    /// The latest round started. Rounds are numbered per incarnation and
    /// only grow, so an echo from an earlier term can never confirm a later
    /// round (responses of other terms are dropped by the term check too).
    last_seq: u64,
}

impl ReadIndexQueue {
    pub fn len(&self) -> usize {
        self.deferred.len() + self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    pub fn defer(&mut self, id: ReadId) {
        self.deferred.push(id);
    }

    /// Queues reads at `index` under one fresh round, whose number the
    /// caller sends in the heartbeats that follow.
    pub fn push_round(&mut self, ids: Vec<ReadId>, index: LogIndex) -> u64 {
        debug_assert!(!ids.is_empty(), "a round confirms at least one read");
        self.last_seq += 1;
        let seq = self.last_seq;
        self.pending.extend(ids.into_iter().map(|id| PendingRead { id, index, seq }));
        seq
    }

    /// Moves the deferred reads into one new round at `index`. Returns
    /// whether any read moved (and a heartbeat round is due).
    pub fn release_deferred(&mut self, index: LogIndex) -> bool {
        if self.deferred.is_empty() {
            return false;
        }
        self.last_seq += 1;
        let seq = self.last_seq;
        for id in self.deferred.drain(..) {
            self.pending.push_back(PendingRead { id, index, seq });
        }
        true
    }

    /// Pops the next read confirmed by a quorum echo of round `acked`.
    pub fn pop_confirmed(&mut self, acked: u64) -> Option<PendingRead> {
        if self.pending.front().is_some_and(|r| r.seq <= acked) { self.pending.pop_front() } else { None }
    }

    /// Every read still waiting, for rejection when leadership is lost.
    pub fn drain_all(&mut self) -> impl Iterator<Item = ReadId> + '_ {
        self.deferred.drain(..).chain(self.pending.drain(..).map(|r| r.id))
    }
}

impl Raft {
    /// Reads that arrived together share one heartbeat round: it starts
    /// after every one of them arrived, so its quorum of echoes proves
    /// leadership at a moment later than each read, which is all ReadIndex
    /// needs. One round instead of one per read is the batching.
    pub(crate) fn read(&mut self, ids: Vec<ReadId>, out: &mut Effects) {
        let mut accepted = Vec::with_capacity(ids.len());
        for id in ids {
            if self.config.bug == Bug::ReadWithoutReadIndex {
                out.push(Effect::ReadReady { id, index: self.log.committed });
            } else if self.role != Role::Leader {
                out.push(Effect::ReadRejected { id, reason: RejectReason::NotLeader { leader_hint: self.leader } });
            } else if self.reads.len() + accepted.len() >= self.config.max_pending_reads {
                out.push(Effect::ReadRejected { id, reason: RejectReason::Busy });
            } else {
                accepted.push(id);
            }
        }
        if accepted.is_empty() {
            return;
        }
        if !self.committed_in_term() {
            accepted.into_iter().for_each(|id| self.reads.defer(id));
            return;
        }
        self.reads.push_round(accepted, self.log.committed);
        self.confirm_reads(out);
    }

    /// The leader committed its first entry of the term: its commit index
    /// now covers every entry committed by earlier leaders, so the reads
    /// that waited for it can be given an index.
    pub(crate) fn on_first_commit_in_term(&mut self, out: &mut Effects) {
        if self.reads.release_deferred(self.log.committed) {
            self.confirm_reads(out);
        }
    }

    /// Starts a heartbeat round that carries the latest read round.
    fn confirm_reads(&mut self, out: &mut Effects) {
        if self.tracker.voters() == 1 {
            self.advance_reads(out);
        } else {
            self.broadcast_heartbeat(out);
        }
    }

    /// Answers every read whose round a quorum has echoed.
    pub(crate) fn advance_reads(&mut self, out: &mut Effects) {
        if self.role != Role::Leader {
            return;
        }
        let acked = self.tracker.read_acked(self.reads.last_seq());
        while let Some(read) = self.reads.pop_confirmed(acked) {
            self.stats.reads_confirmed += 1;
            out.push(Effect::ReadReady { id: read.id, index: read.index });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_confirmed_in_round_order() {
        let mut q = ReadIndexQueue::default();
        assert_eq!(q.push_round(vec![1], 10), 1);
        assert_eq!(q.push_round(vec![2], 12), 2);
        assert_eq!(q.pop_confirmed(0), None);
        assert_eq!(q.pop_confirmed(1), Some(PendingRead { id: 1, index: 10, seq: 1 }));
        assert_eq!(q.pop_confirmed(1), None);
        assert_eq!(q.pop_confirmed(5).map(|r| r.id), Some(2));
    }

    #[test]
    fn deferred_reads_share_one_round() {
        let mut q = ReadIndexQueue::default();
        q.defer(7);
        q.defer(8);
        assert_eq!(q.len(), 2);
        assert!(q.release_deferred(4));
        assert!(!q.release_deferred(4));
        assert_eq!(q.pop_confirmed(1).map(|r| (r.id, r.index)), Some((7, 4)));
        assert_eq!(q.pop_confirmed(1).map(|r| (r.id, r.index)), Some((8, 4)));
    }

    #[test]
    fn leadership_loss_drains_everything() {
        let mut q = ReadIndexQueue::default();
        q.defer(1);
        q.push_round(vec![2], 3);
        let ids: Vec<_> = q.drain_all().collect();
        assert_eq!(ids, vec![1, 2]);
        assert_eq!(q.len(), 0);
    }
}
