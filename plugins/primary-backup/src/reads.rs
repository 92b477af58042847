//! Reads. Only the primary answers.
//!
//! * `quorum` and `sync`: ReadIndex (Raft thesis §6.4). The primary
//!   records its commit index, then proves it is still primary with a
//!   heartbeat round a majority echoes: a claimant needs promises from a
//!   majority, which moves each promiser to a newer generation, so once a
//!   majority answered this generation's round no newer primary had been
//!   elected when the read arrived. A deposed primary resuming after a
//!   pause cannot assemble that majority and serves nothing stale. A new
//!   primary first waits until an entry of its own generation commits,
//!   when its commit index covers its predecessors'.
//! * `async`: answered at once at the commit index. Cheap, and not
//!   linearizable across a failover: a deposed primary that has not yet
//!   heard of its successor answers from its own, possibly discarded,
//!   history.

use std::collections::VecDeque;

use replab_api::{Effect, Effects, LogIndex, ReadId, RejectReason, Role};

use crate::config::Mode;
use crate::node::PrimaryBackup;

#[derive(Debug, Default)]
pub struct PendingReads {
    /// Waiting for this primary's first commit in its generation.
    deferred: Vec<ReadId>,
    /// (read, index, round) waiting for a majority to echo the round.
    confirming: VecDeque<(ReadId, LogIndex, u64)>,
    /// The latest round started. Rounds only grow within an incarnation,
    /// so an old echo never confirms a later round.
    last_seq: u64,
}

impl PendingReads {
    pub fn len(&self) -> usize {
        self.deferred.len() + self.confirming.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Queues reads at `index` under a fresh round.
    fn start_round(&mut self, ids: impl IntoIterator<Item = ReadId>, index: LogIndex) {
        self.last_seq += 1;
        let seq = self.last_seq;
        self.confirming.extend(ids.into_iter().map(|id| (id, index, seq)));
    }

    fn pop_confirmed(&mut self, acked: u64) -> Option<(ReadId, LogIndex)> {
        let &(id, index, seq) = self.confirming.front()?;
        (seq <= acked).then(|| {
            self.confirming.pop_front();
            (id, index)
        })
    }

    /// Every read still waiting, for rejection when the role is lost.
    pub fn drain_all(&mut self) -> Vec<ReadId> {
        self.deferred.drain(..).chain(self.confirming.drain(..).map(|(id, _, _)| id)).collect()
    }
}

impl PrimaryBackup {
    pub(crate) fn read(&mut self, id: ReadId, out: &mut Effects) {
        if self.role != Role::Leader {
            out.push(Effect::ReadRejected { id, reason: RejectReason::NotLeader { leader_hint: self.primary } });
            return;
        }
        if self.config.mode == Mode::Async {
            out.push(Effect::ReadReady { id, index: self.log.committed });
            return;
        }
        if self.reads.len() >= self.config.max_pending_reads {
            out.push(Effect::ReadRejected { id, reason: RejectReason::Busy });
            return;
        }
        if !self.committed_in_generation() {
            self.reads.deferred.push(id);
            return;
        }
        self.reads.start_round([id], self.log.committed);
        self.confirm_reads(out);
    }

    /// The first entry of this generation committed: the reads that waited
    /// for it get their index.
    pub(crate) fn on_first_commit_in_generation(&mut self, out: &mut Effects) {
        if !self.reads.deferred.is_empty() {
            let ids = std::mem::take(&mut self.reads.deferred);
            self.reads.start_round(ids, self.log.committed);
            self.confirm_reads(out);
        }
    }

    fn confirm_reads(&mut self, out: &mut Effects) {
        if self.peers.members() == 1 {
            self.advance_reads(out);
        } else {
            self.broadcast_heartbeat(out);
        }
    }

    /// Answers every read whose round a majority echoed.
    pub(crate) fn advance_reads(&mut self, out: &mut Effects) {
        if self.role != Role::Leader {
            return;
        }
        let acked = self.peers.read_acked(self.reads.last_seq());
        while let Some((id, index)) = self.reads.pop_confirmed(acked) {
            self.stats.reads_confirmed += 1;
            out.push(Effect::ReadReady { id, index });
        }
    }
}
