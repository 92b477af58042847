//! A small deterministic in-memory network of leaderless nodes for the
//! acceptance tests: it steps 3-5 policies, delivers messages in FIFO
//! order (or one at a time), honours `after_persist`, reports `Persisted`
//! after each step's `Persist`s (or only when asked, to show what a crash
//! before durability loses), drops messages on blocked links, and crashes
//! a node by rebuilding it from its durable records.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use replab_api::{
    Clocks, ConflictResolver, Instant, KeyedEffect, KeyedEffects, KeyedInput, KeyedOp, KeyedPolicy, KeyedRecovered,
    KeyedReply, Liveness, NodeId, PolicyContext, RequestId, StepError,
};
use replab_leaderless::{Leaderless, LeaderlessConfig};

/// What one node has on disk.
#[derive(Clone, Debug, Default)]
pub struct Disk {
    pub checkpoint: Option<Bytes>,
    /// Durable records after the checkpoint, in order.
    pub records: Vec<Bytes>,
    /// Sequence number of the last durable record (the checkpoint's, if no
    /// record follows it).
    pub last_seq: u64,
    /// The incarnation the engine keeps with the node's state.
    pub incarnation: u64,
}

impl Disk {
    pub fn recovered(&self) -> KeyedRecovered {
        KeyedRecovered {
            checkpoint: self.checkpoint.clone(),
            records: self.records.clone(),
            last_seq: self.last_seq,
            incarnation: self.incarnation,
        }
    }
}

pub struct Node<R: ConflictResolver> {
    /// `None` while crashed.
    pub policy: Option<Leaderless<R>>,
    pub disk: Disk,
    /// Records asked for but not durable yet.
    pending: Vec<Bytes>,
    /// `after_persist` sends waiting for `pending` to become durable.
    held: Vec<(NodeId, Bytes)>,
    /// Added to the shared wall clock: a skewed node.
    pub wall_offset_ms: u64,
}

pub struct Net<R: ConflictResolver> {
    pub config: LeaderlessConfig,
    pub members: Vec<NodeId>,
    pub nodes: BTreeMap<NodeId, Node<R>>,
    /// (from, to, bytes), delivered front first.
    pub queue: VecDeque<(NodeId, NodeId, Bytes)>,
    pub now_ms: u64,
    /// Links (from, to) that drop everything.
    pub blocked: BTreeSet<(NodeId, NodeId)>,
    pub replies: BTreeMap<(NodeId, RequestId), KeyedReply>,
    next_request: RequestId,
    /// Report `Persisted` at the end of every step that persisted.
    pub auto_persist: bool,
    /// Every effect and error, in order, for determinism checks.
    pub trace: Vec<String>,
    pub errors: Vec<(NodeId, StepError)>,
    pub seed: u64,
}

pub const START_WALL_MS: u64 = 1_700_000_000_000;

impl<R: ConflictResolver> Net<R> {
    pub fn new(members: usize, config: LeaderlessConfig) -> Net<R> {
        Net::with_seed(members, config, 7)
    }

    pub fn with_seed(members: usize, config: LeaderlessConfig, seed: u64) -> Net<R> {
        let ids: Vec<NodeId> = (1..=members as NodeId).collect();
        config.validate(members).expect("a valid test config");
        let mut net = Net {
            config,
            members: ids.clone(),
            nodes: BTreeMap::new(),
            queue: VecDeque::new(),
            now_ms: 0,
            blocked: BTreeSet::new(),
            replies: BTreeMap::new(),
            next_request: 1,
            auto_persist: true,
            trace: Vec::new(),
            errors: Vec::new(),
            seed,
        };
        for id in ids {
            let node =
                Node { policy: None, disk: Disk::default(), pending: Vec::new(), held: Vec::new(), wall_offset_ms: 0 };
            net.nodes.insert(id, node);
            net.start(id);
        }
        net
    }

    fn context(&self, id: NodeId) -> PolicyContext {
        PolicyContext { id, members: self.members.clone(), seed: self.seed.wrapping_mul(1_000).wrapping_add(id) }
    }

    fn start(&mut self, id: NodeId) {
        let recovered = self.nodes[&id].disk.recovered();
        let policy = Leaderless::<R>::recover(self.context(id), self.config.clone(), recovered)
            .unwrap_or_else(|e| panic!("node {id} does not recover: {e}"));
        self.nodes.get_mut(&id).unwrap().policy = Some(policy);
    }

    pub fn node(&self, id: NodeId) -> &Leaderless<R> {
        self.nodes[&id].policy.as_ref().unwrap_or_else(|| panic!("node {id} is down"))
    }

    pub fn is_up(&self, id: NodeId) -> bool {
        self.nodes[&id].policy.is_some()
    }

    fn clocks(&self, id: NodeId) -> Clocks {
        Clocks {
            now: Instant::from_millis(self.now_ms),
            wall_ms: START_WALL_MS + self.now_ms + self.nodes[&id].wall_offset_ms,
        }
    }

    /// Steps one input into a live node and carries out its effects.
    pub fn step(&mut self, id: NodeId, input: KeyedInput) {
        let clocks = self.clocks(id);
        let node = self.nodes.get_mut(&id).unwrap();
        let Some(policy) = node.policy.as_mut() else { return };
        let mut out = KeyedEffects::new();
        let result = policy.step(clocks, input, &mut out);
        if let Err(e) = result {
            self.trace.push(format!("{id} error {e}"));
            self.errors.push((id, e));
        }
        let mut persisted = false;
        for effect in out.drain() {
            self.trace.push(format!("{id} {effect:?}"));
            let node = self.nodes.get_mut(&id).unwrap();
            match effect {
                KeyedEffect::Persist { record } => {
                    node.pending.push(record);
                    persisted = true;
                }
                KeyedEffect::Send { to, bytes, after_persist } => {
                    if after_persist && !node.pending.is_empty() {
                        node.held.push((to, bytes));
                    } else {
                        self.queue.push_back((id, to, bytes));
                    }
                }
                KeyedEffect::Reply { id: request, reply } => {
                    let previous = self.replies.insert((id, request), reply);
                    assert!(previous.is_none(), "node {id} answered request {request} twice");
                }
                KeyedEffect::Checkpoint { state } => {
                    // Written in order: the records before it first.
                    let pending = std::mem::take(&mut node.pending);
                    node.disk.last_seq += pending.len() as u64;
                    node.disk.checkpoint = Some(state);
                    node.disk.records.clear();
                    // What the records covered is durable now; the
                    // node learns so from the next `Persisted`.
                    if !pending.is_empty() {
                        persisted = true;
                    }
                }
            }
        }
        if persisted && self.auto_persist {
            self.flush(id);
        }
    }

    /// Makes every pending record of `id` durable, releases its held sends
    /// and reports `Persisted`.
    pub fn flush(&mut self, id: NodeId) {
        let node = self.nodes.get_mut(&id).unwrap();
        if node.policy.is_none() {
            return;
        }
        let pending = std::mem::take(&mut node.pending);
        node.disk.last_seq += pending.len() as u64;
        node.disk.records.extend(pending);
        for (to, bytes) in std::mem::take(&mut node.held) {
            self.queue.push_back((id, to, bytes));
        }
        let up_to = self.nodes[&id].disk.last_seq;
        let durable = self.node(id).status().durable_index;
        if up_to > durable {
            self.step(id, KeyedInput::Persisted { up_to });
        }
    }

    /// Delivers the oldest message; false if none is queued.
    pub fn deliver_one(&mut self) -> bool {
        let Some((from, to, bytes)) = self.queue.pop_front() else { return false };
        if self.blocked.contains(&(from, to)) || !self.is_up(to) {
            self.trace.push(format!("dropped {from}->{to}"));
            return true;
        }
        self.step(to, KeyedInput::Message { from, bytes });
        true
    }

    pub fn deliver_all(&mut self) {
        let mut delivered = 0;
        while self.deliver_one() {
            delivered += 1;
            assert!(delivered < 1_000_000, "messages never stop");
        }
    }

    /// Drops every queued message.
    pub fn drop_queue(&mut self) {
        self.queue.clear();
    }

    /// Advances time by `ms` and ticks every live node once.
    pub fn tick(&mut self, ms: u64) {
        self.now_ms += ms;
        for id in self.members.clone() {
            self.step(id, KeyedInput::Tick);
        }
    }

    /// Advances `total_ms` in 10 ms ticks, delivering everything between.
    pub fn run(&mut self, total_ms: u64) {
        let end = self.now_ms + total_ms;
        while self.now_ms < end {
            self.tick(10);
            self.deliver_all();
        }
    }

    pub fn request(&mut self, at: NodeId, op: KeyedOp) -> RequestId {
        let id = self.next_request;
        self.next_request += 1;
        self.step(at, KeyedInput::Client { id, op });
        id
    }

    pub fn reply(&self, at: NodeId, id: RequestId) -> Option<KeyedReply> {
        self.replies.get(&(at, id)).cloned()
    }

    pub fn put_request(&mut self, at: NodeId, key: &str, value: Option<&str>, context: Bytes) -> RequestId {
        let op = KeyedOp::Put { key: key_bytes(key), value: value.map(bytes), context };
        self.request(at, op)
    }

    /// A put, delivered to completion (or to silence); panics if unanswered.
    pub fn put(&mut self, at: NodeId, key: &str, value: Option<&str>, context: Bytes) -> KeyedReply {
        let id = self.put_request(at, key, value, context);
        self.deliver_all();
        self.reply(at, id).unwrap_or_else(|| panic!("put {key} at node {at} is unanswered"))
    }

    pub fn get(&mut self, at: NodeId, key: &str) -> KeyedReply {
        let id = self.request(at, KeyedOp::Get { key: key_bytes(key) });
        self.deliver_all();
        self.reply(at, id).unwrap_or_else(|| panic!("get {key} at node {at} is unanswered"))
    }

    /// Runs ticks until node `at` answers `id` (at most `limit_ms`).
    pub fn wait(&mut self, at: NodeId, id: RequestId, limit_ms: u64) -> KeyedReply {
        let end = self.now_ms + limit_ms;
        loop {
            self.deliver_all();
            if let Some(reply) = self.reply(at, id) {
                return reply;
            }
            assert!(self.now_ms < end, "request {id} at node {at} unanswered after {limit_ms} ms");
            self.tick(10);
        }
    }

    pub fn set_liveness(&mut self, at: NodeId, peer: NodeId, liveness: Liveness) {
        self.step(at, KeyedInput::PeerLiveness { peer, liveness });
    }

    /// The node stops: records not yet durable and held sends are lost.
    pub fn crash(&mut self, id: NodeId) {
        let node = self.nodes.get_mut(&id).unwrap();
        node.policy = None;
        node.pending.clear();
        node.held.clear();
    }

    /// Crashes the node and loses its disk whole; its next start gets
    /// `incarnation`, as the engine gives a node that finds its state gone.
    pub fn wipe(&mut self, id: NodeId, incarnation: u64) {
        self.crash(id);
        self.nodes.get_mut(&id).unwrap().disk = Disk { incarnation, ..Disk::default() };
    }

    /// Rebuilds the node from its disk.
    pub fn restart(&mut self, id: NodeId) {
        assert!(!self.is_up(id), "node {id} is running");
        self.start(id);
    }

    pub fn block(&mut self, from: NodeId, to: NodeId) {
        self.blocked.insert((from, to));
    }

    /// Cuts every link between the two sides, both ways.
    pub fn partition(&mut self, a: &[NodeId], b: &[NodeId]) {
        for &x in a {
            for &y in b {
                self.block(x, y);
                self.block(y, x);
            }
        }
    }

    pub fn heal(&mut self) {
        self.blocked.clear();
    }

    /// The live values node `id` holds for `key` (sorted; empty if none).
    pub fn values_at(&self, id: NodeId, key: &str) -> Vec<String> {
        self.node(id).register(key.as_bytes()).map(|r| strings(&R::read(r).0)).unwrap_or_default()
    }

    /// The canonical register bytes every live owner holds for `key`.
    pub fn registers_of(&self, key: &str) -> Vec<(NodeId, Option<Bytes>)> {
        let owners = self.node(self.members[0]).owners(key.as_bytes());
        owners
            .into_iter()
            .map(|o| {
                let state = self.node(o).replica_state();
                (o, state.into_iter().find(|s| s.key == key.as_bytes()).map(|s| s.register))
            })
            .collect()
    }

    pub fn counter(&self, id: NodeId, name: &str) -> u64 {
        self.node(id).counters().into_iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("no counter {name}")).1
    }

    pub fn total(&self, name: &str) -> u64 {
        self.members.iter().filter(|m| self.is_up(**m)).map(|m| self.counter(*m, name)).sum()
    }

    /// A key that node `id` does not replicate.
    pub fn key_not_owned_by(&self, id: NodeId) -> String {
        (0..10_000)
            .map(|i| format!("key-{i}"))
            .find(|k| !self.node(id).owners(k.as_bytes()).contains(&id))
            .expect("some key is owned elsewhere")
    }
}

pub fn bytes(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

pub fn key_bytes(s: &str) -> Bytes {
    bytes(s)
}

pub fn strings(values: &[Bytes]) -> Vec<String> {
    values.iter().map(|v| String::from_utf8_lossy(v).into_owned()).collect()
}

/// The values of a `Values` reply; panics on anything else.
pub fn values(reply: &KeyedReply) -> Vec<String> {
    match reply {
        KeyedReply::Values { values, .. } => strings(values),
        other => panic!("expected values, got {other:?}"),
    }
}

/// The context of a `Values` or `Written` reply.
pub fn context(reply: &KeyedReply) -> Bytes {
    match reply {
        KeyedReply::Values { context, .. } | KeyedReply::Written { context } => context.clone(),
        other => panic!("expected a context, got {other:?}"),
    }
}

pub fn is_written(reply: &KeyedReply) -> bool {
    matches!(reply, KeyedReply::Written { .. })
}

pub fn config(replicas: usize, write_quorum: usize, read_quorum: usize) -> LeaderlessConfig {
    LeaderlessConfig {
        replicas,
        write_quorum,
        read_quorum,
        // Off unless a test is about it, so replicas stay as a test left them.
        anti_entropy_interval_ms: 0,
        ..LeaderlessConfig::default()
    }
}
