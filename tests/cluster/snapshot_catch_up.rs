use std::time::Duration;

use crate::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_down_during_compaction_catches_up_through_a_snapshot() {
    let mut c = cluster(3, &["raft.snapshot_threshold_entries=50"]).await;
    let l = leader(&c).await;
    let follower = c.ids().into_iter().find(|id| *id != l).unwrap();
    let mut client = c.client();
    client.put("before", "down").await.unwrap();
    c.crash(follower).await.unwrap();
    for i in 0..300 {
        client.put(format!("k{}", i % 40), format!("v{i}")).await.unwrap();
    }
    let leader_status = c.statuses().await[&l].clone().unwrap();
    assert!(leader_status.policy.first_index > 2, "the leader compacted its log: {:?}", leader_status.policy);

    c.restart(follower).await.unwrap();
    await_applied(&c, leader_status.policy.commit_index, Duration::from_secs(15)).await;
    let statuses = c.statuses().await;
    let restarted = statuses[&follower].as_ref().unwrap();
    assert!(restarted.stats.snapshots_installed >= 1, "caught up through a snapshot: {:?}", restarted.stats);
    assert_eq!(restarted.digest, statuses[&l].as_ref().unwrap().digest, "same data as the leader");

    // It then resumes from the log: later writes arrive as entries.
    let installed = restarted.stats.snapshots_installed;
    client.put("after", "up").await.unwrap();
    let commit = c.statuses().await[&l].as_ref().unwrap().policy.commit_index;
    await_applied(&c, commit, Duration::from_secs(10)).await;
    let later = c.statuses().await[&follower].clone().unwrap();
    assert_eq!(later.stats.snapshots_installed, installed, "no second snapshot for one more entry");
    let read = client
        .get_stale(c.client_addr(follower).unwrap(), "after")
        .await
        .expect("a stale read from the restarted follower");
    assert_eq!(read.value.as_deref(), Some(&b"up"[..]));
    c.shutdown().await;
}
