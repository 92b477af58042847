//! The small files beside the log: hard state, generation, record of lost
//! state, snapshot. Each is replaced crash-atomically (`atomic_file`:
//! temp file, fdatasync, rename, directory fsync), and each is written in
//! order with the log's other writes, so none of them can claim more than
//! the log holds.

use std::fs::File;
use std::path::Path;

use super::error::io_err;
use super::{Wal, WalError, atomic_file};

impl Wal {
    /// The hard state stored with [`Wal::save_hard_state`], if any.
    pub fn hard_state(&self) -> Option<&[u8]> {
        self.hard_state.as_deref()
    }

    /// Replaces the hard state crash-atomically; durable on return.
    pub fn save_hard_state(&mut self, payload: &[u8]) -> Result<(), WalError> {
        self.store_atomic(atomic_file::HARD_STATE, payload)?;
        self.hard_state = Some(payload.to_vec());
        Ok(())
    }

    /// A generation clock for this directory's owner: larger than every
    /// value it returned before, even if the wall clock (`now_us`) went
    /// back, and durable before it is returned.
    pub fn next_generation(&mut self, now_us: u64) -> Result<u64, WalError> {
        self.check_usable()?;
        let stored = match atomic_file::GENERATION.load(&self.dir)? {
            Some(bytes) => {
                let bytes: [u8; 8] = bytes.as_slice().try_into().map_err(|_| WalError::Corrupt {
                    path: self.dir.join(atomic_file::GENERATION.name),
                    offset: 20,
                    reason: format!("a generation is 8 bytes, found {}", bytes.len()),
                })?;
                Some(u64::from_le_bytes(bytes))
            }
            None => None,
        };
        let next = stored.map_or(now_us, |g| g.saturating_add(1).max(now_us));
        self.store_atomic(atomic_file::GENERATION, &next.to_le_bytes())?;
        Ok(next)
    }

    /// The record of lost state stored with [`Wal::save_memory`], if any.
    pub fn load_memory(&self) -> Result<Option<Vec<u8>>, WalError> {
        self.check_usable()?;
        atomic_file::MEMORY.load(&self.dir)
    }

    /// Replaces the record of lost state crash-atomically; durable on
    /// return. Written in order with the log's other writes, so a record
    /// saying "caught up" never lands before the entries that caught up.
    pub fn save_memory(&mut self, payload: &[u8]) -> Result<(), WalError> {
        self.store_atomic(atomic_file::MEMORY, payload)
    }

    /// Replaces the stored snapshot crash-atomically; durable on return.
    pub fn save_snapshot(&mut self, payload: &[u8]) -> Result<(), WalError> {
        self.store_atomic(atomic_file::SNAPSHOT, payload)
    }

    fn store_atomic(&mut self, file: atomic_file::AtomicFile, payload: &[u8]) -> Result<(), WalError> {
        self.check_usable()?;
        file.store(&self.dir, &self.dir_file, payload).inspect_err(|e| {
            if e.is_fatal() {
                self.poisoned = Some(e.to_string());
            }
        })?;
        // The file's fdatasync and the directory's fsync.
        self.stats.fdatasyncs += 2;
        Ok(())
    }

    /// Reads the stored snapshot, if any (verifying its checksum).
    pub fn load_snapshot(&self) -> Result<Option<Vec<u8>>, WalError> {
        self.check_usable()?;
        atomic_file::SNAPSHOT.load(&self.dir)
    }
}

/// Stores the record of lost state in `dir` without opening the log (the
/// log may refuse to open until it is repaired); durable on return.
pub fn store_memory_in(dir: &Path, payload: &[u8]) -> Result<(), WalError> {
    let dir_file = File::open(dir).map_err(|e| io_err("open directory", dir, e))?;
    atomic_file::MEMORY.store(dir, &dir_file, payload)
}

/// Reads the record of lost state, and the hard state, without opening
/// the log.
pub fn load_memory_in(dir: &Path) -> Result<Option<Vec<u8>>, WalError> {
    atomic_file::MEMORY.load(dir)
}

pub fn load_hard_state_in(dir: &Path) -> Result<Option<Vec<u8>>, WalError> {
    atomic_file::HARD_STATE.load(dir)
}
