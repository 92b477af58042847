//! The keyed world: N nodes each running a `KeyedPolicy`, virtual time,
//! node lifecycles (boot, crash, restart from the durable log), clocks
//! with per-node skew, and what the checkers may read. Stepping and
//! effects are in `step.rs`, the failure-detector oracle in
//! `detector.rs`.

use std::collections::BTreeMap;

use bytes::Bytes;
use replab_api::{
    Clocks, Instant, KeyState, KeyedEffects, KeyedOp, KeyedPolicy, KeyedRecovered, Liveness, NodeId, PluginRng,
    PolicyContext, PolicyStatus, StepError,
};

use crate::keyed::checker::{Failure, KeyedInvariants, KeyedViolation};
use crate::keyed::clients::{Clients, OpRecord, Purpose};
use crate::keyed::disk::{DurableLog, KeyedDisk};
use crate::keyed::event::{KeyedEvent, Queue};
use crate::keyed::options::KeyedOptions;
use crate::network::{Network, NetworkStats};
use crate::options::LinkConfig;
use crate::sim::mix_seed;

/// Builds a node's policy from its context and what its disk holds; an
/// error is a node that cannot recover (a violation).
pub type KeyedBuilder = Box<dyn FnMut(PolicyContext, KeyedRecovered) -> Result<Box<dyn KeyedPolicy>, String>>;

/// A key whose owners disagree: each live owner's register (`None`: it
/// holds none).
pub type Divergence = (Bytes, Vec<(NodeId, Option<Bytes>)>);

/// What the world did, for coverage reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorldStats {
    pub crashes: u64,
    /// Disks lost whole (`wipe`).
    pub wipes: u64,
    pub restarts: u64,
    /// Restarts whose durable log held a checkpoint.
    pub restarts_from_checkpoint: u64,
    pub records: u64,
    pub checkpoints: u64,
    /// Unsynced writes a crash kept (`crash_keeps_unsynced_prefix`).
    pub kept_unsynced: u64,
    /// Sends that waited for a sync.
    pub held_sends: u64,
    /// `PeerLiveness` verdicts delivered, by kind.
    pub told_dead: u64,
    pub told_suspect: u64,
    pub told_alive: u64,
    pub step_errors: u64,
}

pub(crate) struct KeyedNode {
    pub(crate) policy: Option<Box<dyn KeyedPolicy>>,
    pub(crate) disk: KeyedDisk,
    /// Bumped at every crash and boot: events of older incarnations are
    /// ignored.
    pub(crate) incarnation: u64,
    /// Added to the wall clock (may be negative).
    pub(crate) skew_ms: i64,
    /// What this incarnation was last told about each peer (index: id - 1).
    pub(crate) told: Vec<Liveness>,
    /// Since when each peer has been unable to reach this node.
    pub(crate) unreachable_since: Vec<Option<u64>>,
    /// When the node last lost its disk.
    pub(crate) wiped_at_us: Option<u64>,
    pub(crate) effects: KeyedEffects,
}

pub struct KeyedSim {
    pub(crate) options: KeyedOptions,
    pub(crate) now_us: u64,
    pub(crate) queue: Queue,
    pub(crate) network: Network,
    /// The world's own randomness (fsync latencies, tick phases, kept
    /// prefixes).
    pub(crate) rng: PluginRng,
    pub(crate) nodes: Vec<KeyedNode>,
    pub(crate) clients: Clients,
    build: KeyedBuilder,
    pub(crate) checker: Option<Box<dyn KeyedInvariants>>,
    /// Counters of incarnations that crashed, summed by name.
    dead_counters: BTreeMap<&'static str, u64>,
    pub(crate) stats: WorldStats,
    pub(crate) step_errors: Vec<(u64, NodeId, StepError)>,
    pub(crate) events: u64,
    failed: Option<KeyedViolation>,
}

impl KeyedSim {
    /// Boots every node on an empty disk.
    pub fn new(
        options: KeyedOptions,
        build: KeyedBuilder,
        checker: Box<dyn KeyedInvariants>,
    ) -> Result<KeyedSim, KeyedViolation> {
        assert!(options.nodes > 0, "a cluster needs nodes");
        assert!(options.tick_interval_us > 0 && options.detector.interval_us > 0, "ticks need an interval");
        let seed = options.seed;
        let n = options.nodes;
        let nodes = (0..n)
            .map(|_| KeyedNode {
                policy: None,
                disk: KeyedDisk::default(),
                incarnation: 0,
                skew_ms: 0,
                told: vec![Liveness::Alive; n],
                unreachable_since: vec![None; n],
                wiped_at_us: None,
                effects: KeyedEffects::new(),
            })
            .collect();
        let mut sim = KeyedSim {
            network: Network::new(n, options.link, mix_seed(seed, 101)),
            rng: PluginRng::from_seed_u64(mix_seed(seed, 102)),
            now_us: 0,
            queue: Queue::default(),
            nodes,
            clients: Clients::default(),
            build,
            checker: Some(checker),
            dead_counters: BTreeMap::new(),
            stats: WorldStats::default(),
            step_errors: Vec::new(),
            events: 0,
            failed: None,
            options,
        };
        for id in sim.members() {
            sim.boot(id)?;
        }
        let first = sim.options.detector.interval_us;
        sim.queue.schedule(first, KeyedEvent::Detector);
        Ok(sim)
    }

    pub(crate) fn index(&self, id: NodeId) -> usize {
        assert!(id >= 1 && id as usize <= self.nodes.len(), "no node {id}");
        id as usize - 1
    }

    pub fn members(&self) -> Vec<NodeId> {
        (1..=self.nodes.len() as NodeId).collect()
    }

    fn boot(&mut self, id: NodeId) -> Result<(), KeyedViolation> {
        let i = self.index(id);
        let members = self.members();
        let node = &mut self.nodes[i];
        assert!(node.policy.is_none(), "node {id} is already up");
        node.incarnation += 1;
        node.disk.boot(node.incarnation == 1, node.incarnation);
        let recovered = node.disk.durable.to_recovered();
        if recovered.checkpoint.is_some() {
            self.stats.restarts_from_checkpoint += 1;
        }
        let seed = mix_seed(self.options.seed, (id << 32) ^ node.incarnation);
        let ctx = PolicyContext { id, members, seed };
        let policy = (self.build)(ctx, recovered)
            .map_err(|e| self.fail(Failure::new("Recovery", Some(id), format!("the node does not recover: {e}"))))?;
        let n = self.nodes.len();
        let node = &mut self.nodes[i];
        node.policy = Some(policy);
        node.told = vec![Liveness::Alive; n];
        node.unreachable_since = vec![None; n];
        let incarnation = node.incarnation;
        let phase = self.rng.range_inclusive(1, self.options.tick_interval_us);
        self.queue.schedule(self.now_us + phase, KeyedEvent::Tick { node: id, incarnation });
        Ok(())
    }

    /// Crashes a node: its memory, unsynced writes (but a kept prefix, if
    /// the options say so) and held sends are gone, its durable log stays,
    /// and its waiting clients get no answer.
    pub fn crash(&mut self, id: NodeId) -> Result<(), KeyedViolation> {
        self.guard()?;
        let i = self.index(id);
        let Some(policy) = self.nodes[i].policy.take() else { return Ok(()) };
        for (name, value) in policy.counters() {
            *self.dead_counters.entry(name).or_default() += value;
        }
        let pending = self.nodes[i].disk.pending_writes();
        let keep = if self.options.crash_keeps_unsynced_prefix && pending > 0 {
            self.rng.range_inclusive(0, pending as u64) as usize
        } else {
            0
        };
        self.stats.kept_unsynced += keep as u64;
        let node = &mut self.nodes[i];
        node.incarnation += 1;
        self.stats.crashes += 1;
        self.clients.crashed(id);
        let before = self.nodes[i].disk.durable.last_seq;
        if let Err(e) = self.nodes[i].disk.crash(keep) {
            let failure = Failure::new("EffectContract", Some(id), format!("disk write: {e}"));
            return Err(self.fail(failure));
        }
        let up_to = self.nodes[i].disk.durable.last_seq;
        if up_to > before {
            self.check(|c, w| c.on_durable(w, id, up_to))?;
        }
        Ok(())
    }

    /// Crashes the node (if it is up) and loses its disk whole, as an
    /// operator replacing a failed drive would: its next restart finds
    /// nothing, like a first start.
    pub fn wipe(&mut self, id: NodeId) -> Result<(), KeyedViolation> {
        self.crash(id)?;
        let i = self.index(id);
        self.nodes[i].disk = KeyedDisk::default();
        self.nodes[i].wiped_at_us = Some(self.now_us);
        self.stats.wipes += 1;
        Ok(())
    }

    /// Restarts a crashed node from its durable log.
    pub fn restart(&mut self, id: NodeId) -> Result<(), KeyedViolation> {
        self.guard()?;
        if self.is_alive(id) {
            return Ok(());
        }
        self.stats.restarts += 1;
        self.boot(id)
    }

    /// Sends a client operation to a node (recorded as `NodeDown` if it is
    /// down); returns its index in [`KeyedSim::ops`].
    pub fn submit(&mut self, node: NodeId, op: KeyedOp, purpose: Purpose) -> Result<usize, KeyedViolation> {
        self.guard()?;
        let up = self.is_alive(node);
        let index = self.clients.add(node, op.clone(), purpose, self.now_us, up);
        self.check(|c, w| c.on_submit(w, &w.clients.ops[index]))?;
        if up {
            let id = self.clients.ops[index].request;
            self.step_node(node, replab_api::KeyedInput::Client { id, op })?;
        }
        Ok(index)
    }

    /// Heals every fault: the network reconnected with benign links, disks
    /// unstalled, crashed nodes restarted. Clock skews stay.
    pub fn heal_all(&mut self) -> Result<(), KeyedViolation> {
        self.network.heal();
        self.network.set_all_links(LinkConfig::BENIGN);
        for id in self.members() {
            self.set_disk_stalled(id, false);
            self.restart(id)?;
        }
        Ok(())
    }

    pub fn network_mut(&mut self) -> &mut Network {
        &mut self.network
    }

    /// A stalled disk completes no sync: records pile up unsynced and the
    /// sends waiting for them stay held.
    pub fn set_disk_stalled(&mut self, id: NodeId, stalled: bool) {
        let i = self.index(id);
        self.nodes[i].disk.stalled = stalled;
        if !stalled {
            self.maybe_start_sync(id);
        }
    }

    /// Sets how far the node's wall clock is from virtual time.
    pub fn set_skew_ms(&mut self, id: NodeId, skew_ms: i64) {
        let i = self.index(id);
        self.nodes[i].skew_ms = skew_ms;
    }

    pub(crate) fn clocks(&self, id: NodeId) -> Clocks {
        let wall = (self.options.wall_start_ms + self.now_us / 1_000) as i64 + self.nodes[self.index(id)].skew_ms;
        Clocks { now: Instant::from_micros(self.now_us), wall_ms: wall.max(0) as u64 }
    }

    /// Runs the checker hook `f` with the world readable.
    pub(crate) fn check(
        &mut self,
        f: impl FnOnce(&mut dyn KeyedInvariants, &KeyedSim) -> Result<(), Failure>,
    ) -> Result<(), KeyedViolation> {
        let Some(mut checker) = self.checker.take() else { return Ok(()) };
        let result = f(checker.as_mut(), self);
        self.checker = Some(checker);
        result.map_err(|failure| self.fail(failure))
    }

    /// Turns a failure into the run's violation; the world refuses to go on.
    pub(crate) fn fail(&mut self, failure: Failure) -> KeyedViolation {
        let violation = KeyedViolation {
            invariant: failure.invariant,
            seed: self.options.seed,
            time_us: self.now_us,
            node: failure.node,
            detail: failure.detail,
            replay: self.options.replay_line(),
        };
        if self.failed.is_none() {
            self.failed = Some(violation.clone());
        }
        violation
    }

    pub(crate) fn guard(&self) -> Result<(), KeyedViolation> {
        match &self.failed {
            Some(v) => Err(v.clone()),
            None => Ok(()),
        }
    }

    /// Runs the policy's invariants' periodic checks.
    pub fn audit(&mut self) -> Result<(), KeyedViolation> {
        self.guard()?;
        self.check(|c, w| c.audit(w))
    }

    /// Ends the run: every request at a live node must have been answered,
    /// then the policy's invariants have their last word.
    pub fn finish(&mut self) -> Result<(), KeyedViolation> {
        self.guard()?;
        if let Some(op) = self.clients.ops.iter().find(|op| op.outcome == crate::keyed::Outcome::Pending) {
            let detail = format!("request {} ({:?}) was never answered: {:?}", op.request, op.purpose, op.op);
            return Err(self.fail(Failure::new("Unanswered", Some(op.node), detail)));
        }
        self.check(|c, w| c.at_end(w))
    }

    pub fn options(&self) -> &KeyedOptions {
        &self.options
    }

    pub fn now_us(&self) -> u64 {
        self.now_us
    }

    pub fn is_alive(&self, id: NodeId) -> bool {
        self.nodes[self.index(id)].policy.is_some()
    }

    pub fn policy(&self, id: NodeId) -> Option<&dyn KeyedPolicy> {
        self.nodes[self.index(id)].policy.as_deref()
    }

    pub fn status(&self, id: NodeId) -> Option<PolicyStatus> {
        self.policy(id).map(|p| p.status())
    }

    /// The node's `replica_state()`, if it is up.
    pub fn replica_state(&self, id: NodeId) -> Option<Vec<KeyState>> {
        self.policy(id).map(|p| p.replica_state())
    }

    /// What the node's disk would give back after a crash.
    pub fn durable(&self, id: NodeId) -> &DurableLog {
        &self.nodes[self.index(id)].disk.durable
    }

    /// When the node last lost its disk (`wipe`), if ever.
    pub fn wiped_at_us(&self, id: NodeId) -> Option<u64> {
        self.nodes[self.index(id)].wiped_at_us
    }

    pub fn disk(&self, id: NodeId) -> &KeyedDisk {
        &self.nodes[self.index(id)].disk
    }

    /// Every client operation so far, in submission order.
    pub fn ops(&self) -> &[OpRecord] {
        &self.clients.ops
    }

    /// Requests handed to live nodes and not answered yet.
    pub fn pending_requests(&self) -> usize {
        self.clients.pending()
    }

    /// The policies' counters by name, summed over every node and
    /// incarnation.
    pub fn counters(&self) -> BTreeMap<&'static str, u64> {
        let mut total = self.dead_counters.clone();
        for policy in self.nodes.iter().filter_map(|n| n.policy.as_ref()) {
            for (name, value) in policy.counters() {
                *total.entry(name).or_default() += value;
            }
        }
        total
    }

    /// Keys whose live owners hold different registers (or where some
    /// live owner holds none), with each owner's register: empty once the
    /// replicas have converged. Owners are taken from the nodes' own
    /// `KeyState.owners`.
    pub fn divergent_keys(&self) -> Vec<Divergence> {
        let mut by_key: BTreeMap<Bytes, (Vec<NodeId>, BTreeMap<NodeId, Bytes>)> = BTreeMap::new();
        for id in self.members() {
            for state in self.replica_state(id).unwrap_or_default() {
                let entry = by_key.entry(state.key).or_insert_with(|| (state.owners.clone(), BTreeMap::new()));
                entry.1.insert(id, state.register);
            }
        }
        let mut divergent = Vec::new();
        for (key, (owners, held)) in by_key {
            let registers: Vec<(NodeId, Option<Bytes>)> =
                owners.iter().filter(|o| self.is_alive(**o)).map(|o| (*o, held.get(o).cloned())).collect();
            if registers.windows(2).any(|w| w[0].1 != w[1].1) {
                divergent.push((key, registers));
            }
        }
        divergent
    }

    pub fn network_stats(&self) -> NetworkStats {
        self.network.stats
    }

    pub fn stats(&self) -> WorldStats {
        self.stats
    }

    pub fn step_errors(&self) -> &[(u64, NodeId, StepError)] {
        &self.step_errors
    }

    pub fn events_processed(&self) -> u64 {
        self.events
    }

    pub fn violation(&self) -> Option<&KeyedViolation> {
        self.failed.as_ref()
    }

    /// What the policy's invariants counted.
    pub fn checker_counts(&self) -> Vec<(&'static str, u64)> {
        self.checker.as_ref().map(|c| c.counts()).unwrap_or_default()
    }
}
