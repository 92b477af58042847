//! What the invariant checker reports: which property broke, where, and
//! the one-line command that replays the run.

use replab_api::NodeId;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invariant {
    /// At most one leader per term, ever.
    ElectionSafety,
    /// A node's term never goes back and it votes at most once per term.
    VoteSafety,
    /// Same index and term imply the same entry and the same prefix.
    LogMatching,
    /// Every committed entry is in the log of every later-term leader.
    LeaderCompleteness,
    /// When an entry is first committed, no node lacking it could still
    /// win an election under Raft's vote rule (its log is less up to date
    /// than a majority's durable logs).
    ElectableWithoutCommitted,
    /// Every node applies the same entry at each index, in order, each
    /// once per incarnation, and only committed ones.
    StateMachineSafety,
    /// The commit index never goes back within an incarnation.
    CommitMonotonic,
    /// A commit index never exceeds what a quorum durably stores.
    CommitDurability,
    /// A committed entry was deleted (truncated, or gone after a crash).
    CommittedEntryLost,
    /// A linearizable read was given an index older than a write that
    /// completed before the read started.
    StaleRead,
    /// The policy broke the effect contract (append gaps, bad snapshots).
    EffectContract,
    /// After healing, a proposal did not commit within the bound.
    Liveness,
    /// A policy's own invariant, named by the check its tests set
    /// (`Sim::set_step_check`).
    Policy(&'static str),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub invariant: Invariant,
    pub seed: u64,
    pub time_us: u64,
    pub node: Option<NodeId>,
    pub detail: String,
    /// A one-line command that replays the run.
    pub replay: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let node = self.node.map(|n| format!(" on node {n}")).unwrap_or_default();
        write!(
            f,
            "{:?} violated at t={}us{node} (seed {}): {}\nreplay: {}",
            self.invariant, self.time_us, self.seed, self.detail, self.replay
        )
    }
}

impl std::error::Error for Violation {}
