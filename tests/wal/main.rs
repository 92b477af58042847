//! Write-ahead log: behaviour on real files with real fdatasync.

mod bad_input;
mod damage;
mod group_commit;
mod model;
mod reads;
mod recovery;
mod truncation;

use std::path::Path;

use replab::wal::{FsyncPolicy, RecordRef, Wal, WalOptions};

pub fn opts(segment_size_bytes: u64) -> WalOptions {
    WalOptions { segment_size_bytes, max_record_bytes: 1 << 20, fsync: FsyncPolicy::Never, ..WalOptions::default() }
}

/// A payload that differs per index and per length, so a record read from
/// the wrong place cannot pass for the right one.
pub fn payload(index: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| (index as usize * 31 + i * 7) as u8).collect()
}

pub fn append_n(wal: &mut Wal, n: u64, len: usize) {
    for _ in 0..n {
        let index = wal.last_index() + 1;
        let data = payload(index, len);
        let got = wal.append([RecordRef { kind: (index % 7) as u8, payload: &data }]).unwrap();
        assert_eq!(got, index..index + 1);
    }
}

/// A log of `n` records of `len` bytes in segments of `segment_size_bytes`,
/// synced and closed. Returns its segment files, oldest first.
pub fn synced_log(dir: &Path, n: u64, len: usize, segment_size_bytes: u64) -> Vec<std::path::PathBuf> {
    let (mut wal, _) = Wal::open(dir, opts(segment_size_bytes)).unwrap();
    append_n(&mut wal, n, len);
    wal.sync().unwrap();
    drop(wal);
    segment_files(dir)
}

pub fn assert_contents(wal: &Wal, first: u64, last: u64, len: usize) {
    assert_eq!((wal.first_index(), wal.last_index()), (first, last));
    let all = wal.read_range(first..last + 1).unwrap();
    assert_eq!(all.len() as u64, last + 1 - first);
    for (i, record) in all.iter().enumerate() {
        let index = first + i as u64;
        assert_eq!(record.index, index);
        assert_eq!(record.kind, (index % 7) as u8);
        assert_eq!(record.payload, payload(index, len), "payload of record {index}");
    }
}

pub fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    files.sort();
    files
}
