//! The replicated state machine as the harness sees it: a small trait the
//! engine's key-value store can implement later, and a digest machine that
//! the tests use to prove every node applied the same history.

use bytes::Bytes;
use replab_api::{Entry, LogIndex, Snapshot};

pub trait StateMachine {
    /// Applies one committed entry; returns the output a client would get.
    fn apply(&mut self, entry: &Entry) -> Bytes;
    /// Serializes the whole state (for `TakeSnapshot`).
    fn snapshot(&self) -> Bytes;
    /// Replaces the state with a snapshot's.
    fn restore(&mut self, snapshot: &Snapshot);
    /// A digest of the state, if the machine can give one cheaply. Two
    /// nodes that applied the same index must report the same digest.
    fn fingerprint(&self) -> Option<u64> {
        None
    }
}

/// FNV-1a, enough to tell histories apart in tests.
pub fn fnv1a(seed: u64, bytes: &[u8]) -> u64 {
    let mut hash = seed ^ 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// A state machine whose state is a running hash of every applied entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DigestStateMachine {
    pub applied: LogIndex,
    pub digest: u64,
    /// Command entries applied (no-ops excluded).
    pub commands: u64,
}

impl StateMachine for DigestStateMachine {
    fn apply(&mut self, entry: &Entry) -> Bytes {
        self.applied = entry.index;
        let mut header = [0u8; 17];
        header[..8].copy_from_slice(&entry.index.to_le_bytes());
        header[8..16].copy_from_slice(&entry.term.to_le_bytes());
        header[16] = entry.kind as u8;
        self.digest = fnv1a(fnv1a(self.digest, &header), &entry.data);
        if entry.kind == replab_api::EntryKind::Command {
            self.commands += 1;
        }
        Bytes::copy_from_slice(&self.digest.to_le_bytes())
    }

    fn snapshot(&self) -> Bytes {
        let mut out = Vec::with_capacity(24);
        out.extend_from_slice(&self.applied.to_le_bytes());
        out.extend_from_slice(&self.digest.to_le_bytes());
        out.extend_from_slice(&self.commands.to_le_bytes());
        Bytes::from(out)
    }

    fn restore(&mut self, snapshot: &Snapshot) {
        let data = &snapshot.data;
        assert_eq!(data.len(), 24, "not a digest state machine snapshot");
        let word = |i: usize| u64::from_le_bytes(data[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        self.applied = word(0);
        self.digest = word(1);
        self.commands = word(2);
        assert_eq!(self.applied, snapshot.meta.last_included.index, "snapshot data and metadata disagree");
    }

    fn fingerprint(&self) -> Option<u64> {
        Some(self.digest)
    }
}
