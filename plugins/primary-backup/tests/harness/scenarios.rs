//! Fault schedules for measuring the detectors on the harness: one crash,
//! and a flapping link or node. A schedule is drawn from the seed alone,
//! never from the detector, so gossip and heartbeat meet the same crash at
//! the same virtual time and the same flaps (`tests/detectors.rs`).
//!
//! The cluster is five primary-backup nodes (quorum mode) on a clean
//! network (200 µs - 1 ms one way, no loss); the policy acts on the
//! verdicts, so a run also shows how soon a crashed primary is replaced.

use replab_api::{Liveness, NodeId, PluginRng};
use replab_primary_backup::Mode;
use replab_sim::{Violation, mix_seed};

use super::chaos::{MS, SECOND};
use super::detectors::DetectorConfig;
use super::invariants::World;
use super::world::{Built, Spec, world_with};

pub const MEMBERS: usize = 5;
/// The simulator's default tick and the world's largest one-way delay.
pub const TICK_US: u64 = 10_000;
pub const MAX_DELAY_US: u64 = 1_000;

/// What happens, and when, drawn from the seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub seed: u64,
    /// Crash the primary (else a backup, `backup_rank` among them).
    pub crash_primary: bool,
    pub backup_rank: u64,
    /// After a warm-up long enough for phi's window to fill.
    pub crash_at_us: u64,
    /// The flapping link (both ways) or node.
    pub flap_pair: (NodeId, NodeId),
    pub flap_node: NodeId,
    /// Each cycle: cut for `down_us`, then whole for `up_us`.
    pub down_us: u64,
    pub up_us: u64,
    pub cycles: u64,
}

impl Schedule {
    pub fn draw(seed: u64) -> Schedule {
        let mut rng = PluginRng::from_seed_u64(mix_seed(seed, 0x5c4e_d01e));
        let a = rng.range_inclusive(1, MEMBERS as u64);
        let b = 1 + (a + rng.range_inclusive(0, MEMBERS as u64 - 2)) % MEMBERS as u64;
        Schedule {
            seed,
            crash_primary: rng.chance(0.5),
            backup_rank: rng.range_inclusive(0, MEMBERS as u64 - 2),
            crash_at_us: rng.range_inclusive(3 * SECOND, 5 * SECOND),
            flap_pair: (a, b),
            flap_node: rng.range_inclusive(1, MEMBERS as u64),
            // Down longer than the default detectors' suspicion (about
            // 0.5 s for both), so each cycle can be noticed.
            down_us: rng.range_inclusive(600, 1_500) * MS,
            up_us: rng.range_inclusive(500, 1_500) * MS,
            cycles: 8,
        }
    }
}

/// A five-node quorum cluster running `detector`, replayed by `test`.
pub fn cluster(seed: u64, detector: &DetectorConfig, test: &'static str) -> Built {
    let spec = Spec { members: MEMBERS, test, ..Spec::new(seed, Mode::Quorum) };
    world_with(&spec, detector.clone(), false)
}

/// How long every live observer took to suspect, and to declare dead, a
/// crashed node, and how soon the cluster had another primary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrashReport {
    pub crashed: NodeId,
    pub was_primary: bool,
    /// Verdicts of any kind given before the crash (all false: nothing
    /// had failed).
    pub verdicts_before: usize,
    /// Per live observer: (observer, µs to Suspect-or-Dead, µs to Dead).
    pub detections: Vec<(NodeId, Option<u64>, Option<u64>)>,
    /// Verdicts other than Alive on nodes that never crashed.
    pub false_suspicions: usize,
    /// µs from the crash until another node was primary (a crashed
    /// primary only).
    pub failover_us: Option<u64>,
}

impl CrashReport {
    pub fn worst_suspicion_us(&self) -> Option<u64> {
        self.detections.iter().map(|d| d.1).collect::<Option<Vec<_>>>()?.into_iter().max()
    }

    pub fn worst_dead_us(&self) -> Option<u64> {
        self.detections.iter().map(|d| d.2).collect::<Option<Vec<_>>>()?.into_iter().max()
    }
}

/// Crashes one node as `schedule` says and watches the verdicts until the
/// slower of the two bounds has passed, plus a second.
pub fn crash_run(schedule: &Schedule, detector: &DetectorConfig, test: &'static str) -> Result<CrashReport, Violation> {
    let mut sim = cluster(schedule.seed, detector, test).sim;
    sim.run_until(schedule.crash_at_us)?;
    let verdicts_before = sim.verdicts().len();
    let primary = sim.leader();
    let crashed = match primary {
        Some(p) if schedule.crash_primary => p,
        _ => {
            let backups: Vec<NodeId> = (1..=MEMBERS as NodeId).filter(|&n| Some(n) != primary).collect();
            backups[schedule.backup_rank as usize % backups.len()]
        }
    };
    let crash_at = sim.now_us();
    sim.crash(crashed);
    let was_primary = primary == Some(crashed);
    let watch_until = crash_at + detector.detection_bound_us(true, TICK_US, MAX_DELAY_US) + SECOND;
    let failover_us = if was_primary {
        let found = sim.run_until_cond(watch_until, |s| s.leader().is_some_and(|l| l != crashed))?;
        found.then(|| sim.now_us() - crash_at)
    } else {
        None
    };
    sim.run_until(watch_until)?;
    let after = &sim.verdicts()[verdicts_before..];
    let first = |observer: NodeId, dead_only: bool| {
        after
            .iter()
            .find(|v| {
                v.observer == observer
                    && v.peer == crashed
                    && (v.liveness == Liveness::Dead || (!dead_only && v.liveness == Liveness::Suspect))
            })
            .map(|v| v.time_us - crash_at)
    };
    let detections =
        (1..=MEMBERS as NodeId).filter(|&o| o != crashed).map(|o| (o, first(o, false), first(o, true))).collect();
    let false_suspicions = sim.verdicts().iter().filter(|v| v.peer != crashed && v.liveness != Liveness::Alive).count();
    Ok(CrashReport { crashed, was_primary, verdicts_before, detections, false_suspicions, failover_us })
}

/// What a flapping fault made the detectors say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlapReport {
    /// Suspect or Dead verdicts given while the fault flapped (and for a
    /// settling second after), by anyone about anyone.
    pub suspicions: u64,
    /// Verdicts back to Alive: each one ends a suspicion.
    pub recoveries: u64,
    /// Generations the cluster went through while flapping (claims, won
    /// or not), and primaries elected: what the suspicions cost the
    /// policy.
    pub generations: u64,
    pub primaries: u64,
}

/// Which fault flaps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flap {
    /// The link between two nodes, both ways; the rest of the network is
    /// whole, so gossip can relay around it.
    Link,
    /// Every link of one node: nobody can relay.
    Node,
}

/// Flaps `flap` as `schedule` says, after a 3 s warm-up, and counts.
pub fn flap_run(
    schedule: &Schedule,
    flap: Flap,
    detector: &DetectorConfig,
    test: &'static str,
) -> Result<FlapReport, Violation> {
    let Built { mut sim, primaries, .. } = cluster(schedule.seed, detector, test);
    sim.run_until(3 * SECOND)?;
    let primaries_before = primaries.borrow().len() as u64;
    let verdicts_before = sim.verdicts().len();
    let generation = |sim: &World| (1..=MEMBERS as NodeId).filter_map(|n| sim.status(n)).map(|s| s.term).max();
    let generation_before = generation(&sim).unwrap_or(0);
    for _ in 0..schedule.cycles {
        let network = sim.network_mut();
        match flap {
            Flap::Link => {
                let (a, b) = schedule.flap_pair;
                network.cut(a, b);
                network.cut(b, a);
            }
            Flap::Node => network.isolate(schedule.flap_node),
        }
        sim.run_for(schedule.down_us)?;
        sim.network_mut().heal();
        sim.run_for(schedule.up_us)?;
    }
    sim.run_for(SECOND)?;
    let during = &sim.verdicts()[verdicts_before..];
    let suspicions = during.iter().filter(|v| v.liveness != Liveness::Alive).count() as u64;
    let recoveries = during.len() as u64 - suspicions;
    let generations = generation(&sim).unwrap_or(0) - generation_before;
    let primaries = primaries.borrow().len() as u64 - primaries_before;
    Ok(FlapReport { suspicions, recoveries, generations, primaries })
}

/// Crashes a node as `schedule` says, waits until every observer declared
/// it dead, restarts it, and returns how long each observer took to take
/// it back (µs after the restart), in observer order.
pub fn restart_run(schedule: &Schedule, detector: &DetectorConfig, test: &'static str) -> Result<Vec<u64>, Violation> {
    let mut sim = cluster(schedule.seed, detector, test).sim;
    sim.run_until(schedule.crash_at_us)?;
    let node = schedule.flap_node;
    sim.crash(node);
    sim.run_for(detector.detection_bound_us(true, TICK_US, MAX_DELAY_US))?;
    let restarted_at = sim.now_us();
    let verdicts_before = sim.verdicts().len();
    sim.restart(node)?;
    sim.run_for(SECOND)?;
    let after = &sim.verdicts()[verdicts_before..];
    let taken_back = (1..=MEMBERS as NodeId)
        .filter(|&o| o != node)
        .map(|o| {
            after
                .iter()
                .find(|v| v.observer == o && v.peer == node && v.liveness == Liveness::Alive)
                .map_or(u64::MAX, |v| v.time_us - restarted_at)
        })
        .collect();
    Ok(taken_back)
}
