//! One randomized primary-backup run per seed, with the real failure
//! detectors deciding failover.
//!
//! From the seed: the cluster size (3 or 5), the detector (gossip or
//! heartbeat, `DetectorKind::for_seed`) and its configuration, the
//! policy's batching and snapshot settings, then 50 fault actions 20-400
//! ms apart (crash a node or the primary, restart, isolate, cut one way,
//! heal, make every link lossy or clean again, or nothing), with a client
//! proposing 1-4 commands every 5-40 ms throughout.
//! Nobody tells the nodes who is up: only their detectors' messages,
//! crossing the same faulty network, do. Then everything heals, a write
//! must commit, the replicas must converge, and the acknowledged writes
//! are counted against the final state.

use replab_api::{NodeId, PluginRng};
use replab_primary_backup::Mode;
use replab_sim::{Invariant, LinkConfig, Violation, mix_seed};

use super::invariants::{self, ACKNOWLEDGED_WRITE_LOST, Acknowledged, CONVERGENCE, World};
use super::world::{Built, Spec, world};

pub const MS: u64 = 1_000;
pub const SECOND: u64 = 1_000_000;
const ACTIONS: usize = 50;
/// Every link, when the schedule makes the network lossy.
pub const LOSSY: LinkConfig = LinkConfig {
    drop_probability: 0.05,
    duplicate_probability: 0.05,
    reorder_probability: 0.1,
    reorder_extra_max_us: 3_000,
    ..LinkConfig::BENIGN
};
/// After the heal, a write must commit within this much virtual time:
/// the detectors must take the restarted nodes back, and a takeover may
/// need several rank timeouts.
const LIVENESS_BOUND_US: u64 = 15 * SECOND;

/// What a run exercised and measured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub primaries: u64,
    pub rollbacks: u64,
    pub acknowledged: Acknowledged,
    /// Verdicts the detectors handed to the policies, and how many of
    /// them were suspicions (Suspect or Dead).
    pub verdicts: u64,
    pub suspicions: u64,
    pub detector_messages: u64,
    /// Inputs a detector refused: none from correct peers.
    pub detector_refusals: u64,
    pub crashes: u64,
}

/// Runs one seed; the world is returned too, for inspection and replay.
pub fn run(spec: &Spec, record_effects: bool) -> (Built, Result<Outcome, Violation>) {
    let mut built = world(spec, record_effects);
    let sim = &mut built.sim;
    let result = faults(sim, spec)
        .and_then(|_| settle(sim, spec))
        .map(|acknowledged| Outcome { primaries: built.primaries.borrow().len() as u64, ..outcome(sim, acknowledged) });
    (built, result)
}

fn faults(sim: &mut World, spec: &Spec) -> Result<(), Violation> {
    let members = spec.members as u64;
    let mut rng = PluginRng::from_seed_u64(mix_seed(spec.seed, 0x0fa1_7de7));
    for _ in 0..ACTIONS {
        let target = rng.range_inclusive(1, members) as NodeId;
        let down = (1..=members).filter(|&n| !sim.is_alive(n)).count() as u64;
        match rng.range_inclusive(0, 9) {
            0 if down + 1 < members => sim.crash(target),
            1 if down + 1 < members => {
                if let Some(primary) = sim.leader() {
                    sim.crash(primary);
                }
            }
            2 | 3 => sim.restart(target)?,
            4 => sim.network_mut().isolate(target),
            5 => {
                let other = rng.range_inclusive(1, members) as NodeId;
                if other != target {
                    sim.network_mut().cut(target, other);
                }
            }
            6 => sim.network_mut().heal(),
            7 => sim.network_mut().set_all_links(LOSSY),
            8 => sim.network_mut().set_all_links(LinkConfig::BENIGN),
            _ => {}
        }
        // Until the next fault, a client writes every 5-40 ms: mostly at
        // the primary, sometimes at whichever node it knows.
        let next_fault = sim.now_us() + rng.range_inclusive(20, 400) * MS;
        while sim.now_us() < next_fault {
            let at = rng.range_inclusive(1, members) as NodeId;
            let at = if rng.chance(0.9) { sim.leader().unwrap_or(at) } else { at };
            sim.propose_commands(at, rng.range_inclusive(1, 4) as usize)?;
            sim.run_until(next_fault.min(sim.now_us() + rng.range_inclusive(5, 40) * MS))?;
        }
    }
    Ok(())
}

/// Heals everything, requires a committed write, convergence, and counts
/// (or, outside async, flags) lost acknowledged writes.
fn settle(sim: &mut World, spec: &Spec) -> Result<Acknowledged, Violation> {
    let all: Vec<NodeId> = (1..=spec.members as NodeId).collect();
    // Heals the network, restarts every node and has a client retry one
    // write at the primary until it commits.
    sim.check_liveness(1, LIVENESS_BOUND_US)?;
    let primary = sim.leader().expect("a write just committed at the primary");
    // The policy's own commit index: the simulator's never goes back, and
    // a node rolled back under async has a higher one there.
    let last = sim.status(primary).expect("the primary is up").commit_index;
    // Everyone reaches it, and a node that applied a discarded suffix
    // (async) is rolled back to the primary's state.
    let deadline = sim.now_us() + 5 * SECOND;
    let same = |s: &World| {
        let first = s.state_machine(all[0]).map(|m| &m.digest);
        all.iter().all(|&n| s.last_applied(n) >= last && s.state_machine(n).map(|m| &m.digest) == first)
    };
    sim.run_until_cond(deadline, same)?;
    let states: Vec<_> = all.iter().map(|&n| sim.state_machine(n).expect("up").clone()).collect();
    if let Some(n) = states.iter().position(|s| s.digest != states[0].digest) {
        let detail = format!("node {} applied {:?}, node 1 {:?}", n + 1, states[n].digest, states[0].digest);
        return Err(invariants::violation(sim, Invariant::Policy(CONVERGENCE), detail));
    }
    let acknowledged = invariants::acknowledged(sim, &states[0]);
    if spec.mode != Mode::Async && acknowledged.lost > 0 {
        let detail = format!(
            "{} of {} acknowledged commands are not in the final state ({} mode)",
            acknowledged.lost, acknowledged.commands, spec.mode
        );
        return Err(invariants::violation(sim, Invariant::Policy(ACKNOWLEDGED_WRITE_LOST), detail));
    }
    sim.check_nothing_lost()?;
    Ok(acknowledged)
}

fn outcome(sim: &World, acknowledged: Acknowledged) -> Outcome {
    let stats = sim.detector_stats();
    let nodes = 1..=sim.options().nodes as NodeId;
    Outcome {
        primaries: 0,
        rollbacks: nodes.clone().filter_map(|n| sim.policy(n)).map(|p| p.stats().rollbacks).sum(),
        acknowledged,
        verdicts: stats.verdicts,
        suspicions: sim.verdicts().iter().filter(|v| v.liveness != replab_api::Liveness::Alive).count() as u64,
        detector_messages: stats.messages_sent,
        detector_refusals: stats.refused,
        crashes: nodes.map(|n| sim.crashes(n)).sum(),
    }
}
