use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_elect_a_leader_within_two_seconds() {
    let c = cluster(5, &[]).await;
    let start = Instant::now();
    let leader = c.await_leader(Duration::from_secs(2)).await;
    assert!(leader.is_some(), "no leader after {:?}", start.elapsed());
    eprintln!("5-node cluster elected node {leader:?} in {:?}", start.elapsed());
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashing_and_restarting_each_node_in_turn_keeps_every_acknowledged_write() {
    let mut c = cluster(5, &["wal.fsync=always"]).await;
    leader(&c).await;
    let mut client = c.client();
    let mut acked = BTreeMap::new();
    let mut seq = 0;
    for victim in c.ids() {
        for _ in 0..20 {
            seq += 1;
            let (key, value) = (format!("k{}", seq % 7), format!("v{seq}"));
            client.put(key.clone(), value.clone()).await.expect("writes succeed with a majority up");
            acked.insert(key, value);
        }
        c.crash(victim).await.unwrap();
        for _ in 0..10 {
            seq += 1;
            let (key, value) = (format!("k{}", seq % 7), format!("v{seq}"));
            client.put(key.clone(), value.clone()).await.expect("four of five nodes form a majority");
            acked.insert(key, value);
        }
        c.restart(victim).await.unwrap();
        leader(&c).await;
    }
    for (key, value) in &acked {
        let read = client.get(key.clone()).await.unwrap();
        assert_eq!(read.value.as_deref(), Some(value.as_bytes()), "acknowledged write to {key} lost");
    }
    // Every replica converges on the same data.
    let applied = c.statuses().await.values().flatten().map(|s| s.policy.commit_index).max().unwrap();
    await_applied(&c, applied, Duration::from_secs(10)).await;
    let digests: Vec<u64> = c.statuses().await.values().flatten().map(|s| s.digest).collect();
    assert!(digests.windows(2).all(|w| w[0] == w[1]), "replicas differ: {digests:?}");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leader_is_replaced_and_acknowledged_writes_survive() {
    let mut c = cluster(3, &[]).await;
    let old = leader(&c).await;
    let mut client = c.client();
    for i in 0..30 {
        client.put(format!("key{i}"), format!("value{i}")).await.unwrap();
    }
    c.crash(old).await.unwrap();
    let new = leader(&c).await;
    assert_ne!(new, old);
    for i in 0..30 {
        let read = client.get(format!("key{i}")).await.unwrap();
        assert_eq!(read.value.as_deref(), Some(format!("value{i}").as_bytes()));
    }
    c.restart(old).await.unwrap();
    let target = c.statuses().await[&new].as_ref().unwrap().policy.commit_index;
    await_applied(&c, target, Duration::from_secs(10)).await;
    c.shutdown().await;
}
