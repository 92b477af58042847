use std::sync::Arc;

use replab::wal::{FsyncPolicy, RecordBatch, Wal, WalHandle, WalOptions};

fn batch_of_one(tag: u64) -> RecordBatch {
    let mut batch = RecordBatch::new();
    batch.push(1, &tag.to_le_bytes().repeat(32));
    batch
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_covers_many_appends_with_few_fdatasyncs_and_acks_only_after_the_covering_sync() {
    let dir = tempfile::tempdir().unwrap();
    let o = WalOptions { fsync: FsyncPolicy::Batch, ..WalOptions::default() };
    let (wal, _) = Wal::open(dir.path(), o.clone()).unwrap();
    let handle = Arc::new(WalHandle::spawn(wal));
    const APPENDERS: u64 = 64;
    const PER_APPENDER: u64 = 20;

    let mut tasks = Vec::new();
    for appender in 0..APPENDERS {
        let handle = Arc::clone(&handle);
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for i in 0..PER_APPENDER {
                let range = handle.append(batch_of_one(appender * 1000 + i)).await.unwrap();
                // Told durable: the sync that covers this record has returned.
                let durable = handle.stats().durable_index;
                assert!(durable >= range.end - 1, "acked index {} while durable index is {durable}", range.end - 1);
                mine.push((range.start, appender * 1000 + i));
            }
            mine
        }));
    }
    let mut written = Vec::new();
    for task in tasks {
        written.extend(task.await.unwrap());
    }
    let stats = handle.stats();
    let appends = APPENDERS * PER_APPENDER;
    assert_eq!(stats.records, appends);
    assert!(
        stats.fdatasyncs * 4 < appends,
        "group commit should share syncs: {} fdatasyncs for {appends} appends",
        stats.fdatasyncs
    );
    eprintln!("group commit: {appends} appends, {} fdatasyncs", stats.fdatasyncs);

    // Every acknowledged record is on disk at the index it was given.
    Arc::into_inner(handle).unwrap().close();
    let (wal, report) = Wal::open(dir.path(), o).unwrap();
    assert_eq!(report.records, appends);
    for (index, tag) in written {
        assert_eq!(wal.read(index).unwrap().payload, tag.to_le_bytes().repeat(32));
    }
}

#[tokio::test]
async fn always_policy_syncs_every_append() {
    let dir = tempfile::tempdir().unwrap();
    let o = WalOptions { fsync: FsyncPolicy::Always, ..WalOptions::default() };
    let handle = WalHandle::spawn(Wal::open(dir.path(), o).unwrap().0);
    for i in 0..10 {
        handle.append(batch_of_one(i)).await.unwrap();
    }
    assert_eq!(handle.stats().fdatasyncs, 10);
    assert_eq!(handle.stats().durable_index, 10);
}

#[tokio::test]
async fn interval_policy_acks_at_the_timed_sync() {
    let dir = tempfile::tempdir().unwrap();
    let o = WalOptions { fsync: FsyncPolicy::Interval, fsync_interval_ms: 20, ..WalOptions::default() };
    let handle = WalHandle::spawn(Wal::open(dir.path(), o).unwrap().0);
    let start = std::time::Instant::now();
    let range = handle.append(batch_of_one(1)).await.unwrap();
    assert!(handle.stats().durable_index >= range.end - 1);
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn closing_the_handle_syncs_what_was_queued() {
    let dir = tempfile::tempdir().unwrap();
    let o = WalOptions { fsync: FsyncPolicy::Batch, ..WalOptions::default() };
    let handle = WalHandle::spawn(Wal::open(dir.path(), o.clone()).unwrap().0);
    for i in 0..5 {
        handle.submit(replab::wal::group_commit::Op::Append(batch_of_one(i)), Box::new(|r| assert!(r.is_ok())));
    }
    handle.close();
    let (wal, report) = Wal::open(dir.path(), o).unwrap();
    assert_eq!((report.records, wal.last_index()), (5, 5));
}
