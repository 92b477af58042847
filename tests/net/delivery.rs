use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use replab::client::protocol::{ErrorKind, Response, ResponseBody};
use replab::net::{ClientCall, ClientConnection, ClientListener, Credentials, FaultTable, Kind, NetConfig, Role};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::*;

#[tokio::test]
async fn peer_and_admin_envelopes_make_the_round_trip() {
    let faults = Arc::new(FaultTable::new(1));
    let mut nodes = start_cluster(2, &faults).await;
    nodes[0].net.send(2, Kind::Peer, Bytes::from_static(b"to two")).unwrap();
    nodes[0].net.send(2, Kind::Admin, Bytes::from_static(b"admin")).unwrap();
    let a = recv(&mut nodes[1], Duration::from_secs(5)).await.unwrap();
    let b = recv(&mut nodes[1], Duration::from_secs(5)).await.unwrap();
    assert_eq!((a.from, a.kind, &a.payload[..]), (1, Kind::Peer, &b"to two"[..]));
    assert_eq!((b.from, b.kind, &b.payload[..]), (1, Kind::Admin, &b"admin"[..]));
    nodes[1].net.send(1, Kind::Peer, Bytes::from_static(b"back")).unwrap();
    let c = recv(&mut nodes[0], Duration::from_secs(5)).await.unwrap();
    assert_eq!((c.from, &c.payload[..]), (2, &b"back"[..]));
    assert!(nodes[0].net.send(9, Kind::Peer, Bytes::new()).is_err(), "unknown peer is an error");
    shutdown(nodes).await;
}

/// An echo server on the client port: each request's bytes come back in
/// a response whose id is the request's first byte.
async fn echo_server() -> (std::net::SocketAddr, CancellationToken, TaskTracker) {
    let (listener, addr) = bind().await;
    let (calls_tx, mut calls) = mpsc::channel::<ClientCall>(64);
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let server = Arc::new(ClientListener {
        creds: creds(1),
        config: NetConfig::default(),
        calls: calls_tx,
        cancel: cancel.clone(),
        tracker: tracker.clone(),
    });
    tracker.spawn(server.run(listener));
    tracker.spawn(async move {
        while let Some(call) = calls.recv().await {
            let id = call.payload.first().copied().unwrap_or_default().into();
            let message = format!("echo:{:?}", &call.payload[..]);
            let body = ResponseBody::Error { kind: ErrorKind::BadRequest, message };
            let _ = call.reply.send(Response { id, body }).await;
        }
    });
    (addr, cancel, tracker)
}

fn client_creds() -> Credentials {
    Credentials { role: Role::Client, node_id: 7_000, ..creds(7_000) }
}

#[tokio::test]
async fn client_request_and_response_envelopes_make_the_round_trip() {
    let (addr, cancel, tracker) = echo_server().await;
    let mut conn = ClientConnection::connect(addr, &client_creds(), &NetConfig::default()).await.unwrap();
    assert_eq!(conn.node_id(), 1);
    // Pipelined: several requests before any response.
    for i in 0..10u8 {
        conn.send(Bytes::from(vec![i])).await.unwrap();
    }
    for i in 0..10u8 {
        let response = Response::decode(&conn.recv().await.unwrap().unwrap()).unwrap();
        let body = ResponseBody::Error { kind: ErrorKind::BadRequest, message: format!("echo:{:?}", [i]) };
        assert_eq!(response, Response { id: i.into(), body });
    }
    cancel.cancel();
    tracker.close();
    tracker.wait().await;
}

#[tokio::test]
async fn a_peer_cannot_use_the_client_port_nor_a_client_the_peer_port() {
    let (addr, cancel, tracker) = echo_server().await;
    let err = ClientConnection::connect(addr, &creds(2), &NetConfig::default()).await.err().unwrap();
    assert!(err.to_string().contains("client port"), "{err}");
    cancel.cancel();
    tracker.close();
    tracker.wait().await;

    let faults = Arc::new(FaultTable::new(1));
    let nodes = start_cluster(1, &faults).await;
    let err = ClientConnection::connect(nodes[0].addr, &client_creds(), &NetConfig::default()).await.err().unwrap();
    assert!(err.to_string().contains("peer port"), "{err}");
    shutdown(nodes).await;
}

#[tokio::test]
async fn a_frame_of_several_mib_is_delivered_whole() {
    let faults = Arc::new(FaultTable::new(1));
    let mut nodes = start_cluster(2, &faults).await;
    let big: Vec<u8> = (0..6 * 1024 * 1024).map(|i: u32| (i % 251) as u8).collect();
    nodes[0].net.send(2, Kind::Peer, Bytes::from(big.clone())).unwrap();
    let got = recv(&mut nodes[1], Duration::from_secs(10)).await.unwrap();
    assert_eq!(got.payload.len(), big.len());
    assert!(got.payload == big, "payload arrives byte for byte");
    shutdown(nodes).await;
}

#[tokio::test]
async fn many_messages_arrive_in_order_and_are_counted() {
    let faults = Arc::new(FaultTable::new(1));
    let mut nodes = start_cluster(2, &faults).await;
    wait_connected(&nodes[0], 2).await;
    // Bursts below the queue's capacity, so the drop-oldest policy never
    // has to act (`a_full_queue_drops_the_oldest_frames` shows it does).
    for burst in 0..5 {
        send_numbered(&nodes[0], 2, burst * 1_000..(burst + 1) * 1_000);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = collect(&mut nodes[1]).await;
    let numbers: Vec<u64> = got.iter().map(number_of).collect();
    assert!(numbers == (0..5_000).collect::<Vec<_>>(), "got {} messages, first {:?}", numbers.len(), numbers.first());
    let out = nodes[0].net.stats()[&2];
    let inn = nodes[1].net.stats()[&1];
    assert_eq!((out.frames_out, inn.frames_in), (5_000, 5_000));
    assert_eq!(out.bytes_out, inn.bytes_in);
    assert!(out.connected);
    shutdown(nodes).await;
}
