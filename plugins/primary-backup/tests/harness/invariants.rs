//! Primary-backup's own invariants on the harness.
//!
//! Checked on every step, in every mode (`Sim::set_step_check`):
//! * `OnePrimaryPerGeneration`: no two nodes ever announce themselves
//!   primary of the same generation;
//! * `WriteFromLowerGeneration`: a node never writes to its log (append,
//!   truncate, install a snapshot) because of a primary's message of a
//!   generation older than the one it had written down.
//!
//! Checked at the end of a run, once every replica holds the same state:
//! * `AcknowledgedWriteLost`: every write a client was told was applied
//!   is in the final state. Flagged under `sync` and `quorum`; under
//!   `async` it is the honest cost of the mode, so it is counted instead.
//!
//! In `sync` and `quorum` mode the simulator's Raft-style invariants
//! (durability of every commit, leader completeness, ...) run as well.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use replab_api::{Effect, Input, LogPosition, NodeId, Role, Term};
use replab_primary_backup::{Message, PrimaryBackup};
use replab_sim::{Invariant, LedgerStateMachine, PolicyFailure, ProposalStatus, Sim, StepView, Violation};

pub const ONE_PRIMARY_PER_GENERATION: &str = "OnePrimaryPerGeneration";
pub const WRITE_FROM_LOWER_GENERATION: &str = "WriteFromLowerGeneration";
pub const ACKNOWLEDGED_WRITE_LOST: &str = "AcknowledgedWriteLost";
/// Replicas that applied the same index hold different states.
pub const CONVERGENCE: &str = "Convergence";

pub type World = Sim<PrimaryBackup, LedgerStateMachine>;

/// Every generation's primary, as the step check saw them announced (shared
/// with the test, which counts failovers with it).
pub type Primaries = Rc<RefCell<BTreeMap<Term, NodeId>>>;

/// The per-step check; it records every generation's primary in `primaries`.
pub fn step_check(primaries: Primaries) -> impl FnMut(&StepView<'_>) -> Result<(), PolicyFailure> {
    move |step| {
        for effect in step.effects {
            if let Effect::RoleChanged { role: Role::Leader, term, .. } = effect {
                let first = *primaries.borrow_mut().entry(*term).or_insert(step.node);
                if first != step.node {
                    return Err(PolicyFailure {
                        invariant: ONE_PRIMARY_PER_GENERATION,
                        detail: format!("nodes {first} and {} are both primary of generation {term}", step.node),
                    });
                }
            }
        }
        check_generation_of_writes(step)
    }
}

fn check_generation_of_writes(step: &StepView<'_>) -> Result<(), PolicyFailure> {
    let writes = step
        .effects
        .iter()
        .any(|e| matches!(e, Effect::AppendLog { .. } | Effect::TruncateLog { .. } | Effect::InstallSnapshot { .. }));
    // Decoding is the dear part; only steps that wrote need it.
    let Input::Message { from, bytes } = step.input else { return Ok(()) };
    if !writes {
        return Ok(());
    }
    let Ok(message) = Message::decode(bytes) else { return Ok(()) };
    let own = step.hard_state_before.term;
    if message.from_primary() && message.generation() < own {
        return Err(PolicyFailure {
            invariant: WRITE_FROM_LOWER_GENERATION,
            detail: format!(
                "wrote to its log on a generation {} message from node {from} while in generation {own}",
                message.generation()
            ),
        });
    }
    Ok(())
}

/// A violation found by the harness itself, after the run.
pub fn violation(sim: &World, invariant: Invariant, detail: String) -> Violation {
    Violation {
        invariant,
        seed: sim.options().seed,
        time_us: sim.now_us(),
        node: None,
        detail,
        replay: sim.options().replay_line(),
    }
}

/// What became of the acknowledged writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Acknowledged {
    /// Commands a client was told were applied.
    pub commands: u64,
    /// Of those, the ones the final state does not hold.
    pub lost: u64,
}

/// Counts the acknowledged commands `state` (a replica's final state)
/// lacks. A proposal is acknowledged when one of its nodes applied it
/// (the engine answers the client then).
pub fn acknowledged(sim: &World, state: &LedgerStateMachine) -> Acknowledged {
    let mut counts = Acknowledged::default();
    for proposal in sim.proposals() {
        if let ProposalStatus::Committed { first_index, term, count } = proposal.status {
            counts.commands += count;
            counts.lost += (first_index..first_index + count)
                .filter(|&index| !state.holds(LogPosition { index, term }))
                .count() as u64;
        }
    }
    counts
}
