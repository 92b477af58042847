//! The leaderless policy on the real engine: loopback TCP, real files.

use std::time::Duration;

use replab::cluster::Cluster;

use crate::*;

async fn leaderless(sets: &[&str]) -> Cluster {
    let mut all = vec![
        "policy.replication=leaderless",
        "policy.conflict_resolver=version-vector",
        "wal.fsync=always",
        // Recovery must come from the node's own disk, not from its peers.
        "leaderless.read_repair=false",
        "leaderless.anti_entropy_interval_ms=0",
    ];
    all.extend_from_slice(sets);
    cluster(3, &all).await
}

/// Issue 12: a node restarted after kill -9 keeps every version it
/// acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_and_restarted_keeps_every_version_it_acknowledged() {
    // W = 3: every replica acknowledged every write.
    let mut c = leaderless(&["leaderless.write_quorum=3"]).await;
    let mut client = c.client();
    for i in 0..50 {
        client.put(format!("k{i}"), format!("v{i}")).await.expect("acknowledged by all three replicas");
    }
    let victim = 2;
    let before = c.node(victim).unwrap().replicas().await.unwrap();
    assert_eq!(before.len(), 50);
    c.crash(victim).await.unwrap();
    c.restart(victim).await.unwrap();
    let after = c.node(victim).unwrap().replicas().await.unwrap();
    assert_eq!(after, before, "the restarted replica holds exactly what it acknowledged");
    // Power loss too: with fsync = always nothing acknowledged was unsynced.
    c.power_loss(victim).await.unwrap();
    c.restart(victim).await.unwrap();
    assert_eq!(c.node(victim).unwrap().replicas().await.unwrap(), before);
    c.shutdown().await;
}

/// Siblings and contexts through the real client protocol.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_come_back_as_siblings_and_a_write_with_their_context_resolves_them() {
    let mut c = leaderless(&["leaderless.write_quorum=1", "leaderless.read_quorum=3"]).await;
    let mut left = c.pinned_client(1).unwrap();
    let mut right = c.pinned_client(3).unwrap();
    c.faults().partition(&[1], &[2, 3]);
    left.put("k", "left").await.unwrap();
    right.put("k", "right").await.unwrap();
    c.faults().heal();
    // Each side's replica holds its own value; a read of all three merges.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let read = loop {
        match right.get("k").await {
            Ok(read) if read.siblings.len() == 2 => break read,
            other => {
                assert!(tokio::time::Instant::now() < deadline, "never saw both: {other:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(read.siblings, vec![bytes::Bytes::from("left"), bytes::Bytes::from("right")]);
    assert_eq!(read.value, None, "several values are not one");
    let op = replab::kv::WriteOp::Put { key: "k".into(), value: "resolved".into() };
    right.write_with_context(op, read.context.clone()).await.unwrap();
    let read = right.get("k").await.unwrap();
    assert_eq!(read.siblings, vec![bytes::Bytes::from("resolved")]);
    // Compare-and-set has no meaning without one order of writes.
    let err = right.cas("k", None, "x").await.unwrap_err().to_string();
    assert!(err.contains("leaderless"), "{err}");
    c.shutdown().await;
}

/// A log written by one shape of policy is refused by the other, naming why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_written_by_raft_is_refused_by_leaderless() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("cluster.data_dir={}", dir.path().display());
    let mut c = cluster(1, &[&data]).await;
    c.client().put("k", "v").await.unwrap();
    c.shutdown().await;
    let refused = Cluster::start(settings(
        1,
        &[
            &data,
            "policy.replication=leaderless",
            "policy.conflict_resolver=lww",
            "leaderless.replicas=1",
            "leaderless.write_quorum=1",
            "leaderless.read_quorum=1",
        ],
    ))
    .await;
    let err = refused.err().expect("refused").to_string();
    assert!(err.contains("kind 1") && err.contains("another policy"), "{err}");
}
