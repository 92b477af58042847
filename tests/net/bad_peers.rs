//! Misbehaving connections are closed with a reason; the node keeps
//! serving its other links.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use replab::net::handshake::{self, Credentials, Side};
use replab::net::{FaultTable, NetConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use crate::*;

/// Nodes 1 and 3 run; node 2's address is dead, so the test can play node 2.
async fn two_of_three() -> (TestNode, TestNode) {
    let faults = Arc::new(FaultTable::new(1));
    let (l1, a1) = bind().await;
    let (l2, a2) = bind().await;
    let (l3, a3) = bind().await;
    drop(l2);
    let addrs = BTreeMap::from([(1, a1), (2, a2), (3, a3)]);
    let config = NetConfig::default();
    (start_node(1, l1, &addrs, &faults, &config), start_node(3, l3, &addrs, &faults, &config))
}

async fn authenticated_as_node_2(addr: std::net::SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).await.unwrap();
    let mut framed = Framed::new(stream, LengthDelimitedCodec::new());
    let ok = |_: &handshake::Peer| Ok(());
    handshake::run(&mut framed, &creds(2), Side::Dialer, &ok, Duration::from_secs(5)).await.unwrap();
    framed.into_inner()
}

/// The node closed the connection: reads reach EOF or a reset (after any
/// bytes the node sent first, such as its Hello). The node reads its peers
/// only while its owner polls it, so poll it meanwhile.
async fn assert_closed(mut stream: TcpStream, node: &mut TestNode) {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        tokio::select! {
            read = tokio::time::timeout_at(deadline, stream.read(&mut buf)) => match read {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(_)) => continue,
                Err(_) => panic!("connection still open after 5 s"),
            },
            Some(batch) = node.inbox.recv() => node.pending.extend(batch),
        }
    }
}

/// Node 1 still takes messages from node 3, and logged `reason`.
async fn assert_still_serving(node1: &mut TestNode, node3: &TestNode, reason: &str) {
    node3.net.send(1, replab::net::Kind::Peer, numbered(77)).unwrap();
    let got = recv(node1, Duration::from_secs(5)).await.expect("node 1 still serves node 3");
    assert_eq!((got.from, number_of(&got)), (3, 77));
    let errors = node1.net.recent_connection_errors();
    assert!(
        errors.iter().any(|e| e.contains(reason)),
        "expected a logged reason containing {reason:?}, got {errors:?}"
    );
}

#[tokio::test]
async fn random_garbage_after_the_handshake_closes_only_that_connection() {
    let (mut n1, n3) = two_of_three().await;
    let mut stream = authenticated_as_node_2(n1.addr).await;
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    stream.write_all(&garbage).await.unwrap();
    // Whether the garbage parses as a too-large frame, a bad header or an
    // unfinished frame, the connection must not survive its end.
    stream.shutdown().await.unwrap();
    assert_closed(stream, &mut n1).await;
    assert_still_serving(&mut n1, &n3, "from node 2").await;
    shutdown(vec![n1, n3]).await;
}

#[tokio::test]
async fn an_oversized_length_prefix_closes_the_connection_without_allocating_it() {
    let (mut n1, n3) = two_of_three().await;
    let mut stream = authenticated_as_node_2(n1.addr).await;
    stream.write_all(&0xFFFF_FFF0u32.to_be_bytes()).await.unwrap();
    stream.write_all(b"tiny").await.unwrap();
    assert_closed(stream, &mut n1).await;
    assert_still_serving(&mut n1, &n3, "exceeds max_frame_bytes").await;
    shutdown(vec![n1, n3]).await;
}

#[tokio::test]
async fn a_truncated_frame_closes_the_connection() {
    let (mut n1, n3) = two_of_three().await;
    let mut stream = authenticated_as_node_2(n1.addr).await;
    stream.write_all(&100u32.to_be_bytes()).await.unwrap();
    stream.write_all(&[1u8; 10]).await.unwrap();
    stream.shutdown().await.unwrap();
    assert_closed(stream, &mut n1).await;
    assert_still_serving(&mut n1, &n3, "in the middle of a frame").await;
    shutdown(vec![n1, n3]).await;
}

#[tokio::test]
async fn a_frame_cut_right_after_its_length_prefix_closes_the_connection() {
    let (mut n1, n3) = two_of_three().await;
    let mut stream = authenticated_as_node_2(n1.addr).await;
    stream.write_all(&100u32.to_be_bytes()).await.unwrap();
    stream.shutdown().await.unwrap();
    assert_closed(stream, &mut n1).await;
    assert_still_serving(&mut n1, &n3, "in the middle of a frame").await;
    shutdown(vec![n1, n3]).await;
}

#[tokio::test]
async fn an_envelope_claiming_another_sender_closes_the_connection() {
    let (mut n1, n3) = two_of_three().await;
    let stream = authenticated_as_node_2(n1.addr).await;
    let mut framed = Framed::new(stream, replab::net::envelope::EnvelopeCodec::new(1 << 20));
    let forged = replab::net::Envelope::new(replab::net::Kind::Peer, 3, 1, numbered(1));
    futures_util::SinkExt::send(&mut framed, forged).await.unwrap();
    assert_closed(framed.into_inner(), &mut n1).await;
    assert_still_serving(&mut n1, &n3, "claiming to be from node 3").await;
    shutdown(vec![n1, n3]).await;
}

async fn handshake_as(creds: Credentials, addr: std::net::SocketAddr, version: u16) -> String {
    let stream = TcpStream::connect(addr).await.unwrap();
    let mut framed = Framed::new(stream, LengthDelimitedCodec::new());
    let ok = |_: &handshake::Peer| Ok(());
    let result =
        handshake::run_as_version(&mut framed, &creds, Side::Dialer, &ok, Duration::from_secs(5), version).await;
    result.expect_err("the node must refuse this handshake").to_string()
}

#[tokio::test]
async fn a_handshake_with_the_wrong_secret_is_refused_and_both_sides_say_why() {
    let (mut n1, n3) = two_of_three().await;
    let wrong = Credentials { secret: "not-the-secret".into(), ..creds(2) };
    let ours = handshake_as(wrong, n1.addr, replab::net::envelope::PROTOCOL_VERSION).await;
    assert!(ours.contains("wrong cluster secret"), "{ours}");
    assert_still_serving(&mut n1, &n3, "wrong cluster secret").await;
    shutdown(vec![n1, n3]).await;
}

#[tokio::test]
async fn a_handshake_with_the_wrong_cluster_id_is_refused() {
    let (mut n1, n3) = two_of_three().await;
    let wrong = Credentials { cluster_id: "other-cluster".into(), ..creds(2) };
    let ours = handshake_as(wrong, n1.addr, replab::net::envelope::PROTOCOL_VERSION).await;
    assert!(ours.contains("cluster id"), "{ours}");
    assert_still_serving(&mut n1, &n3, "cluster id \"other-cluster\"").await;
    shutdown(vec![n1, n3]).await;
}

#[tokio::test]
async fn a_handshake_with_the_wrong_protocol_version_is_refused() {
    let (mut n1, n3) = two_of_three().await;
    let ours = handshake_as(creds(2), n1.addr, 99).await;
    assert!(ours.contains("protocol version"), "{ours}");
    assert_still_serving(&mut n1, &n3, "protocol version 99").await;
    shutdown(vec![n1, n3]).await;
}

#[tokio::test]
async fn a_non_member_is_refused() {
    let (mut n1, n3) = two_of_three().await;
    let ours = handshake_as(creds(9), n1.addr, replab::net::envelope::PROTOCOL_VERSION).await;
    assert!(ours.contains("not a member"), "{ours}");
    assert_still_serving(&mut n1, &n3, "not a member").await;
    shutdown(vec![n1, n3]).await;
}

#[tokio::test]
async fn garbage_instead_of_a_handshake_closes_the_connection() {
    let (mut n1, n3) = two_of_three().await;
    let mut stream = TcpStream::connect(n1.addr).await.unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: replab\r\n\r\n").await.unwrap();
    assert_closed(stream, &mut n1).await;
    assert_still_serving(&mut n1, &n3, "handshake failed").await;
    shutdown(vec![n1, n3]).await;
}
