//! What tests may read of the world: time, nodes, roles, logs, disks,
//! state machines, clients' records and counters. Kept apart from
//! `sim.rs`, which holds what changes the world.

use replab_api::{
    LogIndex, LogPosition, NodeId, PolicyStatus, ProposalId, ReadId, ReplicationPolicy, Role, StepError, Term,
};

use crate::clients::{ProposalRecord, ReadRecord};
use crate::network::NetworkStats;
use crate::options::SimOptions;
use crate::sim::{EffectCounts, EffectRecord, Sim};
use crate::state_machine::StateMachine;
use crate::storage::{Disk, LogStore};
use crate::violation::Violation;

impl<P: ReplicationPolicy, M: StateMachine> Sim<P, M> {
    pub fn options(&self) -> &SimOptions {
        &self.options
    }

    pub fn now_us(&self) -> u64 {
        self.now_us
    }

    pub fn is_alive(&self, id: NodeId) -> bool {
        self.nodes[self.index(id)].policy.is_some()
    }

    pub fn policy(&self, id: NodeId) -> Option<&P> {
        self.nodes[self.index(id)].policy.as_ref()
    }

    pub fn status(&self, id: NodeId) -> Option<PolicyStatus> {
        self.policy(id).map(|p| p.status())
    }

    /// The live node that believes it leads the highest term.
    pub fn leader(&self) -> Option<NodeId> {
        self.nodes
            .iter()
            .filter(|n| n.policy.is_some() && n.role == Some(Role::Leader))
            .max_by_key(|n| n.term)
            .map(|n| n.id)
    }

    /// [`Sim::leader`] with the term it believes it leads.
    pub fn leader_and_term(&self) -> Option<(NodeId, Term)> {
        self.leader().map(|id| (id, self.nodes[self.index(id)].term))
    }

    pub fn role(&self, id: NodeId) -> Option<Role> {
        self.nodes[self.index(id)].role
    }

    /// The node's log as written (synced or not).
    pub fn log(&self, id: NodeId) -> &LogStore {
        &self.nodes[self.index(id)].view
    }

    /// What the node's disk would give back after a crash.
    pub fn durable(&self, id: NodeId) -> &LogStore {
        &self.nodes[self.index(id)].disk.durable
    }

    /// The node's simulated disk (pending writes, held sends, sync state).
    pub fn disk(&self, id: NodeId) -> &Disk {
        &self.nodes[self.index(id)].disk
    }

    pub fn state_machine(&self, id: NodeId) -> Option<&M> {
        self.nodes[self.index(id)].state_machine.as_ref()
    }

    /// Entries applied by the node's current incarnation, in order.
    pub fn applied(&self, id: NodeId) -> &[LogPosition] {
        &self.nodes[self.index(id)].applied
    }

    pub fn last_applied(&self, id: NodeId) -> LogIndex {
        self.nodes[self.index(id)].last_applied
    }

    pub fn commit_index(&self, id: NodeId) -> LogIndex {
        self.nodes[self.index(id)].commit
    }

    pub fn crashes(&self, id: NodeId) -> u64 {
        self.nodes[self.index(id)].crashes
    }

    /// The highest index committed anywhere so far.
    pub fn max_committed(&self) -> LogIndex {
        self.checker.max_committed()
    }

    /// Every (term, leader) pair seen so far.
    pub fn leaders_by_term(&self) -> &std::collections::BTreeMap<Term, NodeId> {
        self.checker.leaders()
    }

    pub fn proposal(&self, id: ProposalId) -> Option<&ProposalRecord> {
        self.clients.proposal(id)
    }

    pub fn proposals(&self) -> &[ProposalRecord] {
        &self.clients.proposals
    }

    pub fn read_record(&self, id: ReadId) -> Option<&ReadRecord> {
        self.clients.read(id)
    }

    pub fn reads(&self) -> &[ReadRecord] {
        &self.clients.reads
    }

    /// Commands whose proposals are known committed.
    pub fn committed_commands(&self) -> u64 {
        self.clients.committed_commands
    }

    pub fn network_stats(&self) -> NetworkStats {
        self.network.stats
    }

    pub fn effect_counts(&self) -> EffectCounts {
        self.counts
    }

    pub fn effect_log(&self) -> &[EffectRecord] {
        &self.effect_log
    }

    pub fn step_errors(&self) -> &[(u64, NodeId, StepError)] {
        &self.step_errors
    }

    pub fn events_processed(&self) -> u64 {
        self.events_processed
    }

    pub fn violation(&self) -> Option<&Violation> {
        self.failed.as_ref()
    }
}
