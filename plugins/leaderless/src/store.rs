//! The keys this node replicates: one register per key, with a cached
//! digest for anti-entropy.
//!
//! A key is only ever inserted by a merge or a write that changed the
//! default ("never written") register, so the store holds no empty
//! entries, and two replicas that hold the same versions hold the same
//! map, byte for byte.

use std::collections::BTreeMap;

use bytes::Bytes;
use replab_api::ConflictResolver;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::hash::Fnv1a64;

#[derive(Clone, Debug)]
pub struct Replica<Reg> {
    pub register: Reg,
    /// [`register_digest`] of the key and the register's encoding, kept
    /// up to date on every change so a digest round does not re-encode
    /// every register.
    pub digest: u64,
}

pub struct Store<R: ConflictResolver> {
    keys: BTreeMap<Bytes, Replica<R::Register>>,
}

impl<R: ConflictResolver> Default for Store<R> {
    fn default() -> Store<R> {
        Store { keys: BTreeMap::new() }
    }
}

impl<R: ConflictResolver> Store<R> {
    pub fn get(&self, key: &[u8]) -> Option<&R::Register> {
        self.keys.get(key).map(|r| &r.register)
    }

    /// The key's register, or the default one for a key never written.
    pub fn register(&self, key: &[u8]) -> R::Register {
        self.get(key).cloned().unwrap_or_default()
    }

    /// Replaces the key's register (a coordinator's own write, or a bug).
    pub fn replace(&mut self, key: Bytes, register: R::Register) {
        let digest = register_digest(&key, &encode_register(&register));
        self.keys.insert(key, Replica { register, digest });
    }

    /// Merges `other` into the key's register; true if it changed.
    pub fn merge(&mut self, key: &Bytes, other: &R::Register) -> bool {
        match self.keys.get_mut(key) {
            Some(replica) => {
                if !R::merge(&mut replica.register, other) {
                    return false;
                }
                replica.digest = register_digest(key, &encode_register(&replica.register));
                true
            }
            None => {
                let mut register = R::Register::default();
                if !R::merge(&mut register, other) {
                    return false;
                }
                self.replace(key.clone(), register);
                true
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &Replica<R::Register>)> {
        self.keys.iter()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// A register's canonical encoding: the resolvers' registers are built of
/// ordered maps, so equal registers give equal bytes.
pub fn encode_register<Reg: Serialize>(register: &Reg) -> Bytes {
    Bytes::from(postcard::to_allocvec(register).expect("registers serialize"))
}

/// Decodes a register from untrusted bytes, refusing trailing garbage.
pub fn decode_register<Reg: DeserializeOwned>(bytes: &[u8]) -> Result<Reg, String> {
    match postcard::take_from_bytes::<Reg>(bytes) {
        Ok((register, [])) => Ok(register),
        Ok((_, rest)) => Err(format!("{} trailing bytes after a register", rest.len())),
        Err(e) => Err(format!("not a register: {e}")),
    }
}

/// One key's contribution to its anti-entropy bucket. The key's length is
/// hashed first so that (key, register) pairs cannot alias by moving bytes
/// across the boundary.
pub fn register_digest(key: &[u8], register: &[u8]) -> u64 {
    Fnv1a64::new().write_u64(key.len() as u64).write(key).write(register).finish_mixed()
}
