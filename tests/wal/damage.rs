//! Damage that is not a torn tail: recovery refuses it, naming the file,
//! the offset and the record, and changes nothing; repair cuts the log on
//! request and says how far it reached.

use std::fs;
use std::path::Path;

use replab::wal::{HEADER_SIZE_BYTES, Wal, inspect, repair};

use crate::{append_n, assert_contents, opts, segment_files, synced_log};

const LEN: usize = 40;
const RECORD_BYTES: u64 = (HEADER_SIZE_BYTES + LEN) as u64;
const SEGMENT_HEADER_BYTES: u64 = 16;

/// A one-segment log of `n` records, synced and closed.
fn log_of(dir: &Path, n: u64) -> std::path::PathBuf {
    synced_log(dir, n, LEN, 1 << 20).pop().unwrap()
}

fn record_offset(record: u64) -> u64 {
    SEGMENT_HEADER_BYTES + (record - 1) * RECORD_BYTES
}

#[test]
fn damage_to_any_record_but_the_last_refuses_to_open_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = log_of(dir.path(), 10);
    let original = fs::read(&file).unwrap();
    let name = file.file_name().unwrap().to_str().unwrap().to_string();
    // Every byte of every record: length, checksum, index, kind, payload.
    // The zeros written ahead of the log's end follow them.
    let data_end = record_offset(11) as usize;
    assert!(original.len() > data_end, "the open segment keeps zeros written ahead");
    for byte in SEGMENT_HEADER_BYTES as usize..data_end {
        let record = (byte as u64 - SEGMENT_HEADER_BYTES) / RECORD_BYTES + 1;
        let mut damaged = original.clone();
        damaged[byte] ^= 1 << (byte % 8);
        fs::write(&file, &damaged).unwrap();
        let opened = Wal::open(dir.path(), opts(1 << 20));
        if record == 10 {
            // Nothing valid follows the last record: a torn tail.
            let (wal, report) = opened.unwrap();
            assert_contents(&wal, 1, 9, LEN);
            assert_eq!(report.cut_at_index, Some(10), "byte {byte}");
            assert_eq!(report.truncated_bytes, original.len() as u64 - record_offset(10));
            assert_eq!(report.dropped_records, 1, "byte {byte}: the zeros after it hold no record");
            drop(wal);
            fs::write(&file, &original).unwrap();
            continue;
        }
        let err = opened.unwrap_err().to_string();
        assert!(err.contains(&name), "names the file: {err}");
        assert!(err.contains(&format!("offset {}", record_offset(record))), "byte {byte}: names the offset: {err}");
        assert!(err.contains(&format!("record {record}")), "byte {byte}: names the record: {err}");
        assert!(err.contains("valid record"), "says valid records follow: {err}");
        assert!(err.contains("Repair"), "points to the repair: {err}");
        assert_eq!(fs::read(&file).unwrap(), damaged, "byte {byte}: refusing must not modify the file");
    }
}

#[test]
fn a_lost_sector_in_the_middle_of_the_last_segment_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let file = log_of(dir.path(), 60);
    let mut bytes = fs::read(&file).unwrap();
    // A 512-byte sector of zeros across records 9..=19.
    bytes[512..1024].fill(0);
    fs::write(&file, &bytes).unwrap();
    let err = Wal::open(dir.path(), opts(1 << 20)).unwrap_err().to_string();
    let first_damaged = (512 - SEGMENT_HEADER_BYTES) / RECORD_BYTES + 1;
    assert!(err.contains(&format!("record {first_damaged}")), "{err}");
    assert!(err.contains("to 60"), "names the last valid record: {err}");
}

/// What a power loss during one fdatasync can leave over zeros written
/// ahead: the disk kept a later page of the group and not an earlier one.
/// It looks exactly like a lost sector, so open refuses, and says both.
#[test]
fn a_power_loss_mid_sync_over_zeros_written_ahead_refuses_and_names_both_causes() {
    let dir = tempfile::tempdir().unwrap();
    let file = log_of(dir.path(), 10);
    let (mut wal, _) = Wal::open(dir.path(), opts(1 << 20)).unwrap();
    append_n(&mut wal, 5, LEN);
    wal.sync().unwrap();
    drop(wal);
    let mut bytes = fs::read(&file).unwrap();
    // Records 11 and 12 never reached the disk; 13 to 15 did.
    bytes[record_offset(11) as usize..record_offset(13) as usize].fill(0);
    fs::write(&file, &bytes).unwrap();
    let err = Wal::open(dir.path(), opts(1 << 20)).unwrap_err().to_string();
    assert!(err.contains("record 11"), "{err}");
    assert!(err.contains("records 13 to 15"), "{err}");
    assert!(err.contains("lost sector") && err.contains("power loss"), "{err}");
    assert!(err.contains("wal.preallocate_bytes"), "{err}");
    assert_eq!(fs::read(&file).unwrap(), bytes, "refusing must not modify the file");
    // Garbage instead of zeros is damage, with no power-loss explanation.
    bytes[record_offset(11) as usize] = 0x77;
    fs::write(&file, &bytes).unwrap();
    let err = Wal::open(dir.path(), opts(1 << 20)).unwrap_err().to_string();
    assert!(err.contains("record 11") && !err.contains("power loss"), "{err}");
}

#[test]
fn a_damaged_header_of_a_full_last_segment_refuses_to_open() {
    for (what, byte) in [("magic", 3usize), ("first index", 9usize)] {
        let dir = tempfile::tempdir().unwrap();
        // 72 records fill a 4096-byte segment: three full segments.
        let last = synced_log(dir.path(), 216, LEN, 4096).pop().unwrap();
        let mut bytes = fs::read(&last).unwrap();
        assert!(bytes.len() as u64 >= 4096, "the last segment is full");
        bytes[byte] ^= 0x40;
        fs::write(&last, &bytes).unwrap();
        let err = Wal::open(dir.path(), opts(4096)).unwrap_err().to_string();
        assert!(err.contains(last.file_name().unwrap().to_str().unwrap()), "{what}: {err}");
        assert!(err.contains("offset 0"), "{what}: {err}");
        assert!(err.contains("segment header"), "{what}: {err}");
        assert!(err.contains("valid records follow"), "{what}: {err}");
        assert_eq!(fs::read(&last).unwrap(), bytes, "{what}: refusing must not modify the file");
    }
}

#[test]
fn a_format_1_segment_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let file = log_of(dir.path(), 3);
    let mut bytes = fs::read(&file).unwrap();
    bytes[..8].copy_from_slice(b"RPLBWAL1");
    fs::write(&file, &bytes).unwrap();
    let err = Wal::open(dir.path(), opts(1 << 20)).unwrap_err().to_string();
    assert!(err.contains("format 1"), "{err}");
}

#[test]
fn inspect_names_the_damage_and_how_far_the_log_reached_and_repair_cuts_there() {
    let dir = tempfile::tempdir().unwrap();
    let file = log_of(dir.path(), 10);
    let mut bytes = fs::read(&file).unwrap();
    bytes[(record_offset(3) + 20) as usize] ^= 0x01;
    fs::write(&file, &bytes).unwrap();

    let found = inspect(dir.path(), &opts(1 << 20)).unwrap().expect("damage found");
    assert_eq!((found.index, found.offset), (3, record_offset(3)));
    assert_eq!(found.last_valid.as_ref().unwrap().index, 10);
    assert_eq!(found.records_removed(), 8);
    assert_eq!(fs::read(&file).unwrap(), bytes, "inspect changes nothing");

    repair(dir.path(), &opts(1 << 20), &found).unwrap();
    let (mut wal, report) = Wal::open(dir.path(), opts(1 << 20)).unwrap();
    assert_eq!(report.damage, None);
    assert_contents(&wal, 1, 2, LEN);
    append_n(&mut wal, 1, LEN);
    assert_contents(&wal, 1, 3, LEN);
    drop(wal);
    assert_eq!(inspect(dir.path(), &opts(1 << 20)).unwrap(), None);
}

#[test]
fn repair_of_a_sealed_segment_removes_every_later_segment() {
    let dir = tempfile::tempdir().unwrap();
    let files = synced_log(dir.path(), 300, LEN, 4096);
    assert!(files.len() > 3);
    let victim = &files[1];
    let first_of_victim: u64 = victim.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    let mut bytes = fs::read(victim).unwrap();
    bytes[(record_offset(4) + 30) as usize] ^= 0x08;
    fs::write(victim, &bytes).unwrap();

    let found = inspect(dir.path(), &opts(4096)).unwrap().expect("damage found");
    assert_eq!(found.index, first_of_victim + 3);
    assert_eq!(found.last_valid.as_ref().unwrap().index, 300, "later segments count as reached");
    repair(dir.path(), &opts(4096), &found).unwrap();
    let (wal, _) = Wal::open(dir.path(), opts(4096)).unwrap();
    assert_contents(&wal, 1, first_of_victim + 2, LEN);
    assert_eq!(segment_files(dir.path()).len(), 2);
}

#[test]
fn repair_refuses_when_the_log_changed_since_inspection() {
    let dir = tempfile::tempdir().unwrap();
    let file = log_of(dir.path(), 10);
    let mut bytes = fs::read(&file).unwrap();
    bytes[(record_offset(3) + 20) as usize] ^= 0x01;
    fs::write(&file, &bytes).unwrap();
    let mut found = inspect(dir.path(), &opts(1 << 20)).unwrap().unwrap();
    found.index = 5;
    let err = repair(dir.path(), &opts(1 << 20), &found).unwrap_err().to_string();
    assert!(err.contains("inspect it again"), "{err}");
    assert_eq!(fs::read(&file).unwrap(), bytes);
}

#[test]
fn a_torn_tail_is_not_damage_for_inspect() {
    let dir = tempfile::tempdir().unwrap();
    let file = log_of(dir.path(), 10);
    let bytes = fs::read(&file).unwrap();
    fs::write(&file, &bytes[..record_offset(11) as usize - 5]).unwrap();
    assert_eq!(inspect(dir.path(), &opts(1 << 20)).unwrap(), None);
    let (wal, report) = Wal::open(dir.path(), opts(1 << 20)).unwrap();
    assert_contents(&wal, 1, 9, LEN);
    assert_eq!(report.cut_at_index, Some(10));
}
