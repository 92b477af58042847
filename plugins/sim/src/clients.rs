//! Client bookkeeping: the proposals and reads injected into the cluster,
//! and what became of each. A proposal's fate is decided by the log, not
//! by the node that accepted it: it committed if the entry applied at its
//! last index has its term, and was lost if another term's entry did.

use std::collections::HashMap;

use bytes::Bytes;
use replab_api::{
    Entry, Input, LogIndex, NodeId, ProposalId, ReadId, RejectReason, ReplicationPolicy, StepError, Term,
};

use crate::sim::Sim;
use crate::state_machine::StateMachine;
use crate::violation::Violation;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProposalStatus {
    /// Handed to the node, no answer yet.
    Submitted,
    /// The node was down.
    Unreachable,
    Rejected(RejectReason),
    /// Appended to the leader's log, not yet known to be committed.
    Proposed {
        first_index: LogIndex,
        term: Term,
        count: u64,
    },
    Committed {
        first_index: LogIndex,
        term: Term,
        count: u64,
    },
    /// Another entry was committed at its place.
    Lost,
}

#[derive(Clone, Debug)]
pub struct ProposalRecord {
    pub id: ProposalId,
    pub node: NodeId,
    pub submitted_us: u64,
    pub commands: usize,
    pub status: ProposalStatus,
    pub resolved_us: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadStatus {
    Submitted,
    Unreachable,
    Ready { index: LogIndex },
    Rejected(RejectReason),
}

#[derive(Clone, Debug)]
pub struct ReadRecord {
    pub id: ReadId,
    pub node: NodeId,
    pub submitted_us: u64,
    /// The highest commit index anywhere when the read started: a
    /// linearizable read must reflect at least that.
    pub min_index: LogIndex,
    pub status: ReadStatus,
    pub resolved_us: Option<u64>,
}

#[derive(Debug, Default)]
pub struct Clients {
    /// Indexed by `id - 1`.
    pub proposals: Vec<ProposalRecord>,
    pub reads: Vec<ReadRecord>,
    /// Proposed, unresolved proposals by their last index.
    by_last_index: HashMap<LogIndex, Vec<ProposalId>>,
    pub committed_commands: u64,
}

impl Clients {
    pub fn new_proposal(&mut self, node: NodeId, now_us: u64, commands: usize) -> ProposalId {
        let id = self.proposals.len() as ProposalId + 1;
        self.proposals.push(ProposalRecord {
            id,
            node,
            submitted_us: now_us,
            commands,
            status: ProposalStatus::Submitted,
            resolved_us: None,
        });
        id
    }

    pub fn new_read(&mut self, node: NodeId, now_us: u64, min_index: LogIndex) -> ReadId {
        let id = self.reads.len() as ReadId + 1;
        self.reads.push(ReadRecord {
            id,
            node,
            submitted_us: now_us,
            min_index,
            status: ReadStatus::Submitted,
            resolved_us: None,
        });
        id
    }

    pub fn proposal(&self, id: ProposalId) -> Option<&ProposalRecord> {
        id.checked_sub(1).and_then(|i| self.proposals.get(i as usize))
    }

    fn proposal_mut(&mut self, id: ProposalId) -> Option<&mut ProposalRecord> {
        id.checked_sub(1).and_then(|i| self.proposals.get_mut(i as usize))
    }

    pub fn read(&self, id: ReadId) -> Option<&ReadRecord> {
        id.checked_sub(1).and_then(|i| self.reads.get(i as usize))
    }

    pub fn set_unreachable(&mut self, id: ProposalId, now_us: u64) {
        if let Some(p) = self.proposal_mut(id) {
            p.status = ProposalStatus::Unreachable;
            p.resolved_us = Some(now_us);
        }
    }

    pub fn set_read_unreachable(&mut self, id: ReadId, now_us: u64) {
        if let Some(r) = id.checked_sub(1).and_then(|i| self.reads.get_mut(i as usize)) {
            r.status = ReadStatus::Unreachable;
            r.resolved_us = Some(now_us);
        }
    }

    pub fn on_proposed(&mut self, id: ProposalId, first_index: LogIndex, term: Term, count: u64) {
        let Some(p) = self.proposal_mut(id) else { return };
        p.status = ProposalStatus::Proposed { first_index, term, count };
        if count > 0 {
            self.by_last_index.entry(first_index + count - 1).or_default().push(id);
        }
    }

    pub fn on_rejected(&mut self, id: ProposalId, reason: RejectReason, now_us: u64) {
        if let Some(p) = self.proposal_mut(id) {
            p.status = ProposalStatus::Rejected(reason);
            p.resolved_us = Some(now_us);
        }
    }

    /// An entry was applied (on any node): it decides every proposal that
    /// ends at its index.
    pub fn on_applied(&mut self, entry: &Entry, now_us: u64) {
        let Some(ids) = self.by_last_index.remove(&entry.index) else {
            return;
        };
        for id in ids {
            let Some(p) = self.proposal_mut(id) else { continue };
            let ProposalStatus::Proposed { first_index, term, count } = p.status else {
                continue;
            };
            p.resolved_us = Some(now_us);
            if term == entry.term {
                p.status = ProposalStatus::Committed { first_index, term, count };
                self.committed_commands += count;
            } else {
                p.status = ProposalStatus::Lost;
            }
        }
    }

    pub fn on_read_ready(&mut self, id: ReadId, index: LogIndex, now_us: u64) -> Option<&ReadRecord> {
        let r = id.checked_sub(1).and_then(|i| self.reads.get_mut(i as usize))?;
        r.status = ReadStatus::Ready { index };
        r.resolved_us = Some(now_us);
        Some(r)
    }

    pub fn on_read_rejected(&mut self, id: ReadId, reason: RejectReason, now_us: u64) {
        if let Some(r) = id.checked_sub(1).and_then(|i| self.reads.get_mut(i as usize)) {
            r.status = ReadStatus::Rejected(reason);
            r.resolved_us = Some(now_us);
        }
    }
}

/// Client operations on the world. Each steps the node at the current
/// virtual time; its outcome arrives through the node's effects.
impl<P: ReplicationPolicy, M: StateMachine> Sim<P, M> {
    /// Proposes `commands` at `node`, now.
    pub fn propose(&mut self, node: NodeId, commands: Vec<Bytes>) -> Result<ProposalId, Violation> {
        self.guard()?;
        let id = self.clients.new_proposal(node, self.now_us, commands.len());
        if !self.is_alive(node) {
            self.clients.set_unreachable(id, self.now_us);
            return Ok(id);
        }
        let result = self.step_node(node, Input::Propose { id, commands });
        self.record(result).map(|_| id)
    }

    /// Proposes `count` commands with distinct payloads.
    pub fn propose_commands(&mut self, node: NodeId, count: usize) -> Result<ProposalId, Violation> {
        let next = self.clients.proposals.len() as ProposalId + 1;
        let commands = (0..count).map(|k| command_bytes(next, k)).collect();
        self.propose(node, commands)
    }

    /// Asks `node` for a linearizable read, now.
    pub fn read(&mut self, node: NodeId) -> Result<ReadId, Violation> {
        Ok(self.read_many(node, 1)?[0])
    }

    /// Asks `node` for `count` linearizable reads in one input, as the
    /// engine hands over the reads of one turn.
    pub fn read_many(&mut self, node: NodeId, count: usize) -> Result<Vec<ReadId>, Violation> {
        self.guard()?;
        let max_committed = self.checker.max_committed();
        let ids: Vec<ReadId> = (0..count).map(|_| self.clients.new_read(node, self.now_us, max_committed)).collect();
        if !self.is_alive(node) {
            ids.iter().for_each(|&id| self.clients.set_read_unreachable(id, self.now_us));
            return Ok(ids);
        }
        let result = self.step_node(node, Input::Read { ids: ids.clone() });
        self.record(result).map(|_| ids)
    }

    /// Asks `node` to hand leadership to `to`; returns the node's refusal.
    pub fn transfer_leader(&mut self, node: NodeId, to: NodeId) -> Result<Option<StepError>, Violation> {
        self.guard()?;
        let result = self.step_node(node, Input::TransferLeader { to });
        self.record(result)
    }

    /// Steps `node` with an arbitrary input (garbage messages, liveness
    /// verdicts, ...).
    pub fn inject(&mut self, node: NodeId, input: Input) -> Result<Option<StepError>, Violation> {
        self.guard()?;
        let result = self.step_node(node, input);
        self.record(result)
    }
}

/// Distinct payloads make the log-matching and state-machine checks able
/// to tell entries apart.
pub fn command_bytes(proposal: ProposalId, k: usize) -> Bytes {
    Bytes::from(format!("p{proposal}c{k}"))
}
