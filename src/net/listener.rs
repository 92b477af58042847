//! The peer port: accepts connections and authenticates them; the node's
//! own task then reads them through [`Incoming`].
//!
//! Handshakes run in their own tasks (they wait on the peer). An
//! authenticated connection is handed to `Incoming`, which the node's event
//! loop polls directly: a message goes from the socket to the policy with
//! no task in between, so no thread wake-up either. Anything wrong with a
//! connection (a failed handshake, a garbage or oversized frame, an
//! envelope that lies about its sender) closes that connection with a
//! logged reason; the listener and every other connection carry on.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use futures_util::stream::{SelectAll, Stream, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::{Decoder, Framed, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use replab_api::NodeId;

use super::accept::accept_loop;
use super::envelope::{Envelope, EnvelopeCodec, Kind, PROTOCOL_VERSION};
use super::handshake::{self, Credentials, Role, Side};
use super::stats::{ConnectionLog, LinkCounters};
use super::{Inbound, NetConfig};

/// Most messages handed over in one batch.
const MAX_BATCH: usize = 1024;

/// Bytes asked of each socket read: as large as the writers' coalesced
/// writes, so a burst is read in few syscalls.
const READ_CHUNK_BYTES: usize = 256 * 1024;

/// An authenticated peer connection, ready to be read.
pub struct Authenticated {
    peer: NodeId,
    stream: TcpStream,
    /// Bytes read and not yet decoded; starts with whatever arrived behind
    /// the handshake.
    buffer: BytesMut,
    codec: EnvelopeCodec,
    counters: Arc<LinkCounters>,
}

pub struct PeerListener {
    pub creds: Credentials,
    pub config: NetConfig,
    pub counters: Arc<BTreeMap<NodeId, Arc<LinkCounters>>>,
    pub accepted: mpsc::Sender<Authenticated>,
    pub log: Arc<ConnectionLog>,
    pub cancel: CancellationToken,
    pub tracker: TaskTracker,
}

impl PeerListener {
    pub async fn run(self: Arc<Self>, listener: TcpListener) {
        let (cancel, tracker) = (self.cancel.clone(), self.tracker.clone());
        accept_loop(listener, self.creds.node_id, &cancel, &tracker, |stream, addr| {
            let me = Arc::clone(&self);
            async move {
                match me.authenticate(stream).await {
                    Ok(conn) => {
                        let _ = me.accepted.send(conn).await;
                    }
                    Err((why, hostile)) => {
                        // A refused peer is news; a peer that went away
                        // mid-handshake (it was stopping) is not.
                        if hostile {
                            warn!(node = me.creds.node_id, %addr, "refused peer connection: {why}");
                        } else {
                            debug!(node = me.creds.node_id, %addr, "peer connection ended: {why}");
                        }
                        me.log.record(format!("peer connection from {addr}: {why}"));
                    }
                }
            }
        })
        .await;
    }

    /// Runs the handshake. An error says why, and whether the peer
    /// misbehaved (true) or merely went away.
    async fn authenticate(&self, stream: TcpStream) -> Result<Authenticated, (String, bool)> {
        stream.set_nodelay(true).map_err(|e| (e.to_string(), false))?;
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
        let peer = handshake::run(&mut framed, &self.creds, Side::Acceptor, &admit, timeout).await.map_err(|e| {
            let hostile = !matches!(e, handshake::HandshakeError::Closed | handshake::HandshakeError::Io(_));
            (format!("handshake failed: {e}"), hostile)
        })?;
        debug!(node = self.creds.node_id, peer = peer.node_id, "peer connected");
        let parts = framed.into_parts();
        Ok(Authenticated {
            peer: peer.node_id,
            stream: parts.io,
            buffer: parts.read_buf,
            codec: EnvelopeCodec::new(self.config.max_frame_bytes),
            counters: Arc::clone(&self.counters[&peer.node_id]),
        })
    }
}

/// The receiving side of a node's network: every authenticated peer
/// connection, read by whoever polls [`Incoming::recv`].
pub struct Incoming {
    me: NodeId,
    cancel: CancellationToken,
    accepted: mpsc::Receiver<Authenticated>,
    connections: SelectAll<PeerStream>,
    log: Arc<ConnectionLog>,
}

impl Incoming {
    pub(super) fn new(
        me: NodeId,
        cancel: CancellationToken,
        accepted: mpsc::Receiver<Authenticated>,
        log: Arc<ConnectionLog>,
    ) -> Incoming {
        Incoming { me, cancel, accepted, connections: SelectAll::new(), log }
    }

    /// The next batch of messages: everything one read made available on
    /// one connection. `None` once the network has shut down.
    pub async fn recv(&mut self) -> Option<Vec<Inbound>> {
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => {
                    // Network::shutdown: close every inbound connection.
                    self.connections.clear();
                    return None;
                }
                conn = self.accepted.recv() => {
                    let conn = conn?;
                    self.connections.push(PeerStream { me: self.me, conn, done: false, deferred: None });
                }
                Some(item) = self.connections.next(), if !self.connections.is_empty() => match item {
                    Ok(batch) => return Some(batch),
                    Err((peer, why)) => {
                        warn!(node = self.me, peer, "closed peer connection: {why}");
                        self.log.record(format!("peer connection from node {peer}: {why}"));
                    }
                },
            }
        }
    }
}

/// One connection as a stream of message batches; it ends after its first
/// error (which it yields), closing the connection.
struct PeerStream {
    me: NodeId,
    conn: Authenticated,
    /// The connection ended or failed: the stream is over.
    done: bool,
    /// How the connection ended, held back while a batch read before it
    /// is delivered (`Some("")`: a clean end of stream).
    deferred: Option<String>,
}

impl PeerStream {
    /// An authenticated peer still cannot speak for another node or send
    /// client traffic on the peer port.
    fn check(&self, envelope: &Envelope) -> Result<(), String> {
        let authenticated = self.conn.peer;
        if envelope.version != PROTOCOL_VERSION {
            return Err(format!("envelope version {}, expected {PROTOCOL_VERSION}", envelope.version));
        }
        if envelope.from != authenticated {
            return Err(format!("node {authenticated} sent an envelope claiming to be from node {}", envelope.from));
        }
        if envelope.to != self.me {
            return Err(format!("envelope for node {} arrived at node {}", envelope.to, self.me));
        }
        if !matches!(envelope.kind, Kind::Peer | Kind::Admin | Kind::Detector) {
            return Err(format!("{:?} envelope on the peer port", envelope.kind));
        }
        Ok(())
    }
}

impl Stream for PeerStream {
    type Item = Result<Vec<Inbound>, (NodeId, String)>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(why) = self.deferred.take() {
            return self.end(why);
        }
        let mut batch = Vec::new();
        let mut bytes = 0u64;
        let mut failure = None;
        // Decode what is buffered; read only when that yields nothing, so a
        // batch costs one read, not one more that finds the socket empty.
        loop {
            let before = self.conn.buffer.len();
            while batch.len() < MAX_BATCH {
                let Authenticated { codec, buffer, .. } = &mut self.conn;
                match codec.decode(buffer) {
                    Ok(Some(envelope)) => {
                        if let Err(why) = self.check(&envelope) {
                            failure = Some(why);
                            break;
                        }
                        batch.push(Inbound { from: envelope.from, kind: envelope.kind, payload: envelope.payload });
                    }
                    Ok(None) => break,
                    Err(e) => {
                        failure = Some(e.to_string());
                        break;
                    }
                }
            }
            bytes += (before - self.conn.buffer.len()) as u64;
            if failure.is_some() || !batch.is_empty() {
                break;
            }
            match self.read(cx) {
                Poll::Ready(Ok(true)) => continue,
                Poll::Ready(Ok(false)) => {
                    // The codec keeps a frame's length prefix once read,
                    // so an empty buffer is not proof of a clean end.
                    let clean = self.conn.buffer.is_empty() && !self.conn.codec.in_frame();
                    failure = Some(if clean {
                        String::new()
                    } else {
                        "connection closed in the middle of a frame".to_string()
                    });
                }
                Poll::Ready(Err(e)) => failure = Some(format!("i/o: {e}")),
                // The socket is registered to wake us.
                Poll::Pending => return Poll::Pending,
            }
            break;
        }
        LinkCounters::add(&self.conn.counters.frames_in, batch.len() as u64);
        LinkCounters::add(&self.conn.counters.bytes_in, bytes);
        // Messages before a bad frame were well formed: deliver them first;
        // the failure comes with the next poll.
        match failure {
            Some(why) if !batch.is_empty() => {
                self.deferred = Some(why);
                Poll::Ready(Some(Ok(batch)))
            }
            Some(why) => self.end(why),
            None => Poll::Ready(Some(Ok(batch))),
        }
    }
}

impl PeerStream {
    /// Reads what the socket has into the buffer: true if bytes came,
    /// false at the end of the stream.
    fn read(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<bool>> {
        // Large reads: a burst from the peer's coalesced writes arrives in
        // few syscalls. The codec alone would reserve only the frame at
        // hand.
        let buffer = &mut self.conn.buffer;
        if buffer.capacity() - buffer.len() < READ_CHUNK_BYTES / 4 {
            buffer.reserve(READ_CHUNK_BYTES);
        }
        // Through `AsyncRead`, which registers the waker when the socket is
        // empty and clears its readiness after a short read, so the next
        // batch does not begin with a read that finds nothing.
        let conn = &mut self.conn;
        let read = std::task::ready!(tokio_util::io::poll_read_buf(Pin::new(&mut conn.stream), cx, &mut conn.buffer))?;
        // The buffer had room, so nothing read means the peer closed.
        Poll::Ready(Ok(read > 0))
    }

    /// Ends the stream: quietly for a clean close (`why` empty), else
    /// yielding the reason once.
    fn end(&mut self, why: String) -> Poll<Option<<Self as Stream>::Item>> {
        self.done = true;
        if why.is_empty() { Poll::Ready(None) } else { Poll::Ready(Some(Err((self.conn.peer, why)))) }
    }
}
