//! The client library: sessions, leader discovery and retries.
//!
//! One `Client` is one session and has one request in flight at a time (a
//! workload runs many clients). A write keeps its (session, sequence
//! number) across every retry: on a timeout, a lost connection or a leader
//! change the client asks again, possibly another node, and the session
//! table in the replicated state answers a retry of an applied write with
//! its first result instead of applying it twice.

pub mod cli;
pub mod protocol;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use replab_api::{ClientId, LogIndex, NodeId, Seq};

use crate::kv::{KvError, WriteOp, WriteResult};
use crate::net::handshake::HandshakeError;
use crate::net::{ClientConnection, Credentials, NetConfig, NetError, Role};
use protocol::{AdminRequest, Consistency, ErrorKind, NodeStatus, Request, RequestBody, Response, ResponseBody};

#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Client addresses of the nodes.
    pub nodes: Vec<SocketAddr>,
    pub cluster_id: String,
    pub secret: String,
    pub net: NetConfig,
    /// Give up on an operation (outcome unknown) after this long.
    pub op_timeout: Duration,
    /// Give up on one node's answer after this long and try another.
    pub attempt_timeout: Duration,
    /// Identity shown to nodes in the handshake.
    pub name: u64,
    /// Talk to `nodes[0]` only: never follow a redirect, never try another
    /// node. A write on the minority side of a partition then stays there,
    /// and the client sees what that side does with it.
    pub pinned: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The operation may or may not have taken effect: no node answered in
    /// time. A retry with the same sequence number would tell.
    #[error("outcome unknown: {0}")]
    Unknown(String),
    /// The operation certainly did not take effect.
    #[error("failed: {0}")]
    Failed(String),
    /// The store refused it (session expired, not a number, ...).
    #[error("refused: {0}")]
    Refused(KvError),
}

/// A value read from the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadValue {
    /// The value, when the read found at most one (`None`: absent, or
    /// several siblings: see `siblings`).
    pub value: Option<Bytes>,
    /// Every value the read found: at most one under a log-based policy,
    /// possibly several concurrent ones (siblings) under leaderless.
    pub siblings: Vec<Bytes>,
    /// The causal context to pass to the next write (leaderless only).
    pub context: Option<Bytes>,
    pub version: LogIndex,
    pub consistency: Consistency,
    pub applied_index: LogIndex,
    pub node: NodeId,
}

/// What a write returned, and whether it was answered from the session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    pub result: WriteResult,
    pub duplicate: bool,
    pub seq: Seq,
    /// The context after the write (leaderless only).
    pub context: Option<Bytes>,
}

pub struct Client {
    opts: ClientOptions,
    conns: HashMap<SocketAddr, ClientConnection>,
    /// Where the leader is believed to be.
    leader: Option<SocketAddr>,
    /// Next node to try when no leader is known.
    rotation: usize,
    session: Option<ClientId>,
    next_seq: Seq,
    next_request: u64,
}

/// The answer `leader_request` settled on.
struct Answered {
    body: ResponseBody,
    /// An earlier attempt got no definite answer (a timeout, a lost
    /// connection): it may have taken effect.
    after_uncertain_attempt: bool,
}

/// The answer to one attempt.
enum Attempt {
    Answer(ResponseBody),
    /// No answer from that node: try another.
    NoAnswer(String),
    /// The node refused our credentials at the handshake (cluster id,
    /// secret, protocol version): the request never reached it, and asking
    /// again cannot change the answer.
    Refused(String),
}

/// Why an exchange with a node failed.
enum ExchangeError {
    /// The handshake refused us, or we refused the node.
    Refused(String),
    /// The connection failed or was lost: the request may have arrived.
    Lost(String),
}

impl Client {
    pub fn new(opts: ClientOptions) -> Client {
        assert!(!opts.nodes.is_empty(), "a client needs at least one node address");
        Client { opts, conns: HashMap::new(), leader: None, rotation: 0, session: None, next_seq: 1, next_request: 1 }
    }

    pub fn session(&self) -> Option<ClientId> {
        self.session
    }

    /// Continues an existing session, as a client process that saved its
    /// session id and restarted would.
    pub fn resume_session(&mut self, client: ClientId, next_seq: Seq) {
        self.session = Some(client);
        self.next_seq = next_seq;
    }

    /// The sequence number the next write will use.
    pub fn next_seq(&self) -> Seq {
        self.next_seq
    }

    /// Opens a session (done by the first write if not before).
    pub async fn register(&mut self) -> Result<ClientId, ClientError> {
        let body = self.leader_request(RequestBody::Register, true).await?.body;
        match body {
            ResponseBody::Registered { client } => {
                self.session = Some(client);
                self.next_seq = 1;
                Ok(client)
            }
            other => Err(ClientError::Failed(format!("unexpected answer to register: {other:?}"))),
        }
    }

    pub async fn put(&mut self, key: impl Into<Bytes>, value: impl Into<Bytes>) -> Result<Written, ClientError> {
        self.write(WriteOp::Put { key: key.into(), value: value.into() }).await
    }

    pub async fn delete(&mut self, key: impl Into<Bytes>) -> Result<Written, ClientError> {
        self.write(WriteOp::Delete { key: key.into() }).await
    }

    pub async fn cas(
        &mut self,
        key: impl Into<Bytes>,
        expected: Option<Bytes>,
        new: impl Into<Bytes>,
    ) -> Result<Written, ClientError> {
        self.write(WriteOp::Cas { key: key.into(), expected, new: new.into() }).await
    }

    pub async fn incr(&mut self, key: impl Into<Bytes>, by: i64) -> Result<Written, ClientError> {
        self.write(WriteOp::Incr { key: key.into(), by }).await
    }

    /// A write with the next sequence number, retried until answered or
    /// `op_timeout`.
    pub async fn write(&mut self, op: WriteOp) -> Result<Written, ClientError> {
        self.write_with_context(op, None).await
    }

    /// A write that passes the causal context of what the client read
    /// (leaderless: it supersedes exactly the versions the context covers).
    pub async fn write_with_context(&mut self, op: WriteOp, context: Option<Bytes>) -> Result<Written, ClientError> {
        if self.session.is_none() {
            self.register().await?;
        }
        let seq = self.next_seq;
        // Whatever happens, this number is used up: a later write must not
        // reuse it, since this one may have been applied.
        self.next_seq += 1;
        self.send_write(seq, op, context).await
    }

    /// Sends a write under an explicit sequence number: a retry, as a
    /// client that crashed and came back would send it.
    pub async fn write_with_seq(&mut self, seq: Seq, op: WriteOp) -> Result<Written, ClientError> {
        self.send_write(seq, op, None).await
    }

    async fn send_write(&mut self, seq: Seq, op: WriteOp, context: Option<Bytes>) -> Result<Written, ClientError> {
        let client = self.session.ok_or_else(|| ClientError::Failed("no session: register first".into()))?;
        let stored = match &op {
            WriteOp::Delete { .. } => WriteResult::Deleted { existed: true },
            _ => WriteResult::Put { version: 0 },
        };
        let body = RequestBody::Write { client, seq, ack_below: seq, op, context };
        let answered = self.leader_request(body, true).await?;
        if let ResponseBody::Written { result: WriteResult::Failed(e), .. } = &answered.body
            && matches!(e, KvError::SessionExpired { .. } | KvError::UnknownSession { .. })
        {
            // The session is gone for good: the next write opens a new one
            // rather than failing the same way forever.
            self.session = None;
        }
        match answered.body {
            // The session could not answer for an earlier attempt (it
            // expired, or was forgotten), and that attempt may have been
            // applied: the refusal says nothing about it.
            ResponseBody::Written { result: WriteResult::Failed(e), .. }
                if answered.after_uncertain_attempt && e.is_session_refusal() =>
            {
                Err(ClientError::Unknown(format!(
                    "the retry was refused ({e}), but an earlier attempt may have been applied"
                )))
            }
            ResponseBody::Written { result: WriteResult::Failed(e), .. } => Err(ClientError::Refused(e)),
            ResponseBody::Written { result, duplicate } => Ok(Written { result, duplicate, seq, context: None }),
            // A leaderless store versions values rather than numbering them.
            ResponseBody::Stored { context } => {
                Ok(Written { result: stored, duplicate: false, seq, context: Some(context) })
            }
            other => Err(ClientError::Failed(format!("unexpected answer to a write: {other:?}"))),
        }
    }

    /// A linearizable read through the leader.
    pub async fn get(&mut self, key: impl Into<Bytes>) -> Result<ReadValue, ClientError> {
        let body = RequestBody::Read { key: key.into(), consistency: Consistency::Linearizable };
        read_value(self.leader_request(body, false).await?.body)
    }

    /// A read served by `node`'s own replica at once: possibly stale.
    pub async fn get_stale(&mut self, node: SocketAddr, key: impl Into<Bytes>) -> Result<ReadValue, ClientError> {
        let body = RequestBody::Read { key: key.into(), consistency: Consistency::Stale };
        match self.attempt(node, body).await {
            Attempt::Answer(answer) => read_value(answer),
            Attempt::NoAnswer(why) => Err(ClientError::Unknown(why)),
            Attempt::Refused(why) => Err(ClientError::Failed(why)),
        }
    }

    /// A linearizable read at `node` only: it fails if `node` is not the
    /// leader, rather than following the redirect.
    pub async fn get_at(&mut self, node: SocketAddr, key: impl Into<Bytes>) -> Result<ReadValue, ClientError> {
        let body = RequestBody::Read { key: key.into(), consistency: Consistency::Linearizable };
        match self.attempt(node, body).await {
            Attempt::Answer(ResponseBody::Redirect { leader, .. }) => {
                Err(ClientError::Failed(format!("{node} is not the leader (hint: {leader:?})")))
            }
            Attempt::Answer(answer) => read_value(answer),
            // A read changes nothing: not answered is simply not done.
            Attempt::NoAnswer(why) | Attempt::Refused(why) => Err(ClientError::Failed(why)),
        }
    }

    pub async fn status(&mut self, node: SocketAddr) -> Result<NodeStatus, ClientError> {
        match self.attempt(node, RequestBody::Status).await {
            Attempt::Answer(ResponseBody::Status(status)) => Ok(*status),
            Attempt::Answer(other) => Err(ClientError::Failed(format!("unexpected answer to status: {other:?}"))),
            Attempt::NoAnswer(why) => Err(ClientError::Unknown(why)),
            Attempt::Refused(why) => Err(ClientError::Failed(why)),
        }
    }

    /// An admin request to one node (the lab's fault injection): its
    /// answer, or why there was none. A refusal (the node was not started
    /// with `--allow-fault-injection`, or a bad rule) is `Failed`.
    pub async fn admin(&mut self, node: SocketAddr, request: AdminRequest) -> Result<ResponseBody, ClientError> {
        match self.attempt(node, RequestBody::Admin(request)).await {
            Attempt::Answer(ResponseBody::Error { kind, message }) => {
                Err(ClientError::Failed(format!("{node}: {kind}: {message}")))
            }
            Attempt::Answer(answer) => Ok(answer),
            Attempt::NoAnswer(why) => Err(ClientError::Unknown(why)),
            Attempt::Refused(why) => Err(ClientError::Failed(why)),
        }
    }

    /// Sends `body` to the leader, following redirects and retrying other
    /// nodes, until an answer other than a redirect or a retryable error.
    /// `write`: a timeout leaves the outcome unknown (a read just failed).
    ///
    /// Every retry after a failure waits, doubling from 5 to 100 ms: a node
    /// that refuses connections at once must not be asked thousands of
    /// times a second. A node that refuses our credentials is not asked
    /// again; once every node has, the request certainly failed.
    async fn leader_request(&mut self, body: RequestBody, write: bool) -> Result<Answered, ClientError> {
        let deadline = Instant::now() + self.opts.op_timeout;
        let mut last_problem = String::from("no node answered");
        let mut uncertain = false;
        let mut pause = Duration::from_millis(5);
        let mut refused: Vec<SocketAddr> = Vec::new();
        while Instant::now() < deadline {
            let node = self.pick_node(&refused);
            match self.attempt(node, body.clone()).await {
                Attempt::Answer(ResponseBody::Redirect { leader, .. }) if self.opts.pinned => {
                    // Nothing was proposed there; the client may not go elsewhere.
                    let why = format!("{node} is not the leader (hint: {leader:?}) and the client is pinned to it");
                    return Err(if uncertain {
                        ClientError::Unknown(format!("{why}; an earlier attempt may have been applied"))
                    } else {
                        ClientError::Failed(why)
                    });
                }
                Attempt::Answer(ResponseBody::Redirect { leader_addr, leader }) => {
                    last_problem = format!("{node} is not the leader (hint: {leader:?})");
                    self.leader = leader_addr.and_then(|a| a.parse().ok());
                    if self.leader.is_none_or(|l| l == node || refused.contains(&l)) {
                        // No leader known yet (an election is running).
                        self.leader = None;
                        self.rotation += 1;
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_millis(100));
                    }
                }
                Attempt::Answer(ResponseBody::Error { kind, message }) => match kind {
                    ErrorKind::BadRequest => return Err(ClientError::Failed(message)),
                    ErrorKind::Timeout | ErrorKind::NotApplied | ErrorKind::Busy | ErrorKind::Unavailable => {
                        last_problem = format!("{node}: {kind}: {message}");
                        // A node that timed out had proposed it; the others
                        // say it was not (or no longer) in the log.
                        uncertain |= kind == ErrorKind::Timeout;
                        if kind != ErrorKind::Timeout {
                            tokio::time::sleep(pause).await;
                            pause = (pause * 2).min(Duration::from_millis(100));
                        }
                        if matches!(kind, ErrorKind::Unavailable | ErrorKind::Timeout) {
                            self.leader = None;
                            self.rotation += 1;
                        }
                    }
                },
                Attempt::Answer(answer) => return Ok(Answered { body: answer, after_uncertain_attempt: uncertain }),
                Attempt::NoAnswer(why) => {
                    uncertain = true;
                    last_problem = why;
                    self.leader = None;
                    self.rotation += 1;
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                Attempt::Refused(why) => {
                    if !refused.contains(&node) {
                        refused.push(node);
                    }
                    self.leader = None;
                    self.rotation += 1;
                    if self.opts.nodes.iter().all(|n| refused.contains(n)) {
                        let why = format!("{why} (the client needs the cluster's id and secret: --config)");
                        // Refused requests were never delivered; only an
                        // earlier attempt without an answer may have been.
                        return Err(if write && uncertain {
                            ClientError::Unknown(format!("{why}; an earlier attempt may have been applied"))
                        } else {
                            ClientError::Failed(why)
                        });
                    }
                    last_problem = why;
                }
            }
        }
        let why = format!("no answer within {} ms; last: {last_problem}", self.opts.op_timeout.as_millis());
        Err(if write { ClientError::Unknown(why) } else { ClientError::Failed(why) })
    }

    /// The believed leader, or the next node in rotation; never one in
    /// `refused` while another is left.
    fn pick_node(&mut self, refused: &[SocketAddr]) -> SocketAddr {
        if let Some(leader) = self.leader.filter(|l| !refused.contains(l)) {
            return leader;
        }
        let count = self.opts.nodes.len();
        for _ in 0..count {
            let node = self.opts.nodes[self.rotation % count];
            if !refused.contains(&node) {
                return node;
            }
            self.rotation += 1;
        }
        self.opts.nodes[self.rotation % count]
    }

    /// One request to one node, with `attempt_timeout`.
    async fn attempt(&mut self, node: SocketAddr, body: RequestBody) -> Attempt {
        let id = self.next_request;
        self.next_request += 1;
        let timeout = self.opts.attempt_timeout;
        let result = tokio::time::timeout(timeout, self.exchange(node, Request { id, body })).await;
        match result {
            Ok(Ok(answer)) => Attempt::Answer(answer),
            Ok(Err(ExchangeError::Refused(why))) => {
                Attempt::Refused(format!("the handshake with {node} was refused: {why}"))
            }
            Ok(Err(ExchangeError::Lost(why))) => {
                self.conns.remove(&node);
                Attempt::NoAnswer(format!("{node}: {why}"))
            }
            Err(_) => {
                // The connection may still deliver this answer later;
                // drop it so a stale answer is never taken for the next.
                self.conns.remove(&node);
                Attempt::NoAnswer(format!("{node}: no answer within {} ms", timeout.as_millis()))
            }
        }
    }

    /// Sends `request` on the connection to `node` and waits for its
    /// answer. A cached connection may have died since its last use (the
    /// node restarted): then one fresh connection is tried before giving up.
    async fn exchange(&mut self, node: SocketAddr, request: Request) -> Result<ResponseBody, ExchangeError> {
        let reused = self.conns.contains_key(&node);
        match self.exchange_once(node, &request).await {
            Err(ExchangeError::Lost(why)) if reused => {
                self.conns.remove(&node);
                self.exchange_once(node, &request).await.map_err(|again| match again {
                    ExchangeError::Lost(again) => ExchangeError::Lost(format!("{why}; reconnected: {again}")),
                    refused => refused,
                })
            }
            result => result,
        }
    }

    async fn exchange_once(&mut self, node: SocketAddr, request: &Request) -> Result<ResponseBody, ExchangeError> {
        if !self.conns.contains_key(&node) {
            let creds = Credentials {
                cluster_id: self.opts.cluster_id.clone(),
                secret: self.opts.secret.clone(),
                node_id: self.opts.name,
                role: Role::Client,
            };
            let conn = ClientConnection::connect(node, &creds, &self.opts.net).await.map_err(|e| match e {
                NetError::Handshake(HandshakeError::Refused(why) | HandshakeError::RejectedByPeer(why)) => {
                    ExchangeError::Refused(why)
                }
                other => ExchangeError::Lost(other.to_string()),
            })?;
            self.conns.insert(node, conn);
        }
        let conn = self.conns.get_mut(&node).expect("just connected");
        let result = async {
            conn.send(request.encode()).await.map_err(|e| e.to_string())?;
            loop {
                let bytes = conn.recv().await.map_err(|e| e.to_string())?.ok_or("the node closed the connection")?;
                let response = Response::decode(&bytes)?;
                if response.id == request.id {
                    return Ok(response.body);
                }
                // Id 0: the node could not even decode a request to read its id.
                if response.id == 0
                    && let ResponseBody::Error { kind, message } = response.body
                {
                    return Ok(ResponseBody::Error { kind, message });
                }
                // An answer to an earlier attempt on this connection: skip it.
            }
        }
        .await;
        if result.is_err() {
            self.conns.remove(&node);
        }
        result.map_err(ExchangeError::Lost)
    }
}

fn read_value(body: ResponseBody) -> Result<ReadValue, ClientError> {
    match body {
        ResponseBody::Value { value, version, consistency, applied_index, node } => {
            let siblings = value.iter().cloned().collect();
            Ok(ReadValue { value, siblings, context: None, version, consistency, applied_index, node })
        }
        ResponseBody::Siblings { values, context, node } => {
            let value = if values.len() == 1 { values.first().cloned() } else { None };
            Ok(ReadValue {
                value,
                siblings: values,
                context: Some(context),
                version: 0,
                consistency: Consistency::Linearizable,
                applied_index: 0,
                node,
            })
        }
        ResponseBody::Error { kind, message } => Err(ClientError::Failed(format!("{kind}: {message}"))),
        other => Err(ClientError::Failed(format!("unexpected answer to a read: {other:?}"))),
    }
}
