use std::fs;

use replab::wal::{HEADER_SIZE_BYTES, RecordRef, Wal, WalOptions};

use crate::{append_n, assert_contents, opts, payload, segment_files, synced_log};

const LEN: usize = 40;
const RECORD_BYTES: u64 = (HEADER_SIZE_BYTES + LEN) as u64;
const SEGMENT_HEADER_BYTES: u64 = 16;

/// A one-segment log of ten records, synced and closed. Returns the file.
fn ten_records(dir: &std::path::Path) -> std::path::PathBuf {
    let (mut wal, _) = Wal::open(dir, opts(1 << 20)).unwrap();
    append_n(&mut wal, 10, LEN);
    wal.sync().unwrap();
    drop(wal);
    let files = segment_files(dir);
    assert_eq!(files.len(), 1);
    files[0].clone()
}

#[test]
fn torn_write_at_every_byte_offset_of_the_last_record_drops_exactly_that_record() {
    let dir = tempfile::tempdir().unwrap();
    let file = ten_records(dir.path());
    let original = fs::read(&file).unwrap();
    let last_start = SEGMENT_HEADER_BYTES + 9 * RECORD_BYTES;
    assert!(original.len() as u64 > last_start + RECORD_BYTES, "zeros are written ahead of the last record");

    // Every cut from "none of the last record written" to "all but its
    // final byte written", in both shapes a crash leaves: the file ends at
    // the cut (an append that grew it), or the zeros written ahead follow.
    for cut in last_start..last_start + RECORD_BYTES {
        for zeros_ahead in [false, true] {
            let mut torn = original[..cut as usize].to_vec();
            if zeros_ahead {
                torn.resize(original.len(), 0);
            }
            fs::write(&file, &torn).unwrap();
            let (mut wal, report) = Wal::open(dir.path(), opts(1 << 20)).unwrap();
            let at = format!("cut at {cut}, zeros ahead {zeros_ahead}");
            assert_contents(&wal, 1, 9, LEN);
            let cut_bytes = if cut == last_start { 0 } else { torn.len() as u64 - last_start };
            assert_eq!(report.truncated_bytes, cut_bytes, "{at}");
            assert_eq!(report.dropped_records, u64::from(cut > last_start), "{at}");
            assert_eq!(report.damage.is_some(), cut > last_start, "{at}");
            // The log is usable again at the right index.
            let data = payload(10, LEN);
            assert_eq!(wal.append([RecordRef { kind: 3, payload: &data }]).unwrap(), 10..11);
            drop(wal);
        }
    }
}

#[test]
fn flipped_bit_anywhere_in_the_last_record_is_detected_and_that_record_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let file = ten_records(dir.path());
    let original = fs::read(&file).unwrap();
    let last_start = (SEGMENT_HEADER_BYTES + 9 * RECORD_BYTES) as usize;
    for byte in last_start..last_start + RECORD_BYTES as usize {
        for bit in 0..8 {
            let mut damaged = original.clone();
            damaged[byte] ^= 1 << bit;
            fs::write(&file, &damaged).unwrap();
            let (wal, report) = Wal::open(dir.path(), opts(1 << 20)).unwrap();
            assert_contents(&wal, 1, 9, LEN);
            // The record and the zeros written ahead after it.
            assert_eq!(report.truncated_bytes, (original.len() - last_start) as u64, "bit {bit} of byte {byte}");
            assert!(report.damage.is_some());
        }
    }
}

#[test]
fn flipped_bit_in_a_sealed_segment_refuses_to_open_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let files = synced_log(dir.path(), 300, LEN, 4096);
    assert!(files.len() > 2);
    let victim = &files[1];
    let record_no = 5u64;
    let record_offset = SEGMENT_HEADER_BYTES + record_no * RECORD_BYTES;
    let mut bytes = fs::read(victim).unwrap();
    bytes[(record_offset + RECORD_BYTES / 2) as usize] ^= 0x10;
    fs::write(victim, &bytes).unwrap();

    let err = Wal::open(dir.path(), opts(4096)).unwrap_err().to_string();
    let name = victim.file_name().unwrap().to_str().unwrap();
    assert!(err.contains(name), "error names the file: {err}");
    assert!(err.contains(&format!("offset {record_offset}")), "error names the offset: {err}");
    assert!(err.contains("sealed"), "{err}");
    // Refusing to open must not have modified anything.
    assert_eq!(fs::read(victim).unwrap(), bytes);
}

#[test]
fn zeros_after_the_last_record_are_space_written_ahead_not_damage() {
    let dir = tempfile::tempdir().unwrap();
    let file = ten_records(dir.path());
    let data_end = SEGMENT_HEADER_BYTES + 10 * RECORD_BYTES;
    let mut bytes = fs::read(&file).unwrap();
    bytes.extend(std::iter::repeat_n(0u8, 4096));
    fs::write(&file, &bytes).unwrap();
    let (mut wal, report) = Wal::open(dir.path(), opts(1 << 20)).unwrap();
    assert_contents(&wal, 1, 10, LEN);
    assert_eq!((report.truncated_bytes, report.damage), (0, None));
    // The next record goes where the last one ended, over the zeros, and
    // the file does not grow.
    append_n(&mut wal, 1, LEN);
    wal.sync().unwrap();
    drop(wal);
    let after = fs::read(&file).unwrap();
    assert_eq!(after.len(), bytes.len());
    assert!(after[data_end as usize..(data_end + RECORD_BYTES) as usize].iter().any(|&b| b != 0));
    let (wal, _) = Wal::open(dir.path(), opts(1 << 20)).unwrap();
    assert_contents(&wal, 1, 11, LEN);
}

#[test]
fn garbage_among_the_zeros_written_ahead_is_a_torn_tail_and_a_record_past_them_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let file = ten_records(dir.path());
    let data_end = (SEGMENT_HEADER_BYTES + 10 * RECORD_BYTES) as usize;
    let original = fs::read(&file).unwrap();

    let mut garbage = original.clone();
    garbage[data_end + 1000] = 0x5a;
    fs::write(&file, &garbage).unwrap();
    let (wal, report) = Wal::open(dir.path(), opts(1 << 20)).unwrap();
    assert_contents(&wal, 1, 10, LEN);
    assert_eq!(report.cut_at_index, Some(11));
    assert!(report.damage.is_some());
    drop(wal);

    // A valid record 11 far behind the end, past zeros: written data with
    // a hole before it, never cut silently.
    let (mut wal, _) = Wal::open(dir.path(), opts(1 << 20)).unwrap();
    append_n(&mut wal, 1, LEN);
    wal.sync().unwrap();
    drop(wal);
    let mut holed = fs::read(&file).unwrap();
    let record_11 = holed[data_end..data_end + RECORD_BYTES as usize].to_vec();
    holed[data_end..data_end + RECORD_BYTES as usize].fill(0);
    holed[data_end + 4096..data_end + 4096 + RECORD_BYTES as usize].copy_from_slice(&record_11);
    fs::write(&file, &holed).unwrap();
    let err = Wal::open(dir.path(), opts(1 << 20)).unwrap_err().to_string();
    assert!(err.contains("record 11"), "{err}");
    assert!(err.contains("valid record"), "{err}");
}

#[test]
fn sealed_segments_end_at_their_last_record_and_only_the_open_one_keeps_zeros_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path(), opts(4096)).unwrap();
    append_n(&mut wal, 300, LEN);
    wal.sync().unwrap();
    let files = segment_files(dir.path());
    assert!(files.len() > 2);
    for sealed in &files[..files.len() - 1] {
        let len = fs::metadata(sealed).unwrap().len();
        assert_eq!((len - SEGMENT_HEADER_BYTES) % RECORD_BYTES, 0, "{}", sealed.display());
        assert_ne!(fs::read(sealed).unwrap().last(), None);
    }
    let open_len = fs::metadata(files.last().unwrap()).unwrap().len();
    assert!(open_len >= 1 << 20, "the open segment has zeros written ahead: {open_len} bytes");
    drop(wal);
    let (wal, report) = Wal::open(dir.path(), opts(4096)).unwrap();
    assert_contents(&wal, 1, 300, LEN);
    assert_eq!(report.damage, None);
}

#[test]
fn without_preallocation_the_file_ends_at_the_last_record() {
    let dir = tempfile::tempdir().unwrap();
    let o = WalOptions { preallocate_bytes: 0, ..opts(1 << 20) };
    let (mut wal, _) = Wal::open(dir.path(), o.clone()).unwrap();
    append_n(&mut wal, 10, LEN);
    wal.sync().unwrap();
    drop(wal);
    let file = &segment_files(dir.path())[0];
    assert_eq!(fs::metadata(file).unwrap().len(), SEGMENT_HEADER_BYTES + 10 * RECORD_BYTES);
}

#[test]
fn torn_header_of_a_new_last_segment_recovers_an_empty_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path(), opts(4096)).unwrap();
    append_n(&mut wal, 100, LEN);
    wal.sync().unwrap();
    let next = wal.last_index() + 1;
    drop(wal);
    // The node died right after creating the next segment file.
    let name = dir.path().join(format!("{next:020}.wal"));
    fs::write(&name, b"RPLB").unwrap();
    let (mut wal, report) = Wal::open(dir.path(), opts(4096)).unwrap();
    assert!(report.damage.unwrap().contains("torn segment header"));
    assert_contents(&wal, 1, 100, LEN);
    append_n(&mut wal, 1, LEN);
    assert_contents(&wal, 1, 101, LEN);
}

#[test]
fn a_missing_middle_segment_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let files = synced_log(dir.path(), 300, LEN, 4096);
    fs::remove_file(&files[1]).unwrap();
    let err = Wal::open(dir.path(), opts(4096)).unwrap_err().to_string();
    assert!(err.contains("gap in the log"), "{err}");
    assert!(err.contains(files[2].file_name().unwrap().to_str().unwrap()), "{err}");
}

#[test]
fn the_generation_grows_across_reopens_even_when_the_clock_goes_back() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path(), opts(4096)).unwrap();
    assert_eq!(wal.next_generation(1_000).unwrap(), 1_000, "the first start takes the clock");
    drop(wal);
    let (mut wal, _) = Wal::open(dir.path(), opts(4096)).unwrap();
    assert_eq!(wal.next_generation(500).unwrap(), 1_001, "a clock stepped back still gives a larger generation");
    drop(wal);
    let (mut wal, _) = Wal::open(dir.path(), opts(4096)).unwrap();
    assert_eq!(wal.next_generation(9_000).unwrap(), 9_000, "a clock ahead of the stored value wins");
    assert_eq!(wal.last_index(), 0, "the generation is not a log record");
}

#[test]
fn hard_state_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path(), opts(4096)).unwrap();
    assert_eq!(wal.hard_state(), None);
    wal.save_hard_state(b"term 7 vote 2").unwrap();
    drop(wal);
    let (wal, _) = Wal::open(dir.path(), opts(4096)).unwrap();
    assert_eq!(wal.hard_state(), Some(&b"term 7 vote 2"[..]));
}
