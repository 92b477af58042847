//! Telling a torn tail from damaged data.
//!
//! A crash in the middle of an append leaves a *torn tail*: the end of the
//! last segment holds part of a record, zeros, or garbage, and nothing
//! valid after it. Those bytes were never synced, so no one was promised
//! they were durable, and recovery may cut them off.
//!
//! Damage with valid records *after* it is something else: bytes that were
//! written (and maybe synced and acknowledged) changed on disk. Cutting at
//! the damage would silently drop every record behind it, including
//! acknowledged ones, and a replica that forgets what it acknowledged can
//! help elect a leader that never had those entries. So recovery must find
//! out whether anything valid follows the damage, and refuse to open if so.
//!
//! Because every record stores its index (covered by its checksum), the
//! search is a byte-by-byte scan with a cheap filter: at offset `o`, only a
//! header whose index is plausible there (at least the index expected at
//! the damage, and at most one more per header-size of bytes since) is
//! checked further, and only one whose length fits the file is
//! checksummed. Garbage almost never passes the index filter, so the scan
//! costs about one read of the rest of the file.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::error::{WalError, io_err};
use super::record::{HEADER_SIZE_BYTES, Header, Record};

/// Bytes read per step of the scan.
const WINDOW_BYTES: u64 = 1 << 20;

/// The records that still verify somewhere after a damaged spot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Survivors {
    /// How many valid records were found.
    pub count: u64,
    pub first_index: u64,
    pub first_offset: u64,
    /// The valid record with the highest index.
    pub last: Record,
}

impl Survivors {
    pub fn describe(&self) -> String {
        if self.count == 1 {
            format!("1 valid record follows it (record {} at offset {})", self.first_index, self.first_offset)
        } else {
            format!(
                "{} valid records follow it (records {} to {}, the first at offset {})",
                self.count, self.first_index, self.last.index, self.first_offset
            )
        }
    }
}

/// Where the scan for valid records starts.
#[derive(Clone, Copy, Debug)]
pub struct SearchFrom {
    /// The damaged spot: the record `index` was expected to start here.
    pub offset: u64,
    pub index: u64,
    /// The first offset to try (the damaged spot itself, or one past it).
    pub first_candidate: u64,
}

/// Finds every record that verifies in `[from.first_candidate, file_len)`,
/// following chains of intact records and searching again after each
/// break. Returns `None` if nothing valid is there: a torn tail.
pub fn find_survivors(
    file: &File,
    path: &Path,
    from: SearchFrom,
    file_len: u64,
    max_record_bytes: u32,
) -> Result<Option<Survivors>, WalError> {
    let mut survivors: Option<Survivors> = None;
    let mut search = from;
    while let Some((offset, header, payload)) = next_valid(file, path, search, file_len, max_record_bytes)? {
        // Follow the chain of intact records from here.
        let mut offset = offset;
        let mut record = Record { index: header.index, kind: header.kind, payload };
        let mut size = header.record_size_bytes();
        let first = survivors.get_or_insert_with(|| Survivors {
            count: 0,
            first_index: record.index,
            first_offset: offset,
            last: record.clone(),
        });
        first.count += 1;
        loop {
            let next_offset = offset + size;
            let next_index = record.index + 1;
            match read_valid_at(file, path, next_offset, next_index, file_len, max_record_bytes)? {
                Some((header, payload)) => {
                    offset = next_offset;
                    size = header.record_size_bytes();
                    record = Record { index: next_index, kind: header.kind, payload };
                    survivors.as_mut().expect("set above").count += 1;
                }
                None => {
                    search = SearchFrom { offset: next_offset, index: next_index, first_candidate: next_offset + 1 };
                    break;
                }
            }
        }
        let found = survivors.as_mut().expect("set above");
        if record.index > found.last.index {
            found.last = record;
        }
        if search.offset >= file_len {
            break;
        }
    }
    Ok(survivors)
}

/// The first offset at or after `from.first_candidate` holding a record
/// that verifies, with its header and payload.
fn next_valid(
    file: &File,
    path: &Path,
    from: SearchFrom,
    file_len: u64,
    max_record_bytes: u32,
) -> Result<Option<(u64, Header, Vec<u8>)>, WalError> {
    let header_bytes = HEADER_SIZE_BYTES as u64;
    let mut window = vec![0u8; (WINDOW_BYTES + header_bytes) as usize];
    let mut chunk_start = from.first_candidate;
    while chunk_start + header_bytes <= file_len {
        // Each window overlaps the next by a header, so no candidate
        // header straddles two reads unseen.
        let len = (WINDOW_BYTES + header_bytes - 1).min(file_len - chunk_start) as usize;
        file.read_exact_at(&mut window[..len], chunk_start).map_err(|e| io_err("scan for valid records", path, e))?;
        let candidates = (len + 1 - HEADER_SIZE_BYTES).min(WINDOW_BYTES as usize);
        for rel in 0..candidates {
            let offset = chunk_start + rel as u64;
            let bytes: &[u8; HEADER_SIZE_BYTES] = window[rel..rel + HEADER_SIZE_BYTES].try_into().expect("header");
            let header = Header::parse(bytes);
            let highest_plausible = from.index + (offset - from.offset) / header_bytes;
            if header.index < from.index || header.index > highest_plausible {
                continue;
            }
            if let Some((header, payload)) =
                read_valid_at(file, path, offset, header.index, file_len, max_record_bytes)?
            {
                return Ok(Some((offset, header, payload)));
            }
        }
        chunk_start += WINDOW_BYTES;
    }
    Ok(None)
}

/// Reads the record at `offset` if it is record `index`, intact.
fn read_valid_at(
    file: &File,
    path: &Path,
    offset: u64,
    index: u64,
    file_len: u64,
    max_record_bytes: u32,
) -> Result<Option<(Header, Vec<u8>)>, WalError> {
    if offset + HEADER_SIZE_BYTES as u64 > file_len {
        return Ok(None);
    }
    let mut head = [0u8; HEADER_SIZE_BYTES];
    file.read_exact_at(&mut head, offset).map_err(|e| io_err("scan for valid records", path, e))?;
    let header = Header::parse(&head);
    if header.index != index || header.payload_len > max_record_bytes || offset + header.record_size_bytes() > file_len
    {
        return Ok(None);
    }
    let mut payload = vec![0u8; header.payload_len as usize];
    file.read_exact_at(&mut payload, offset + HEADER_SIZE_BYTES as u64)
        .map_err(|e| io_err("scan for valid records", path, e))?;
    Ok(header.verify(index, &payload).then_some((header, payload)))
}
