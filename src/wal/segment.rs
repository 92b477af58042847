//! One segment file of the log: a header, then records back to back.
//!
//! ```text
//! offset  size  field
//! 0       8     magic "RPLBWAL2" (format 2: records store their index)
//! 8       8     index of the first record (u64 LE); also the file name
//! 16      ...   records (see record.rs)
//! ```
//!
//! Segments are named by their first index, zero-padded so that a plain
//! directory listing sorts them: `00000000000000000001.wal`.
//!
//! The open segment may run past its last record with zeros written ahead
//! of time (`wal.preallocate_bytes`). An append that lands on blocks the
//! file already owns changes no metadata, so its fdatasync flushes the
//! data alone and skips the journal commit that an append growing the file
//! needs: on this machine's ext4 one such sync took 120 µs against 156 µs,
//! and 251 µs against 374 µs with three members syncing at once
//! (docs/PERFORMANCE.md). Zeros are written, not `fallocate`d: ext4 marks
//! fallocated blocks unwritten, and the first write to them is a metadata
//! change again. Recovery reads a tail of zeros as that space, not as
//! damage.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::damage::{SearchFrom, Survivors, find_survivors};
use super::error::{WalError, io_err};
use super::record::{HEADER_SIZE_BYTES, Header, Record};

pub const MAGIC: &[u8; 8] = b"RPLBWAL2";
/// The magic of format 1, whose records did not store their index. It is
/// recognised only to say so.
const MAGIC_V1: &[u8; 8] = b"RPLBWAL1";
pub const SEGMENT_HEADER_BYTES: u64 = 16;
const SUFFIX: &str = ".wal";

pub fn file_name(first_index: u64) -> String {
    format!("{first_index:020}{SUFFIX}")
}

/// The first index encoded in a segment's file name, if it is one.
pub fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[derive(Debug)]
pub struct Segment {
    pub path: PathBuf,
    pub file: File,
    pub first_index: u64,
    /// Byte offset of each record; record `first_index + i` starts at
    /// `offsets[i]`. A segment stays below 4 GiB, so u32 halves the memory.
    pub offsets: Vec<u32>,
    /// End of the last valid record: where the next append goes.
    pub len_bytes: u64,
    /// Bytes known to be on stable storage.
    pub synced_len_bytes: u64,
    /// The file's length: `len_bytes` plus the zeros written ahead.
    /// Every byte in `len_bytes..prepared_len_bytes` is zero.
    pub prepared_len_bytes: u64,
}

/// Where a scan stopped before the end of the file, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Where the damage starts: 0 for the segment header.
    pub offset: u64,
    /// The index of the first record that is not intact.
    pub index: u64,
    pub reason: String,
    /// Bytes from the damage to the end of the file.
    pub dropped_bytes: u64,
    /// Records in those bytes: the damaged one and every valid one found
    /// after it, or (with none valid) the frames the length fields suggest.
    pub dropped_records: u64,
    /// Valid records after the damage. `None` means a torn tail.
    pub survivors: Option<Survivors>,
    /// Every byte from the damage to the first survivor is zero.
    pub zero_hole: bool,
}

impl Damage {
    /// True if the damage can only be a crash during the segment's creation
    /// or during an append that nobody was told was durable.
    pub fn is_torn_write(&self) -> bool {
        self.survivors.is_none() && (self.offset > 0 || self.dropped_bytes <= SEGMENT_HEADER_BYTES)
    }

    /// Why this damage is not a torn write, for the refusal.
    pub fn not_torn_because(&self) -> String {
        let mut why = String::new();
        if self.offset == 0 && self.dropped_bytes > SEGMENT_HEADER_BYTES {
            why.push_str(
                "the segment header was made durable when the segment was created, before any record was \
                 written, so a damaged header on a segment holding records is not a torn write",
            );
        }
        if let Some(survivors) = &self.survivors {
            if !why.is_empty() {
                why.push_str("; ");
            }
            why.push_str(&survivors.describe());
            why.push_str(", so it is not a torn tail");
        }
        if self.zero_hole {
            why.push_str(
                ". The damaged bytes are all zero up to that record: a lost sector looks like this, and so does a \
                 power loss in the middle of an fdatasync that wrote over zeros written ahead \
                 (wal.preallocate_bytes), whose records were never reported durable. The log cannot tell the two \
                 apart",
            );
        }
        why
    }
}

impl Segment {
    /// Creates an empty segment and makes its header durable. The caller
    /// fsyncs the directory so the new name survives a crash too.
    pub fn create(dir: &Path, first_index: u64) -> Result<Segment, WalError> {
        let path = dir.join(file_name(first_index));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| io_err("create segment", &path, e))?;
        let mut header = [0u8; SEGMENT_HEADER_BYTES as usize];
        header[..8].copy_from_slice(MAGIC);
        header[8..].copy_from_slice(&first_index.to_le_bytes());
        file.write_all_at(&header, 0).map_err(|e| io_err("write segment header", &path, e))?;
        file.sync_data().map_err(|e| WalError::SyncFailed { path: path.clone(), source: e })?;
        Ok(Segment {
            path,
            file,
            first_index,
            offsets: Vec::new(),
            len_bytes: SEGMENT_HEADER_BYTES,
            synced_len_bytes: SEGMENT_HEADER_BYTES,
            prepared_len_bytes: SEGMENT_HEADER_BYTES,
        })
    }

    /// Opens a segment and verifies every record. Returns the valid part
    /// and, if the file holds anything past it, what was wrong there. The
    /// caller decides whether damage is a torn tail or fatal corruption.
    pub fn scan(path: PathBuf, first_index: u64, max_record_bytes: u32) -> Result<(Segment, Option<Damage>), WalError> {
        let file =
            OpenOptions::new().read(true).write(true).open(&path).map_err(|e| io_err("open segment", &path, e))?;
        let file_len = file.metadata().map_err(|e| io_err("stat segment", &path, e))?.len();
        let mut segment = Segment {
            path,
            file,
            first_index,
            offsets: Vec::new(),
            len_bytes: SEGMENT_HEADER_BYTES,
            synced_len_bytes: SEGMENT_HEADER_BYTES,
            prepared_len_bytes: file_len,
        };
        if let Some(reason) = segment.check_header(file_len)? {
            let from = SearchFrom {
                offset: SEGMENT_HEADER_BYTES,
                index: first_index,
                first_candidate: SEGMENT_HEADER_BYTES.min(file_len),
            };
            let survivors = find_survivors(&segment.file, &segment.path, from, file_len, max_record_bytes)?;
            let dropped_records = survivors.as_ref().map_or(0, |s| s.last.index + 1 - first_index);
            let damage = Damage {
                offset: 0,
                index: first_index,
                reason,
                dropped_bytes: file_len,
                dropped_records,
                survivors,
                zero_hole: false,
            };
            segment.len_bytes = 0;
            segment.synced_len_bytes = 0;
            return Ok((segment, Some(damage)));
        }

        let mut reader = BufReader::with_capacity(1 << 20, &segment.file);
        let mut skip = [0u8; SEGMENT_HEADER_BYTES as usize];
        reader.read_exact(&mut skip).map_err(|e| io_err("read segment", &segment.path, e))?;
        let mut offset = SEGMENT_HEADER_BYTES;
        let mut payload = Vec::new();
        let damage = loop {
            if offset == file_len {
                break None;
            }
            let index = first_index + segment.offsets.len() as u64;
            if file_len - offset < HEADER_SIZE_BYTES as u64 {
                break Some(format!(
                    "record {index} is cut short: {} of its {HEADER_SIZE_BYTES} header bytes are there",
                    file_len - offset
                ));
            }
            let mut head = [0u8; HEADER_SIZE_BYTES];
            reader.read_exact(&mut head).map_err(|e| io_err("read segment", &segment.path, e))?;
            let header = Header::parse(&head);
            if header.payload_len > max_record_bytes {
                break Some(format!(
                    "record {index} claims {} bytes, above max_record_bytes {max_record_bytes}",
                    header.payload_len
                ));
            }
            if offset + header.record_size_bytes() > file_len {
                break Some(format!(
                    "record {index} is cut short: it needs {} bytes, the file has {} left",
                    header.record_size_bytes(),
                    file_len - offset
                ));
            }
            payload.resize(header.payload_len as usize, 0);
            reader.read_exact(&mut payload).map_err(|e| io_err("read segment", &segment.path, e))?;
            if !header.verify(index, &payload) {
                break Some(if header.index == index {
                    format!("checksum mismatch in record {index}")
                } else {
                    format!("record {index} is damaged (its header names index {})", header.index)
                });
            }
            segment.offsets.push(offset as u32);
            offset += header.record_size_bytes();
        };
        segment.len_bytes = offset;
        segment.synced_len_bytes = offset;
        let Some(reason) = damage else {
            return Ok((segment, None));
        };
        if is_zero(&segment.file, &segment.path, offset, file_len)? {
            // The space written ahead for appends, or a crash that left
            // only zeros: either way nothing was written there.
            return Ok((segment, None));
        }
        let index = segment.next_index();
        let from = SearchFrom { offset, index, first_candidate: offset + 1 };
        let survivors = find_survivors(&segment.file, &segment.path, from, file_len, max_record_bytes)?;
        let dropped_records = match &survivors {
            Some(s) => s.last.index + 1 - index,
            None => count_frames(&segment.file, offset, file_len, max_record_bytes),
        };
        let zero_hole = match &survivors {
            Some(s) => is_zero(&segment.file, &segment.path, offset, s.first_offset)?,
            None => false,
        };
        let damage =
            Damage { offset, index, reason, dropped_bytes: file_len - offset, dropped_records, survivors, zero_hole };
        Ok((segment, Some(damage)))
    }

    fn check_header(&self, file_len: u64) -> Result<Option<String>, WalError> {
        if file_len < SEGMENT_HEADER_BYTES {
            return Ok(Some(format!("torn segment header ({file_len} of {SEGMENT_HEADER_BYTES} bytes)")));
        }
        let mut header = [0u8; SEGMENT_HEADER_BYTES as usize];
        self.file.read_exact_at(&mut header, 0).map_err(|e| io_err("read segment header", &self.path, e))?;
        if &header[..8] == MAGIC_V1 {
            return Err(self.corrupt(
                0,
                "this segment is in WAL format 1 (records without their index), which this version of replab \
                 does not read; start the node on a new data directory"
                    .to_string(),
            ));
        }
        if &header[..8] != MAGIC {
            return Ok(Some("bad segment magic".to_string()));
        }
        let stored = u64::from_le_bytes(header[8..].try_into().expect("8 bytes"));
        if stored != self.first_index {
            return Ok(Some(format!("header says first index {stored}, file name says {}", self.first_index)));
        }
        Ok(None)
    }

    pub fn record_count(&self) -> u64 {
        self.offsets.len() as u64
    }

    /// Index one past the last record.
    pub fn next_index(&self) -> u64 {
        self.first_index + self.record_count()
    }

    pub fn last_index(&self) -> Option<u64> {
        (!self.offsets.is_empty()).then(|| self.next_index() - 1)
    }

    /// Reads and re-verifies one record; a record that was fine at open
    /// time but fails now means the disk changed under us.
    pub fn read(&self, index: u64, max_record_bytes: u32) -> Result<Record, WalError> {
        let slot = (index - self.first_index) as usize;
        let offset = u64::from(self.offsets[slot]);
        let mut head = [0u8; HEADER_SIZE_BYTES];
        self.file.read_exact_at(&mut head, offset).map_err(|e| io_err("read record", &self.path, e))?;
        let header = Header::parse(&head);
        let end = offset + header.record_size_bytes();
        if header.payload_len > max_record_bytes || end > self.len_bytes {
            return Err(self.corrupt(offset, format!("record {index} has a damaged length field")));
        }
        let mut payload = vec![0u8; header.payload_len as usize];
        self.file
            .read_exact_at(&mut payload, offset + HEADER_SIZE_BYTES as u64)
            .map_err(|e| io_err("read record", &self.path, e))?;
        if !header.verify(index, &payload) {
            return Err(self.corrupt(offset, format!("checksum mismatch in record {index}")));
        }
        Ok(Record { index, kind: header.kind, payload })
    }

    pub fn corrupt(&self, offset: u64, reason: String) -> WalError {
        WalError::Corrupt { path: self.path.clone(), offset, reason }
    }

    /// Writes encoded records at the end. Not durable until `sync`.
    ///
    /// An append that grows the file also writes `preallocate_bytes` of
    /// zeros after itself. Its fdatasync pays for the file's new size and
    /// for those zeros once, and the appends after it, landing on blocks
    /// the file owns, sync their data alone.
    pub fn write(
        &mut self,
        encoded: &[u8],
        record_lens: impl Iterator<Item = u64>,
        preallocate_bytes: u64,
    ) -> Result<(), WalError> {
        self.file.write_all_at(encoded, self.len_bytes).map_err(|e| io_err("append", &self.path, e))?;
        let mut offset = self.len_bytes;
        for len in record_lens {
            self.offsets.push(offset as u32);
            offset += len;
        }
        debug_assert_eq!(offset, self.len_bytes + encoded.len() as u64);
        self.len_bytes = offset;
        if self.len_bytes >= self.prepared_len_bytes {
            self.prepared_len_bytes = self.len_bytes;
            self.write_zeros_ahead(preallocate_bytes);
        }
        debug_assert!(self.prepared_len_bytes >= self.len_bytes);
        Ok(())
    }

    /// Best effort: the records are written already, and an append must not
    /// fail because the zeros after it did not fit (a nearly full disk).
    /// Without them the next append grows the file, as a plain log does.
    fn write_zeros_ahead(&mut self, len_bytes: u64) {
        static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
        let end = self.prepared_len_bytes + len_bytes;
        while self.prepared_len_bytes < end {
            let n = (end - self.prepared_len_bytes).min(ZEROS.len() as u64) as usize;
            if let Err(e) = self.file.write_all_at(&ZEROS[..n], self.prepared_len_bytes) {
                tracing::warn!(path = %self.path.display(), "could not write zeros ahead of the log: {e}");
                return;
            }
            self.prepared_len_bytes += n as u64;
        }
    }

    /// Cuts the zeros written ahead, durably: a sealed segment ends at its
    /// last record, so that damage anywhere in it stays corruption.
    pub fn trim_zeros(&mut self) -> Result<(), WalError> {
        if self.prepared_len_bytes > self.len_bytes {
            self.set_len(self.len_bytes)?;
        }
        Ok(())
    }

    /// fdatasync: the records and the file size reach stable storage.
    pub fn sync(&mut self) -> Result<(), WalError> {
        if self.synced_len_bytes == self.len_bytes {
            return Ok(());
        }
        self.file.sync_data().map_err(|e| WalError::SyncFailed { path: self.path.clone(), source: e })?;
        self.synced_len_bytes = self.len_bytes;
        Ok(())
    }

    /// Cuts the file so that `index` and everything after it are gone, and
    /// makes the new length durable.
    pub fn truncate_at(&mut self, index: u64) -> Result<(), WalError> {
        let slot = (index - self.first_index) as usize;
        let new_len = if slot < self.offsets.len() { u64::from(self.offsets[slot]) } else { self.len_bytes };
        self.set_len(new_len)?;
        self.offsets.truncate(slot);
        Ok(())
    }

    /// Cuts the file at a byte offset (a damaged tail found at open).
    pub fn set_len(&mut self, len_bytes: u64) -> Result<(), WalError> {
        self.file.set_len(len_bytes).map_err(|e| io_err("truncate segment", &self.path, e))?;
        self.file.sync_data().map_err(|e| WalError::SyncFailed { path: self.path.clone(), source: e })?;
        self.len_bytes = len_bytes;
        self.synced_len_bytes = len_bytes;
        self.prepared_len_bytes = len_bytes;
        Ok(())
    }
}

/// True if every byte of `from..to` is zero.
fn is_zero(file: &File, path: &Path, from: u64, to: u64) -> Result<bool, WalError> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut at = from;
    while at < to {
        let n = (to - at).min(buf.len() as u64) as usize;
        file.read_exact_at(&mut buf[..n], at).map_err(|e| io_err("read segment", path, e))?;
        if buf[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
        at += n as u64;
    }
    Ok(true)
}

/// How many record frames the damaged tail seems to hold, walking length
/// fields while they stay plausible. Only for the recovery report: the
/// bytes are dropped either way.
fn count_frames(file: &File, mut offset: u64, file_len: u64, max_record_bytes: u32) -> u64 {
    let mut frames = 0;
    while offset < file_len {
        let mut head = [0u8; HEADER_SIZE_BYTES];
        if file_len - offset < HEADER_SIZE_BYTES as u64 || file.read_exact_at(&mut head, offset).is_err() {
            frames += 1;
            break;
        }
        if head.iter().all(|&b| b == 0) && frames > 0 {
            // Zeros written ahead: no record starts here (indexes start at
            // 1, so a real header is never all zero).
            break;
        }
        frames += 1;
        let header = Header::parse(&head);
        if header.payload_len > max_record_bytes {
            break;
        }
        offset += header.record_size_bytes();
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeros_that_cannot_be_written_leave_the_segment_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let mut segment = Segment::create(dir.path(), 1).unwrap();
        // A descriptor that cannot write stands in for a full disk.
        segment.file = File::open(&segment.path).unwrap();
        segment.write_zeros_ahead(1 << 20);
        assert_eq!(segment.prepared_len_bytes, SEGMENT_HEADER_BYTES);
        assert_eq!(std::fs::metadata(&segment.path).unwrap().len(), SEGMENT_HEADER_BYTES);
    }

    #[test]
    fn file_names_sort_by_index_and_parse_back() {
        assert_eq!(file_name(1), "00000000000000000001.wal");
        assert_eq!(parse_file_name(&file_name(12345)), Some(12345));
        assert!(file_name(9) < file_name(10));
        assert_eq!(parse_file_name("hardstate"), None);
        assert_eq!(parse_file_name("0000000000000000001x.wal"), None);
    }
}
