//! A policy's own invariants, checked on every step.
//!
//! The [`crate::Checker`] knows Raft's properties. A policy with other
//! promises (primary-backup: one primary per generation, no write taken
//! from an older generation, whatever the acknowledgement mode) brings its
//! own check, as keyed policies bring their `KeyedInvariants`. The check
//! sees each step as the engine would carry it out: the input, the node's
//! hard state before the step, and the effects the policy pushed, before
//! any of them is carried out, so a violation points at the step that
//! caused it. It runs whether or not `check_invariants` is on: it is the
//! policy's, not Raft's.

use replab_api::{Effect, HardState, Input, NodeId, ReplicationPolicy};

use crate::sim::Sim;
use crate::state_machine::StateMachine;

/// One step of one node, as a step check sees it.
#[derive(Debug)]
pub struct StepView<'a> {
    pub time_us: u64,
    pub node: NodeId,
    pub input: &'a Input,
    /// The node's hard state (term or generation, vote or promise) as it
    /// had written it before this step.
    pub hard_state_before: HardState,
    pub effects: &'a [Effect],
}

/// A broken policy invariant: its name and what happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyFailure {
    pub invariant: &'static str,
    pub detail: String,
}

pub(crate) type StepCheck = Box<dyn FnMut(&StepView<'_>) -> Result<(), PolicyFailure>>;

impl<P: ReplicationPolicy, M: StateMachine> Sim<P, M> {
    /// Runs `check` on every step of every node from now on; a failure
    /// becomes an `Invariant::Policy` violation and stops the world.
    pub fn set_step_check(&mut self, check: impl FnMut(&StepView<'_>) -> Result<(), PolicyFailure> + 'static) {
        self.step_check = Some(Box::new(check));
    }
}
