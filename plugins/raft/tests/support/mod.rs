//! Helpers shared by the Raft acceptance tests: building simulated
//! clusters of `Raft` nodes and the per-seed configurations of the
//! randomized simulation.

#![allow(dead_code)]

use bytes::Bytes;
use replab_api::{Entry, EntryKind, HardState, LogIndex, NodeId, PluginRng, Recovered, Role, Term};
use replab_raft::{Bug, Raft, RaftConfig};
use replab_sim::chaos::{self, ChaosOptions, ChaosReport};
use replab_sim::{LinkConfig, Sim, SimOptions, Violation, mix_seed};

pub const REPLAY: &str =
    "REPLAB_SIM_SEED={seed} cargo test -p replab-raft --test simulation -- --exact replay_one_seed";

pub const MS: u64 = 1_000;
pub const SECOND: u64 = 1_000_000;

/// A randomized seed also draws a Raft configuration: PreVote and
/// CheckQuorum on or off, small or default batches and windows, a small or
/// large backlog limit, and snapshots in a third of the seeds.
pub fn config_for_seed(seed: u64, bug: Bug) -> RaftConfig {
    let mut rng = PluginRng::from_seed_u64(mix_seed(seed, 0x7af7));
    let choose =
        |rng: &mut PluginRng, options: &[usize]| options[rng.range_inclusive(0, options.len() as u64 - 1) as usize];
    RaftConfig {
        pre_vote: !rng.chance(0.2),
        check_quorum: !rng.chance(0.2),
        max_entries_per_append: choose(&mut rng, &[4, 64]),
        max_bytes_per_append: choose(&mut rng, &[256, 1024 * 1024]),
        max_inflight_appends: choose(&mut rng, &[2, 4, 16]),
        max_inflight_bytes: choose(&mut rng, &[1024, 8 * 1024 * 1024]),
        max_uncommitted_entries: choose(&mut rng, &[256, 1024]) as u64,
        snapshot_threshold_entries: if seed.is_multiple_of(3) { rng.range_inclusive(10, 200) } else { 0 },
        bug,
        ..RaftConfig::default()
    }
}

pub fn chaos_options() -> ChaosOptions {
    ChaosOptions { replay_command: REPLAY.to_string(), ..ChaosOptions::default() }
}

pub fn run_seed(seed: u64, bug: Bug) -> Result<ChaosReport, Violation> {
    run_seed_with(seed, bug, &chaos_options())
}

pub fn run_seed_with(seed: u64, bug: Bug, options: &ChaosOptions) -> Result<ChaosReport, Violation> {
    let config = config_for_seed(seed, bug);
    chaos::run(seed, options, move |ctx, recovered| Raft::new(ctx, config.clone(), recovered))
}

/// A cluster of `nodes` Raft nodes, all with `config`.
pub fn cluster(seed: u64, nodes: usize, config: RaftConfig) -> Sim<Raft> {
    cluster_with(SimOptions::new(seed, nodes), move |_| config.clone())
}

/// A cluster whose per-node configuration comes from `config_of(id)`.
pub fn cluster_with(options: SimOptions, config_of: impl Fn(NodeId) -> RaftConfig + 'static) -> Sim<Raft> {
    Sim::new(options, move |ctx, recovered| {
        let config = config_of(ctx.id);
        Raft::new(ctx, config, recovered)
    })
}

pub fn fast_lan() -> LinkConfig {
    LinkConfig { delay_min_us: 200, delay_max_us: 1_000, ..LinkConfig::BENIGN }
}

/// A log whose entries have the given terms, starting at index 1.
pub fn log_with_terms(terms: &[Term]) -> Vec<Entry> {
    terms
        .iter()
        .enumerate()
        .map(|(i, &term)| Entry {
            index: i as LogIndex + 1,
            term,
            kind: EntryKind::Command,
            data: Bytes::from(format!("e{}t{term}", i + 1)),
        })
        .collect()
}

pub fn recovered(term: Term, vote: Option<NodeId>, terms: &[Term]) -> Recovered {
    Recovered {
        hard_state: HardState { term, vote },
        snapshot: None,
        entries: log_with_terms(terms),
        ..Recovered::default()
    }
}

pub fn terms_of(entries: &[Entry]) -> Vec<Term> {
    entries.iter().map(|e| e.term).collect()
}

/// Runs until a leader is elected and returns it.
pub fn elect(sim: &mut Sim<Raft>) -> NodeId {
    sim.wait_for_leader(10 * SECOND).expect("no violation").expect("a leader is elected")
}

/// Live nodes that believe they lead, with their terms.
pub fn leaders(sim: &Sim<Raft>) -> Vec<(NodeId, Term)> {
    (1..=sim.options().nodes as NodeId)
        .filter_map(|id| sim.policy(id).filter(|r| r.role() == Role::Leader).map(|r| (id, r.term())))
        .collect()
}

/// Runs until every live node applied at least `index`.
pub fn wait_applied_everywhere(sim: &mut Sim<Raft>, index: LogIndex, limit_us: u64) -> bool {
    let deadline = sim.now_us() + limit_us;
    let nodes = sim.options().nodes as NodeId;
    sim.run_until_cond(deadline, |s| (1..=nodes).filter(|&id| s.is_alive(id)).all(|id| s.last_applied(id) >= index))
        .expect("no violation")
}
