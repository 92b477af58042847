//! The operator's way out of a log that refuses to open.
//!
//! `Wal::open` refuses damage it cannot prove to be a torn write, because
//! cutting there could drop acknowledged records without anyone noticing.
//! Repair is the explicit, logged alternative: [`inspect`] finds the first
//! damage without changing anything and says how far the log reached
//! before it (the last record that still verifies); the caller records
//! that durably where its replication policy will see it; then [`repair`]
//! cuts the log at the damage. A replica repaired this way has lost
//! records and must not act as if it still had them: for Raft it must not
//! vote for a candidate less up to date than the log it had, and it catches
//! up from its peers (docs/WAL.md, "Repair").

use std::fs;
use std::path::{Path, PathBuf};

use super::error::{WalError, io_err};
use super::record::Record;
use super::segment::Segment;
use super::{WalOptions, list_segments};

/// The first damage in a log that `Wal::open` would refuse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DamageFound {
    pub path: PathBuf,
    pub offset: u64,
    /// The first record that is not intact (or is missing): repair removes
    /// it and every later record.
    pub index: u64,
    pub reason: String,
    /// The valid record with the highest index at or after the damage,
    /// anywhere in the log: before the damage, the log reached at least
    /// this far.
    pub last_valid: Option<Record>,
}

impl DamageFound {
    /// How many records repair removes (at least the damaged one).
    pub fn records_removed(&self) -> u64 {
        self.last_valid.as_ref().map_or(1, |r| r.index + 1 - self.index)
    }
}

impl std::fmt::Display for DamageFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte offset {}, record {}: {}", self.path.display(), self.offset, self.index, self.reason)?;
        match &self.last_valid {
            Some(last) => write!(f, "; the log reached at least record {}", last.index),
            None => write!(f, "; no valid record follows"),
        }
    }
}

/// Finds the first damage that `Wal::open` refuses, changing nothing.
/// `None` means the log opens as it is (a torn tail, if any, is cut by
/// `open` itself).
pub fn inspect(dir: &Path, opts: &WalOptions) -> Result<Option<DamageFound>, WalError> {
    opts.validate()?;
    let names = list_segments(dir)?;
    let count = names.len();
    let mut found: Option<DamageFound> = None;
    let mut expected_first: Option<u64> = None;
    for (position, (first_index, path)) in names.into_iter().enumerate() {
        let is_last = position + 1 == count;
        if found.is_none()
            && let Some(expected) = expected_first
            && expected != first_index
        {
            found = Some(DamageFound {
                path: path.clone(),
                offset: 0,
                index: expected,
                reason: format!("gap in the log: the previous segment ends before index {expected}"),
                last_valid: None,
            });
        }
        let (seg, damage) = Segment::scan(path, first_index, opts.max_record_bytes)?;
        expected_first = Some(seg.next_index());
        // Every valid record at or after the first damage raises how far
        // the log is known to have reached.
        let mut last_valid = match seg.last_index() {
            Some(last) if found.is_some() => Some(seg.read(last, opts.max_record_bytes)?),
            _ => None,
        };
        if let Some(damage) = damage {
            if let Some(survivors) = &damage.survivors {
                last_valid = Some(survivors.last.clone());
            }
            let refused = !is_last || !damage.is_torn_write();
            if found.is_none() && refused {
                let reason = if damage.is_torn_write() {
                    format!("{} (in a sealed segment)", damage.reason)
                } else {
                    format!("{}; {}", damage.reason, damage.not_torn_because())
                };
                found = Some(DamageFound {
                    path: seg.path.clone(),
                    offset: damage.offset,
                    index: damage.index,
                    reason,
                    last_valid: None,
                });
            }
        }
        if let (Some(found), Some(record)) = (found.as_mut(), last_valid)
            && found.last_valid.as_ref().is_none_or(|r| r.index < record.index)
            && record.index >= found.index
        {
            found.last_valid = Some(record);
        }
    }
    Ok(found)
}

/// Cuts the log at the damage `inspect` found: removes record
/// `found.index` and everything after it, durably. Refuses if the log no
/// longer shows that damage (inspect again).
pub fn repair(dir: &Path, opts: &WalOptions, found: &DamageFound) -> Result<(), WalError> {
    let now = inspect(dir, opts)?;
    if now.as_ref().map(|d| (&d.path, d.offset, d.index)) != Some((&found.path, found.offset, found.index)) {
        return Err(WalError::BadOptions(format!(
            "the log in {} changed since it was inspected; inspect it again before repairing",
            dir.display()
        )));
    }
    let dir_file = fs::File::open(dir).map_err(|e| io_err("open directory", dir, e))?;
    let sync_dir = || dir_file.sync_all().map_err(|e| WalError::SyncFailed { path: dir.to_path_buf(), source: e });
    // Newest first, so a crash midway leaves a contiguous, shorter log
    // whose damage is still there to find.
    for (first_index, path) in list_segments(dir)?.into_iter().rev() {
        if path == found.path {
            if found.offset == 0 {
                fs::remove_file(&path).map_err(|e| io_err("remove damaged segment", &path, e))?;
                sync_dir()?;
                if first_index == found.index {
                    Segment::create(dir, first_index)?;
                }
            } else {
                let (mut seg, _) = Segment::scan(path, first_index, opts.max_record_bytes)?;
                seg.set_len(found.offset)?;
            }
            break;
        }
        fs::remove_file(&path).map_err(|e| io_err("remove segment after the damage", &path, e))?;
        sync_dir()?;
    }
    sync_dir()
}
