//! Primary-backup on the real engine: loopback TCP, real files.

use replab::client::protocol::Consistency;

use crate::*;

/// A read is labelled with the guarantee it has: quorum mode confirms the
/// primary still leads before answering (linearizable); async answers at
/// once, and a deposed primary would not know it, so its reads are labelled
/// unconfirmed rather than linearizable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_at_the_primary_are_labelled_with_the_guarantee_the_mode_gives() {
    for (mode, expected) in [("quorum", Consistency::Linearizable), ("async", Consistency::Unconfirmed)] {
        let mode_set = format!("primary_backup.mode={mode}");
        let mut c = cluster(3, &["policy.replication=primary-backup", &mode_set]).await;
        leader(&c).await;
        let mut client = c.client();
        client.put("k", "v").await.expect("a write through the primary");
        let read = client.get("k").await.expect("a read through the primary");
        assert_eq!(read.value.as_deref(), Some(&b"v"[..]), "{mode}");
        assert_eq!(read.consistency, expected, "{mode}");
        c.shutdown().await;
    }
}
