//! A keyed node's incarnation on real files: kept with its state, new when
//! its state is found missing (an empty directory not made for a new
//! cluster, a repaired log), and what that buys the leaderless policy
//! under version vectors: a write after a lost disk is not dropped by the
//! peers as one they have already seen.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use replab::node::storage::{KeyedRecovery, Origin, POLICY_RECORD, recover_keyed};
use replab::wal::{RecordRef, Wal, WalOptions};
use replab_api::{LogPosition, Memory};

use crate::*;

const T0: u64 = 1_700_000_000_000_000;

fn open(dir: &Path, origin: Origin, now_us: u64) -> KeyedRecovery {
    recover_keyed(dir, WalOptions::default(), origin, now_us).expect("recovers")
}

/// One policy record, durable, as the node's loop would write it.
fn write_a_record(dir: &Path) {
    let (mut wal, _) = Wal::open(dir, WalOptions::default()).unwrap();
    wal.append([RecordRef { kind: POLICY_RECORD, payload: b"a record" }]).unwrap();
    wal.sync().unwrap();
}

#[test]
fn a_keyed_node_keeps_its_incarnation_with_its_state_and_takes_a_new_one_when_it_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path(), Origin::NewCluster, T0);
    assert_eq!((first.recovered.incarnation, first.renewed), (0, false), "a new cluster's node");
    drop(first);
    write_a_record(dir.path());
    let again = open(dir.path(), Origin::Existing, T0 + 1);
    assert_eq!((again.recovered.incarnation, again.renewed), (0, false), "its state is all there");
    assert_eq!(again.recovered.records, vec![Bytes::from_static(b"a record")]);
    drop(again);

    // A lost disk: an empty directory nobody vouches for.
    let wiped = tempfile::tempdir().unwrap();
    let reborn = open(wiped.path(), Origin::Existing, T0 + 5);
    assert!(reborn.renewed);
    let incarnation = reborn.recovered.incarnation;
    assert_eq!(incarnation, T0 + 5, "the node's generation: its start time");
    drop(reborn);
    write_a_record(wiped.path());
    let kept = open(wiped.path(), Origin::Existing, T0 + 9);
    assert_eq!((kept.recovered.incarnation, kept.renewed), (incarnation, false), "kept durably");
    drop(kept);

    // A node that crashed before anything was durable cannot tell either:
    // another new incarnation, above the last one even with a clock behind.
    let empty = tempfile::tempdir().unwrap();
    let once = open(empty.path(), Origin::Existing, T0 + 20).recovered.incarnation;
    let twice = open(empty.path(), Origin::Existing, T0 + 10).recovered.incarnation;
    assert!(twice > once, "{twice} after {once}");
}

#[test]
fn a_repaired_keyed_log_gets_a_new_incarnation_once() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path(), Origin::NewCluster, T0));
    write_a_record(dir.path());
    // What `storage::repair` leaves after cutting a damaged log.
    let cut = Memory::Truncated { reached: LogPosition { index: 3, term: 0 } };
    replab::wal::store_memory_in(dir.path(), &postcard::to_allocvec(&cut).unwrap()).unwrap();
    let repaired = open(dir.path(), Origin::Existing, T0 + 1);
    assert!(repaired.renewed, "records it made durable may be gone");
    let incarnation = repaired.recovered.incarnation;
    assert_ne!(incarnation, 0);
    drop(repaired);
    let stored = replab::wal::load_memory_in(dir.path()).unwrap().unwrap();
    assert_eq!(postcard::from_bytes::<Memory>(&stored).unwrap(), Memory::Intact, "the loss is handled");
    let later = open(dir.path(), Origin::Existing, T0 + 2);
    assert_eq!((later.recovered.incarnation, later.renewed), (incarnation, false));
}

/// End to end: with W = 2 of N = 3, node 1 writes, loses its disk,
/// restarts and writes again, blind. Before the fix its second write took
/// the dot (1, 1) its peers held for the first, and they dropped it although
/// it was acknowledged; now both writes are siblings everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_after_a_lost_disk_is_kept_by_the_peers() {
    init_logs();
    let sets = [
        "policy.replication=leaderless",
        "policy.conflict_resolver=version-vector",
        "leaderless.write_quorum=2",
        "leaderless.read_quorum=3",
        "leaderless.anti_entropy_interval_ms=100",
    ];
    let mut c = cluster(3, &sets).await;
    let mut at_one = c.pinned_client(1).unwrap();
    at_one.put("k", "before").await.expect("written");
    c.crash(1).await.unwrap();
    c.wipe(1).unwrap();
    c.restart(1).await.unwrap();
    let mut at_one = c.pinned_client(1).unwrap();
    at_one.put("k", "after").await.expect("written by node 1 and a peer");
    let mut at_two = c.pinned_client(2).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let want = vec![Bytes::from("after"), Bytes::from("before")];
    loop {
        let read = at_two.get("k").await;
        match read {
            Ok(ref r) if r.siblings == want => break,
            _ => {
                assert!(tokio::time::Instant::now() < deadline, "the peers never kept both: {read:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    c.shutdown().await;
}
