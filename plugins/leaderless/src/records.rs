//! What the node persists: one record per register change, numbered, and
//! now and then a checkpoint of every register; and how a node rebuilds
//! its store from them.
//!
//! A record is the postcard encoding of (key, whole register), not of the
//! operation: replaying is merging, which is idempotent and needs no
//! order, so a checkpoint plus any records after it (even ones it already
//! covers) rebuild the same store.

use bytes::Bytes;
use replab_api::{ConflictResolver, KeyedEffect, KeyedEffects, KeyedRecovered};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::leaderless::Leaderless;
use crate::store::Store;

/// Record sequence numbers, for durability and `status()`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordLog {
    /// The last record asked for (0: none ever).
    pub last_seq: u64,
    /// Every record up to here is durable (`Persisted`).
    pub durable_seq: u64,
    /// The first record not covered by the latest checkpoint.
    pub first_seq: u64,
    /// Records asked for since the latest checkpoint.
    pub since_checkpoint: u64,
}

pub fn encode_record<Reg: Serialize>(key: &Bytes, register: &Reg) -> Bytes {
    Bytes::from(postcard::to_allocvec(&(key, register)).expect("records serialize"))
}

fn decode_exact<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    match postcard::take_from_bytes::<T>(bytes) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(format!("{} trailing bytes", rest.len())),
        Err(e) => Err(e.to_string()),
    }
}

/// Every key's register, in key order.
pub fn encode_checkpoint<R: ConflictResolver>(store: &Store<R>) -> Bytes {
    let registers: Vec<(&Bytes, &R::Register)> = store.iter().map(|(k, r)| (k, &r.register)).collect();
    Bytes::from(postcard::to_allocvec(&registers).expect("checkpoints serialize"))
}

/// Rebuilds a store from what the node found on disk. An undecodable
/// checkpoint or record is an error naming it: skipping it would silently
/// drop versions this node acknowledged.
pub fn recover_store<R: ConflictResolver>(recovered: &KeyedRecovered) -> Result<(Store<R>, RecordLog), String> {
    let records = recovered.records.len() as u64;
    if records > recovered.last_seq {
        return Err(format!("{records} records recovered but the last sequence number is {}", recovered.last_seq));
    }
    let first_seq = recovered.last_seq - records + 1;
    let mut store = Store::<R>::default();
    if let Some(checkpoint) = &recovered.checkpoint {
        let registers: Vec<(Bytes, R::Register)> =
            decode_exact(checkpoint).map_err(|e| format!("the checkpoint does not decode: {e}"))?;
        for (key, register) in registers {
            store.merge(&key, &register);
        }
    }
    for (i, record) in recovered.records.iter().enumerate() {
        let seq = first_seq + i as u64;
        let (key, register): (Bytes, R::Register) =
            decode_exact(record).map_err(|e| format!("record {seq} does not decode: {e}"))?;
        store.merge(&key, &register);
    }
    let log = RecordLog {
        last_seq: recovered.last_seq,
        durable_seq: recovered.last_seq,
        first_seq,
        since_checkpoint: records,
    };
    Ok((store, log))
}

impl<R: ConflictResolver> Leaderless<R> {
    /// Asks for the key's current register to be persisted; returns the
    /// record's sequence number. Checkpoints when enough records piled up.
    pub(crate) fn persist(&mut self, key: &Bytes, out: &mut KeyedEffects) -> u64 {
        let register = self.store.get(key).expect("only a held key is persisted");
        out.push(KeyedEffect::Persist { record: encode_record(key, register) });
        self.log.last_seq += 1;
        self.log.since_checkpoint += 1;
        debug_assert!(self.log.durable_seq < self.log.last_seq, "a new record cannot be durable yet");
        let every = self.config.checkpoint_every_records;
        if every > 0 && self.log.since_checkpoint >= every {
            // The checkpoint holds the store as of the record just asked
            // for, so it covers every record up to `last_seq`.
            out.push(KeyedEffect::Checkpoint { state: encode_checkpoint(&self.store) });
            self.log.since_checkpoint = 0;
            self.log.first_seq = self.log.last_seq + 1;
            self.stats.checkpoints += 1;
        }
        self.log.last_seq
    }
}
