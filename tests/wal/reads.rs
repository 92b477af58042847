use replab::wal::{RecordRef, Wal};

use crate::{append_n, assert_contents, opts, payload, segment_files};

#[test]
fn reopened_log_returns_every_record_in_order_with_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, report) = Wal::open(dir.path(), opts(1 << 20)).unwrap();
    assert_eq!(report.records, 0);
    let n = 2_000u64;
    let lens: Vec<usize> = (0..n).map(|i| (i as usize * 37) % 300).collect();
    for (i, len) in lens.iter().enumerate() {
        let data = payload(i as u64 + 1, *len);
        wal.append([RecordRef { kind: 1, payload: &data }]).unwrap();
    }
    wal.sync().unwrap();
    drop(wal);

    let (mut wal, report) = Wal::open(dir.path(), opts(1 << 20)).unwrap();
    assert_eq!((report.records, report.truncated_bytes, report.damage.clone()), (n, 0, None));
    let all = wal.read_range(1..n + 1).unwrap();
    for (i, record) in all.iter().enumerate() {
        assert_eq!(record.index, i as u64 + 1);
        assert_eq!(record.payload, payload(i as u64 + 1, lens[i]));
    }
    let next = wal.append([RecordRef { kind: 1, payload: b"next" }]).unwrap();
    assert_eq!(next, n + 1..n + 2, "the next append gets last index + 1");
}

#[test]
fn many_small_segments_serve_point_range_and_full_reads_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path(), opts(4096)).unwrap();
    append_n(&mut wal, 500, 100);
    assert!(wal.segment_count() > 10, "expected many segments, got {}", wal.segment_count());
    for round in 0..2 {
        assert_eq!(wal.read(1).unwrap().payload, payload(1, 100), "round {round}");
        assert_eq!(wal.read(250).unwrap().payload, payload(250, 100));
        assert_eq!(wal.read(500).unwrap().payload, payload(500, 100));
        let mid = wal.read_range(30..400).unwrap();
        assert_eq!(mid.first().unwrap().index, 30);
        assert_eq!(mid.len(), 370);
        assert_contents(&wal, 1, 500, 100);
        wal.sync().unwrap();
        drop(wal);
        wal = Wal::open(dir.path(), opts(4096)).unwrap().0;
    }
    assert_eq!(segment_files(dir.path()).len(), wal.segment_count());
}

#[test]
fn batch_append_numbers_records_contiguously_across_a_segment_roll() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path(), opts(4096)).unwrap();
    let mut batch = replab::wal::RecordBatch::new();
    for i in 1..=50u64 {
        batch.push((i % 7) as u8, &payload(i, 100));
    }
    assert_eq!(wal.append_batch(&batch).unwrap(), 1..51);
    let mut batch = replab::wal::RecordBatch::new();
    for i in 51..=60u64 {
        batch.push((i % 7) as u8, &payload(i, 100));
    }
    assert_eq!(wal.append_batch(&batch).unwrap(), 51..61);
    assert_eq!(wal.segment_count(), 2, "the second batch starts a new segment");
    assert_contents(&wal, 1, 60, 100);
}
