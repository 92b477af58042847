//! Anti-entropy: replicas converge without anyone reading.
//!
//! Every `anti_entropy_interval_ms` a node picks a peer it does not think
//! dead (seeded rng) and sends one digest per bucket over the keys both
//! replicate (`Digests`). A bucket's digest is the wrapping sum of its
//! keys' hashes of (key, register encoding): independent of the order keys
//! are visited in, and cached per key, so a round costs a pass over the
//! keys but no encoding. The peer compares, and for the buckets that
//! differ sends its registers and asks for the initiator's
//! (`DiffRegisters`); the initiator merges them and sends back its own
//! registers that still differ from what it was sent (`RepairRegisters`).
//! Both sides merge and persist what changed. Three messages at most per
//! round, one when nothing differs; the counters give the cost in messages
//! and bytes. The two messages that carry registers leave with
//! `after_persist`, like every other message that does.
//!
//! A round carries at most `MAX_REGISTERS_PER_MESSAGE` registers each way:
//! the peer takes differing buckets in order until that is reached (at
//! least one bucket, a rotating slice of an oversized one), so a large
//! divergence is repaired over several rounds. With many keys, more
//! buckets keep each one small.

use std::collections::BTreeMap;

use bytes::Bytes;
use replab_api::{ConflictResolver, KeyedEffects, NodeId, StepError};

use crate::config::Bug;
use crate::hash::key_hash;
use crate::leaderless::Leaderless;
use crate::message::{KeyRegister, MAX_REGISTERS_PER_MESSAGE, Message};
use crate::store::encode_register;

impl<R: ConflictResolver> Leaderless<R> {
    pub(crate) fn tick_anti_entropy(&mut self, out: &mut KeyedEffects) {
        let interval_ms = self.config.anti_entropy_interval_ms;
        let due = self.anti_entropy_deadline.is_some_and(|d| self.clocks.now >= d);
        if interval_ms == 0 || !due {
            return;
        }
        self.anti_entropy_deadline = Some(self.clocks.now.add_millis(interval_ms));
        let candidates: Vec<NodeId> =
            self.members.iter().copied().filter(|m| *m != self.id && !self.dead.contains(m)).collect();
        if candidates.is_empty() {
            return;
        }
        let peer = candidates[self.rng.range_inclusive(0, candidates.len() as u64 - 1) as usize];
        self.anti_entropy_round += 1;
        self.stats.anti_entropy_rounds += 1;
        let digests = self.bucket_digests(peer);
        self.send(peer, &Message::Digests { round: self.anti_entropy_round, digests }, false, out);
    }

    fn bucket_of(&self, key: &[u8]) -> u32 {
        (key_hash(key) % self.config.anti_entropy_buckets as u64) as u32
    }

    /// True if both this node and `peer` replicate `key`.
    fn shared_with(&self, key: &[u8], peer: NodeId) -> bool {
        let owners = self.owners(key);
        owners.contains(&self.id) && owners.contains(&peer)
    }

    fn bucket_digests(&self, peer: NodeId) -> Vec<u64> {
        let mut digests = vec![0u64; self.config.anti_entropy_buckets];
        for (key, replica) in self.store.iter() {
            if self.shared_with(key, peer) {
                let bucket = &mut digests[self.bucket_of(key) as usize];
                *bucket = bucket.wrapping_add(replica.digest);
            }
        }
        digests
    }

    /// The keys shared with `peer` in the given (ascending) buckets, by
    /// bucket.
    fn shared_keys_in(&self, peer: NodeId, buckets: &[u32]) -> BTreeMap<u32, Vec<Bytes>> {
        let mut by_bucket: BTreeMap<u32, Vec<Bytes>> = BTreeMap::new();
        for (key, _) in self.store.iter() {
            let bucket = self.bucket_of(key);
            if buckets.binary_search(&bucket).is_ok() && self.shared_with(key, peer) {
                by_bucket.entry(bucket).or_default().push(key.clone());
            }
        }
        by_bucket
    }

    fn key_register(&self, key: &Bytes) -> KeyRegister {
        KeyRegister { key: key.clone(), register: encode_register(&self.store.register(key)) }
    }

    pub(crate) fn on_digests(
        &mut self,
        from: NodeId,
        round: u64,
        digests: &[u64],
        out: &mut KeyedEffects,
    ) -> Result<(), StepError> {
        let buckets = self.config.anti_entropy_buckets;
        if digests.len() != buckets {
            return Err(StepError::Rejected(format!(
                "node {from} sent {} digests, this node cuts {buckets} buckets (anti_entropy_buckets differs)",
                digests.len()
            )));
        }
        let mine = self.bucket_digests(from);
        let differing: Vec<u32> = (0..buckets).filter(|b| mine[*b] != digests[*b]).map(|b| b as u32).collect();
        if differing.is_empty() {
            return Ok(());
        }
        let mut by_bucket = self.shared_keys_in(from, &differing);
        let mut chosen = Vec::new();
        let mut keys = Vec::new();
        for bucket in differing {
            let in_bucket = by_bucket.remove(&bucket).unwrap_or_default();
            if !chosen.is_empty() && keys.len() + in_bucket.len() > MAX_REGISTERS_PER_MESSAGE {
                break;
            }
            chosen.push(bucket);
            if in_bucket.len() > MAX_REGISTERS_PER_MESSAGE {
                // One oversized bucket: a slice starting at a random key,
                // so that successive rounds cover all of it.
                let start = self.rng.range_inclusive(0, in_bucket.len() as u64 - 1) as usize;
                keys.extend(in_bucket.iter().cycle().skip(start).take(MAX_REGISTERS_PER_MESSAGE).cloned());
                break;
            }
            keys.extend(in_bucket);
        }
        let registers = keys.iter().map(|k| self.key_register(k)).collect();
        // after_persist: the store may hold a write this node coordinated
        // whose record is not durable yet; its dot must not leave the node
        // before it is (see `writes.rs`).
        self.send(from, &Message::DiffRegisters { round, buckets: chosen, registers }, true, out);
        Ok(())
    }

    /// Checks and decodes registers a peer sent for anti-entropy, all of
    /// them before any is merged.
    fn decode_shared(
        &mut self,
        from: NodeId,
        registers: &[KeyRegister],
        buckets: Option<&[u32]>,
    ) -> Result<Vec<(Bytes, R::Register)>, StepError> {
        let mut decoded = Vec::with_capacity(registers.len());
        for KeyRegister { key, register } in registers {
            let in_buckets = buckets.is_none_or(|b| b.binary_search(&self.bucket_of(key)).is_ok());
            if !in_buckets || !self.shared_with(key, from) {
                return Err(StepError::Rejected(format!(
                    "node {from} sent anti-entropy for a key outside the buckets or owners it shares with node {}",
                    self.id
                )));
            }
            decoded.push((key.clone(), self.decode_peer_register(from, register)?));
        }
        Ok(decoded)
    }

    pub(crate) fn on_diff_registers(
        &mut self,
        from: NodeId,
        round: u64,
        buckets: &[u32],
        registers: &[KeyRegister],
        out: &mut KeyedEffects,
    ) -> Result<(), StepError> {
        if let Some(bad) = buckets.iter().find(|b| **b as usize >= self.config.anti_entropy_buckets) {
            return Err(StepError::Rejected(format!("node {from} named bucket {bad} of a ring cut differently")));
        }
        let decoded = self.decode_shared(from, registers, Some(buckets))?;
        self.merge_anti_entropy(&decoded, out);
        let theirs: BTreeMap<Bytes, R::Register> = decoded.into_iter().collect();
        let mut back = Vec::new();
        for key in self.shared_keys_in(from, buckets).into_values().flatten() {
            if back.len() == MAX_REGISTERS_PER_MESSAGE {
                break;
            }
            if theirs.get(&key) != self.store.get(&key) {
                back.push(self.key_register(&key));
            }
        }
        if !back.is_empty() {
            self.send(from, &Message::RepairRegisters { round, registers: back }, true, out);
        }
        Ok(())
    }

    pub(crate) fn on_repair_registers(
        &mut self,
        from: NodeId,
        _round: u64,
        registers: &[KeyRegister],
        out: &mut KeyedEffects,
    ) -> Result<(), StepError> {
        let decoded = self.decode_shared(from, registers, None)?;
        self.merge_anti_entropy(&decoded, out);
        Ok(())
    }

    fn merge_anti_entropy(&mut self, registers: &[(Bytes, R::Register)], out: &mut KeyedEffects) {
        for (key, register) in registers {
            let changed = if self.config.bug == Bug::AntiEntropyOverwrites {
                self.overwrite(key, register, out)
            } else {
                self.absorb(key, register, out)
            };
            if changed {
                self.stats.anti_entropy_keys_repaired += 1;
            }
        }
    }

    /// `Bug::AntiEntropyOverwrites`: the peer's register replaces ours.
    fn overwrite(&mut self, key: &Bytes, register: &R::Register, out: &mut KeyedEffects) -> bool {
        if self.store.register(key) == *register {
            return false;
        }
        self.store.replace(key.clone(), register.clone());
        self.persist(key, out);
        true
    }
}
