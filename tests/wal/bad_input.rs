use replab::wal::{RecordRef, Wal, WalError, WalOptions};

use crate::{append_n, assert_contents, opts};

#[test]
fn a_record_above_the_maximum_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let o = WalOptions { max_record_bytes: 1024, ..opts(1 << 20) };
    let (mut wal, _) = Wal::open(dir.path(), o).unwrap();
    append_n(&mut wal, 3, 10);
    let big = vec![0u8; 1025];
    let err = wal.append([RecordRef { kind: 0, payload: b"fits" }, RecordRef { kind: 0, payload: &big }]).unwrap_err();
    assert!(matches!(err, WalError::RecordTooLarge { size_bytes: 1025, max_bytes: 1024 }), "{err}");
    assert!(err.to_string().contains("max_record_bytes"));
    assert_contents(&wal, 1, 3, 10);
}

#[test]
fn a_path_that_is_a_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = Wal::open(&file, opts(4096)).unwrap_err();
    assert!(matches!(err, WalError::NotADirectory(_)));
    assert!(err.to_string().contains("not-a-dir") && err.to_string().contains("not a directory"), "{err}");
}

#[test]
fn a_missing_directory_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b/c");
    let (wal, _) = Wal::open(&nested, opts(4096)).unwrap();
    assert!(nested.is_dir());
    assert!(wal.is_empty());
}

#[test]
fn reads_and_truncations_outside_the_log_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path(), opts(4096)).unwrap();
    append_n(&mut wal, 10, 10);
    for index in [0, 11, u64::MAX] {
        assert!(matches!(wal.read(index), Err(WalError::OutOfRange { .. })), "read {index}");
    }
    assert!(wal.read_range(0..5).is_err());
    assert!(wal.read_range(5..12).is_err());
    assert!(wal.read_range(5..u64::MAX).is_err());
    let (hi, lo) = (7, 3);
    assert_eq!(wal.read_range(hi..lo).unwrap(), vec![], "a reversed range reads nothing");
    assert!(wal.truncate_suffix(0).is_err());
    assert!(wal.truncate_suffix(12).is_err());
    assert!(wal.truncate_suffix(u64::MAX).is_err());
    assert_contents(&wal, 1, 10, 10);
}

#[test]
fn out_of_range_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = Wal::open(dir.path(), WalOptions { segment_size_bytes: 10, ..opts(4096) }).unwrap_err();
    assert!(err.to_string().contains("segment_size_bytes"), "{err}");
    let err = Wal::open(dir.path(), WalOptions { max_record_bytes: 0, ..opts(4096) }).unwrap_err();
    assert!(err.to_string().contains("max_record_bytes"), "{err}");
}
