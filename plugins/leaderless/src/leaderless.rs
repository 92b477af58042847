//! The node: its state, the single `step` entry point, and what every
//! handler shares (owners, liveness, sending, decoding peers' registers).
//! The protocol lives beside it, one concern per module: `writes`
//! (coordinating puts), `forward` (puts at a non-owner), `reads` (gets and
//! read repair), `replica` (answering `Store` and `Fetch`),
//! `anti_entropy`, `records` (persistence and recovery).

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use replab_api::{
    ACTOR_BIT, Clocks, ConflictResolver, HybridClock, HybridTimestamp, Instant, KeyState, KeyedEffect, KeyedEffects,
    KeyedInput, KeyedOp, KeyedPolicy, KeyedRecovered, KeyedReply, Liveness, NodeId, PluginRng, PolicyContext,
    PolicyStatus, RequestId, Role, StepError, actor_id,
};

use crate::config::{Bug, LeaderlessConfig};
use crate::forward::PendingForward;
use crate::hash::Fnv1a64;
use crate::idempotence::ForwardedPuts;
use crate::message::{MAX_KEY_BYTES, Message};
use crate::reads::PendingRead;
use crate::records::{RecordLog, recover_store};
use crate::ring::Ring;
use crate::stats::LeaderlessStats;
use crate::store::{Store, decode_register, encode_register};
use crate::writes::{Origin, PendingWrite};

/// A peer's timestamp beyond this (in wall milliseconds, some 146 million
/// years) is nonsense, refused at decode so the hybrid clock's arithmetic
/// cannot overflow on it.
pub const MAX_SANE_WALL_MS: u64 = 1 << 62;

/// One leaderless node, generic over the conflict resolver `R`.
pub struct Leaderless<R: ConflictResolver> {
    pub(crate) id: NodeId,
    /// The incarnation of the node's durable state
    /// (`KeyedRecovered::incarnation`).
    incarnation: u64,
    /// The name this node writes versions under: `actor_id(id,
    /// incarnation)`. After the node lost its state, a new name, so that
    /// it never reuses a version name (a dot) its peers already hold.
    pub(crate) actor: u64,
    /// Every member, ascending.
    pub(crate) members: Vec<NodeId>,
    pub(crate) config: LeaderlessConfig,
    pub(crate) ring: Ring,
    pub(crate) store: Store<R>,
    pub(crate) log: RecordLog,
    /// Stamps this node's writes (for resolvers that use it) after every
    /// version it has seen.
    pub(crate) hlc: HybridClock,
    pub(crate) rng: PluginRng,
    /// Peers the failure detector last called dead.
    pub(crate) dead: BTreeSet<NodeId>,
    /// Puts this node coordinates, by the tag their `Store`s carry.
    pub(crate) writes: BTreeMap<u64, PendingWrite>,
    /// Gets this node coordinates, by the tag their `Fetch`es carry.
    pub(crate) reads: BTreeMap<u64, PendingRead<R::Register>>,
    /// Puts this node forwarded, by the tag their `Coordinate` carries.
    pub(crate) forwards: BTreeMap<u64, PendingForward>,
    /// Puts forwarded to this node, remembered so that a duplicated
    /// `Coordinate` is coordinated once.
    pub(crate) forwarded_puts: ForwardedPuts,
    /// `None` until the first step (see [`Leaderless::next_tag`]).
    next_tag: Option<u64>,
    seed: u64,
    /// The clocks of the input being stepped.
    pub(crate) clocks: Clocks,
    /// `None` until the first step brings a clock reading.
    pub(crate) anti_entropy_deadline: Option<Instant>,
    pub(crate) anti_entropy_round: u64,
    pub(crate) stats: LeaderlessStats,
}

impl<R: ConflictResolver> Leaderless<R> {
    /// Builds a node, fresh (`KeyedRecovered::default()`) or from what it
    /// persisted. Errors (an invalid config, a node that is not a member,
    /// a checkpoint or record that does not decode) are for the engine to
    /// turn into a startup refusal: a node that skipped a record could
    /// forget versions it acknowledged.
    pub fn recover(
        ctx: PolicyContext,
        config: LeaderlessConfig,
        recovered: KeyedRecovered,
    ) -> Result<Leaderless<R>, String> {
        config.validate(ctx.members.len()).map_err(|e| format!("invalid [leaderless] configuration: {e}"))?;
        let mut members = ctx.members.clone();
        members.sort_unstable();
        members.dedup();
        if members.len() != ctx.members.len() {
            return Err(format!("the member list {:?} names a node twice", ctx.members));
        }
        if !members.contains(&ctx.id) {
            return Err(format!("node {} is not among the members {members:?}", ctx.id));
        }
        if let Some(big) = members.iter().find(|m| **m & ACTOR_BIT != 0) {
            // Such an id could equal the name another node writes under
            // after it lost its state (`actor_id`).
            return Err(format!("node id {big} is not below 2^63, which leaderless nodes need"));
        }
        let (store, log) = recover_store::<R>(&recovered)?;
        let mut hlc = HybridClock::new(ctx.id);
        for (_, replica) in store.iter() {
            if let Some(stamp) = R::newest_stamp(&replica.register) {
                if stamp.wall_ms > MAX_SANE_WALL_MS {
                    return Err(format!("a recovered register holds the timestamp {stamp:?}, out of range"));
                }
                hlc.observe(stamp, 0);
            }
        }
        let actor = if config.bug == Bug::ForgetIncarnation { ctx.id } else { actor_id(ctx.id, recovered.incarnation) };
        Ok(Leaderless {
            id: ctx.id,
            incarnation: recovered.incarnation,
            actor,
            ring: Ring::new(&members, config.ring_vnodes),
            members,
            config,
            store,
            log,
            hlc,
            rng: PluginRng::from_seed_u64(ctx.seed),
            dead: BTreeSet::new(),
            writes: BTreeMap::new(),
            reads: BTreeMap::new(),
            forwards: BTreeMap::new(),
            forwarded_puts: ForwardedPuts::default(),
            next_tag: None,
            seed: ctx.seed,
            clocks: Clocks { now: Instant::ZERO, wall_ms: 0 },
            anti_entropy_deadline: None,
            anti_entropy_round: 0,
            stats: LeaderlessStats::default(),
        })
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn config(&self) -> &LeaderlessConfig {
        &self.config
    }

    pub fn stats(&self) -> LeaderlessStats {
        self.stats
    }

    /// The incarnation this node recovered with, and the name its writes'
    /// versions carry (see [`replab_api::actor_id`]).
    pub fn identity(&self) -> (u64, u64) {
        (self.incarnation, self.actor)
    }

    /// The key's preference list: the N members that replicate it, the
    /// natural coordinator first.
    pub fn owners(&self, key: &[u8]) -> Vec<NodeId> {
        self.ring.owners(key, self.config.replicas)
    }

    /// This node's register for `key`, if it holds one.
    pub fn register(&self, key: &[u8]) -> Option<&R::Register> {
        self.store.get(key)
    }

    /// Peers the failure detector currently calls dead.
    pub fn dead_peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.dead.iter().copied()
    }

    /// Requests this node still waits on: writes, reads (including answered
    /// reads still collecting replies for read repair) and forwards.
    pub fn pending_requests(&self) -> usize {
        self.writes.len() + self.reads.len() + self.forwards.len()
    }

    /// Forwarded puts this node remembers (see `idempotence.rs`).
    pub fn remembered_forwards(&self) -> usize {
        self.forwarded_puts.len()
    }

    pub(crate) fn is_owner(&self, owners: &[NodeId]) -> bool {
        owners.contains(&self.id)
    }

    /// Owners the failure detector does not call dead (this node counts as
    /// alive: it is running this code).
    pub(crate) fn alive(&self, owners: &[NodeId]) -> usize {
        owners.iter().filter(|o| **o == self.id || !self.dead.contains(o)).count()
    }

    /// A tag for a request this node waits on. Tags start at a value drawn
    /// from the seed, the recovered sequence number and the first clock
    /// readings, so an answer addressed to an earlier incarnation of this
    /// node (a `Stored` still in flight when it crashed) does not match a
    /// request of this one: that would count an acknowledgement for a
    /// register the replica never saw.
    pub(crate) fn next_tag(&mut self) -> u64 {
        let tag = self.next_tag.expect("set on the first step");
        self.next_tag = Some(tag.wrapping_add(1));
        tag
    }

    pub(crate) fn deadline(&self) -> Instant {
        self.clocks.now.add_millis(self.config.request_timeout_ms)
    }

    pub(crate) fn send(&mut self, to: NodeId, message: &Message, after_persist: bool, out: &mut KeyedEffects) {
        debug_assert_ne!(to, self.id, "a node does not message itself");
        let bytes = message.encode();
        self.stats.messages_sent += 1;
        self.stats.bytes_sent += bytes.len() as u64;
        if message.is_anti_entropy() {
            self.stats.anti_entropy_messages += 1;
            self.stats.anti_entropy_bytes += bytes.len() as u64;
        }
        out.push(KeyedEffect::Send { to, bytes, after_persist });
    }

    pub(crate) fn reply(&mut self, id: RequestId, reply: KeyedReply, out: &mut KeyedEffects) {
        out.push(KeyedEffect::Reply { id, reply });
    }

    /// Decodes a register a peer sent and lets the hybrid clock observe it,
    /// so this node stamps its own later writes after it.
    pub(crate) fn decode_peer_register(&mut self, from: NodeId, bytes: &[u8]) -> Result<R::Register, StepError> {
        let register: R::Register = decode_register(bytes).map_err(|reason| {
            self.stats.decode_errors += 1;
            StepError::Decode { from, reason }
        })?;
        if let Some(stamp) = R::newest_stamp(&register) {
            self.check_stamp(from, stamp)?;
            self.hlc.observe(stamp, self.clocks.wall_ms);
        }
        Ok(register)
    }

    fn check_stamp(&mut self, from: NodeId, stamp: HybridTimestamp) -> Result<(), StepError> {
        if stamp.wall_ms > MAX_SANE_WALL_MS {
            self.stats.decode_errors += 1;
            return Err(StepError::Decode { from, reason: format!("timestamp {stamp:?} is out of range") });
        }
        Ok(())
    }

    /// Lazy start: the first input brings the first clock readings.
    fn start(&mut self) {
        let base = Fnv1a64::new()
            .write_u64(self.seed)
            .write_u64(self.log.last_seq)
            .write_u64(self.incarnation)
            .write_u64(self.clocks.wall_ms)
            .write_u64(self.clocks.now.as_micros())
            .finish_mixed();
        self.next_tag = Some(base);
        self.anti_entropy_deadline = Some(self.clocks.now.add_millis(self.config.anti_entropy_interval_ms));
    }

    fn client(&mut self, id: RequestId, op: KeyedOp, out: &mut KeyedEffects) {
        if op.key().len() > MAX_KEY_BYTES {
            let reason = format!("a {}-byte key (at most {MAX_KEY_BYTES})", op.key().len());
            self.reply(id, KeyedReply::Failed { reason }, out);
            return;
        }
        match op {
            KeyedOp::Get { key } => self.get(id, key, out),
            KeyedOp::Put { key, value, context } => {
                let owners = self.owners(&key);
                if self.is_owner(&owners) {
                    self.coordinate(Origin::Client(id), key, value, &context, owners, out);
                } else {
                    self.forward(id, key, value, context, owners, out);
                }
            }
        }
    }

    fn receive(&mut self, from: NodeId, bytes: &[u8], out: &mut KeyedEffects) -> Result<(), StepError> {
        if from == self.id || self.members.binary_search(&from).is_err() {
            return Err(StepError::Rejected(format!("message from node {from}, which is not a peer of {}", self.id)));
        }
        let message = Message::decode(bytes).map_err(|reason| {
            self.stats.decode_errors += 1;
            StepError::Decode { from, reason }
        })?;
        match message {
            Message::Coordinate { tag, key, value, context } => {
                self.on_coordinate(from, tag, key, value, context, out);
                Ok(())
            }
            Message::Coordinated { tag, reply } => self.on_coordinated(from, tag, reply, out),
            Message::Store { key, register, ack } => self.on_store(from, key, &register, ack, out),
            Message::Stored { tag } => self.on_stored(from, tag, out),
            Message::Fetch { tag, key } => self.on_fetch(from, tag, key, out),
            Message::Fetched { tag, register } => self.on_fetched(from, tag, &register, out),
            Message::Digests { round, digests } => self.on_digests(from, round, &digests, out),
            Message::DiffRegisters { round, buckets, registers } => {
                self.on_diff_registers(from, round, &buckets, &registers, out)
            }
            Message::RepairRegisters { round, registers } => self.on_repair_registers(from, round, &registers, out),
        }
    }

    fn on_persisted(&mut self, up_to: u64, out: &mut KeyedEffects) -> Result<(), StepError> {
        if up_to > self.log.last_seq {
            return Err(StepError::Rejected(format!(
                "records up to {up_to} reported durable, but only {} were asked for",
                self.log.last_seq
            )));
        }
        if up_to <= self.log.durable_seq {
            return Ok(());
        }
        self.log.durable_seq = up_to;
        assert!(self.log.durable_seq <= self.log.last_seq, "durable beyond what was asked for");
        self.writes_durable(up_to, out);
        self.reads_durable(up_to, out);
        Ok(())
    }

    fn set_liveness(&mut self, peer: NodeId, liveness: Liveness) -> Result<(), StepError> {
        if peer == self.id || self.members.binary_search(&peer).is_err() {
            return Err(StepError::Rejected(format!("a verdict on node {peer}, which is not a peer of {}", self.id)));
        }
        // Only `Dead` removes a peer from quorums: a suspect may just be
        // slow, and failing fast on it would refuse writes that could
        // succeed.
        if liveness == Liveness::Dead {
            self.dead.insert(peer);
        } else {
            self.dead.remove(&peer);
        }
        Ok(())
    }

    fn tick(&mut self, out: &mut KeyedEffects) {
        self.expire_writes(out);
        self.expire_forwards(out);
        self.forwarded_puts.expire(self.clocks.now);
        self.expire_reads(out);
        self.tick_anti_entropy(out);
    }
}

impl<R: ConflictResolver> KeyedPolicy for Leaderless<R> {
    fn step(&mut self, clocks: Clocks, input: KeyedInput, out: &mut KeyedEffects) -> Result<(), StepError> {
        self.clocks = clocks;
        if self.next_tag.is_none() {
            self.start();
        }
        match input {
            KeyedInput::Tick => {
                self.tick(out);
                Ok(())
            }
            KeyedInput::Message { from, bytes } => self.receive(from, &bytes, out),
            KeyedInput::Client { id, op } => {
                self.client(id, op, out);
                Ok(())
            }
            KeyedInput::Persisted { up_to } => self.on_persisted(up_to, out),
            KeyedInput::PeerLiveness { peer, liveness } => self.set_liveness(peer, liveness),
        }
    }

    /// No leader and no term: every node is a peer. The indexes are record
    /// sequence numbers; a record counts as committed once durable here.
    fn status(&self) -> PolicyStatus {
        PolicyStatus {
            id: self.id,
            role: Role::Peer,
            term: 0,
            leader: None,
            first_index: self.log.first_seq,
            last_index: self.log.last_seq,
            commit_index: self.log.durable_seq,
            applied_index: self.log.durable_seq,
            durable_index: self.log.durable_seq,
        }
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        self.stats.named()
    }

    fn replica_state(&self) -> Vec<KeyState> {
        self.store
            .iter()
            .map(|(key, replica)| KeyState {
                key: key.clone(),
                values: R::read(&replica.register).0,
                register: encode_register(&replica.register),
                owners: self.owners(key),
            })
            .collect()
    }
}

/// Turns a `Bytes` key into text for messages, lossily.
pub(crate) fn show_key(key: &Bytes) -> String {
    let shown: String = String::from_utf8_lossy(&key[..key.len().min(64)]).into_owned();
    if key.len() > 64 { format!("{shown}...") } else { shown }
}
