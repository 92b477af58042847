//! The leaderless policy's invariants, plugged into the keyed world
//! through `replab_sim::keyed::KeyedInvariants`.
//!
//! * `Provenance`: every live value in any record, checkpoint, read reply
//!   or replica state was written by a client put to that key (and the put
//!   reached a node).
//! * `Convergence`: after the heal and the settle time, every owner of
//!   every key holds the same register bytes.
//! * `LostWrite` (version vectors): every `Written` put's value is among
//!   its key's final values, unless a put that may have been applied
//!   (written, unknown, unanswered) carried a context that a read had
//!   returned together with that value. Under last-writer-wins such losses
//!   are counted (`lww_lost_writes`), not flagged.
//! * `DurableAck`: when a put is answered `Written`, at least W of the
//!   key's owners hold it durably: their durable log, read back as a
//!   restart would, has a register that holds or supersedes one of the
//!   versions that carried the value.
//! * `FailedApplied`: a put answered `Failed` ("certainly not applied
//!   anywhere") never shows up in any node's record, whether a client sent
//!   it to an owner or to a node that forwarded it. A `Coordinate` the
//!   network duplicated used to be coordinated twice, and the second
//!   copy's fail-fast `Failed` could reach the forwarder before the first
//!   copy's answer (`Bug::CoordinateDuplicates` brings that back). With
//!   `flag_forwarded_failures` off, forwarded puts answered `Failed` are
//!   only counted (`forwarded_failed_applied`) and treated as possibly
//!   applied, the reading the CI seeds used before the fix.
//! * `FinalRead`: after convergence, a get of every key returns exactly the
//!   replicas' values.
//! * `Ownership`: a node holds only keys it owns, and agrees with the ring
//!   on their owners.
//! * `VersionReuse`: no version name (a dot, a timestamp) ever carries two
//!   different values of one key: a replica that saw the first would take
//!   the second for something it already has.

use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;
use replab_api::{ConflictResolver, HybridTimestamp, KeyState, KeyedOp, KeyedReply, NodeId};
use replab_leaderless::ring::Ring;
use replab_lww::Lww;
use replab_sim::keyed::{Failure, KeyedInvariants, KeyedSim, OpRecord, Outcome, Purpose};
use replab_version_vector::{Dot, VersionVectors};

/// What the checker needs to know about a resolver's registers.
pub trait Model: ConflictResolver {
    /// What names one write: a dot, a timestamp.
    type Version: Clone + Eq + std::hash::Hash + std::fmt::Debug;
    /// Whether a concurrent write may legitimately replace an acknowledged
    /// one (last-writer-wins): lost writes are then counted, not flagged.
    const LOSES_CONCURRENT_WRITES: bool;
    /// Every live version of the register (`None`: a delete) with what
    /// names it.
    fn versions(register: &Self::Register) -> Vec<(Option<Bytes>, Self::Version)>;
    /// Whether the register holds that version or has superseded it.
    fn covers(register: &Self::Register, version: &Self::Version) -> bool;
}

impl Model for VersionVectors {
    type Version = Dot;
    const LOSES_CONCURRENT_WRITES: bool = false;

    fn versions(register: &Self::Register) -> Vec<(Option<Bytes>, Dot)> {
        register.versions().map(|(dot, value)| (value.clone(), *dot)).collect()
    }

    fn covers(register: &Self::Register, dot: &Dot) -> bool {
        register.context().get(dot.node) >= dot.counter
    }
}

impl Model for Lww {
    type Version = HybridTimestamp;
    const LOSES_CONCURRENT_WRITES: bool = true;

    fn versions(register: &Self::Register) -> Vec<(Option<Bytes>, HybridTimestamp)> {
        if register.stamp == HybridTimestamp::default() {
            return Vec::new(); // never written
        }
        vec![(register.value.clone(), register.stamp)]
    }

    fn covers(register: &Self::Register, stamp: &HybridTimestamp) -> bool {
        register.stamp >= *stamp
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub records_checked: u64,
    pub checkpoints_checked: u64,
    /// Audits of every node's replica state.
    pub states_checked: u64,
    pub durable_acks_checked: u64,
    /// Acknowledged values gone at the end because a put whose context
    /// covered them superseded them (allowed).
    pub superseded_writes: u64,
    /// Acknowledged values gone at the end under last-writer-wins with no
    /// covering context: a concurrent write with a later timestamp won.
    pub lww_lost_writes: u64,
    pub final_reads: u64,
    /// Forwarded puts answered `Failed` that a node stored anyway.
    pub forwarded_failed_applied: u64,
    /// Values stored under more than one version (a put applied twice).
    pub applied_twice: u64,
}

/// One node's durable log, read back as a restart would, kept up to date
/// incrementally.
#[derive(Default)]
struct DurableView<Reg> {
    /// When the disk was last lost: a log that started over.
    wiped_at_us: Option<u64>,
    checkpoint_covers: u64,
    last_seq: u64,
    registers: BTreeMap<Bytes, Reg>,
}

/// A key's converged state.
struct Final<R: Model> {
    values: Vec<Bytes>,
    register: R::Register,
}

impl<R: Model> Default for Final<R> {
    fn default() -> Final<R> {
        Final { values: Vec::new(), register: R::Register::default() }
    }
}

pub struct LeaderlessChecker<R: Model> {
    ring: Ring,
    replicas: usize,
    write_quorum: usize,
    /// Every value a put reached a node with, and the put's key.
    written: HashMap<Bytes, Bytes>,
    /// The versions that carried each value, from records and checkpoints.
    versions: HashMap<Bytes, Vec<R::Version>>,
    /// What each version carried, per key (`None`: a delete), from
    /// durable records.
    carried: HashMap<(Bytes, R::Version), Option<Bytes>>,
    /// Records not known durable yet, per node, by sequence number.
    pending: HashMap<NodeId, Vec<(u64, Bytes, R::Register)>>,
    /// For each (key, context) a read returned, the values returned with it.
    read_contexts: HashMap<(Bytes, Bytes), HashSet<Bytes>>,
    durable: HashMap<NodeId, DurableView<R::Register>>,
    /// Off only to show what the end-state invariants see without it.
    pub check_durable_acks: bool,
    /// Flag a forwarded put answered `Failed` that was applied (a known
    /// limit of the policy, see the module documentation).
    pub flag_forwarded_failures: bool,
    pub counts: Counts,
}

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, node: NodeId, bytes: &[u8]) -> Result<T, Failure> {
    postcard::from_bytes(bytes).map_err(|e| Failure::new("RecordFormat", Some(node), format!("{what}: {e}")))
}

impl<R: Model> LeaderlessChecker<R> {
    pub fn new(members: &[NodeId], vnodes: u32, replicas: usize, write_quorum: usize) -> LeaderlessChecker<R> {
        LeaderlessChecker {
            ring: Ring::new(members, vnodes),
            replicas,
            write_quorum,
            written: HashMap::new(),
            versions: HashMap::new(),
            carried: HashMap::new(),
            pending: HashMap::new(),
            read_contexts: HashMap::new(),
            durable: HashMap::new(),
            check_durable_acks: true,
            flag_forwarded_failures: false,
            counts: Counts::default(),
        }
    }

    fn owners(&self, key: &[u8]) -> Vec<NodeId> {
        self.ring.owners(key, self.replicas)
    }

    fn provenance(&self, node: NodeId, key: &Bytes, value: &Bytes, where_: &str) -> Result<(), Failure> {
        if self.written.get(value) == Some(key) {
            return Ok(());
        }
        let detail = match self.written.get(value) {
            Some(other) => format!(
                "{where_} holds {:?} for key {:?}, a value written to {:?}",
                show(value),
                show(key),
                show(other)
            ),
            None => format!("{where_} holds {:?} for key {:?}, a value no client wrote", show(value), show(key)),
        };
        Err(Failure::new("Provenance", Some(node), detail))
    }

    /// Checks a register a node persisted and learns its versions.
    fn stored(&mut self, node: NodeId, key: &Bytes, register: &R::Register, where_: &str) -> Result<(), Failure> {
        for (value, version) in R::versions(register) {
            if let Some(value) = value {
                self.provenance(node, key, &value, where_)?;
                let known = self.versions.entry(value).or_default();
                if !known.contains(&version) {
                    known.push(version);
                }
            }
        }
        Ok(())
    }

    /// Takes the versions of `node`'s records that became durable into
    /// `carried`, checking that none renames another value; forgets those
    /// a crash lost (their sequence numbers are being reused, from
    /// `reused_from` on, which happens before any reused number is
    /// durable). A version lost before it was durable never left the node
    /// (sends carrying it wait for durability), so reusing its name is
    /// harmless.
    fn promote(&mut self, world: &KeyedSim, node: NodeId, reused_from: Option<u64>) -> Result<(), Failure> {
        let durable = world.durable(node).last_seq;
        let Some(pending) = self.pending.get_mut(&node) else { return Ok(()) };
        if let Some(from) = reused_from {
            pending.retain(|(seq, _, _)| *seq < from);
        }
        let split = pending.partition_point(|(seq, _, _)| *seq <= durable);
        let ready: Vec<_> = pending.drain(..split).collect();
        for (seq, key, register) in ready {
            for (value, version) in R::versions(&register) {
                match self.carried.get(&(key.clone(), version.clone())) {
                    Some(known) if *known == value => {}
                    Some(known) => {
                        let detail = format!(
                            "node {node}'s durable record {seq} holds {:?} for key {:?} under the version \
                             {version:?}, which already named {:?}: replicas that saw the first will drop the \
                             second as already seen",
                            value.as_deref().map(show),
                            show(&key),
                            known.as_deref().map(show)
                        );
                        return Err(Failure::new("VersionReuse", Some(node), detail));
                    }
                    None => {
                        self.carried.insert((key.clone(), version), value);
                    }
                }
            }
        }
        Ok(())
    }

    fn promote_all(&mut self, world: &KeyedSim) -> Result<(), Failure> {
        for node in world.members() {
            self.promote(world, node, None)?;
        }
        Ok(())
    }

    /// The node's durable register for `key`, as a restart would find it.
    fn durable_register(
        &mut self,
        world: &KeyedSim,
        node: NodeId,
        key: &Bytes,
    ) -> Result<Option<R::Register>, Failure> {
        let log = world.durable(node);
        let wiped_at_us = world.wiped_at_us(node);
        let view = self.durable.entry(node).or_default();
        if view.wiped_at_us != wiped_at_us || view.checkpoint_covers != log.checkpoint_covers {
            *view = DurableView { wiped_at_us, ..DurableView::default() };
            if let Some(checkpoint) = &log.checkpoint {
                let registers: Vec<(Bytes, R::Register)> = decode("a durable checkpoint", node, checkpoint)?;
                view.registers = registers.into_iter().collect();
            }
            view.checkpoint_covers = log.checkpoint_covers;
            view.last_seq = log.last_seq - log.records.len() as u64;
        }
        let first = log.last_seq + 1 - log.records.len() as u64;
        for seq in view.last_seq + 1..=log.last_seq {
            let (k, register): (Bytes, R::Register) =
                decode("a durable record", node, &log.records[(seq - first) as usize])?;
            R::merge(view.registers.entry(k).or_default(), &register);
        }
        view.last_seq = log.last_seq;
        Ok(view.registers.get(key).cloned())
    }

    /// A `Written` put: W owners must hold it durably.
    fn durable_ack(&mut self, world: &KeyedSim, op: &OpRecord, value: &Bytes) -> Result<(), Failure> {
        self.counts.durable_acks_checked += 1;
        let key = op.key().clone();
        let Some(versions) = self.versions.get(value).cloned() else {
            let detail =
                format!("put of {:?} to {:?} acknowledged, but no node ever persisted it", show(value), show(&key));
            return Err(Failure::new("DurableAck", Some(op.node), detail));
        };
        let mut holders = Vec::new();
        let mut wiped = Vec::new();
        for owner in self.owners(&key) {
            let register = self.durable_register(world, owner, &key)?;
            if register.is_some_and(|r| versions.iter().any(|v| R::covers(&r, v))) {
                holders.push(owner);
            } else if world.wiped_at_us(owner).is_some_and(|t| t >= op.submitted_us) {
                // It may have held the put durably and acknowledged it
                // before its disk was lost.
                wiped.push(owner);
            }
        }
        if holders.len() + wiped.len() >= self.write_quorum {
            return Ok(());
        }
        let detail = format!(
            "put of {:?} to {:?} acknowledged Written with W={}, but only owners {holders:?} of {:?} hold it durably \
             (lost their disk since: {wiped:?})",
            show(value),
            show(&key),
            self.write_quorum,
            self.owners(&key)
        );
        Err(Failure::new("DurableAck", Some(op.node), detail))
    }

    fn states(world: &KeyedSim) -> Vec<(NodeId, Vec<KeyState>)> {
        world.members().into_iter().filter_map(|id| world.replica_state(id).map(|s| (id, s))).collect()
    }

    fn check_states(&self, states: &[(NodeId, Vec<KeyState>)]) -> Result<(), Failure> {
        for (node, keys) in states {
            for state in keys {
                for value in &state.values {
                    self.provenance(*node, &state.key, value, &format!("node {node}'s replica"))?;
                }
                let owners = self.owners(&state.key);
                if state.owners != owners || !owners.contains(node) {
                    let detail = format!(
                        "node {node} holds {:?} with owners {:?}; the ring says {owners:?}",
                        show(&state.key),
                        state.owners
                    );
                    return Err(Failure::new("Ownership", Some(*node), detail));
                }
            }
        }
        Ok(())
    }

    /// Every key's converged values and register (and checks that they
    /// converged).
    fn converged(&self, states: &[(NodeId, Vec<KeyState>)]) -> Result<BTreeMap<Bytes, Final<R>>, Failure> {
        let mut held: BTreeMap<Bytes, BTreeMap<NodeId, &KeyState>> = BTreeMap::new();
        for (node, keys) in states {
            for state in keys {
                held.entry(state.key.clone()).or_default().insert(*node, state);
            }
        }
        let mut values = BTreeMap::new();
        for (key, by_node) in held {
            let owners = self.owners(&key);
            let registers: Vec<Option<&Bytes>> = owners.iter().map(|o| by_node.get(o).map(|s| &s.register)).collect();
            if registers.windows(2).any(|w| w[0] != w[1]) {
                let shown: Vec<String> = owners
                    .iter()
                    .map(|o| match by_node.get(o) {
                        Some(s) => format!("{o}: {:?}", s.values.iter().map(|v| show(v)).collect::<Vec<_>>()),
                        None => format!("{o}: nothing"),
                    })
                    .collect();
                let detail = format!("after the heal, owners of {:?} still differ: {}", show(&key), shown.join("; "));
                return Err(Failure::new("Convergence", None, detail));
            }
            let first = by_node.get(&owners[0]).expect("the owners agree and someone holds it");
            let register = decode("a replica's register", owners[0], &first.register)?;
            values.insert(key, Final { values: first.values.clone(), register });
        }
        Ok(values)
    }

    fn lost_writes(&mut self, world: &KeyedSim, finals: &BTreeMap<Bytes, Final<R>>) -> Result<(), Failure> {
        // Per key, the values that some put which may have been applied
        // had seen (through the context it carried).
        let mut covered: HashMap<&Bytes, HashSet<&Bytes>> = HashMap::new();
        for op in world.ops().iter().filter(|op| self.may_have_applied(op) && !op.context().is_empty()) {
            if let Some(seen) = self.read_contexts.get(&(op.key().clone(), Bytes::copy_from_slice(op.context()))) {
                covered.entry(op.key()).or_default().extend(seen.iter());
            }
        }
        let none = Final::<R>::default();
        for op in world.ops().iter().filter(|op| op.is_written()) {
            let Some(value) = op.value() else { continue };
            let last = finals.get(op.key()).unwrap_or(&none);
            if last.values.contains(value) {
                continue;
            }
            let shown = || last.values.iter().map(|v| show(v)).collect::<Vec<_>>();
            // Whatever the resolver, the final register holds the version
            // or has superseded it (a later timestamp, a covering context).
            let versions = self.versions.get(value).map(Vec::as_slice).unwrap_or(&[]);
            if !versions.iter().any(|v| R::covers(&last.register, v)) {
                let detail = format!(
                    "put of {:?} to {:?} (request {} at node {}, t={}us) was acknowledged Written, and the final \
                     register neither holds nor supersedes it: {:?}",
                    show(value),
                    show(op.key()),
                    op.request,
                    op.node,
                    op.submitted_us,
                    shown()
                );
                return Err(Failure::new("LostWrite", None, detail));
            }
            if covered.get(op.key()).is_some_and(|c| c.contains(value)) {
                self.counts.superseded_writes += 1;
            } else if R::LOSES_CONCURRENT_WRITES {
                self.counts.lww_lost_writes += 1;
            } else {
                let detail = format!(
                    "put of {:?} to {:?} (request {} at node {}, t={}us) was acknowledged Written and is not among \
                     the final values {:?}, and no put that may have been applied carried a context covering it",
                    show(value),
                    show(op.key()),
                    op.request,
                    op.node,
                    op.submitted_us,
                    shown()
                );
                return Err(Failure::new("LostWrite", None, detail));
            }
        }
        Ok(())
    }

    /// Whether a put was sent to a node that owns none of its key (and
    /// was forwarded).
    fn forwarded(&self, op: &OpRecord) -> bool {
        op.is_put() && !self.owners(op.key()).contains(&op.node)
    }

    /// A put that may have been applied; with `flag_forwarded_failures`
    /// off (the lenient reading from before the duplicated-forward fix),
    /// also a forwarded put answered `Failed`.
    fn may_have_applied(&self, op: &OpRecord) -> bool {
        op.may_have_applied()
            || (!self.flag_forwarded_failures
                && self.forwarded(op)
                && matches!(op.reply(), Some(KeyedReply::Failed { .. })))
    }

    /// `Failed` promises the put was applied nowhere: its value must never
    /// have been persisted by any node.
    fn failed_applied(&mut self, world: &KeyedSim) -> Result<(), Failure> {
        self.counts.applied_twice = self.versions.values().filter(|v| v.len() > 1).count() as u64;
        for op in world.ops() {
            let (Some(KeyedReply::Failed { reason }), Some(value)) = (op.reply(), op.value()) else { continue };
            if self.versions.contains_key(value) && !self.flag_forwarded_failures && self.forwarded(op) {
                self.counts.forwarded_failed_applied += 1;
            } else if self.versions.contains_key(value) {
                let detail = format!(
                    "put of {:?} to {:?} (request {} at node {}, t={}us) was answered Failed ({reason}), yet a node \
                     stored it",
                    show(value),
                    show(op.key()),
                    op.request,
                    op.node,
                    op.submitted_us
                );
                return Err(Failure::new("FailedApplied", Some(op.node), detail));
            }
        }
        Ok(())
    }

    fn final_reads(&mut self, world: &KeyedSim, finals: &BTreeMap<Bytes, Final<R>>) -> Result<(), Failure> {
        let none = Final::<R>::default();
        for op in world.ops().iter().filter(|op| op.purpose == Purpose::FinalRead) {
            self.counts.final_reads += 1;
            let expected = &finals.get(op.key()).unwrap_or(&none).values;
            match &op.outcome {
                Outcome::Replied(KeyedReply::Values { values, .. }) if values == expected => {}
                other => {
                    let detail = format!(
                        "after convergence, a get of {:?} at node {} gave {other:?}; the replicas hold {:?}",
                        show(op.key()),
                        op.node,
                        expected.iter().map(|v| show(v)).collect::<Vec<_>>()
                    );
                    return Err(Failure::new("FinalRead", Some(op.node), detail));
                }
            }
        }
        Ok(())
    }
}

impl<R: Model> KeyedInvariants for LeaderlessChecker<R> {
    fn on_submit(&mut self, _world: &KeyedSim, op: &OpRecord) -> Result<(), Failure> {
        if let (KeyedOp::Put { key, value: Some(value), .. }, Outcome::Pending) = (&op.op, &op.outcome) {
            let previous = self.written.insert(value.clone(), key.clone());
            assert!(previous.is_none(), "the workload wrote {value:?} twice");
        }
        Ok(())
    }

    fn on_record(&mut self, world: &KeyedSim, node: NodeId, seq: u64, record: &Bytes) -> Result<(), Failure> {
        self.counts.records_checked += 1;
        let (key, register): (Bytes, R::Register) = decode(&format!("record {seq}"), node, record)?;
        self.stored(node, &key, &register, &format!("node {node}'s record {seq}"))?;
        self.promote(world, node, Some(seq))?;
        self.pending.entry(node).or_default().push((seq, key, register));
        Ok(())
    }

    fn on_durable(&mut self, world: &KeyedSim, node: NodeId, _up_to: u64) -> Result<(), Failure> {
        self.promote(world, node, None)
    }

    fn on_checkpoint(&mut self, _world: &KeyedSim, node: NodeId, state: &Bytes) -> Result<(), Failure> {
        self.counts.checkpoints_checked += 1;
        let registers: Vec<(Bytes, R::Register)> = decode("a checkpoint", node, state)?;
        for (key, register) in &registers {
            self.stored(node, key, register, &format!("node {node}'s checkpoint"))?;
        }
        Ok(())
    }

    fn on_reply(&mut self, world: &KeyedSim, op: &OpRecord) -> Result<(), Failure> {
        match (op.reply(), op.value()) {
            (Some(KeyedReply::Values { values, context }), _) => {
                for value in values {
                    self.provenance(op.node, op.key(), value, &format!("a read at node {}", op.node))?;
                }
                let seen = self.read_contexts.entry((op.key().clone(), context.clone())).or_default();
                seen.extend(values.iter().cloned());
            }
            (Some(KeyedReply::Written { .. }), Some(value)) if self.check_durable_acks => {
                self.durable_ack(world, op, value)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Every node's whole replica state (dear: it encodes every register,
    /// so once per fault action rather than after every step; what a step
    /// stores is checked in its record).
    fn audit(&mut self, world: &KeyedSim) -> Result<(), Failure> {
        self.counts.states_checked += 1;
        self.promote_all(world)?;
        self.check_states(&Self::states(world))
    }

    fn at_end(&mut self, world: &KeyedSim) -> Result<(), Failure> {
        self.promote_all(world)?;
        let states = Self::states(world);
        self.check_states(&states)?;
        let finals = self.converged(&states)?;
        self.failed_applied(world)?;
        self.lost_writes(world, &finals)?;
        self.final_reads(world, &finals)
    }

    fn counts(&self) -> Vec<(&'static str, u64)> {
        let c = self.counts;
        vec![
            ("records_checked", c.records_checked),
            ("checkpoints_checked", c.checkpoints_checked),
            ("states_checked", c.states_checked),
            ("durable_acks_checked", c.durable_acks_checked),
            ("superseded_writes", c.superseded_writes),
            ("lww_lost_writes", c.lww_lost_writes),
            ("final_reads", c.final_reads),
            ("forwarded_failed_applied", c.forwarded_failed_applied),
            ("applied_twice", c.applied_twice),
        ]
    }
}
