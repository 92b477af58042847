//! A state machine that remembers which writes it holds.
//!
//! The digest machine proves that replicas applied the same history, but
//! not *which* writes that history kept. Under primary-backup `async`, a
//! failover can discard writes a client was told were applied; what
//! counts is whether the final state still holds them. The ledger keeps
//! the (index, term) of every command entry in its state, carried through
//! snapshots, so a test can ask at the end of a run which acknowledged
//! proposals the surviving state lacks: the harness's measure of "an
//! acknowledged write was lost".

use std::collections::BTreeSet;

use bytes::Bytes;
use replab_api::{Entry, EntryKind, LogPosition, Snapshot};

use crate::state_machine::{DigestStateMachine, StateMachine};

/// The digest machine plus the positions of the commands it holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LedgerStateMachine {
    pub digest: DigestStateMachine,
    pub commands: BTreeSet<LogPosition>,
}

/// The digest machine's snapshot length; the positions follow it.
const DIGEST_BYTES: usize = 24;

impl LedgerStateMachine {
    /// Whether the state holds the command written at `position`.
    pub fn holds(&self, position: LogPosition) -> bool {
        self.commands.contains(&position)
    }
}

impl StateMachine for LedgerStateMachine {
    fn apply(&mut self, entry: &Entry) -> Bytes {
        if entry.kind == EntryKind::Command {
            self.commands.insert(entry.position());
        }
        self.digest.apply(entry)
    }

    fn snapshot(&self) -> Bytes {
        let mut out = Vec::with_capacity(DIGEST_BYTES + 16 * self.commands.len());
        out.extend_from_slice(&self.digest.snapshot());
        for p in &self.commands {
            out.extend_from_slice(&p.index.to_le_bytes());
            out.extend_from_slice(&p.term.to_le_bytes());
        }
        Bytes::from(out)
    }

    fn restore(&mut self, snapshot: &Snapshot) {
        let data = &snapshot.data;
        assert!(data.len() >= DIGEST_BYTES && (data.len() - DIGEST_BYTES).is_multiple_of(16), "not a ledger snapshot");
        let digest = Snapshot { meta: snapshot.meta, data: data.slice(..DIGEST_BYTES) };
        self.digest.restore(&digest);
        let word = |at: usize| u64::from_le_bytes(data[at..at + 8].try_into().expect("8 bytes"));
        self.commands = (DIGEST_BYTES..data.len())
            .step_by(16)
            .map(|at| LogPosition { index: word(at), term: word(at + 8) })
            .collect();
    }

    fn fingerprint(&self) -> Option<u64> {
        self.digest.fingerprint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use replab_api::SnapshotMeta;

    fn command(index: u64, term: u64) -> Entry {
        Entry { index, term, kind: EntryKind::Command, data: Bytes::from(format!("c{index}")) }
    }

    #[test]
    fn a_snapshot_carries_the_positions_and_the_digest() {
        let mut a = LedgerStateMachine::default();
        a.apply(&command(1, 1));
        a.apply(&Entry { index: 2, term: 2, kind: EntryKind::Noop, data: Bytes::new() });
        a.apply(&command(3, 2));
        let meta = SnapshotMeta { last_included: LogPosition { index: 3, term: 2 } };
        let snapshot = Snapshot { meta, data: a.snapshot() };
        let mut b = LedgerStateMachine::default();
        b.apply(&command(1, 9));
        b.restore(&snapshot);
        assert_eq!(a, b);
        assert!(b.holds(LogPosition { index: 3, term: 2 }));
        assert!(!b.holds(LogPosition { index: 2, term: 2 }), "no-ops are not writes");
        assert!(!b.holds(LogPosition { index: 1, term: 9 }), "the restored state replaces the old one");
    }
}
