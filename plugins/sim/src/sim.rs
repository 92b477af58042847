//! The simulated world: N nodes, virtual time, the event loop, and node
//! lifecycles (boot, crash, restart). Effects are carried out in
//! `effects.rs`; the liveness helper is in `liveness.rs`; what tests may
//! read of the world is in `observe.rs`; the detectors in `detectors.rs`.
//!
//! Everything random derives from the run seed, events at equal times run
//! in scheduling order, and nothing reads the wall clock, so a seed replays
//! a run exactly.

use bytes::Bytes;
use replab_api::{
    DetectorInput, Effect, Effects, FailureDetector, Input, Instant, LogIndex, LogPosition, NodeId, PluginRng,
    PolicyContext, Recovered, ReplicationPolicy, Role, StepError, Term,
};

use crate::checker::Checker;
use crate::clients::Clients;
use crate::detectors::{Channel, Detectors};
use crate::event::{Event, EventKind, EventQueue};
use crate::network::Network;
use crate::options::SimOptions;
use crate::state_machine::{DigestStateMachine, StateMachine};
use crate::step_check::{StepCheck, StepView};
use crate::storage::{Disk, LogStore};
use crate::violation::{Invariant, Violation};

/// How many effects of each kind the policies pushed: evidence that a run
/// exercised what it was meant to (snapshots, truncations, transfers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EffectCounts {
    pub hard_state_saves: u64,
    pub truncations: u64,
    pub appends: u64,
    pub commits: u64,
    pub entries_applied: u64,
    pub snapshots_taken: u64,
    pub snapshots_installed: u64,
    pub compactions: u64,
    pub role_changes: u64,
    pub proposals_rejected: u64,
    pub reads_ready: u64,
    pub reads_rejected: u64,
    pub memory_restored: u64,
}

impl EffectCounts {
    pub fn add(&mut self, other: &EffectCounts) {
        self.hard_state_saves += other.hard_state_saves;
        self.truncations += other.truncations;
        self.appends += other.appends;
        self.commits += other.commits;
        self.entries_applied += other.entries_applied;
        self.snapshots_taken += other.snapshots_taken;
        self.snapshots_installed += other.snapshots_installed;
        self.compactions += other.compactions;
        self.role_changes += other.role_changes;
        self.memory_restored += other.memory_restored;
        self.proposals_rejected += other.proposals_rejected;
        self.reads_ready += other.reads_ready;
        self.reads_rejected += other.reads_rejected;
    }
}

/// One effect as a node pushed it, kept when `record_effects` is on.
#[derive(Clone, Debug)]
pub struct EffectRecord {
    pub time_us: u64,
    pub node: NodeId,
    pub incarnation: u64,
    pub effect: Effect,
}

pub(crate) struct SimNode<P, M> {
    pub(crate) id: NodeId,
    pub(crate) policy: Option<P>,
    pub(crate) state_machine: Option<M>,
    /// The log as the policy sees it: every write, synced or not.
    pub(crate) view: LogStore,
    pub(crate) disk: Disk,
    /// Bumped at every crash and boot; events of older incarnations are
    /// ignored.
    pub(crate) incarnation: u64,
    pub(crate) commit: LogIndex,
    pub(crate) last_applied: LogIndex,
    pub(crate) role: Option<Role>,
    pub(crate) term: Term,
    pub(crate) leader: Option<NodeId>,
    /// Entries applied in this incarnation, in order.
    pub(crate) applied: Vec<LogPosition>,
    pub(crate) effects: Effects,
    pub(crate) crashes: u64,
    /// The node's failure detector, when the world runs them
    /// (`detectors.rs`); dropped at a crash like the rest of its memory.
    pub(crate) detector: Option<Box<dyn FailureDetector>>,
}

type PolicyBuilder<P> = Box<dyn FnMut(PolicyContext, Recovered) -> P>;
type MachineBuilder<M> = Box<dyn FnMut(NodeId) -> M>;
type MessageFilter = Box<dyn FnMut(NodeId, NodeId, &Bytes) -> bool>;

pub struct Sim<P, M = DigestStateMachine> {
    pub(crate) options: SimOptions,
    pub(crate) now_us: u64,
    queue: EventQueue,
    pub(crate) network: Network,
    /// The world's own randomness (fsync latencies, tick phases).
    pub(crate) rng: PluginRng,
    pub(crate) nodes: Vec<SimNode<P, M>>,
    pub(crate) checker: Checker,
    pub(crate) clients: Clients,
    build_policy: PolicyBuilder<P>,
    new_state_machine: MachineBuilder<M>,
    pub(crate) filter: Option<MessageFilter>,
    pub(crate) effect_log: Vec<EffectRecord>,
    pub(crate) counts: EffectCounts,
    pub(crate) step_errors: Vec<(u64, NodeId, StepError)>,
    pub(crate) detectors: Detectors,
    pub(crate) step_check: Option<StepCheck>,
    pub(crate) events_processed: u64,
    pub(crate) failed: Option<Violation>,
}

/// SplitMix64: derives independent seeds from the run seed.
pub fn mix_seed(seed: u64, salt: u64) -> u64 {
    let mut z = seed ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl<P: ReplicationPolicy> Sim<P, DigestStateMachine> {
    /// A world whose nodes run the digest state machine.
    pub fn new(options: SimOptions, build_policy: impl FnMut(PolicyContext, Recovered) -> P + 'static) -> Self {
        Sim::with_state_machine(options, build_policy, |_| DigestStateMachine::default())
    }
}

impl<P: ReplicationPolicy, M: StateMachine> Sim<P, M> {
    pub fn with_state_machine(
        options: SimOptions,
        build_policy: impl FnMut(PolicyContext, Recovered) -> P + 'static,
        new_state_machine: impl FnMut(NodeId) -> M + 'static,
    ) -> Self {
        assert!(options.nodes > 0, "a cluster needs nodes");
        assert!(options.tick_interval_us > 0, "ticks need an interval");
        let seed = options.seed;
        let mut sim = Sim {
            network: Network::new(options.nodes, options.link, mix_seed(seed, 1)),
            rng: PluginRng::from_seed_u64(mix_seed(seed, 2)),
            checker: Checker::new(seed, options.nodes, options.replay_line()),
            now_us: 0,
            queue: EventQueue::default(),
            nodes: Vec::with_capacity(options.nodes),
            clients: Clients::default(),
            build_policy: Box::new(build_policy),
            new_state_machine: Box::new(new_state_machine),
            filter: None,
            effect_log: Vec::new(),
            counts: EffectCounts::default(),
            step_errors: Vec::new(),
            detectors: Detectors::default(),
            step_check: None,
            events_processed: 0,
            failed: None,
            options,
        };
        sim.checker.check_electable = sim.options.check_electable_without_committed;
        for id in 1..=sim.options.nodes as NodeId {
            let initial = sim.options.initial_state.iter().find(|(n, _)| *n == id).map(|(_, r)| r.clone());
            let durable = LogStore::from_recovered(&initial.unwrap_or_default());
            if let Err(v) = sim.checker.register_log(id, &durable) {
                panic!("inconsistent initial state: {v}");
            }
            sim.nodes.push(SimNode {
                id,
                policy: None,
                state_machine: None,
                view: durable.clone(),
                disk: Disk::new(durable),
                incarnation: 0,
                commit: 0,
                last_applied: 0,
                role: None,
                term: 0,
                leader: None,
                applied: Vec::new(),
                effects: Effects::new(),
                crashes: 0,
                detector: None,
            });
        }
        for id in 1..=sim.options.nodes as NodeId {
            if !sim.options.initially_down.contains(&id) {
                sim.boot(id).unwrap_or_else(|v| panic!("booting node {id}: {v}"));
            }
        }
        sim
    }

    pub(crate) fn index(&self, id: NodeId) -> usize {
        assert!(id >= 1 && id as usize <= self.nodes.len(), "no node {id}");
        id as usize - 1
    }

    pub(crate) fn members(&self) -> Vec<NodeId> {
        (1..=self.nodes.len() as NodeId).collect()
    }

    fn boot(&mut self, id: NodeId) -> Result<(), Violation> {
        let i = self.index(id);
        let members = self.members();
        let node = &mut self.nodes[i];
        assert!(node.policy.is_none(), "node {id} is already up");
        node.incarnation += 1;
        node.view = node.disk.durable.clone();
        let recovered = node.disk.durable.to_recovered();
        let mut machine = (self.new_state_machine)(id);
        let snapshot_index = recovered.snapshot.as_ref().map_or(0, |s| s.meta.last_included.index);
        if let Some(snapshot) = &recovered.snapshot {
            machine.restore(snapshot);
            if self.options.check_invariants {
                self.checker.on_fingerprint(id, snapshot_index, machine.fingerprint())?;
            }
        }
        let seed = mix_seed(self.options.seed, (id << 32) ^ node.incarnation);
        let term = recovered.hard_state.term;
        let ctx = PolicyContext { id, members, seed };
        node.policy = Some((self.build_policy)(ctx, recovered));
        node.state_machine = Some(machine);
        node.commit = snapshot_index;
        node.last_applied = snapshot_index;
        node.role = Some(Role::Follower);
        node.term = term;
        node.leader = None;
        node.applied.clear();
        let incarnation = node.incarnation;
        let phase = self.rng.range_inclusive(1, self.options.tick_interval_us);
        self.queue.schedule(self.now_us + phase, EventKind::Tick { node: id, incarnation });
        self.build_detector(id);
        Ok(())
    }

    /// Crashes a node: its memory, state machine, unsynced writes and held
    /// sends are gone; its durable store stays.
    pub fn crash(&mut self, id: NodeId) {
        let i = self.index(id);
        let node = &mut self.nodes[i];
        if node.policy.is_none() {
            return;
        }
        node.policy = None;
        node.state_machine = None;
        node.detector = None;
        node.role = None;
        node.leader = None;
        node.disk.crash();
        node.incarnation += 1;
        node.crashes += 1;
    }

    /// Wipes a crashed node's disk, as an operator replacing a failed drive
    /// would: its next restart finds no durable state and, since nothing
    /// tells that apart from a first start, recovers as `Memory::Blank`.
    pub fn wipe(&mut self, id: NodeId) {
        assert!(!self.is_alive(id), "crash node {id} before wiping its disk");
        let i = self.index(id);
        let mut blank = LogStore::default();
        blank.memory = replab_api::Memory::Blank;
        self.nodes[i].disk.durable = blank;
    }

    /// Restarts a crashed node from its durable store, then checks that no
    /// committed entry was lost.
    pub fn restart(&mut self, id: NodeId) -> Result<(), Violation> {
        self.guard()?;
        if self.is_alive(id) {
            return Ok(());
        }
        let result = self.boot(id).and_then(|_| self.check_nothing_lost());
        self.record(result)
    }

    pub fn check_nothing_lost(&self) -> Result<(), Violation> {
        if !self.options.check_invariants {
            return Ok(());
        }
        let durables: Vec<&LogStore> = self.nodes.iter().map(|n| &n.disk.durable).collect();
        self.checker.check_nothing_lost(&durables)
    }

    pub(crate) fn guard(&self) -> Result<(), Violation> {
        match &self.failed {
            Some(v) => Err(v.clone()),
            None => Ok(()),
        }
    }

    pub(crate) fn record<T>(&mut self, result: Result<T, Violation>) -> Result<T, Violation> {
        if let Err(v) = &result
            && self.failed.is_none()
        {
            self.failed = Some(v.clone());
        }
        result
    }

    /// Steps one node with one input at the current virtual time and
    /// carries out its effects. Returns the policy's refusal, if any.
    pub(crate) fn step_node(&mut self, id: NodeId, input: Input) -> Result<Option<StepError>, Violation> {
        let i = self.index(id);
        self.checker.now_us = self.now_us;
        let now = Instant::from_micros(self.now_us);
        let node = &mut self.nodes[i];
        let Some(policy) = node.policy.as_mut() else {
            return Ok(None);
        };
        let mut effects = std::mem::take(&mut node.effects);
        // Kept only for a step check: most worlds have none.
        let checked = self.step_check.is_some().then(|| (input.clone(), node.view.hard_state));
        let refused = policy.step(now, input, &mut effects).err();
        if let Some(e) = &refused {
            self.step_errors.push((self.now_us, id, e.clone()));
        }
        if let (Some(check), Some((input, hard_state_before))) = (self.step_check.as_mut(), checked) {
            let view = StepView {
                time_us: self.now_us,
                node: id,
                input: &input,
                hard_state_before,
                effects: effects.as_slice(),
            };
            if let Err(failure) = check(&view) {
                effects.drain();
                self.nodes[i].effects = effects;
                return Err(self.checker.fail(Invariant::Policy(failure.invariant), Some(id), failure.detail));
            }
        }
        let mut result = Ok(());
        for effect in effects.drain() {
            if result.is_ok() {
                result = self.carry_out(id, effect);
            }
        }
        self.nodes[i].effects = effects;
        result?;
        self.maybe_start_sync(id);
        Ok(refused)
    }

    pub(crate) fn maybe_start_sync(&mut self, id: NodeId) {
        let i = self.index(id);
        let node = &mut self.nodes[i];
        if node.policy.is_none() {
            return;
        }
        let Some(up_to) = node.disk.sync_to_start() else { return };
        node.disk.sync_in_flight = Some(up_to);
        let incarnation = node.incarnation;
        let disk = self.options.disk;
        let latency = self.rng.range_inclusive(disk.fsync_min_us, disk.fsync_max_us.max(disk.fsync_min_us));
        self.queue.schedule(self.now_us + latency, EventKind::SyncDone { node: id, incarnation, up_to });
    }

    /// Puts a policy message on the network (through the test filter, if
    /// any).
    pub(crate) fn send(&mut self, from: NodeId, to: NodeId, bytes: Bytes) {
        self.send_on(Channel::Policy, from, to, bytes);
    }

    /// Puts a message on the network. The test filter sees only policy
    /// messages: it exists to drop chosen ones, which tests pick by
    /// decoding them as the policy's.
    pub(crate) fn send_on(&mut self, channel: Channel, from: NodeId, to: NodeId, bytes: Bytes) {
        if channel == Channel::Policy
            && let Some(filter) = self.filter.as_mut()
            && !filter(from, to, &bytes)
        {
            self.network.stats.dropped += 1;
            return;
        }
        for arrival_us in self.network.route(from, to, self.now_us).into_iter().flatten() {
            self.queue.schedule(arrival_us, EventKind::Deliver { channel, from, to, bytes: bytes.clone() });
        }
    }

    fn handle(&mut self, event: Event) -> Result<(), Violation> {
        assert!(event.at_us >= self.now_us, "virtual time went backwards");
        self.now_us = event.at_us;
        self.events_processed += 1;
        match event.kind {
            EventKind::Tick { node, incarnation } => {
                if self.nodes[self.index(node)].incarnation == incarnation && self.is_alive(node) {
                    self.step_node(node, Input::Tick)?;
                    // The engine ticks the detector right after the policy.
                    self.step_detector(node, DetectorInput::Tick)?;
                    let at = self.now_us + self.options.tick_interval_us;
                    self.queue.schedule(at, EventKind::Tick { node, incarnation });
                }
            }
            EventKind::Deliver { channel, from, to, bytes } => {
                if self.is_alive(to) && !self.network.is_cut(from, to) {
                    self.network.stats.delivered += 1;
                    match channel {
                        Channel::Policy => {
                            self.step_node(to, Input::Message { from, bytes })?;
                        }
                        Channel::Detector => self.deliver_to_detector(from, to, bytes)?,
                    }
                } else {
                    self.network.stats.dropped += 1;
                }
            }
            EventKind::SyncDone { node, incarnation, up_to } => {
                if self.nodes[self.index(node)].incarnation == incarnation && self.is_alive(node) {
                    self.complete_sync(node, up_to)?;
                }
            }
        }
        Ok(())
    }

    fn complete_sync(&mut self, id: NodeId, up_to: u64) -> Result<(), Violation> {
        let i = self.index(id);
        let (stored, released) = self.nodes[i]
            .disk
            .complete_sync(up_to)
            .map_err(|e| self.checker.fail(Invariant::EffectContract, Some(id), format!("disk write: {e}")))?;
        for held in released {
            self.send(id, held.to, held.bytes);
        }
        let position = self.nodes[i].disk.durable.last_position();
        self.step_node(id, Input::Persisted { position })?;
        for snapshot in stored {
            self.step_node(id, Input::SnapshotTaken { snapshot })?;
        }
        self.maybe_start_sync(id);
        Ok(())
    }

    /// Processes the next event. Returns false when nothing is scheduled.
    pub fn step(&mut self) -> Result<bool, Violation> {
        self.guard()?;
        let Some(event) = self.queue.pop() else {
            return Ok(false);
        };
        let result = self.handle(event);
        self.record(result).map(|_| true)
    }

    /// Runs every event up to and including `time_us`, then sets the clock
    /// there.
    pub fn run_until(&mut self, time_us: u64) -> Result<(), Violation> {
        while self.queue.peek_time().is_some_and(|t| t <= time_us) {
            self.step()?;
        }
        self.now_us = self.now_us.max(time_us);
        Ok(())
    }

    pub fn run_for(&mut self, duration_us: u64) -> Result<(), Violation> {
        self.run_until(self.now_us + duration_us)
    }

    /// Runs until `done` holds or `limit_us` passes; returns whether it held.
    pub fn run_until_cond(&mut self, limit_us: u64, mut done: impl FnMut(&Self) -> bool) -> Result<bool, Violation> {
        loop {
            if done(self) {
                return Ok(true);
            }
            match self.queue.peek_time() {
                Some(t) if t <= limit_us => {
                    self.step()?;
                }
                _ => {
                    self.now_us = self.now_us.max(limit_us);
                    return Ok(done(self));
                }
            }
        }
    }

    /// Runs until some live node leads, for at most `limit_us` more.
    pub fn wait_for_leader(&mut self, limit_us: u64) -> Result<Option<NodeId>, Violation> {
        let deadline = self.now_us + limit_us;
        self.run_until_cond(deadline, |s| s.leader().is_some())?;
        Ok(self.leader())
    }
}
