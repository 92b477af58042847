//! The client port: the same framing, envelope and handshake as the peer
//! port, with requests and responses flowing both ways on one connection.
//!
//! A connection may have many requests in flight (pipelining); responses
//! can come back in any order, so the request payload carries its own id
//! and the client matches responses to requests by it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::{Framed, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use super::accept::accept_loop;
use super::envelope::{Envelope, EnvelopeCodec, Kind, PROTOCOL_VERSION, SerializedFrame};
use super::handshake::{self, Credentials, Role, Side};
use super::link::into_envelope_framed;
use super::{NetConfig, NetError};
use crate::client::protocol::Response;

/// Responses a connection may have queued before the node waits.
const RESPONSE_QUEUE: usize = 1024;

/// One request from a client, with the way back to its connection.
#[derive(Debug)]
pub struct ClientCall {
    /// Identity the client presented in its handshake.
    pub client: u64,
    pub payload: Bytes,
    /// Responses travel unencoded: the connection's writer serializes
    /// each straight into its write buffer.
    pub reply: mpsc::Sender<Response>,
}

pub struct ClientListener {
    pub creds: Credentials,
    pub config: NetConfig,
    pub calls: mpsc::Sender<ClientCall>,
    pub cancel: CancellationToken,
    pub tracker: TaskTracker,
}

impl ClientListener {
    pub async fn run(self: Arc<Self>, listener: TcpListener) {
        let (cancel, tracker) = (self.cancel.clone(), self.tracker.clone());
        accept_loop(listener, self.creds.node_id, &cancel, &tracker, |stream, addr| {
            let me = Arc::clone(&self);
            async move {
                if let Err(why) = me.serve(stream).await {
                    warn!(node = me.creds.node_id, %addr, "closed client connection: {why}");
                }
            }
        })
        .await;
    }

    async fn serve(&self, stream: TcpStream) -> Result<(), String> {
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut framed = Framed::new(stream, LengthDelimitedCodec::new());
        let admit = |p: &handshake::Peer| match p.role {
            Role::Client => Ok(()),
            Role::Peer => Err("this is the client port; peers use the peer port".to_string()),
        };
        let timeout = Duration::from_millis(self.config.handshake_timeout_ms);
        let client = handshake::run(&mut framed, &self.creds, Side::Acceptor, &admit, timeout)
            .await
            .map_err(|e| format!("handshake failed: {e}"))?;
        debug!(node = self.creds.node_id, client = client.node_id, "client connected");
        let (mut sink, mut stream) = into_envelope_framed(framed, &self.config).split();
        let (reply_tx, mut reply_rx) = mpsc::channel::<Response>(RESPONSE_QUEUE);
        let me = self.creds.node_id;
        let frame = |body| SerializedFrame { kind: Kind::ClientResponse, from: me, to: client.node_id, body };
        let writer = async move {
            while let Some(response) = reply_rx.recv().await {
                sink.feed(frame(response)).await.map_err(|e| e.to_string())?;
                // Coalesce responses that are already waiting.
                while let Ok(response) = reply_rx.try_recv() {
                    sink.feed(frame(response)).await.map_err(|e| e.to_string())?;
                }
                sink.flush().await.map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        };
        let reader = async {
            loop {
                let envelope = match stream.next().await {
                    Some(Ok(envelope)) => envelope,
                    Some(Err(e)) => return Err(e.to_string()),
                    None => return Ok(()),
                };
                if envelope.version != PROTOCOL_VERSION || envelope.kind != Kind::ClientRequest {
                    return Err(format!("expected a v{PROTOCOL_VERSION} ClientRequest, got {:?}", envelope.kind));
                }
                let call = ClientCall { client: client.node_id, payload: envelope.payload, reply: reply_tx.clone() };
                if self.calls.send(call).await.is_err() {
                    return Ok(());
                }
            }
        };
        tokio::select! {
            _ = self.cancel.cancelled() => Ok(()),
            result = reader => result,
            result = writer => result,
        }
    }
}

/// The client end of a client-port connection.
pub struct ClientConnection {
    framed: Framed<TcpStream, EnvelopeCodec>,
    me: u64,
    node: u64,
}

impl ClientConnection {
    /// Connects and authenticates. `creds.role` must be `Role::Client`.
    pub async fn connect(
        addr: SocketAddr,
        creds: &Credentials,
        config: &NetConfig,
    ) -> Result<ClientConnection, NetError> {
        let timeout = Duration::from_millis(config.connect_timeout_ms);
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| NetError::Timeout(format!("connect to {addr}")))??;
        stream.set_nodelay(true)?;
        let mut framed = Framed::new(stream, LengthDelimitedCodec::new());
        let accept_any = |_: &handshake::Peer| Ok(());
        let hs_timeout = Duration::from_millis(config.handshake_timeout_ms);
        let node = handshake::run(&mut framed, creds, Side::Dialer, &accept_any, hs_timeout).await?;
        Ok(ClientConnection { framed: into_envelope_framed(framed, config), me: creds.node_id, node: node.node_id })
    }

    /// The node this connection reached.
    pub fn node_id(&self) -> u64 {
        self.node
    }

    pub async fn send(&mut self, payload: Bytes) -> Result<(), NetError> {
        let envelope = Envelope::new(Kind::ClientRequest, self.me, self.node, payload);
        self.framed.send(envelope).await.map_err(|e| NetError::Frame(e.to_string()))
    }

    /// The next response, or `None` when the node closed the connection.
    pub async fn recv(&mut self) -> Result<Option<Bytes>, NetError> {
        match self.framed.next().await {
            Some(Ok(envelope)) if envelope.kind == Kind::ClientResponse => Ok(Some(envelope.payload)),
            Some(Ok(envelope)) => Err(NetError::Frame(format!("unexpected {:?} from the node", envelope.kind))),
            Some(Err(e)) => Err(NetError::Frame(e.to_string())),
            None => Ok(None),
        }
    }
}
