use replab::wal::{RecordRef, Wal};

use crate::{append_n, assert_contents, opts, payload};

fn reopen(wal: Wal, segment_size: u64) -> Wal {
    let dir = wal.dir().to_path_buf();
    drop(wal);
    Wal::open(dir, opts(segment_size)).unwrap().0
}

#[test]
fn truncate_suffix_in_the_open_segment_keeps_the_prefix_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path(), opts(1 << 20)).unwrap();
    append_n(&mut wal, 100, 50);
    wal.truncate_suffix(61).unwrap();
    assert_contents(&wal, 1, 60, 50);
    append_n(&mut wal, 5, 50);
    assert_contents(&wal, 1, 65, 50);
    let wal = reopen(wal, 1 << 20);
    assert_contents(&wal, 1, 65, 50);
}

#[test]
fn truncate_suffix_in_an_older_segment_deletes_the_later_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path(), opts(4096)).unwrap();
    append_n(&mut wal, 300, 100);
    let before = wal.segment_count();
    wal.truncate_suffix(40).unwrap();
    assert!(wal.segment_count() < before);
    assert_contents(&wal, 1, 39, 100);
    assert_eq!(crate::segment_files(dir.path()).len(), wal.segment_count());
    append_n(&mut wal, 100, 100);
    let wal = reopen(wal, 4096);
    assert_contents(&wal, 1, 139, 100);
}

#[test]
fn truncate_suffix_at_the_first_index_empties_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path(), opts(4096)).unwrap();
    append_n(&mut wal, 120, 100);
    wal.truncate_suffix(1).unwrap();
    assert!(wal.is_empty());
    assert_eq!((wal.first_index(), wal.last_index()), (1, 0));
    let mut wal = reopen(wal, 4096);
    assert!(wal.is_empty());
    append_n(&mut wal, 3, 100);
    assert_contents(&wal, 1, 3, 100);
}

#[test]
fn truncate_suffix_at_the_last_index_removes_exactly_one_record() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path(), opts(4096)).unwrap();
    append_n(&mut wal, 80, 100);
    wal.truncate_suffix(80).unwrap();
    assert_contents(&wal, 1, 79, 100);
    wal.truncate_suffix(80).unwrap(); // one past the end: nothing to remove
    assert_contents(&wal, 1, 79, 100);
    append_n(&mut wal, 1, 100);
    assert_contents(&wal, 1, 80, 100);
}

#[test]
fn truncate_suffix_at_a_segment_boundary_removes_that_whole_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path(), opts(4096)).unwrap();
    append_n(&mut wal, 200, 100);
    let files = crate::segment_files(dir.path());
    let second_first: u64 = files[1].file_stem().unwrap().to_str().unwrap().parse().unwrap();
    wal.truncate_suffix(second_first).unwrap();
    assert_eq!(wal.segment_count(), 1);
    assert_contents(&wal, 1, second_first - 1, 100);
}

#[test]
fn compact_prefix_deletes_whole_covered_segments_but_never_the_open_one() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path(), opts(4096)).unwrap();
    append_n(&mut wal, 300, 100);
    let removed = wal.compact_prefix(150).unwrap();
    assert!(removed > 0);
    let first = wal.first_index();
    assert!(first <= 151 && first > 1, "first index {first} must not pass the low watermark");
    assert_contents(&wal, first, 300, 100);
    // Compacting past the end keeps the open segment and every record in it.
    wal.compact_prefix(10_000).unwrap();
    assert_eq!(wal.segment_count(), 1);
    assert_eq!(wal.last_index(), 300);
    let first = wal.first_index();
    let wal = reopen(wal, 4096);
    assert_contents(&wal, first, 300, 100);
}

#[test]
fn reset_restarts_numbering_after_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path(), opts(4096)).unwrap();
    append_n(&mut wal, 100, 100);
    wal.reset(1_001).unwrap();
    assert_eq!((wal.first_index(), wal.last_index()), (1_001, 1_000));
    let data = payload(1_001, 100);
    assert_eq!(wal.append([RecordRef { kind: 0, payload: &data }]).unwrap(), 1_001..1_002);
    let wal = reopen(wal, 4096);
    assert_eq!((wal.first_index(), wal.last_index()), (1_001, 1_001));
}
