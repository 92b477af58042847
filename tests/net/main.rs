//! The transport over real TCP on 127.0.0.1.

mod bad_peers;
mod delivery;
mod faults;
mod outbox;
mod reconnect;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use replab::net::{Credentials, FaultTable, Inbound, Incoming, Kind, NetConfig, Network, NetworkSetup, Role};
use tokio::net::TcpListener;

pub const SECRET: &str = "test-secret";
pub const CLUSTER: &str = "test-cluster";

pub fn creds(id: u64) -> Credentials {
    Credentials { cluster_id: CLUSTER.into(), secret: SECRET.into(), node_id: id, role: Role::Peer }
}

pub struct TestNode {
    pub id: u64,
    pub addr: SocketAddr,
    pub net: Network,
    pub inbox: Incoming,
    /// Messages of a received batch not yet handed to the test.
    pub pending: std::collections::VecDeque<Inbound>,
}

pub async fn bind() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

pub fn start_node(
    id: u64,
    listener: TcpListener,
    addrs: &BTreeMap<u64, SocketAddr>,
    faults: &Arc<FaultTable>,
    config: &NetConfig,
) -> TestNode {
    let addr = listener.local_addr().unwrap();
    let peers = addrs.iter().filter(|(p, _)| **p != id).map(|(p, a)| (*p, *a)).collect();
    let (net, inbox) = Network::start(NetworkSetup {
        creds: creds(id),
        config: config.clone(),
        listener,
        peers,
        faults: Arc::clone(faults),
        seed: 42,
    });
    TestNode { id, addr, net, inbox, pending: Default::default() }
}

/// Starts nodes 1..=n on loopback ports, all connected to each other.
pub async fn start_cluster(n: u64, faults: &Arc<FaultTable>) -> Vec<TestNode> {
    start_cluster_with(n, faults, &NetConfig::default()).await
}

pub async fn start_cluster_with(n: u64, faults: &Arc<FaultTable>, config: &NetConfig) -> Vec<TestNode> {
    let mut listeners = Vec::new();
    let mut addrs = BTreeMap::new();
    for id in 1..=n {
        let (l, a) = bind().await;
        listeners.push((id, l));
        addrs.insert(id, a);
    }
    listeners.into_iter().map(|(id, l)| start_node(id, l, &addrs, faults, config)).collect()
}

pub async fn recv(node: &mut TestNode, within: Duration) -> Option<Inbound> {
    if node.pending.is_empty() {
        let batch = tokio::time::timeout(within, node.inbox.recv()).await.ok().flatten()?;
        node.pending.extend(batch);
    }
    node.pending.pop_front()
}

/// Collects what arrives until `quiet` passes with nothing new.
pub async fn drain(node: &mut TestNode, quiet: Duration) -> Vec<Inbound> {
    let mut got = Vec::new();
    while let Some(m) = recv(node, quiet).await {
        got.push(m);
    }
    got
}

/// Collects what arrives when something is expected: waits up to 10 s for
/// the first message, since on a loaded machine the link may still be
/// connecting, then until half a second passes with nothing new. A fixed
/// quiet period alone would return empty-handed from a slow connect.
pub async fn collect(node: &mut TestNode) -> Vec<Inbound> {
    let Some(first) = recv(node, Duration::from_secs(10)).await else {
        return Vec::new();
    };
    let mut got = vec![first];
    got.extend(drain(node, Duration::from_millis(500)).await);
    got
}

/// Waits until `node`'s link to `peer` is up, so sends are not queued
/// behind the first connection.
pub async fn wait_connected(node: &TestNode, peer: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !node.net.stats()[&peer].connected {
        assert!(tokio::time::Instant::now() < deadline, "node {} never connected to {peer}", node.id);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub fn numbered(i: u64) -> Bytes {
    Bytes::copy_from_slice(&i.to_le_bytes())
}

pub fn number_of(m: &Inbound) -> u64 {
    u64::from_le_bytes(m.payload[..8].try_into().unwrap())
}

pub fn send_numbered(from: &TestNode, to: u64, range: std::ops::Range<u64>) {
    for i in range {
        from.net.send(to, Kind::Peer, numbered(i)).unwrap();
    }
}

pub async fn shutdown(nodes: Vec<TestNode>) {
    for node in nodes {
        node.net.shutdown().await;
    }
}
