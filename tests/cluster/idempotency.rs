use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use replab::client::protocol::{Request, RequestBody};
use replab::client::{Client, ClientError, ClientOptions};
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
    let request =
        Request { id: 1, body: RequestBody::Write { client: session, seq, ack_below: seq, op, context: None } };
    conn.send(request.encode()).await.unwrap();
    // Keep the connection open (unread) until the node is crashed.
    tokio::spawn(async move {
        let _ = conn.recv().await;
    });
}

/// Issue 10, defect 5: the first attempt of a write commits, but its reply
/// is lost; the client's retry arrives after the session's expiry and is
/// refused. The write was applied, so the client must say "unknown", never
/// "failed".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_retry_of_a_write_that_may_have_applied_is_unknown_not_failed() {
    let c = cluster(3, &["kv.session_expiry_ms=1000"]).await;
    let old = leader(&c).await;
    // The client retries every 1.5 s, longer than the session's expiry.
    let settings = c.settings().clone();
    let mut client = Client::new(ClientOptions {
        nodes: c.client_addrs(),
        cluster_id: settings.cluster.id.clone(),
        secret: settings.cluster.secret.clone(),
        net: settings.net.clone(),
        op_timeout: Duration::from_secs(10),
        attempt_timeout: Duration::from_millis(1_500),
        name: 99,
        pinned: false,
    });
    client.put("warm", "up").await.unwrap();

    // No follower can acknowledge anything: the first attempt is
    // proposed but cannot commit, and its reply never comes.
    let followers: Vec<u64> = c.ids().into_iter().filter(|id| *id != old).collect();
    for f in &followers {
        c.faults().cut(*f, old);
    }
    let put = tokio::spawn(async move {
        let result = client.put("k", "v1").await;
        (client, result)
    });
    // After the first retry was proposed, the links heal: the first
    // attempt's entry commits and applies, then the retry's, whose
    // timestamp is 1.5 s later: the session expired in between.
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    c.faults().heal();
    let (mut client, result) = put.await.unwrap();
    eprintln!("the write ended as {result:?}");
    let read = client.get("k").await.expect("read after heal");
    assert_eq!(read.value.as_deref(), Some(&b"v1"[..]), "the first attempt was applied");
    match result {
        Err(ClientError::Unknown(why)) => assert!(why.contains("may have been applied"), "{why}"),
        Ok(written) => assert!(written.duplicate, "answered from the session: {written:?}"),
        Err(other) => panic!("an applied write was reported as {other:?}"),
    }
    c.shutdown().await;
}
