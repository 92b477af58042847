//! The peer port: accepts connections, authenticates them, and delivers
//! their messages to the node's inbox.
//!
//! Each connection runs in its own task. Anything wrong with one (a failed
//! handshake, a garbage or oversized frame, an envelope that lies about its
//! sender) closes that connection with a logged reason; the listener and
//! every other connection carry on.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::{Framed, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

/// Most messages delivered to the inbox in one batch.
const MAX_BATCH: usize = 1024;

/// Bytes asked of each socket read.
const READ_CHUNK_BYTES: usize = 64 * 1024;

use replab_api::NodeId;

use super::envelope::{Envelope, Kind, PROTOCOL_VERSION};
use super::handshake::{self, Credentials, Role, Side};
use super::link::into_envelope_framed;
use super::stats::{ConnectionLog, LinkCounters};
use super::{Inbound, NetConfig};

pub struct PeerListener {
    pub creds: Credentials,
    pub config: NetConfig,
    pub counters: Arc<BTreeMap<NodeId, Arc<LinkCounters>>>,
    pub inbox: mpsc::Sender<Vec<Inbound>>,
    pub log: Arc<ConnectionLog>,
    pub cancel: CancellationToken,
    pub tracker: TaskTracker,
}

impl PeerListener {
    pub async fn run(self: Arc<Self>, listener: TcpListener) {
        loop {
            let accepted = tokio::select! {
                _ = self.cancel.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, addr)) => {
                    let me = Arc::clone(&self);
                    self.tracker.spawn(async move {
                        if let Err(why) = me.serve(stream).await {
                            warn!(node = me.creds.node_id, %addr, "closed peer connection: {why}");
                            me.log.record(format!("peer connection from {addr}: {why}"));
                        }
                    });
                }
                // Out of file descriptors and the like: keep serving the
                // connections we have, try again shortly.
                Err(e) => {
                    warn!(node = self.creds.node_id, "accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    async fn serve(&self, stream: TcpStream) -> Result<(), String> {
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut framed = Framed::new(stream, LengthDelimitedCodec::new());
        let admit = |p: &handshake::Peer| {
            if p.role != Role::Peer {
                return Err("this is the peer port; clients use the client port".to_string());
            }
            if !self.counters.contains_key(&p.node_id) {
                return Err(format!("node {} is not a member of this cluster", p.node_id));
            }
            Ok(())
        };
        let timeout = Duration::from_millis(self.config.handshake_timeout_ms);
        let peer = handshake::run(&mut framed, &self.creds, Side::Acceptor, &admit, timeout)
            .await
            .map_err(|e| format!("handshake failed: {e}"))?;
        debug!(node = self.creds.node_id, peer = peer.node_id, "peer connected");
        let counters = Arc::clone(&self.counters[&peer.node_id]);
        // Everything already readable is decoded and delivered as one batch:
        // one channel operation and one wake-up for many messages.
        let mut frames = into_envelope_framed(framed, &self.config).ready_chunks(MAX_BATCH);
        loop {
            // Read in large chunks: the codec alone would only reserve room
            // for the frame at hand, and small reads mean many syscalls.
            // 64 KiB stays below malloc's mmap threshold.
            let buffer = frames.get_mut().read_buffer_mut();
            if buffer.capacity() - buffer.len() < READ_CHUNK_BYTES / 4 {
                buffer.reserve(READ_CHUNK_BYTES);
            }
            let chunk = tokio::select! {
                _ = self.cancel.cancelled() => return Ok(()),
                chunk = frames.next() => chunk,
            };
            let Some(chunk) = chunk else { return Ok(()) };
            let mut batch = Vec::with_capacity(chunk.len());
            let mut bytes = 0u64;
            let mut failure = None;
            for item in chunk {
                match item.map_err(|e| format!("from node {}: {e}", peer.node_id)) {
                    Ok(envelope) => {
                        if let Err(why) = self.check(&envelope, peer.node_id) {
                            failure = Some(why);
                            break;
                        }
                        bytes += envelope.wire_size_bytes() as u64;
                        batch.push(Inbound { from: envelope.from, kind: envelope.kind, payload: envelope.payload });
                    }
                    Err(why) => {
                        failure = Some(why);
                        break;
                    }
                }
            }
            LinkCounters::add(&counters.frames_in, batch.len() as u64);
            LinkCounters::add(&counters.bytes_in, bytes);
            // Messages before a bad frame were well formed: deliver them.
            if !batch.is_empty() && self.inbox.send(batch).await.is_err() {
                return Ok(()); // the node is shutting down
            }
            if let Some(why) = failure {
                return Err(why);
            }
        }
    }

    /// An authenticated peer still cannot speak for another node or send
    /// client traffic on the peer port.
    fn check(&self, envelope: &Envelope, authenticated: NodeId) -> Result<(), String> {
        if envelope.version != PROTOCOL_VERSION {
            return Err(format!("envelope version {}, expected {PROTOCOL_VERSION}", envelope.version));
        }
        if envelope.from != authenticated {
            return Err(format!("node {authenticated} sent an envelope claiming to be from node {}", envelope.from));
        }
        if envelope.to != self.creds.node_id {
            return Err(format!("envelope for node {} arrived at node {}", envelope.to, self.creds.node_id));
        }
        if !matches!(envelope.kind, Kind::Peer | Kind::Admin) {
            return Err(format!("{:?} envelope on the peer port", envelope.kind));
        }
        Ok(())
    }
}
