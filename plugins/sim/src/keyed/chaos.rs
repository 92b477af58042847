//! Randomized keyed runs: one seed draws a network, disk and detector
//! profile, a fault schedule (crashes and restarts, partitions, one-way
//! cuts, heals, link changes, stalled disks, clock skew, quick reboots)
//! and a client workload (gets, blind puts and deletes, read-modify-write
//! puts carrying the context of their read, each value unique) on a few
//! hot keys. Then everything is healed, the replicas are given a bounded
//! time to converge, every key is read once more, and the policy's
//! invariants have their last word.

use std::collections::BTreeMap;

use bytes::Bytes;
use replab_api::{KeyedOp, KeyedReply, NodeId, PluginRng};

use crate::keyed::checker::{KeyedInvariants, KeyedViolation};
use crate::keyed::clients::{Outcome, Purpose};
use crate::keyed::options::{DetectorConfig, KeyedOptions};
use crate::keyed::world::{KeyedBuilder, KeyedSim, WorldStats};
use crate::network::NetworkStats;
use crate::options::{DiskConfig, LinkConfig};
use crate::sim::mix_seed;

#[derive(Clone, Debug)]
pub struct KeyedChaosOptions {
    pub nodes: usize,
    /// Virtual time of the fault and client phase.
    pub duration_us: u64,
    /// How many distinct keys the clients use (the first one is hot).
    pub keys: usize,
    /// At most this many nodes are down at once.
    pub max_down: usize,
    /// At most this many distinct nodes lose their disk whole during the
    /// run (0: none). A put acknowledged by W owners survives W - 1 such
    /// losses.
    pub max_wiped: usize,
    pub tick_interval_us: u64,
    /// After the heal: the replicas must have converged and every request
    /// been answered within this bound (else the invariants see the
    /// divergence), and not before `settle_min_us` is checked.
    pub settle_min_us: u64,
    pub settle_bound_us: u64,
    /// `{seed}` is replaced by the seed; printed with violations.
    pub replay_command: String,
}

impl Default for KeyedChaosOptions {
    fn default() -> KeyedChaosOptions {
        KeyedChaosOptions {
            nodes: 5,
            duration_us: 4_000_000,
            keys: 6,
            max_down: 2,
            max_wiped: 0,
            tick_interval_us: 10_000,
            settle_min_us: 100_000,
            settle_bound_us: 20_000_000,
            replay_command: "REPLAB_SIM_SEED={seed} (rerun the failing test)".to_string(),
        }
    }
}

/// What became of the clients' operations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpCounts {
    pub gets: u64,
    pub puts: u64,
    pub deletes: u64,
    /// Puts carrying the context of a read.
    pub updates: u64,
    pub written: u64,
    pub failed_puts: u64,
    pub unknown_puts: u64,
    /// Requests whose node crashed before answering.
    pub unanswered: u64,
    /// Requests sent to a node that was down.
    pub node_down: u64,
    pub values_read: u64,
    pub failed_reads: u64,
    /// Reads that returned more than one value.
    pub reads_with_siblings: u64,
}

impl OpCounts {
    pub fn add(&mut self, o: &OpCounts) {
        self.gets += o.gets;
        self.puts += o.puts;
        self.deletes += o.deletes;
        self.updates += o.updates;
        self.written += o.written;
        self.failed_puts += o.failed_puts;
        self.unknown_puts += o.unknown_puts;
        self.unanswered += o.unanswered;
        self.node_down += o.node_down;
        self.values_read += o.values_read;
        self.failed_reads += o.failed_reads;
        self.reads_with_siblings += o.reads_with_siblings;
    }
}

#[derive(Clone, Debug)]
pub struct KeyedChaosReport {
    pub seed: u64,
    pub events: u64,
    pub faults: u64,
    pub ops: OpCounts,
    pub world: WorldStats,
    pub network: NetworkStats,
    /// The policies' counters, summed over nodes and incarnations.
    pub counters: BTreeMap<&'static str, u64>,
    /// What the invariants counted.
    pub checker: Vec<(&'static str, u64)>,
    /// Virtual time from the heal to converged replicas and no request
    /// waiting; `None` if the bound passed first.
    pub settle_us: Option<u64>,
}

fn random_link(rng: &mut PluginRng) -> LinkConfig {
    let delay_min_us = rng.range_inclusive(50, 1_000);
    let delay_max_us = delay_min_us + rng.range_inclusive(0, 5_000);
    let drop_probability = match rng.range_inclusive(0, 9) {
        0..=2 => 0.0,
        3..=7 => rng.range_inclusive(0, 50) as f64 / 1_000.0,
        _ => rng.range_inclusive(50, 200) as f64 / 1_000.0,
    };
    let duplicate_probability = if rng.chance(0.4) { 0.0 } else { rng.range_inclusive(0, 80) as f64 / 1_000.0 };
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

fn random_detector(rng: &mut PluginRng) -> DetectorConfig {
    let dead_after_us = rng.range_inclusive(50_000, 1_500_000);
    DetectorConfig { interval_us: 20_000, suspect_after_us: dead_after_us / 3, dead_after_us }
}

fn pick<T: Copy>(rng: &mut PluginRng, items: &[T]) -> Option<T> {
    if items.is_empty() { None } else { Some(items[rng.range_inclusive(0, items.len() as u64 - 1) as usize]) }
}

/// Runs one seed; `build` makes a node's policy, `checker` holds the
/// policy's invariants.
pub fn run(
    seed: u64,
    options: &KeyedChaosOptions,
    build: KeyedBuilder,
    checker: Box<dyn KeyedInvariants>,
) -> Result<KeyedChaosReport, KeyedViolation> {
    run_keeping_world(seed, options, build, checker).1
}

/// Like [`run`], but also hands back the world, to inspect a failing seed
/// (`None` if a node failed to boot).
pub fn run_keeping_world(
    seed: u64,
    options: &KeyedChaosOptions,
    build: KeyedBuilder,
    checker: Box<dyn KeyedInvariants>,
) -> (Option<KeyedSim>, Result<KeyedChaosReport, KeyedViolation>) {
    let mut rng = PluginRng::from_seed_u64(mix_seed(seed, 103));
    let mut world_options = KeyedOptions::new(seed, options.nodes);
    world_options.tick_interval_us = options.tick_interval_us;
    world_options.link = random_link(&mut rng);
    world_options.disk = random_disk(&mut rng);
    world_options.detector = random_detector(&mut rng);
    world_options.crash_keeps_unsynced_prefix = rng.chance(0.25);
    world_options.replay_command = options.replay_command.clone();
    let mut world = match KeyedSim::new(world_options, build, checker) {
        Ok(world) => world,
        Err(violation) => return (None, Err(violation)),
    };
    let mut schedule = Schedule::new(rng, options);
    let result = schedule.drive(&mut world, options);
    (Some(world), result)
}

struct Schedule {
    rng: PluginRng,
    keys: Vec<Bytes>,
    /// Gets whose context a later put will carry, by op index.
    read_for_update: Vec<usize>,
    next_value: u64,
    faults: u64,
    /// Nodes whose disk was lost.
    wiped: Vec<NodeId>,
}

impl Schedule {
    fn new(rng: PluginRng, options: &KeyedChaosOptions) -> Schedule {
        let keys = (0..options.keys.max(1)).map(|i| Bytes::from(format!("k{i}"))).collect();
        Schedule { rng, keys, read_for_update: Vec::new(), next_value: 0, faults: 0, wiped: Vec::new() }
    }

    fn drive(&mut self, world: &mut KeyedSim, options: &KeyedChaosOptions) -> Result<KeyedChaosReport, KeyedViolation> {
        let fault_gap_max_us = self.rng.range_inclusive(100_000, 1_000_000);
        let client_gap_max_us = self.rng.range_inclusive(2_000, 15_000);
        let mut next_fault = self.rng.range_inclusive(1, fault_gap_max_us);
        let mut next_client = self.rng.range_inclusive(1, client_gap_max_us);
        let end = options.duration_us;
        while world.now_us() < end {
            let t = next_fault.min(next_client).min(end);
            world.run_until(t)?;
            if t == next_fault {
                self.faults += 1;
                self.fault(world, options)?;
                world.audit()?;
                next_fault = t + self.rng.range_inclusive(1, fault_gap_max_us);
            }
            if t == next_client {
                self.client(world)?;
                next_client = t + self.rng.range_inclusive(1, client_gap_max_us);
            }
        }
        let settle_us = self.settle(world, options)?;
        self.final_reads(world, options)?;
        world.finish()?;
        Ok(report(world, self.faults, settle_us))
    }

    fn key(&mut self) -> Bytes {
        // A hot key half the time: concurrent writes and siblings.
        let i = if self.rng.chance(0.5) { 0 } else { self.rng.range_inclusive(0, self.keys.len() as u64 - 1) };
        self.keys[i as usize].clone()
    }

    fn value(&mut self) -> Bytes {
        self.next_value += 1;
        // Unique per write; the '~' at the end makes a value with its last
        // byte changed one that no client wrote.
        Bytes::from(format!("v{}~", self.next_value))
    }

    fn node(&mut self, world: &KeyedSim) -> NodeId {
        pick(&mut self.rng, &world.members()).expect("nodes exist")
    }

    fn client(&mut self, world: &mut KeyedSim) -> Result<(), KeyedViolation> {
        // Reads whose answer came back are followed by their update.
        let (waiting, answered): (Vec<usize>, Vec<usize>) = std::mem::take(&mut self.read_for_update)
            .into_iter()
            .partition(|&i| world.ops()[i].outcome == Outcome::Pending);
        self.read_for_update = waiting;
        for i in answered {
            let op = &world.ops()[i];
            if let Outcome::Replied(KeyedReply::Values { context, .. }) = &op.outcome {
                let (key, context) = (op.key().clone(), context.clone());
                let value = if self.rng.chance(0.15) { None } else { Some(self.value()) };
                let node = self.node(world);
                world.submit(node, KeyedOp::Put { key, value, context }, Purpose::Update)?;
            }
        }
        let key = self.key();
        let node = self.node(world);
        match self.rng.range_inclusive(0, 99) {
            0..=19 => {
                world.submit(node, KeyedOp::Get { key }, Purpose::Read)?;
            }
            20..=49 => {
                let i = world.submit(node, KeyedOp::Get { key }, Purpose::ReadForUpdate)?;
                self.read_for_update.push(i);
            }
            50..=93 => {
                let value = Some(self.value());
                world.submit(node, KeyedOp::Put { key, value, context: Bytes::new() }, Purpose::Blind)?;
            }
            _ => {
                world.submit(node, KeyedOp::Put { key, value: None, context: Bytes::new() }, Purpose::Blind)?;
            }
        }
        Ok(())
    }

    fn fault(&mut self, world: &mut KeyedSim, options: &KeyedChaosOptions) -> Result<(), KeyedViolation> {
        let all = world.members();
        let alive: Vec<NodeId> = all.iter().copied().filter(|&n| world.is_alive(n)).collect();
        let down: Vec<NodeId> = all.iter().copied().filter(|&n| !world.is_alive(n)).collect();
        let rng = &mut self.rng;
        match rng.range_inclusive(0, 99) {
            0..=19 => {
                if down.len() < options.max_down
                    && let Some(node) = pick(rng, &alive)
                {
                    world.crash(node)?;
                }
            }
            20..=39 => {
                if let Some(node) = pick(rng, &down) {
                    world.restart(node)?;
                }
            }
            40..=42 => {
                // A quick reboot: what was not synced is gone, the peers
                // may not even notice.
                if let Some(node) = pick(rng, &alive) {
                    world.crash(node)?;
                    world.restart(node)?;
                }
            }
            43..=44 => {
                // A lost disk, within the budget of distinct nodes.
                let allowed: Vec<NodeId> = all
                    .iter()
                    .copied()
                    .filter(|n| self.wiped.contains(n) || self.wiped.len() < options.max_wiped)
                    .filter(|n| !world.is_alive(*n) || down.len() < options.max_down)
                    .collect();
                if let Some(node) = pick(rng, &allowed) {
                    world.wipe(node)?;
                    if !self.wiped.contains(&node) {
                        self.wiped.push(node);
                    }
                }
            }
            45..=54 => {
                let (left, right): (Vec<NodeId>, Vec<NodeId>) = all.iter().partition(|_| rng.chance(0.5));
                world.network_mut().partition(&[&left, &right]);
            }
            55..=61 => {
                let node = pick(rng, &all).expect("nodes exist");
                world.network_mut().isolate(node);
            }
            62..=66 => {
                let (from, to) = (pick(rng, &all).expect("nodes"), pick(rng, &all).expect("nodes"));
                if from != to {
                    world.network_mut().cut(from, to);
                }
            }
            67..=79 => world.network_mut().heal(),
            80..=85 => {
                let link = random_link(rng);
                world.network_mut().set_all_links(link);
            }
            86..=90 => {
                let node = pick(rng, &all).expect("nodes exist");
                let stalled = rng.chance(0.6);
                world.set_disk_stalled(node, stalled);
            }
            _ => {
                // Clock skew: up to 30 s either way, or back to none.
                let node = pick(rng, &all).expect("nodes exist");
                let skew = if rng.chance(0.3) { 0 } else { rng.range_inclusive(0, 60_000) as i64 - 30_000 };
                world.set_skew_ms(node, skew);
            }
        }
        Ok(())
    }

    /// Heals everything and runs until the replicas converged and no
    /// request waits, or the bound passed; returns how long that took.
    fn settle(&mut self, world: &mut KeyedSim, options: &KeyedChaosOptions) -> Result<Option<u64>, KeyedViolation> {
        world.heal_all()?;
        let healed = world.now_us();
        let min = options.settle_min_us.max(2 * world.options().detector.interval_us);
        loop {
            world.run_for(50_000)?;
            let waited = world.now_us() - healed;
            if waited >= min && world.pending_requests() == 0 && world.divergent_keys().is_empty() {
                return Ok(Some(waited));
            }
            if waited >= options.settle_bound_us {
                return Ok(None);
            }
        }
    }

    /// One get of every key at a random node, answered within the bound.
    fn final_reads(&mut self, world: &mut KeyedSim, options: &KeyedChaosOptions) -> Result<(), KeyedViolation> {
        for key in self.keys.clone() {
            let node = self.node(world);
            world.submit(node, KeyedOp::Get { key }, Purpose::FinalRead)?;
        }
        let deadline = world.now_us() + options.settle_bound_us;
        while world.pending_requests() > 0 && world.now_us() < deadline {
            world.run_for(10_000)?;
        }
        Ok(())
    }
}

fn report(world: &KeyedSim, faults: u64, settle_us: Option<u64>) -> KeyedChaosReport {
    let mut ops = OpCounts::default();
    for op in world.ops() {
        if op.purpose == Purpose::FinalRead {
            continue;
        }
        match &op.op {
            KeyedOp::Get { .. } => ops.gets += 1,
            KeyedOp::Put { value, .. } => {
                ops.puts += 1;
                ops.deletes += u64::from(value.is_none());
                ops.updates += u64::from(op.purpose == Purpose::Update);
            }
        }
        match &op.outcome {
            Outcome::Pending => {}
            Outcome::NodeDown => ops.node_down += 1,
            Outcome::Unanswered => ops.unanswered += 1,
            Outcome::Replied(KeyedReply::Written { .. }) => ops.written += 1,
            Outcome::Replied(KeyedReply::Unknown { .. }) => ops.unknown_puts += 1,
            Outcome::Replied(KeyedReply::Failed { .. }) if op.is_put() => ops.failed_puts += 1,
            Outcome::Replied(KeyedReply::Failed { .. }) => ops.failed_reads += 1,
            Outcome::Replied(KeyedReply::Values { values, .. }) => {
                ops.values_read += 1;
                ops.reads_with_siblings += u64::from(values.len() > 1);
            }
        }
    }
    KeyedChaosReport {
        seed: world.options().seed,
        events: world.events_processed(),
        faults,
        ops,
        world: world.stats(),
        network: world.network_stats(),
        counters: world.counters(),
        checker: world.checker_counts(),
        settle_us,
    }
}
