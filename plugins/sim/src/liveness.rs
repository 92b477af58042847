//! The liveness helper: once every fault is healed, a proposal must
//! commit within a bounded virtual time. Safety checks alone would pass a
//! cluster that never does anything.

use replab_api::{NodeId, ReplicationPolicy};

use crate::clients::ProposalStatus;
use crate::options::LinkConfig;
use crate::sim::Sim;
use crate::state_machine::StateMachine;
use crate::violation::{Invariant, Violation};

/// How long the cluster took to make progress after the heal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LivenessReport {
    pub healed_at_us: u64,
    /// When the last of the post-heal proposals committed.
    pub done_at_us: u64,
    /// Proposals sent (retries included) to get the commands through.
    pub attempts: u64,
}

/// A client retries a proposal that got no answer after this long.
const RETRY_AFTER_US: u64 = 1_000_000;
/// And waits this long after a refusal or while no leader is known.
const BACKOFF_US: u64 = 5_000;

impl<P: ReplicationPolicy, M: StateMachine> Sim<P, M> {
    /// Heals every fault: reconnects the network with benign links, drops
    /// the message filter, unstalls disks and restarts crashed nodes.
    pub fn heal_all(&mut self) -> Result<(), Violation> {
        self.network.heal();
        self.network.set_all_links(LinkConfig::BENIGN);
        self.clear_filter();
        for id in 1..=self.nodes.len() as NodeId {
            self.set_disk_stalled(id, false);
            if !self.is_alive(id) {
                self.restart(id)?;
            }
        }
        Ok(())
    }

    /// Heals everything, then proposes `commands` commands one after the
    /// other, as a client that retries at the current leader would. Each
    /// must commit before `bound_us` has passed since the heal.
    pub fn check_liveness(&mut self, commands: usize, bound_us: u64) -> Result<LivenessReport, Violation> {
        self.heal_all()?;
        let healed_at_us = self.now_us;
        let deadline = healed_at_us + bound_us;
        let mut attempts = 0;
        for k in 0..commands {
            loop {
                if self.now_us >= deadline {
                    let statuses: Vec<String> =
                        (1..=self.nodes.len() as NodeId).map(|id| format!("{id}: {:?}", self.status(id))).collect();
                    return Err(self.checker.fail(
                        Invariant::Liveness,
                        None,
                        format!(
                            "command {k} of {commands} not committed {bound_us}us after the heal; nodes: {}",
                            statuses.join("; ")
                        ),
                    ));
                }
                let Some(leader) = self.leader() else {
                    self.run_for(BACKOFF_US)?;
                    continue;
                };
                attempts += 1;
                let id = self.propose_commands(leader, 1)?;
                let limit = deadline.min(self.now_us + RETRY_AFTER_US);
                self.run_until_cond(limit, |s| {
                    !matches!(
                        s.proposal(id).map(|p| &p.status),
                        Some(ProposalStatus::Submitted | ProposalStatus::Proposed { .. })
                    )
                })?;
                if matches!(self.proposal(id).map(|p| &p.status), Some(ProposalStatus::Committed { .. })) {
                    break;
                }
                self.run_for(BACKOFF_US)?;
            }
        }
        self.check_nothing_lost()?;
        Ok(LivenessReport { healed_at_us, done_at_us: self.now_us, attempts })
    }
}
