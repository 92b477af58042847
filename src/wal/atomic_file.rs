//! Small files replaced crash-atomically: the hard state, the snapshot and
//! the node's generation.
//!
//! Raft's term and vote change rarely (once per election) but must never be
//! half-written: a torn vote could let a node vote twice in one term. A
//! snapshot must likewise be whole or absent. Both are stored with the
//! classic recipe: write a temporary file, fdatasync it, rename it over the
//! old one, fsync the directory. After a crash the file holds either the
//! old value or the new one.
//!
//! We keep them out of the log: suffix truncation would have to step around
//! them, and the snapshot replaces, rather than extends, what came before.
//!
//! ```text
//! offset  size  field
//! 0       8     magic ("RPLBHST1" hard state, "RPLBSNP1" snapshot,
//!               "RPLBGEN1" generation, "RPLBMEM1" memory)
//! 8       8     payload length (u64 LE)
//! 16      4     CRC32 of the payload (u32 LE)
//! 20      len   payload (opaque to the log)
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use super::error::{WalError, io_err};

const HEADER_BYTES: usize = 20;

/// One kind of atomically replaced file.
#[derive(Clone, Copy, Debug)]
pub struct AtomicFile {
    pub name: &'static str,
    tmp_name: &'static str,
    magic: &'static [u8; 8],
    max_payload_bytes: u64,
}

pub const HARD_STATE: AtomicFile =
    AtomicFile { name: "hardstate", tmp_name: "hardstate.tmp", magic: b"RPLBHST1", max_payload_bytes: 64 * 1024 };

pub const GENERATION: AtomicFile =
    AtomicFile { name: "generation", tmp_name: "generation.tmp", magic: b"RPLBGEN1", max_payload_bytes: 8 };

/// What the node lost and has not yet caught up with (a repaired log, a
/// wiped directory); absent when nothing was lost.
pub const MEMORY: AtomicFile =
    AtomicFile { name: "memory", tmp_name: "memory.tmp", magic: b"RPLBMEM1", max_payload_bytes: 4 * 1024 };

/// A keyed node's incarnation (`KeyedRecovered::incarnation`, 8 bytes
/// little-endian); absent means 0, a node whose state was never lost.
pub const INCARNATION: AtomicFile =
    AtomicFile { name: "incarnation", tmp_name: "incarnation.tmp", magic: b"RPLBINC1", max_payload_bytes: 8 };

/// Reads the incarnation stored in `dir` (0 if none was).
pub fn load_incarnation_in(dir: &Path) -> Result<u64, WalError> {
    match INCARNATION.load(dir)? {
        None => Ok(0),
        Some(bytes) => {
            let bytes: [u8; 8] = bytes.as_slice().try_into().map_err(|_| WalError::Corrupt {
                path: dir.join(INCARNATION.name),
                offset: HEADER_BYTES as u64,
                reason: format!("an incarnation is 8 bytes, found {}", bytes.len()),
            })?;
            Ok(u64::from_le_bytes(bytes))
        }
    }
}

/// Replaces the incarnation stored in `dir`; durable on return.
pub fn store_incarnation_in(dir: &Path, incarnation: u64) -> Result<(), WalError> {
    let dir_file = File::open(dir).map_err(|e| io_err("open directory", dir, e))?;
    INCARNATION.store(dir, &dir_file, &incarnation.to_le_bytes())
}

pub const SNAPSHOT: AtomicFile =
    AtomicFile { name: "snapshot", tmp_name: "snapshot.tmp", magic: b"RPLBSNP1", max_payload_bytes: 1 << 34 };

impl AtomicFile {
    pub fn load(&self, dir: &Path) -> Result<Option<Vec<u8>>, WalError> {
        // A leftover temporary file is an interrupted store: the rename
        // never happened, so the old value is the current one.
        let tmp = dir.join(self.tmp_name);
        if tmp.exists() {
            fs::remove_file(&tmp).map_err(|e| io_err("remove stale", &tmp, e))?;
        }
        let path = dir.join(self.name);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("read", &path, e)),
        };
        self.decode(&path, bytes).map(Some)
    }

    fn decode(&self, path: &Path, mut bytes: Vec<u8>) -> Result<Vec<u8>, WalError> {
        let corrupt = |offset: u64, reason: &str| WalError::Corrupt {
            path: path.to_path_buf(),
            offset,
            reason: reason.to_string(),
        };
        if bytes.len() < HEADER_BYTES || &bytes[..8] != self.magic {
            return Err(corrupt(0, "bad header"));
        }
        let len = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
        let crc = u32::from_le_bytes(bytes[16..20].try_into().expect("4 bytes"));
        if bytes.len() as u64 != HEADER_BYTES as u64 + len {
            return Err(corrupt(8, "length does not match the file size"));
        }
        if crc32fast::hash(&bytes[HEADER_BYTES..]) != crc {
            return Err(corrupt(HEADER_BYTES as u64, "checksum mismatch"));
        }
        bytes.drain(..HEADER_BYTES);
        Ok(bytes)
    }

    pub fn store(&self, dir: &Path, dir_file: &File, payload: &[u8]) -> Result<(), WalError> {
        if payload.len() as u64 > self.max_payload_bytes {
            return Err(WalError::BadOptions(format!(
                "{} of {} bytes is above its limit of {} bytes",
                self.name,
                payload.len(),
                self.max_payload_bytes
            )));
        }
        let tmp = dir.join(self.tmp_name);
        let mut header = [0u8; HEADER_BYTES];
        header[..8].copy_from_slice(self.magic);
        header[8..16].copy_from_slice(&(payload.len() as u64).to_le_bytes());
        header[16..20].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| io_err("create", &tmp, e))?;
        file.write_all(&header).map_err(|e| io_err("write", &tmp, e))?;
        file.write_all(payload).map_err(|e| io_err("write", &tmp, e))?;
        file.sync_data().map_err(|e| WalError::SyncFailed { path: tmp.clone(), source: e })?;
        let path = dir.join(self.name);
        fs::rename(&tmp, &path).map_err(|e| io_err("rename", &path, e))?;
        dir_file.sync_all().map_err(|e| WalError::SyncFailed { path: dir.to_path_buf(), source: e })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_value_loads_back_and_replaces_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let dir_file = File::open(dir.path()).unwrap();
        assert_eq!(HARD_STATE.load(dir.path()).unwrap(), None);
        HARD_STATE.store(dir.path(), &dir_file, b"term=1").unwrap();
        HARD_STATE.store(dir.path(), &dir_file, b"term=2").unwrap();
        assert_eq!(HARD_STATE.load(dir.path()).unwrap(), Some(b"term=2".to_vec()));
    }

    #[test]
    fn interrupted_store_keeps_the_old_value() {
        let dir = tempfile::tempdir().unwrap();
        let dir_file = File::open(dir.path()).unwrap();
        HARD_STATE.store(dir.path(), &dir_file, b"old").unwrap();
        fs::write(dir.path().join(HARD_STATE.tmp_name), b"half-written new value").unwrap();
        assert_eq!(HARD_STATE.load(dir.path()).unwrap(), Some(b"old".to_vec()));
        assert!(!dir.path().join(HARD_STATE.tmp_name).exists());
    }

    #[test]
    fn snapshot_and_hard_state_live_side_by_side() {
        let dir = tempfile::tempdir().unwrap();
        let dir_file = File::open(dir.path()).unwrap();
        SNAPSHOT.store(dir.path(), &dir_file, &vec![7u8; 100_000]).unwrap();
        HARD_STATE.store(dir.path(), &dir_file, b"hs").unwrap();
        assert_eq!(SNAPSHOT.load(dir.path()).unwrap().unwrap().len(), 100_000);
        assert_eq!(HARD_STATE.load(dir.path()).unwrap(), Some(b"hs".to_vec()));
    }

    #[test]
    fn flipped_bit_is_reported_with_the_file_name() {
        let dir = tempfile::tempdir().unwrap();
        let dir_file = File::open(dir.path()).unwrap();
        HARD_STATE.store(dir.path(), &dir_file, b"vote=3").unwrap();
        let path = dir.path().join(HARD_STATE.name);
        let mut bytes = fs::read(&path).unwrap();
        bytes[21] ^= 0x04;
        fs::write(&path, bytes).unwrap();
        let err = HARD_STATE.load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("hardstate") && err.contains("checksum"), "{err}");
    }
}
