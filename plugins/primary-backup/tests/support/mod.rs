//! Helpers shared by the primary-backup acceptance tests: simulated
//! clusters (`replab-sim`), the failure detector's verdicts (the simulator
//! runs no detector, so tests hand them in), and what the effect log says
//! about primaries and generations.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use replab_api::{Effect, Input, Liveness, LogIndex, NodeId, ProposalId, Role, Term};
use replab_primary_backup::{Bug, Mode, PrimaryBackup, PrimaryBackupConfig};
use replab_sim::{LinkConfig, ProposalStatus, Sim, SimOptions};

pub const MS: u64 = 1_000;
pub const SECOND: u64 = 1_000_000;

pub fn config(mode: Mode) -> PrimaryBackupConfig {
    PrimaryBackupConfig { mode, ..PrimaryBackupConfig::default() }
}

pub fn with_bug(mode: Mode, bug: Bug) -> PrimaryBackupConfig {
    PrimaryBackupConfig { bug, ..config(mode) }
}

/// A fast LAN, every effect recorded. The simulator's invariants assume
/// that a commit is durable on a majority (Raft's rule): true of `quorum`
/// and `sync`, false by design of `async`, whose runs check their own
/// properties instead.
pub fn options(seed: u64, nodes: usize, mode: Mode) -> SimOptions {
    let mut options = SimOptions::new(seed, nodes);
    options.link = LinkConfig { delay_min_us: 200, delay_max_us: 1_000, ..LinkConfig::BENIGN };
    options.record_effects = true;
    options.check_invariants = mode != Mode::Async;
    options.replay_command =
        format!("REPLAB_SIM_SEED={{seed}} cargo test -p replab-primary-backup --test simulation ({mode} mode)");
    options
}

pub fn cluster(seed: u64, nodes: usize, config: PrimaryBackupConfig) -> Sim<PrimaryBackup> {
    cluster_with(options(seed, nodes, config.mode), config)
}

pub fn cluster_with(options: SimOptions, config: PrimaryBackupConfig) -> Sim<PrimaryBackup> {
    Sim::new(options, move |ctx, recovered| PrimaryBackup::new(ctx, config.clone(), recovered))
}

pub fn nodes(sim: &Sim<PrimaryBackup>) -> Vec<NodeId> {
    (1..=sim.options().nodes as NodeId).collect()
}

pub fn others(sim: &Sim<PrimaryBackup>, node: NodeId) -> Vec<NodeId> {
    nodes(sim).into_iter().filter(|&id| id != node).collect()
}

/// Runs until a primary is elected and returns it.
pub fn elect(sim: &mut Sim<PrimaryBackup>) -> NodeId {
    sim.wait_for_leader(5 * SECOND).expect("no violation").expect("a primary is elected")
}

/// The failure detectors of `observers` change their verdict on `about`.
pub fn verdict(sim: &mut Sim<PrimaryBackup>, observers: &[NodeId], about: NodeId, liveness: Liveness) {
    for &observer in observers {
        if observer != about && sim.is_alive(observer) {
            let refused = sim.inject(observer, Input::PeerLiveness { peer: about, liveness }).expect("no violation");
            assert_eq!(refused, None, "node {observer} refused a verdict on node {about}");
        }
    }
}

/// Every other node's detector declares `about` dead.
pub fn declare_dead(sim: &mut Sim<PrimaryBackup>, about: NodeId) {
    let observers = others(sim, about);
    verdict(sim, &observers, about, Liveness::Dead);
}

pub fn generation(sim: &Sim<PrimaryBackup>, node: NodeId) -> Term {
    sim.policy(node).expect("a live node").generation()
}

/// Every node that announced itself primary, by generation.
pub fn primaries_by_generation(sim: &Sim<PrimaryBackup>) -> BTreeMap<Term, BTreeSet<NodeId>> {
    let mut by_generation: BTreeMap<Term, BTreeSet<NodeId>> = BTreeMap::new();
    for record in sim.effect_log() {
        if let Effect::RoleChanged { role: Role::Leader, term, .. } = record.effect {
            by_generation.entry(term).or_default().insert(record.node);
        }
    }
    by_generation
}

pub fn assert_one_primary_per_generation(sim: &Sim<PrimaryBackup>) {
    for (generation, primaries) in primaries_by_generation(sim) {
        assert_eq!(primaries.len(), 1, "generation {generation} had primaries {primaries:?}");
    }
}

/// Runs until every live node in `nodes` applied at least `index`.
pub fn wait_applied(sim: &mut Sim<PrimaryBackup>, nodes: &[NodeId], index: LogIndex, limit_us: u64) -> bool {
    let deadline = sim.now_us() + limit_us;
    sim.run_until_cond(deadline, |s| nodes.iter().all(|&id| s.last_applied(id) >= index)).expect("no violation")
}

pub fn last_index(sim: &Sim<PrimaryBackup>, node: NodeId) -> LogIndex {
    sim.status(node).expect("a live node").last_index
}

/// Proposes `count` commands at `node` and returns the proposal.
pub fn propose(sim: &mut Sim<PrimaryBackup>, node: NodeId, count: usize) -> ProposalId {
    sim.propose_commands(node, count).expect("no violation")
}

pub fn status_of(sim: &Sim<PrimaryBackup>, proposal: ProposalId) -> ProposalStatus {
    sim.proposal(proposal).expect("a proposal").status.clone()
}

pub fn is_committed(sim: &Sim<PrimaryBackup>, proposal: ProposalId) -> bool {
    matches!(status_of(sim, proposal), ProposalStatus::Committed { .. })
}

/// The last log index a proposal took.
pub fn last_index_of(sim: &Sim<PrimaryBackup>, proposal: ProposalId) -> LogIndex {
    match status_of(sim, proposal) {
        ProposalStatus::Proposed { first_index, count, .. } | ProposalStatus::Committed { first_index, count, .. } => {
            first_index + count - 1
        }
        other => panic!("proposal {proposal} was not placed: {other:?}"),
    }
}

/// A steady cluster: a primary elected and its no-op applied everywhere.
pub fn steady(seed: u64, nodes: usize, config: PrimaryBackupConfig) -> (Sim<PrimaryBackup>, NodeId) {
    let mut sim = cluster(seed, nodes, config);
    let primary = elect(&mut sim);
    let noop = last_index(&sim, primary);
    let all = self::nodes(&sim);
    assert!(wait_applied(&mut sim, &all, noop, SECOND), "the no-op reaches everyone");
    (sim, primary)
}
