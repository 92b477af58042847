//! Randomized fault runs: one seed draws a network profile, a disk profile
//! and a schedule of crashes, restarts, partitions, link changes, stalled
//! disks and leader transfers, in half the seeds also windows of leader
//! churn, with clients proposing and reading all along. Every step is
//! checked; at the end everything is healed and the cluster must make
//! progress again (the liveness phase).

use replab_api::{NodeId, PluginRng, PolicyContext, Recovered, ReplicationPolicy, Role};

use crate::liveness::LivenessReport;
use crate::network::NetworkStats;
use crate::options::{DiskConfig, LinkConfig, SimOptions};
use crate::sim::{EffectCounts, Sim, mix_seed};
use crate::violation::Violation;

#[derive(Clone, Debug)]
pub struct ChaosOptions {
    pub nodes: usize,
    /// Virtual time of the fault phase.
    pub duration_us: u64,
    /// At most this many nodes are down at once.
    pub max_down: usize,
    pub tick_interval_us: u64,
    /// Commands that must commit after the heal, and the bound for them.
    /// 0 commands skips the liveness phase.
    pub liveness_commands: usize,
    pub liveness_bound_us: u64,
    /// `{seed}` is replaced by the seed; printed with violations.
    pub replay_command: String,
    /// See [`SimOptions::check_electable_without_committed`].
    pub check_electable_without_committed: bool,
}

impl Default for ChaosOptions {
    fn default() -> ChaosOptions {
        ChaosOptions {
            nodes: 5,
            duration_us: 10_000_000,
            max_down: 2,
            tick_interval_us: 10_000,
            liveness_commands: 3,
            liveness_bound_us: 10_000_000,
            replay_command: "REPLAB_SIM_SEED={seed} (rerun the failing test)".to_string(),
            check_electable_without_committed: true,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChaosReport {
    pub seed: u64,
    pub events: u64,
    /// The highest index committed anywhere.
    pub max_committed: u64,
    pub commands_committed: u64,
    pub proposals: u64,
    pub crashes: u64,
    pub faults: u64,
    /// Terms that had a leader.
    pub leader_terms: u64,
    pub network: NetworkStats,
    pub effects: EffectCounts,
    pub liveness: Option<LivenessReport>,
}

/// Draws one seed's network: anything from a clean LAN to a lossy,
/// duplicating, reordering mess.
fn random_link(rng: &mut PluginRng) -> LinkConfig {
    let delay_min_us = rng.range_inclusive(50, 1_000);
    let delay_max_us = delay_min_us + rng.range_inclusive(0, 5_000);
    let drop_probability = match rng.range_inclusive(0, 9) {
        0..=2 => 0.0,
        3..=7 => rng.range_inclusive(0, 50) as f64 / 1_000.0,
        _ => rng.range_inclusive(50, 200) as f64 / 1_000.0,
    };
    let duplicate_probability = if rng.chance(0.5) { 0.0 } else { rng.range_inclusive(0, 50) as f64 / 1_000.0 };
    let reorder_probability = if rng.chance(0.4) { 0.0 } else { rng.range_inclusive(0, 300) as f64 / 1_000.0 };
    LinkConfig {
        delay_min_us,
        delay_max_us,
        drop_probability,
        duplicate_probability,
        reorder_probability,
        reorder_extra_max_us: rng.range_inclusive(0, 20_000),
    }
}

fn random_disk(rng: &mut PluginRng) -> DiskConfig {
    let fsync_min_us = rng.range_inclusive(20, 500);
    let spread = if rng.chance(0.2) { rng.range_inclusive(5_000, 30_000) } else { rng.range_inclusive(0, 3_000) };
    DiskConfig { fsync_min_us, fsync_max_us: fsync_min_us + spread }
}

fn pick<T: Copy>(rng: &mut PluginRng, items: &[T]) -> Option<T> {
    if items.is_empty() { None } else { Some(items[rng.range_inclusive(0, items.len() as u64 - 1) as usize]) }
}

/// Runs one seed. `build` makes a policy for a node (it sees the node id
/// and the per-incarnation seed through the context).
pub fn run<P: ReplicationPolicy>(
    seed: u64,
    options: &ChaosOptions,
    build: impl FnMut(PolicyContext, Recovered) -> P + 'static,
) -> Result<ChaosReport, Violation> {
    run_keeping_world(seed, options, build).1
}

/// Like [`run`], but also hands back the world, to inspect a failing seed.
pub fn run_keeping_world<P: ReplicationPolicy>(
    seed: u64,
    options: &ChaosOptions,
    build: impl FnMut(PolicyContext, Recovered) -> P + 'static,
) -> (Sim<P>, Result<ChaosReport, Violation>) {
    let mut rng = PluginRng::from_seed_u64(mix_seed(seed, 3));
    let mut sim_options = SimOptions::new(seed, options.nodes);
    sim_options.tick_interval_us = options.tick_interval_us;
    sim_options.link = random_link(&mut rng);
    sim_options.disk = random_disk(&mut rng);
    sim_options.replay_command = options.replay_command.clone();
    sim_options.check_electable_without_committed = options.check_electable_without_committed;
    let mut sim = Sim::new(sim_options, build);
    let mut churn = Churn::draw(PluginRng::from_seed_u64(mix_seed(seed, 4)), options.duration_us);
    let result = drive(&mut sim, &mut rng, &mut churn, options);
    (sim, result)
}

/// Leader churn windows. While one is open, every newly elected leader is
/// isolated soon after it wins, and the isolation of the one before is
/// healed. "Soon" is drawn per leader: at once (its first appends reach
/// no follower), after up to 3 ms (they reach some), or right after its
/// first commit as leader (what it sends next is lost). Terms pile up
/// whose entries sit on a minority, next to older-term entries that a
/// later leader replicates to a majority: the shape of the Raft paper's
/// Figure 8. Independent random faults almost never produce it, because a
/// new leader's no-op reaches the others within a round trip, long before
/// the next fault.
struct Churn {
    rng: PluginRng,
    /// The open window ends here, or the next one opens here.
    open_until: Option<u64>,
    next_open: u64,
    /// The highest leader term already seen in this window.
    seen_term: u64,
    /// The leader to isolate next, and when.
    pending: Option<Isolation>,
}

#[derive(Clone, Copy, Debug)]
enum Isolation {
    /// At this time.
    At(u64, NodeId),
    /// As soon as its commit index passes `above`: its first commit as
    /// leader.
    AfterCommit(NodeId, u64),
}

impl Churn {
    /// Half the seeds churn: a first window opens in the first half of the
    /// run, and windows of 0.5-3 s follow each other 1-5 s apart.
    fn draw(mut rng: PluginRng, duration_us: u64) -> Churn {
        let next_open = if rng.chance(0.5) { rng.range_inclusive(0, duration_us / 2) } else { u64::MAX };
        Churn { rng, open_until: None, next_open, seen_term: 0, pending: None }
    }

    /// The next time the churn schedule must act.
    fn next_event(&self) -> u64 {
        let boundary = self.open_until.unwrap_or(self.next_open);
        match self.pending {
            Some(Isolation::At(at, _)) => at.min(boundary),
            _ => boundary,
        }
    }

    /// Runs `sim` up to `t`, stopping early when a new leader shows up in
    /// an open window (an isolation is then scheduled) or when a leader
    /// waiting for its first commit made it (it is isolated).
    fn run_until<P: ReplicationPolicy>(&mut self, sim: &mut Sim<P>, t: u64) -> Result<(), Violation> {
        if self.open_until.is_none() {
            return sim.run_until(t);
        }
        match self.pending {
            Some(Isolation::At(..)) => sim.run_until(t),
            Some(Isolation::AfterCommit(leader, above)) => {
                let leading = |s: &Sim<P>| s.role(leader) == Some(Role::Leader);
                sim.run_until_cond(t, |s| s.commit_index(leader) > above || !leading(s))?;
                if !leading(sim) {
                    self.pending = None;
                } else if sim.commit_index(leader) > above {
                    self.pending = None;
                    sim.network_mut().heal();
                    sim.network_mut().isolate(leader);
                }
                Ok(())
            }
            None => {
                let seen = self.seen_term;
                sim.run_until_cond(t, |s| s.leader_and_term().is_some_and(|(_, term)| term > seen))?;
                if let Some((leader, term)) = sim.leader_and_term().filter(|&(_, term)| term > seen) {
                    self.seen_term = term;
                    let now = sim.now_us();
                    self.pending = Some(match self.rng.range_inclusive(0, 2) {
                        0 => Isolation::At(now, leader),
                        1 => Isolation::At(now + self.rng.range_inclusive(1, 3_000), leader),
                        _ => Isolation::AfterCommit(leader, sim.commit_index(leader)),
                    });
                }
                Ok(())
            }
        }
    }

    /// Opens or closes a window, or isolates the pending leader, if due.
    fn act<P: ReplicationPolicy>(&mut self, sim: &mut Sim<P>) {
        let now = sim.now_us();
        if let Some(Isolation::At(at, leader)) = self.pending
            && at <= now
        {
            self.pending = None;
            sim.network_mut().heal();
            sim.network_mut().isolate(leader);
        }
        match self.open_until {
            Some(until) if until <= now => {
                self.open_until = None;
                self.pending = None;
                sim.network_mut().heal();
                self.next_open = now.saturating_add(self.rng.range_inclusive(1_000_000, 5_000_000));
            }
            None if self.next_open <= now => {
                self.open_until = Some(now + self.rng.range_inclusive(500_000, 3_000_000));
                // The sitting leader goes first.
                self.seen_term = 0;
            }
            _ => {}
        }
    }
}

fn drive<P: ReplicationPolicy>(
    sim: &mut Sim<P>,
    rng: &mut PluginRng,
    churn: &mut Churn,
    options: &ChaosOptions,
) -> Result<ChaosReport, Violation> {
    let fault_gap_max_us = rng.range_inclusive(100_000, 1_000_000);
    let client_gap_max_us = rng.range_inclusive(2_000, 20_000);
    let mut next_fault = rng.range_inclusive(1, fault_gap_max_us);
    let mut next_client = rng.range_inclusive(1, client_gap_max_us);
    let mut faults = 0;
    let end = options.duration_us;
    while sim.now_us() < end {
        let t = next_fault.min(next_client).min(churn.next_event()).min(end);
        churn.run_until(sim, t)?;
        if sim.now_us() < t {
            // Stopped early: a new leader to isolate.
            continue;
        }
        churn.act(sim);
        if t == next_fault {
            faults += 1;
            inject_fault(sim, rng, options)?;
            next_fault = t + rng.range_inclusive(1, fault_gap_max_us);
        }
        if t == next_client {
            client_action(sim, rng)?;
            next_client = t + rng.range_inclusive(1, client_gap_max_us);
        }
    }
    let liveness = if options.liveness_commands > 0 {
        Some(sim.check_liveness(options.liveness_commands, options.liveness_bound_us)?)
    } else {
        None
    };
    sim.check_nothing_lost()?;
    let nodes = options.nodes as NodeId;
    Ok(ChaosReport {
        seed: sim.options().seed,
        events: sim.events_processed(),
        max_committed: sim.max_committed(),
        commands_committed: sim.committed_commands(),
        proposals: sim.proposals().len() as u64,
        crashes: (1..=nodes).map(|id| sim.crashes(id)).sum(),
        faults,
        leader_terms: sim.leaders_by_term().len() as u64,
        network: sim.network_stats(),
        effects: sim.effect_counts(),
        liveness,
    })
}

fn client_action<P: ReplicationPolicy>(sim: &mut Sim<P>, rng: &mut PluginRng) -> Result<(), Violation> {
    let alive: Vec<NodeId> = (1..=sim.options().nodes as NodeId).filter(|&id| sim.is_alive(id)).collect();
    let target = match sim.leader() {
        Some(leader) if rng.chance(0.8) => leader,
        _ => match pick(rng, &alive) {
            Some(node) => node,
            None => return Ok(()),
        },
    };
    if rng.chance(0.75) {
        let count = rng.range_inclusive(1, 4) as usize;
        sim.propose_commands(target, count)?;
    } else {
        sim.read(target)?;
    }
    Ok(())
}

fn inject_fault<P: ReplicationPolicy>(
    sim: &mut Sim<P>,
    rng: &mut PluginRng,
    options: &ChaosOptions,
) -> Result<(), Violation> {
    let all: Vec<NodeId> = (1..=options.nodes as NodeId).collect();
    let alive: Vec<NodeId> = all.iter().copied().filter(|&id| sim.is_alive(id)).collect();
    let down: Vec<NodeId> = all.iter().copied().filter(|&id| !sim.is_alive(id)).collect();
    match rng.range_inclusive(0, 99) {
        0..=14 => {
            if down.len() < options.max_down
                && let Some(node) = pick(rng, &alive)
            {
                sim.crash(node);
            }
        }
        15..=24 => {
            if down.len() < options.max_down
                && let Some(leader) = sim.leader()
            {
                sim.crash(leader);
            }
        }
        25..=44 => {
            if let Some(node) = pick(rng, &down) {
                sim.restart(node)?;
            }
        }
        45..=54 => {
            let (left, right): (Vec<NodeId>, Vec<NodeId>) = all.iter().partition(|_| rng.chance(0.5));
            sim.network_mut().partition(&[&left, &right]);
        }
        55..=62 => {
            if let Some(node) = pick(rng, &all) {
                sim.network_mut().isolate(node);
            }
        }
        63..=67 => {
            let from = pick(rng, &all).expect("nodes exist");
            let to = pick(rng, &all).expect("nodes exist");
            if from != to {
                sim.network_mut().cut(from, to);
            }
        }
        68..=84 => sim.network_mut().heal(),
        85..=91 => {
            let link = random_link(rng);
            sim.network_mut().set_all_links(link);
        }
        92..=95 => {
            if let Some(node) = pick(rng, &all) {
                let stalled = rng.chance(0.6);
                sim.set_disk_stalled(node, stalled);
            }
        }
        _ => {
            if let Some(leader) = sim.leader() {
                let others: Vec<NodeId> = all.iter().copied().filter(|&n| n != leader).collect();
                if let Some(to) = pick(rng, &others) {
                    sim.transfer_leader(leader, to)?;
                }
            }
        }
    }
    Ok(())
}
