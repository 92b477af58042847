use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use replab::client::protocol::{Request, RequestBody};
use replab::kv::{WriteOp, WriteResult};
use replab::net::{ClientConnection, Credentials, NetConfig, Role};

use crate::*;

/// The increment reaches a majority and is applied, the leader dies before
/// the client hears back, and the client retries the same (session, seq)
/// at the new leader: the session answers with the first result and the
/// counter moves once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_increment_after_leader_crash_applies_exactly_once() {
    let mut c = cluster(3, &["wal.fsync=always"]).await;
    let old = leader(&c).await;
    let mut client = c.client();
    client.register().await.unwrap();
    client.incr("counter", 10).await.unwrap();

    let seq = client.next_seq();
    let op = WriteOp::Incr { key: Bytes::from_static(b"counter"), by: 1 };
    let follower = c.ids().into_iter().find(|id| *id != old).unwrap();
    let before = c.statuses().await[&follower].as_ref().unwrap().policy.applied_index;
    send_without_waiting(&c, c.client_addr(old).unwrap(), client.session().unwrap(), seq, op.clone()).await;
    // Crash the leader once a follower applied the increment: it is
    // committed, and the client has read no reply.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while c.statuses().await[&follower].as_ref().unwrap().policy.applied_index <= before {
        assert!(tokio::time::Instant::now() < deadline, "the increment never reached the follower");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    c.crash(old).await.unwrap();

    let retried = client.write_with_seq(seq, op).await.expect("the retry is answered");
    assert!(retried.duplicate, "the new leader answered from the session instead of applying again");
    assert!(matches!(retried.result, WriteResult::Incr { value: 11, .. }), "{:?}", retried.result);
    let read = client.get("counter").await.unwrap();
    assert_eq!(read.value.as_deref(), Some(&b"11"[..]), "applied exactly once");
    c.shutdown().await;
}

/// Sends one write on its own connection and never reads the answer: the
/// client "crashed" before the reply arrived.
async fn send_without_waiting(c: &replab::cluster::Cluster, node: SocketAddr, session: u64, seq: u64, op: WriteOp) {
    let settings = c.settings();
    let creds = Credentials {
        cluster_id: settings.cluster.id.clone(),
        secret: settings.cluster.secret.clone(),
        node_id: 4242,
        role: Role::Client,
    };
    let mut conn = ClientConnection::connect(node, &creds, &NetConfig::default()).await.unwrap();
    let request = Request { id: 1, body: RequestBody::Write { client: session, seq, ack_below: seq, op } };
    conn.send(request.encode()).await.unwrap();
    // Keep the connection open (unread) until the node is crashed.
    tokio::spawn(async move {
        let _ = conn.recv().await;
    });
}
