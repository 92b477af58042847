//! A keyed node's simulated disk: numbered records and checkpoints that
//! stay pending until a simulated fsync covers them, sends held until the
//! writes before them are durable, and a crash that loses what was not
//! synced (or, in some seeds, keeps a prefix of it, as a disk whose cache
//! happened to reach the platter would).
//!
//! Writes are made durable in the order they were issued, so a checkpoint
//! never lands before the records it covers.

use std::collections::VecDeque;

use bytes::Bytes;
use replab_api::{KeyedRecovered, NodeId};

/// What survives a crash: the latest durable checkpoint and the records
/// after it, which is exactly what a restarting node is given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DurableLog {
    pub checkpoint: Option<Bytes>,
    /// The last record the checkpoint covers (0 without one).
    pub checkpoint_covers: u64,
    /// Durable records after the checkpoint, in order, ending at `last_seq`.
    pub records: Vec<Bytes>,
    /// The sequence number of the last durable record.
    pub last_seq: u64,
    /// The node's incarnation, which the engine keeps beside the log (and a
    /// lost disk loses with it): see `KeyedRecovered::incarnation`.
    pub incarnation: u64,
}

impl DurableLog {
    pub fn to_recovered(&self) -> KeyedRecovered {
        KeyedRecovered {
            checkpoint: self.checkpoint.clone(),
            records: self.records.clone(),
            last_seq: self.last_seq,
            incarnation: self.incarnation,
        }
    }

    /// Nothing durable: a first start, or a disk that was lost.
    fn is_blank(&self) -> bool {
        self.checkpoint.is_none() && self.last_seq == 0
    }

    fn apply(&mut self, write: Write) -> Result<(), String> {
        match write {
            Write::Record { seq, record } => {
                if seq != self.last_seq + 1 {
                    return Err(format!("record {seq} written after record {}: a gap", self.last_seq));
                }
                self.records.push(record);
                self.last_seq = seq;
            }
            Write::Checkpoint { covers, state } => {
                if covers > self.last_seq {
                    return Err(format!("a checkpoint covering record {covers} landed after record {}", self.last_seq));
                }
                let first = self.last_seq + 1 - self.records.len() as u64;
                let drop = (covers + 1).saturating_sub(first) as usize;
                self.records.drain(..drop.min(self.records.len()));
                self.checkpoint = Some(state);
                self.checkpoint_covers = covers;
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug)]
enum Write {
    Record { seq: u64, record: Bytes },
    Checkpoint { covers: u64, state: Bytes },
}

#[derive(Debug, Default)]
pub struct KeyedDisk {
    pub durable: DurableLog,
    /// Writes issued and not yet durable, by write number.
    pending: VecDeque<(u64, Write)>,
    /// The last record the running incarnation asked for.
    last_seq: u64,
    /// Writes issued (records and checkpoints), and how many are durable.
    writes: u64,
    synced: u64,
    pub(crate) sync_in_flight: Option<u64>,
    /// `(write number needed, to, bytes)`.
    held: VecDeque<(u64, NodeId, Bytes)>,
    /// No sync starts while stalled (a hung disk).
    pub stalled: bool,
}

impl KeyedDisk {
    /// A node boots on what is durable. As the engine does, a node that
    /// finds nothing on a start other than its cluster's first gets a new
    /// incarnation, `fresh` (never one it had: the world's boot count),
    /// kept durably: it cannot tell a wiped disk from a first start.
    pub(crate) fn boot(&mut self, first_boot: bool, fresh: u64) {
        debug_assert!(self.pending.is_empty() && self.held.is_empty());
        if !first_boot && self.durable.is_blank() {
            self.durable.incarnation = fresh;
        }
        self.last_seq = self.durable.last_seq;
    }

    /// Queues a record; returns its sequence number.
    pub(crate) fn persist(&mut self, record: Bytes) -> u64 {
        self.last_seq += 1;
        self.writes += 1;
        self.pending.push_back((self.writes, Write::Record { seq: self.last_seq, record }));
        self.last_seq
    }

    /// Queues a checkpoint covering every record asked for so far.
    pub(crate) fn checkpoint(&mut self, state: Bytes) {
        self.writes += 1;
        self.pending.push_back((self.writes, Write::Checkpoint { covers: self.last_seq, state }));
    }

    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    pub fn has_unsynced(&self) -> bool {
        self.writes > self.synced
    }

    pub fn pending_writes(&self) -> usize {
        self.pending.len()
    }

    pub fn held_sends(&self) -> usize {
        self.held.len()
    }

    /// Holds a send until every write issued so far is durable.
    pub(crate) fn hold(&mut self, to: NodeId, bytes: Bytes) {
        self.held.push_back((self.writes, to, bytes));
    }

    /// The write number a sync started now would cover, if one should start.
    pub(crate) fn sync_to_start(&self) -> Option<u64> {
        if self.stalled || self.sync_in_flight.is_some() || !self.has_unsynced() {
            return None;
        }
        Some(self.writes)
    }

    /// Makes the writes up to `up_to` durable; returns whether a record
    /// became durable, and the sends that may now leave.
    pub(crate) fn complete_sync(&mut self, up_to: u64) -> Result<(bool, Vec<(NodeId, Bytes)>), String> {
        let before = self.durable.last_seq;
        while self.pending.front().is_some_and(|(n, _)| *n <= up_to) {
            let (_, write) = self.pending.pop_front().expect("checked");
            self.durable.apply(write)?;
        }
        self.synced = self.synced.max(up_to);
        self.sync_in_flight = None;
        let mut released = Vec::new();
        while self.held.front().is_some_and(|(needs, _, _)| *needs <= self.synced) {
            let (_, to, bytes) = self.held.pop_front().expect("checked");
            released.push((to, bytes));
        }
        Ok((self.durable.last_seq > before, released))
    }

    /// A crash: held sends and unsynced writes are lost, except the first
    /// `keep` pending writes, which made it to stable storage anyway.
    pub(crate) fn crash(&mut self, keep: usize) -> Result<(), String> {
        let kept: Vec<(u64, Write)> = self.pending.drain(..keep.min(self.pending.len())).collect();
        for (_, write) in kept {
            self.durable.apply(write)?;
        }
        self.pending.clear();
        self.held.clear();
        self.sync_in_flight = None;
        self.synced = self.writes;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    #[test]
    fn records_and_checkpoints_become_durable_in_order_and_only_when_synced() {
        let mut disk = KeyedDisk::default();
        disk.boot(true, 1);
        assert_eq!(disk.persist(b("r1")), 1);
        disk.hold(2, b("ack"));
        let up_to = disk.sync_to_start().unwrap();
        disk.sync_in_flight = Some(up_to);
        disk.persist(b("r2"));
        disk.checkpoint(b("cp"));
        disk.persist(b("r3"));
        let (new, released) = disk.complete_sync(up_to).unwrap();
        assert!(new);
        assert_eq!(released, vec![(2, b("ack"))]);
        assert_eq!(disk.durable.to_recovered().records, vec![b("r1")]);
        let up_to = disk.sync_to_start().unwrap();
        disk.complete_sync(up_to).unwrap();
        let recovered = disk.durable.to_recovered();
        assert_eq!(recovered.checkpoint, Some(b("cp")));
        assert_eq!(recovered.records, vec![b("r3")], "the checkpoint covers r1 and r2");
        assert_eq!(recovered.last_seq, 3);
    }

    #[test]
    fn a_crash_loses_unsynced_writes_or_keeps_a_prefix() {
        let mut disk = KeyedDisk::default();
        disk.boot(true, 1);
        disk.persist(b("r1"));
        disk.persist(b("r2"));
        disk.hold(3, b("x"));
        disk.crash(1).unwrap();
        assert_eq!(disk.held_sends(), 0);
        assert_eq!(disk.durable.last_seq, 1);
        disk.boot(false, 3);
        assert_eq!(disk.persist(b("r2'")), 2);
        disk.crash(0).unwrap();
        assert_eq!(disk.durable.records, vec![b("r1")]);
        assert_eq!(disk.durable.incarnation, 0, "state was found: the incarnation stays");
    }

    #[test]
    fn a_node_that_finds_its_disk_empty_after_its_first_start_takes_a_new_incarnation() {
        let mut disk = KeyedDisk::default();
        disk.boot(true, 1);
        assert_eq!(disk.durable.to_recovered().incarnation, 0, "a new cluster's node");
        disk.crash(0).unwrap();
        disk.boot(false, 3);
        assert_eq!(disk.durable.incarnation, 3, "nothing was durable: maybe a wiped disk");
        disk.persist(b("r1"));
        let up_to = disk.sync_to_start().unwrap();
        disk.complete_sync(up_to).unwrap();
        disk.crash(0).unwrap();
        disk.boot(false, 5);
        assert_eq!(disk.durable.to_recovered().incarnation, 3, "kept while the state is");
        let mut replaced = KeyedDisk::default();
        replaced.boot(false, 7);
        assert_eq!(replaced.durable.to_recovered().incarnation, 7, "a lost disk: a new one");
    }
}
