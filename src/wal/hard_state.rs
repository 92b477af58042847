//! The hard state file: a small value replaced crash-atomically.
//!
//! Raft's term and vote change rarely (once per election) but must never be
//! half-written: a torn vote could let a node vote twice in one term. We
//! keep them out of the log (where suffix truncation would have to step
//! around them) and store them with the classic recipe: write a temporary
//! file, fdatasync it, rename it over the old one, fsync the directory.
//! After a crash the file holds either the old value or the new one.
//!
//! ```text
//! offset  size  field
//! 0       8     magic "RPLBHST1"
//! 8       4     payload length (u32 LE)
//! 12      4     CRC32 of the payload (u32 LE)
//! 16      len   payload (opaque to the log)
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::error::{WalError, io_err};

const MAGIC: &[u8; 8] = b"RPLBHST1";
pub const FILE_NAME: &str = "hardstate";
const TMP_NAME: &str = "hardstate.tmp";
const MAX_PAYLOAD_BYTES: usize = 64 * 1024;

pub fn load(dir: &Path) -> Result<Option<Vec<u8>>, WalError> {
    // A leftover temporary file is an interrupted store: the rename never
    // happened, so the old value is the current one.
    let tmp = dir.join(TMP_NAME);
    if tmp.exists() {
        fs::remove_file(&tmp).map_err(|e| io_err("remove stale", &tmp, e))?;
    }
    let path = dir.join(FILE_NAME);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read", &path, e)),
    };
    decode(&path, &bytes).map(Some)
}

fn decode(path: &Path, bytes: &[u8]) -> Result<Vec<u8>, WalError> {
    let corrupt = |offset: u64, reason: &str| WalError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason: reason.to_string(),
    };
    if bytes.len() < 16 || &bytes[..8] != MAGIC {
        return Err(corrupt(0, "bad hard state header"));
    }
    let len = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes"));
    if bytes.len() != 16 + len {
        return Err(corrupt(8, "hard state length does not match the file size"));
    }
    let payload = &bytes[16..];
    if crc32fast::hash(payload) != crc {
        return Err(corrupt(16, "hard state checksum mismatch"));
    }
    Ok(payload.to_vec())
}

pub fn store(dir: &Path, dir_file: &File, payload: &[u8]) -> Result<(), WalError> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(WalError::RecordTooLarge {
            size_bytes: payload.len(),
            max_bytes: MAX_PAYLOAD_BYTES as u32,
        });
    }
    let tmp: PathBuf = dir.join(TMP_NAME);
    let mut buf = Vec::with_capacity(16 + payload.len());
    buf.extend_from_slice(MAGIC);
    buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    buf.extend_from_slice(payload);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| io_err("create", &tmp, e))?;
    file.write_all(&buf).map_err(|e| io_err("write", &tmp, e))?;
    file.sync_data().map_err(|e| WalError::SyncFailed {
        path: tmp.clone(),
        source: e,
    })?;
    let path = dir.join(FILE_NAME);
    fs::rename(&tmp, &path).map_err(|e| io_err("rename", &path, e))?;
    dir_file.sync_all().map_err(|e| WalError::SyncFailed {
        path: dir.to_path_buf(),
        source: e,
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_value_loads_back_and_replaces_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let dir_file = File::open(dir.path()).unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        store(dir.path(), &dir_file, b"term=1").unwrap();
        store(dir.path(), &dir_file, b"term=2").unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(b"term=2".to_vec()));
    }

    #[test]
    fn interrupted_store_keeps_the_old_value() {
        let dir = tempfile::tempdir().unwrap();
        let dir_file = File::open(dir.path()).unwrap();
        store(dir.path(), &dir_file, b"old").unwrap();
        fs::write(dir.path().join(TMP_NAME), b"half-written new value").unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(b"old".to_vec()));
        assert!(!dir.path().join(TMP_NAME).exists());
    }

    #[test]
    fn flipped_bit_is_reported_with_the_file_name() {
        let dir = tempfile::tempdir().unwrap();
        let dir_file = File::open(dir.path()).unwrap();
        store(dir.path(), &dir_file, b"vote=3").unwrap();
        let path = dir.path().join(FILE_NAME);
        let mut bytes = fs::read(&path).unwrap();
        bytes[17] ^= 0x04;
        fs::write(&path, bytes).unwrap();
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("hardstate") && err.contains("checksum"), "{err}");
    }
}
