use std::time::{Duration, Instant};

use bytes::Bytes;
use replab::client::ClientError;
use replab::client::protocol::{ErrorKind, Request, RequestBody, Response, ResponseBody};
use replab::kv::{KvError, WriteOp};
use replab::net::{ClientConnection, Credentials, NetConfig, Role};

use crate::*;

async fn raw_connection(c: &replab::cluster::Cluster, node: u64) -> ClientConnection {
    let s = c.settings();
    let creds = Credentials {
        cluster_id: s.cluster.id.clone(),
        secret: s.cluster.secret.clone(),
        node_id: 9,
        role: Role::Client,
    };
    ClientConnection::connect(c.client_addr(node).unwrap(), &creds, &NetConfig::default()).await.unwrap()
}

async fn answer(conn: &mut ClientConnection) -> Response {
    let bytes = tokio::time::timeout(Duration::from_secs(5), conn.recv()).await.unwrap().unwrap().unwrap();
    Response::decode(&bytes).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_request_gets_a_clear_error_and_the_node_keeps_serving() {
    let mut c = cluster(3, &[]).await;
    let l = leader(&c).await;
    let mut client = c.client();
    client.put("kept", "yes").await.unwrap();
    let mut conn = raw_connection(&c, l).await;
    conn.send(Bytes::from_static(b"\xff\xfe not a request")).await.unwrap();
    let response = answer(&mut conn).await;
    let ResponseBody::Error { kind, message } = response.body else { panic!("{response:?}") };
    assert_eq!(kind, ErrorKind::BadRequest);
    assert!(message.contains("undecodable request"), "{message}");
    // The same connection and the node still work, and nothing was lost.
    conn.send(Request { id: 7, body: RequestBody::Status }.encode()).await.unwrap();
    assert!(matches!(answer(&mut conn).await.body, ResponseBody::Status(_)));
    assert_eq!(client.get("kept").await.unwrap().value.as_deref(), Some(&b"yes"[..]));
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_over_the_limit_is_refused_and_nothing_is_written() {
    let mut c = cluster(3, &["node.max_value_bytes=1000"]).await;
    leader(&c).await;
    let mut client = c.client();
    let err = client.put("big", vec![b'x'; 1001]).await.unwrap_err();
    let ClientError::Failed(message) = &err else { panic!("{err:?}") };
    assert!(message.contains("value of 1001 bytes is above the limit of 1000 bytes"), "{message}");
    assert_eq!(client.get("big").await.unwrap().value, None);
    client.put("small", vec![b'x'; 1000]).await.expect("at the limit is fine");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_sent_to_a_follower_is_redirected_to_the_leader() {
    let c = cluster(3, &[]).await;
    let l = leader(&c).await;
    // A follower can name the leader only once it has heard from it, and
    // the majority that agreed on `l` need not include both followers.
    let deadline = Instant::now() + Duration::from_secs(10);
    let follower = loop {
        let statuses = c.statuses().await;
        let knows = statuses.iter().find(|(id, s)| **id != l && s.as_ref().is_some_and(|s| s.policy.leader == Some(l)));
        if let Some((id, _)) = knows {
            break *id;
        }
        assert!(Instant::now() < deadline, "no follower learned of leader {l}: {statuses:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let mut conn = raw_connection(&c, follower).await;
    let op = WriteOp::Put { key: Bytes::from_static(b"k"), value: Bytes::from_static(b"v") };
    conn.send(
        Request { id: 3, body: RequestBody::Write { client: 1, seq: 1, ack_below: 1, op, context: None } }.encode(),
    )
    .await
    .unwrap();
    let response = answer(&mut conn).await;
    let leader_addr = c.client_addr(l).unwrap().to_string();
    assert_eq!(response.body, ResponseBody::Redirect { leader: Some(l), leader_addr: Some(leader_addr) });
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_session_gets_a_clear_error() {
    let c = cluster(3, &[]).await;
    leader(&c).await;
    let mut c = c;
    let mut forged = c.client();
    forged.resume_session(999_999, 1);
    let err = forged.put("k", "v").await.unwrap_err();
    assert_eq!(err, ClientError::Refused(KvError::UnknownSession { client: 999_999 }));
    assert!(err.to_string().contains("session 999999 is unknown; register a new session"), "{err}");
    let mut honest = c.client();
    assert_eq!(honest.get("k").await.unwrap().value, None, "the refused write changed nothing");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_gets_a_clear_error() {
    let mut c = cluster(3, &["kv.session_expiry_ms=1000"]).await;
    leader(&c).await;
    let mut idle = c.client();
    idle.put("a", "1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    // Another client's write moves the replicated clock past the expiry.
    let mut busy = c.client();
    busy.put("b", "2").await.unwrap();
    let err = idle.put("a", "2").await.unwrap_err();
    let ClientError::Refused(KvError::SessionExpired { idle_ms, .. }) = &err else { panic!("{err:?}") };
    assert!(*idle_ms >= 1_000);
    assert!(err.to_string().contains("register a new session"), "{err}");
    assert_eq!(busy.get("a").await.unwrap().value.as_deref(), Some(&b"1"[..]), "the refused write changed nothing");
    c.shutdown().await;
}
