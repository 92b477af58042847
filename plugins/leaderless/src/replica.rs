//! An owner's side: merging registers it is sent (`Store`) and answering
//! reads (`Fetch`).
//!
//! Both answers leave with `after_persist`: a `Stored` promises the
//! register is durable here, and a `Fetched` must not show a version this
//! node could still lose in a crash.

use bytes::Bytes;
use replab_api::{ConflictResolver, KeyedEffects, NodeId, StepError};

use crate::config::Bug;
use crate::leaderless::{Leaderless, show_key};
use crate::message::Message;
use crate::store::{decode_register, encode_register};

impl<R: ConflictResolver> Leaderless<R> {
    pub(crate) fn on_store(
        &mut self,
        from: NodeId,
        key: Bytes,
        register: &[u8],
        ack: Option<u64>,
        out: &mut KeyedEffects,
    ) -> Result<(), StepError> {
        self.require_owner(from, &key)?;
        let register = self.decode_peer_register(from, register)?;
        if self.config.bug == Bug::CorruptReplicaValue {
            self.absorb_corrupted(&key, &register, out);
        } else {
            self.absorb(&key, &register, out);
        }
        if let Some(tag) = ack {
            // Sent even if nothing changed: an earlier, identical `Store`
            // may not be durable yet, and this waits for it too.
            let after_persist = self.config.bug != Bug::AckBeforePersist;
            self.send(from, &Message::Stored { tag }, after_persist, out);
        }
        Ok(())
    }

    pub(crate) fn on_fetch(
        &mut self,
        from: NodeId,
        tag: u64,
        key: Bytes,
        out: &mut KeyedEffects,
    ) -> Result<(), StepError> {
        self.require_owner(from, &key)?;
        let register = encode_register(&self.store.register(&key));
        self.send(from, &Message::Fetched { tag, register }, true, out);
        Ok(())
    }

    /// Merges a register into the store and persists it if it changed.
    pub(crate) fn absorb(&mut self, key: &Bytes, register: &R::Register, out: &mut KeyedEffects) -> bool {
        if !self.store.merge(key, register) {
            return false;
        }
        self.persist(key, out);
        true
    }

    fn require_owner(&self, from: NodeId, key: &Bytes) -> Result<(), StepError> {
        let owners = self.owners(key);
        if self.is_owner(&owners) {
            return Ok(());
        }
        Err(StepError::Rejected(format!(
            "node {from} sent a {:?} request to node {}, which does not replicate it (owners {owners:?})",
            show_key(key),
            self.id
        )))
    }

    /// `Bug::CorruptReplicaValue`: merges, then changes the last byte of
    /// the first value before keeping and persisting the result.
    fn absorb_corrupted(&mut self, key: &Bytes, register: &R::Register, out: &mut KeyedEffects) {
        let mut merged = self.store.register(key);
        if !R::merge(&mut merged, register) {
            return;
        }
        self.store.replace(key.clone(), corrupt::<R>(&merged));
        self.persist(key, out);
    }
}

/// The register with the last byte of its first value changed. Registers
/// are opaque here, so this edits the value's bytes inside the register's
/// encoding (both resolvers store values as plain byte strings) and keeps
/// the register unchanged if the result does not decode.
fn corrupt<R: ConflictResolver>(register: &R::Register) -> R::Register {
    let (values, _) = R::read(register);
    let Some(value) = values.first().filter(|v| !v.is_empty()) else {
        return register.clone();
    };
    let mut bytes = encode_register(register).to_vec();
    let Some(at) = bytes.windows(value.len()).rposition(|w| w == &value[..]) else {
        return register.clone();
    };
    let last = at + value.len() - 1;
    bytes[last] = bytes[last].wrapping_add(1);
    decode_register(&bytes).unwrap_or_else(|_| register.clone())
}
