//! The handshake every connection runs before its first message.
//!
//! Both sides send `Hello` at once (protocol version, cluster id, node id,
//! role, a fresh 32-byte nonce), check the other's, then prove knowledge of
//! the cluster's shared secret:
//!
//! ```text
//! proof = HMAC-SHA256(secret, "replab-handshake-v1" | side | cluster id |
//!                             own id | peer id | own nonce | peer nonce)
//! ```
//!
//! `side` is "dialer" or "acceptor", so a proof can never be reflected back
//! to its sender, and both nonces are fresh, so a recorded handshake cannot
//! be replayed. Each side answers `Accepted` or `Reject{reason}`, so both
//! ends log why a connection was refused. The secret itself never crosses
//! the wire and is never logged. Comparison is constant-time (`hmac`'s
//! `verify_slice`).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use replab_api::NodeId;

use super::envelope::PROTOCOL_VERSION;

/// Handshake frames are tiny; a bigger one is hostile.
const MAX_HANDSHAKE_FRAME_BYTES: usize = 4096;
const NONCE_BYTES: usize = 32;
const LABEL: &[u8] = b"replab-handshake-v1";

/// What the connecting side is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Peer,
    Client,
}

#[derive(Debug, Serialize, Deserialize)]
enum Message {
    Hello { protocol_version: u16, cluster_id: String, node_id: NodeId, role: Role, nonce: [u8; NONCE_BYTES] },
    Proof { mac: Vec<u8> },
    Accepted,
    Reject { reason: String },
}

/// Who we are and what we accept.
#[derive(Clone)]
pub struct Credentials {
    pub cluster_id: String,
    pub secret: String,
    pub node_id: NodeId,
    pub role: Role,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("cluster_id", &self.cluster_id)
            .field("secret", &"<redacted>")
            .field("node_id", &self.node_id)
            .field("role", &self.role)
            .finish()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Dialer,
    Acceptor,
}

impl Side {
    fn label(self) -> &'static [u8] {
        match self {
            Side::Dialer => b"dialer",
            Side::Acceptor => b"acceptor",
        }
    }

    fn other(self) -> Side {
        match self {
            Side::Dialer => Side::Acceptor,
            Side::Acceptor => Side::Dialer,
        }
    }
}

/// The authenticated identity of the other end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    pub node_id: NodeId,
    pub role: Role,
}

#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("handshake i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("handshake timed out after {0} ms")]
    Timeout(u64),
    #[error("peer closed the connection during the handshake")]
    Closed,
    #[error("malformed handshake message: {0}")]
    Malformed(String),
    /// We refused the peer; the reason was also sent to it.
    #[error("refused peer: {0}")]
    Refused(String),
    /// The peer refused us and said why.
    #[error("peer refused us: {0}")]
    RejectedByPeer(String),
}

/// What the acceptor checks about the dialer beyond the secret.
pub type Admit<'a> = &'a (dyn Fn(&Peer) -> Result<(), String> + Sync);

/// Runs the handshake on `framed` (a fresh connection with a
/// length-delimited codec). On success the connection is authenticated.
pub async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<S, LengthDelimitedCodec>,
    me: &Credentials,
    side: Side,
    admit: Admit<'_>,
    timeout: Duration,
) -> Result<Peer, HandshakeError> {
    run_as_version(framed, me, side, admit, timeout, PROTOCOL_VERSION).await
}

/// [`run`] announcing another protocol version: lets tests play an
/// incompatible peer.
#[doc(hidden)]
pub async fn run_as_version<S: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<S, LengthDelimitedCodec>,
    me: &Credentials,
    side: Side,
    admit: Admit<'_>,
    timeout: Duration,
    version: u16,
) -> Result<Peer, HandshakeError> {
    framed.codec_mut().set_max_frame_length(MAX_HANDSHAKE_FRAME_BYTES);
    match tokio::time::timeout(timeout, exchange(framed, me, side, admit, version)).await {
        Ok(result) => result,
        Err(_) => Err(HandshakeError::Timeout(timeout.as_millis() as u64)),
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<S, LengthDelimitedCodec>,
    me: &Credentials,
    side: Side,
    admit: Admit<'_>,
    version: u16,
) -> Result<Peer, HandshakeError> {
    let mut my_nonce = [0u8; NONCE_BYTES];
    getrandom::fill(&mut my_nonce).map_err(|e| HandshakeError::Io(std::io::Error::other(e.to_string())))?;
    send(
        framed,
        &Message::Hello {
            protocol_version: version,
            cluster_id: me.cluster_id.clone(),
            node_id: me.node_id,
            role: me.role,
            nonce: my_nonce,
        },
    )
    .await?;

    let (peer, peer_nonce) = match recv(framed).await? {
        Message::Hello { protocol_version, cluster_id, node_id, role, nonce } => {
            if protocol_version != PROTOCOL_VERSION {
                let why = format!("protocol version {protocol_version}, expected {PROTOCOL_VERSION}");
                return refuse(framed, why).await;
            }
            if cluster_id != me.cluster_id {
                let why = format!("cluster id {cluster_id:?}, expected {:?}", me.cluster_id);
                return refuse(framed, why).await;
            }
            let peer = Peer { node_id, role };
            if let Err(why) = admit(&peer) {
                return refuse(framed, why).await;
            }
            (peer, nonce)
        }
        Message::Reject { reason } => return Err(HandshakeError::RejectedByPeer(reason)),
        other => return Err(HandshakeError::Malformed(format!("expected Hello, got {other:?}"))),
    };

    let mine = proof(&me.secret, side, &me.cluster_id, me.node_id, peer.node_id, &my_nonce, &peer_nonce);
    send(framed, &Message::Proof { mac: mine }).await?;
    match recv(framed).await? {
        Message::Proof { mac } => {
            let mut expected = mac_for(&me.secret);
            feed(&mut expected, side.other(), &me.cluster_id, peer.node_id, me.node_id, &peer_nonce, &my_nonce);
            if expected.verify_slice(&mac).is_err() {
                return refuse(framed, "authentication failed: wrong cluster secret".into()).await;
            }
        }
        Message::Reject { reason } => return Err(HandshakeError::RejectedByPeer(reason)),
        other => return Err(HandshakeError::Malformed(format!("expected Proof, got {other:?}"))),
    }
    send(framed, &Message::Accepted).await?;
    match recv(framed).await? {
        Message::Accepted => Ok(peer),
        Message::Reject { reason } => Err(HandshakeError::RejectedByPeer(reason)),
        other => Err(HandshakeError::Malformed(format!("expected Accepted, got {other:?}"))),
    }
}

fn mac_for(secret: &str) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length")
}

fn feed(
    mac: &mut Hmac<Sha256>,
    side: Side,
    cluster: &str,
    own: NodeId,
    peer: NodeId,
    own_nonce: &[u8],
    peer_nonce: &[u8],
) {
    mac.update(LABEL);
    mac.update(side.label());
    mac.update(&(cluster.len() as u64).to_le_bytes());
    mac.update(cluster.as_bytes());
    mac.update(&own.to_le_bytes());
    mac.update(&peer.to_le_bytes());
    mac.update(own_nonce);
    mac.update(peer_nonce);
}

fn proof(
    secret: &str,
    side: Side,
    cluster: &str,
    own: NodeId,
    peer: NodeId,
    own_nonce: &[u8],
    peer_nonce: &[u8],
) -> Vec<u8> {
    let mut mac = mac_for(secret);
    feed(&mut mac, side, cluster, own, peer, own_nonce, peer_nonce);
    mac.finalize().into_bytes().to_vec()
}

async fn refuse<S: AsyncRead + AsyncWrite + Unpin, T>(
    framed: &mut Framed<S, LengthDelimitedCodec>,
    reason: String,
) -> Result<T, HandshakeError> {
    // Best effort: the peer may already be gone.
    let _ = send(framed, &Message::Reject { reason: reason.clone() }).await;
    Err(HandshakeError::Refused(reason))
}

async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<S, LengthDelimitedCodec>,
    msg: &Message,
) -> Result<(), HandshakeError> {
    let bytes = postcard::to_allocvec(msg).map_err(|e| HandshakeError::Malformed(e.to_string()))?;
    framed.send(bytes::Bytes::from(bytes)).await?;
    Ok(())
}

async fn recv<S: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<S, LengthDelimitedCodec>,
) -> Result<Message, HandshakeError> {
    match framed.next().await {
        Some(Ok(frame)) => postcard::from_bytes(&frame).map_err(|e| HandshakeError::Malformed(e.to_string())),
        Some(Err(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
            Err(HandshakeError::Malformed(format!("handshake frame above {MAX_HANDSHAKE_FRAME_BYTES} bytes")))
        }
        Some(Err(e)) => Err(HandshakeError::Io(e)),
        None => Err(HandshakeError::Closed),
    }
}

/// Decodes a handshake frame; exposed for the fuzz test.
#[doc(hidden)]
pub fn decode_for_fuzz(bytes: &[u8]) -> bool {
    postcard::from_bytes::<Message>(bytes).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(id: NodeId, secret: &str, cluster: &str) -> Credentials {
        Credentials { cluster_id: cluster.into(), secret: secret.into(), node_id: id, role: Role::Peer }
    }

    async fn pair(a: Credentials, b: Credentials) -> (Result<Peer, HandshakeError>, Result<Peer, HandshakeError>) {
        let (x, y) = tokio::io::duplex(8192);
        let mut fx = Framed::new(x, LengthDelimitedCodec::new());
        let mut fy = Framed::new(y, LengthDelimitedCodec::new());
        let t = Duration::from_secs(5);
        let ok = |_: &Peer| Ok(());
        tokio::join!(run(&mut fx, &a, Side::Dialer, &ok, t), run(&mut fy, &b, Side::Acceptor, &ok, t))
    }

    #[tokio::test]
    async fn matching_credentials_authenticate_both_sides() {
        let (a, b) = pair(creds(1, "s3cret", "lab"), creds(2, "s3cret", "lab")).await;
        assert_eq!(a.unwrap(), Peer { node_id: 2, role: Role::Peer });
        assert_eq!(b.unwrap(), Peer { node_id: 1, role: Role::Peer });
    }

    #[tokio::test]
    async fn wrong_secret_is_refused_and_both_sides_know_why() {
        let (a, b) = pair(creds(1, "s3cret", "lab"), creds(2, "guess", "lab")).await;
        let (a, b) = (a.unwrap_err().to_string(), b.unwrap_err().to_string());
        assert!(a.contains("wrong cluster secret"), "{a}");
        assert!(b.contains("wrong cluster secret"), "{b}");
        assert!(!a.contains("s3cret") && !b.contains("guess"), "secrets never appear in errors");
    }

    #[tokio::test]
    async fn wrong_cluster_is_refused_by_both() {
        let (a, b) = pair(creds(1, "s", "lab"), creds(2, "s", "prod")).await;
        assert!(a.unwrap_err().to_string().contains("cluster id"));
        assert!(b.unwrap_err().to_string().contains("cluster id"));
    }

    #[test]
    fn proofs_differ_by_side_so_they_cannot_be_reflected() {
        let n1 = [1u8; 32];
        let n2 = [2u8; 32];
        let dialer = proof("s", Side::Dialer, "lab", 1, 2, &n1, &n2);
        let acceptor = proof("s", Side::Acceptor, "lab", 1, 2, &n1, &n2);
        assert_ne!(dialer, acceptor);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_the_handshake_decoder(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = decode_for_fuzz(&bytes);
        }
    }

    #[test]
    fn debug_output_redacts_the_secret() {
        let shown = format!("{:?}", creds(1, "hunter2", "lab"));
        assert!(!shown.contains("hunter2") && shown.contains("redacted"));
    }
}
