//! Carrying out one effect: check it against the invariants, then do what
//! the engine would do (write to the simulated disk, send, apply to the
//! state machine, record client outcomes).

use replab_api::{Effect, LogPosition, NodeId, ReplicationPolicy, Role, Snapshot, SnapshotMeta};

use crate::checker::NodeView;
use crate::sim::{EffectRecord, Sim};
use crate::state_machine::StateMachine;
use crate::storage::Op;
use crate::violation::{Invariant, Violation};

impl<P: ReplicationPolicy, M: StateMachine> Sim<P, M> {
    fn contract(&self, node: NodeId, detail: String) -> Violation {
        self.checker.fail(Invariant::EffectContract, Some(node), detail)
    }

    pub(crate) fn carry_out(&mut self, id: NodeId, effect: Effect) -> Result<(), Violation> {
        let i = self.index(id);
        let check = self.options.check_invariants;
        if self.options.record_effects {
            let incarnation = self.nodes[i].incarnation;
            self.effect_log.push(EffectRecord { time_us: self.now_us, node: id, incarnation, effect: effect.clone() });
        }
        self.count(&effect);
        match effect {
            Effect::SaveHardState(hard_state) => {
                let node = &mut self.nodes[i];
                if check {
                    self.checker.on_hard_state(id, node.view.hard_state, hard_state)?;
                }
                node.view.hard_state = hard_state;
                node.term = hard_state.term;
                node.disk.write(Op::HardState(hard_state));
            }
            Effect::TruncateLog { from } => {
                if check {
                    self.checker.on_truncate(id, &self.nodes[i].view, from)?;
                }
                self.write(id, Op::Truncate(from))?;
            }
            Effect::AppendLog { entries } => {
                if check {
                    self.checker.on_append(id, &self.nodes[i].view, &entries)?;
                }
                self.write(id, Op::Append(entries))?;
            }
            Effect::Send { to, bytes, after_persist } => {
                let disk = &mut self.nodes[i].disk;
                if after_persist && disk.has_unsynced() {
                    disk.hold(to, bytes);
                } else {
                    self.send(id, to, bytes);
                }
            }
            Effect::Committed { index } => {
                if check {
                    let views: Vec<NodeView<'_>> = self
                        .nodes
                        .iter()
                        .map(|n| NodeView {
                            id: n.id,
                            up: n.policy.is_some(),
                            leading: (n.policy.is_some() && n.role == Some(Role::Leader)).then_some(n.term),
                            log: &n.view,
                            durable: &n.disk.durable,
                        })
                        .collect();
                    let node = &self.nodes[i];
                    self.checker.on_committed(id, node.term, node.commit, index, &views)?;
                }
                let node = &mut self.nodes[i];
                node.commit = node.commit.max(index);
            }
            Effect::Apply { entries } => {
                for entry in entries {
                    let node = &mut self.nodes[i];
                    if check {
                        self.checker.on_apply(id, node.last_applied, node.commit, &entry)?;
                    }
                    let machine = node.state_machine.as_mut().expect("a live node has a state machine");
                    machine.apply(&entry);
                    node.last_applied = entry.index;
                    node.applied.push(entry.position());
                    if check {
                        self.checker.on_fingerprint(id, entry.index, machine.fingerprint())?;
                    }
                    self.clients.on_applied(&entry, self.now_us);
                }
            }
            Effect::Proposed { id: proposal, first_index, term, count } => {
                self.clients.on_proposed(proposal, first_index, term, count);
            }
            Effect::ProposalRejected { id: proposal, reason } => {
                self.clients.on_rejected(proposal, reason, self.now_us);
            }
            Effect::ReadReady { id: read, index } => {
                let now = self.now_us;
                if let Some(record) = self.clients.on_read_ready(read, index, now)
                    && check
                {
                    let min_index = record.min_index;
                    self.checker.on_read_ready(id, index, min_index)?;
                }
            }
            Effect::ReadRejected { id: read, reason } => {
                self.clients.on_read_rejected(read, reason, self.now_us);
            }
            Effect::TakeSnapshot { index } => {
                let node = &self.nodes[i];
                if index != node.last_applied {
                    let applied = node.last_applied;
                    return Err(
                        self.contract(id, format!("TakeSnapshot at {index} but the state machine applied {applied}"))
                    );
                }
                let Some(term) = node.view.term_at(index) else {
                    return Err(self.contract(id, format!("TakeSnapshot at {index}, which is not in the log")));
                };
                let data = node.state_machine.as_ref().expect("a live node has a state machine").snapshot();
                let snapshot = Snapshot { meta: SnapshotMeta { last_included: LogPosition { index, term } }, data };
                // Stored in write order: durable only with (or after) the
                // log writes that came before it.
                self.write(id, Op::StoreSnapshot(snapshot))?;
            }
            Effect::InstallSnapshot { snapshot } => {
                let covered = snapshot.meta.last_included;
                let node = &mut self.nodes[i];
                if check && covered.index <= node.last_applied {
                    let applied = node.last_applied;
                    return Err(self.contract(
                        id,
                        format!("installs a snapshot at {} over a state that applied {applied}", covered.index),
                    ));
                }
                let machine = node.state_machine.as_mut().expect("a live node has a state machine");
                machine.restore(&snapshot);
                let fingerprint = machine.fingerprint();
                node.last_applied = covered.index;
                node.commit = node.commit.max(covered.index);
                if check {
                    self.checker.on_fingerprint(id, covered.index, fingerprint)?;
                }
                self.write(id, Op::InstallSnapshot(snapshot))?;
            }
            Effect::CompactLog { up_to } => {
                let node = &mut self.nodes[i];
                let result = node.disk.durable.compact(up_to).and_then(|_| node.view.compact(up_to));
                result.map_err(|e| self.contract(id, format!("CompactLog: {e}")))?;
            }
            Effect::MemoryRestored => {
                let node = &mut self.nodes[i];
                node.view.memory = replab_api::Memory::Intact;
                node.disk.write(Op::Memory(replab_api::Memory::Intact));
            }
            Effect::RoleChanged { role, term, leader } => {
                let node = &mut self.nodes[i];
                node.role = Some(role);
                node.term = term;
                node.leader = leader;
                if check && role == Role::Leader {
                    self.checker.on_leader(id, term, &self.nodes[i].view)?;
                }
            }
        }
        Ok(())
    }

    fn count(&mut self, effect: &Effect) {
        let c = &mut self.counts;
        match effect {
            Effect::SaveHardState(_) => c.hard_state_saves += 1,
            Effect::TruncateLog { .. } => c.truncations += 1,
            Effect::AppendLog { .. } => c.appends += 1,
            Effect::Committed { .. } => c.commits += 1,
            Effect::Apply { entries } => c.entries_applied += entries.len() as u64,
            Effect::TakeSnapshot { .. } => c.snapshots_taken += 1,
            Effect::InstallSnapshot { .. } => c.snapshots_installed += 1,
            Effect::CompactLog { .. } => c.compactions += 1,
            Effect::RoleChanged { .. } => c.role_changes += 1,
            Effect::ProposalRejected { .. } => c.proposals_rejected += 1,
            Effect::ReadReady { .. } => c.reads_ready += 1,
            Effect::ReadRejected { .. } => c.reads_rejected += 1,
            Effect::MemoryRestored => c.memory_restored += 1,
            Effect::Send { .. } | Effect::Proposed { .. } => {}
        }
    }

    /// A log write: visible to the policy's view at once, durable later.
    fn write(&mut self, id: NodeId, op: Op) -> Result<(), Violation> {
        let i = self.index(id);
        let node = &mut self.nodes[i];
        if let Err(e) = node.view.apply(&op) {
            return Err(self.contract(id, format!("log write: {e}")));
        }
        node.disk.write(op);
        Ok(())
    }
}
