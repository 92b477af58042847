//! The transport: length-prefixed frames over TCP between authenticated
//! nodes, with a fault layer for experiments.
//!
//! * `envelope`: the frame format and codec (tokio-util
//!   `LengthDelimitedCodec`, postcard header, opaque payload).
//! * `handshake`: protocol version, cluster id, node id and an HMAC-SHA256
//!   proof of the shared secret, before any message.
//! * `link`: one outbound link per peer with a bounded drop-oldest queue,
//!   write coalescing and reconnection with jittered backoff.
//! * `listener`: the peer port; `client_port`: the client port.
//! * `fault`: drop, delay, duplicate, reorder and one-way cuts, seeded.
//!
//! [`Network`] ties them together for one node: it owns the tasks, and
//! [`Network::shutdown`] stops every one of them.

mod accept;
mod backoff;
pub mod client_port;
pub mod envelope;
pub mod fault;
pub mod handshake;
mod link;
mod listener;
pub mod stats;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use replab_api::NodeId;

pub use client_port::{ClientCall, ClientConnection, ClientListener};
pub use envelope::{Envelope, Kind};
pub use fault::{Delay, FaultTable, LinkFaults};
pub use handshake::{Credentials, Role};
pub use listener::Incoming;
pub use stats::LinkStats;

use link::{LinkSetup, PeerLink, Staging};
use listener::PeerListener;
use stats::{ConnectionLog, LinkCounters};

/// Transport settings (the `[net]` config section).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetConfig {
    pub max_frame_bytes: usize,
    pub outbound_queue_frames: usize,
    pub write_buffer_bytes: usize,
    pub connect_timeout_ms: u64,
    pub handshake_timeout_ms: u64,
    pub reconnect_backoff_min_ms: u64,
    pub reconnect_backoff_max_ms: u64,
}

impl Default for NetConfig {
    fn default() -> NetConfig {
        NetConfig {
            max_frame_bytes: 16 * 1024 * 1024,
            outbound_queue_frames: 4096,
            write_buffer_bytes: 256 * 1024,
            connect_timeout_ms: 1_000,
            handshake_timeout_ms: 2_000,
            reconnect_backoff_min_ms: 10,
            reconnect_backoff_max_ms: 1_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("timed out: {0}")]
    Timeout(String),
    #[error(transparent)]
    Handshake(#[from] handshake::HandshakeError),
    #[error("bad frame: {0}")]
    Frame(String),
    #[error("node {0} is not a peer of this node")]
    UnknownPeer(NodeId),
}

/// A message that arrived from an authenticated peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inbound {
    pub from: NodeId,
    pub kind: Kind,
    pub payload: Bytes,
}

/// A caller's staged messages, one buffer per peer: see [`Network::stage`].
#[derive(Debug)]
pub struct Outbox {
    staged: BTreeMap<NodeId, Staging>,
}

impl Outbox {
    /// Nothing is staged.
    pub fn is_empty(&self) -> bool {
        self.staged.values().all(Staging::is_empty)
    }
}

/// One node's view of the network.
pub struct Network {
    me: NodeId,
    links: BTreeMap<NodeId, PeerLink>,
    counters: Arc<BTreeMap<NodeId, Arc<LinkCounters>>>,
    log: Arc<ConnectionLog>,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

/// Everything `Network::start` needs.
pub struct NetworkSetup {
    pub creds: Credentials,
    pub config: NetConfig,
    /// Bound by the caller, so tests and clusters can pick port 0.
    pub listener: TcpListener,
    pub peers: BTreeMap<NodeId, SocketAddr>,
    pub faults: Arc<FaultTable>,
    pub seed: u64,
}

impl Network {
    /// Starts the listener and one link per peer. The returned `Incoming`
    /// yields what peers send; the caller's task reads it directly.
    pub fn start(setup: NetworkSetup) -> (Network, Incoming) {
        let me = setup.creds.node_id;
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let counters: BTreeMap<NodeId, Arc<LinkCounters>> =
            setup.peers.keys().map(|id| (*id, Arc::new(LinkCounters::default()))).collect();
        let counters = Arc::new(counters);
        let log = Arc::new(ConnectionLog::default());
        let mut links = BTreeMap::new();
        for (&peer, &addr) in &setup.peers {
            let link_setup = LinkSetup {
                creds: setup.creds.clone(),
                peer,
                addr,
                config: setup.config.clone(),
                faults: Arc::clone(&setup.faults),
                counters: Arc::clone(&counters[&peer]),
                log: Arc::clone(&log),
                cancel: cancel.clone(),
                seed: setup.seed ^ (me << 32) ^ peer,
            };
            links.insert(peer, PeerLink::spawn(link_setup, &tracker));
        }
        let (accepted_tx, accepted) = mpsc::channel(64);
        let incoming = Incoming::new(me, cancel.clone(), accepted, Arc::clone(&log));
        let listener = Arc::new(PeerListener {
            creds: setup.creds,
            config: setup.config,
            counters: Arc::clone(&counters),
            accepted: accepted_tx,
            log: Arc::clone(&log),
            cancel: cancel.clone(),
            tracker: tracker.clone(),
        });
        tracker.spawn(listener.run(setup.listener));
        (Network { me, links, counters, log, cancel, tracker }, incoming)
    }

    pub fn id(&self) -> NodeId {
        self.me
    }

    /// Queues a message for `to`. Never blocks; see `link` for the queue
    /// policy.
    pub fn send(&self, to: NodeId, kind: Kind, payload: Bytes) -> Result<(), NetError> {
        let link = self.links.get(&to).ok_or(NetError::UnknownPeer(to))?;
        link.send(kind, payload);
        Ok(())
    }

    /// An empty outbox for this network's peers; see [`Network::stage`].
    pub fn outbox(&self) -> Outbox {
        Outbox { staged: self.links.keys().map(|peer| (*peer, Staging::default())).collect() }
    }

    /// Stages a message for `to` in `outbox`; it is written at the next
    /// [`Network::flush`]. A caller that sends many messages in one turn
    /// (the node's event loop) gets one write per peer for all of them, and
    /// touches each link's shared state once per turn rather than once per
    /// message. Messages staged for one peer keep their order; they are not
    /// ordered with messages sent with [`Network::send`] before the flush.
    pub fn stage(&self, outbox: &mut Outbox, to: NodeId, kind: Kind, payload: Bytes) -> Result<(), NetError> {
        let unknown = || NetError::UnknownPeer(to);
        let link = self.links.get(&to).ok_or_else(unknown)?;
        let staging = outbox.staged.get_mut(&to).ok_or_else(unknown)?;
        link.stage(staging, kind, payload);
        Ok(())
    }

    /// Writes everything staged in `outbox`, from the caller's thread; a
    /// link's writer task takes over only what its socket cannot take.
    pub fn flush(&self, outbox: &mut Outbox) {
        for (peer, staging) in &mut outbox.staged {
            if let Some(link) = self.links.get(peer) {
                link.flush_staged(staging);
            }
        }
    }

    /// Frames queued for `to` and not yet taken by its writer; lets a bulk
    /// sender pace itself instead of overflowing the drop-oldest queue.
    pub fn queued(&self, to: NodeId) -> usize {
        self.links.get(&to).map_or(0, PeerLink::queued)
    }

    /// Waits until fewer than `frames` are queued for `to`.
    pub async fn wait_for_room(&self, to: NodeId, frames: usize) -> Result<(), NetError> {
        let link = self.links.get(&to).ok_or(NetError::UnknownPeer(to))?;
        link.wait_for_room(frames).await;
        Ok(())
    }

    pub fn stats(&self) -> BTreeMap<NodeId, LinkStats> {
        self.counters.iter().map(|(id, c)| (*id, c.snapshot())).collect()
    }

    /// Why connections were refused or closed lately, newest last.
    pub fn recent_connection_errors(&self) -> Vec<String> {
        self.log.recent()
    }

    /// Stops the listener, every link and every handshake, and waits for
    /// their tasks to end. Inbound connections close when `Incoming` is
    /// next polled or dropped.
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}
