//! The node's event loop: one task, one input at a time.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use replab_api::{
    DetectorEffects, DetectorInput, Effects, FailureDetector, Input, KeyedInput, NodeId, ProposalId, ReadId,
    ReplicationPolicy, Role, StepError,
};

use super::clock::WallClock;
use super::keyed::KeyedReplica;
use super::metrics::NodeMetrics;
use super::requests::{Batch, PendingRead, PendingWrite, ReplyTo, Waiting, value_response};
use super::storage::{Storage, StorageDone, WriteKind};
use super::{Command, Exit};
use crate::client::protocol::{
    Consistency, ErrorKind, NodeStats, NodeStatus, Request, RequestBody, Response, ResponseBody,
};
use crate::config::Settings;
use crate::kv::{self, Kv};
use crate::net::{ClientCall, FaultTable, Inbound, Incoming, Kind, Network, Outbox};
use crate::wal::group_commit::Done;

/// What `NodeLoop::new` takes.
pub struct Parts {
    pub id: NodeId,
    pub settings: Settings,
    pub replica: Replica,
    pub detector: Box<dyn FailureDetector>,
    pub kv: Kv,
    pub storage: Storage,
    pub storage_done: mpsc::UnboundedReceiver<StorageDone>,
    pub network: Arc<Network>,
    pub incoming: Incoming,
    pub calls: mpsc::Receiver<ClientCall>,
    pub commands: mpsc::Receiver<Command>,
    pub client_addrs: BTreeMap<NodeId, String>,
    pub clock: WallClock,
    /// `true` while the node is paused (`c:pause`): it handles nothing.
    pub paused: watch::Receiver<bool>,
    /// Set with the crash token when the crash is a power loss.
    pub power_loss: Arc<AtomicBool>,
    /// What the node publishes about itself (role, indexes, latencies).
    pub metrics: Arc<NodeMetrics>,
    /// Started by the lab: takes admin requests (`admin.rs`).
    pub lab: bool,
    /// The node's fault table (admin requests set its links' rules).
    pub faults: Arc<FaultTable>,
}

pub struct NodeLoop {
    pub(super) id: NodeId,
    pub(super) settings: Settings,
    /// The policy: log-based (the engine applies its log to `kv`), or
    /// keyed (it keeps the data itself).
    pub(super) replica: Replica,
    /// The failure detector: its verdicts go to the policy as
    /// `Input::PeerLiveness`, its view into the node's status.
    detector: Box<dyn FailureDetector>,
    detector_out: DetectorEffects,
    pub(super) kv: Kv,
    pub(super) effects: Effects,
    pub(super) storage: Storage,
    storage_done: mpsc::UnboundedReceiver<StorageDone>,
    /// Every storage write up to this sequence number is durable.
    pub(super) durable_seq: u64,
    /// Sends that promise durability, waiting for their write: (the write
    /// they depend on, destination, message).
    pub(super) held: VecDeque<(u64, NodeId, Bytes)>,
    pub(super) network: Arc<Network>,
    /// This turn's messages, written together when the turn ends: one
    /// write per peer however many messages the turn produced.
    outbox: Outbox,
    incoming: Incoming,
    calls: mpsc::Receiver<ClientCall>,
    commands: mpsc::Receiver<Command>,
    client_addrs: BTreeMap<NodeId, String>,
    pub(super) batch: Batch,
    pub(super) waiting: Waiting,
    /// How the policy's ready reads are labelled to clients.
    pub(super) read_consistency: Consistency,
    next_proposal: ProposalId,
    next_read: ReadId,
    /// Linearizable reads received this turn: the policy gets them in one
    /// input, so they share one confirmation round.
    turn_reads: Vec<ReadId>,
    /// The policy's clock starts here.
    epoch: Instant,
    pub(super) role: Role,
    pub(super) leader: Option<NodeId>,
    pub(super) stats: NodeStats,
    /// Set when the node must stop (a fatal disk error).
    pub(super) fatal: Option<String>,
    pub(super) clock: WallClock,
    paused: watch::Receiver<bool>,
    pub(super) power_loss: Arc<AtomicBool>,
    pub(super) metrics: Arc<NodeMetrics>,
    pub(super) lab: bool,
    pub(super) faults: Arc<FaultTable>,
    /// Set by an admin power loss: the loop crashes at the end of the turn.
    pub(super) power_off: bool,
}

/// The policy a node runs, in one of the two shapes of the contract.
pub enum Replica {
    Log(Box<dyn ReplicationPolicy>),
    Keyed(KeyedReplica),
}

/// How a pause ended.
enum PauseEnd {
    Resumed,
    Stop,
    Crash,
}

impl NodeLoop {
    pub fn new(p: Parts) -> NodeLoop {
        let read_consistency = match &p.replica {
            Replica::Log(policy) if !policy.reads_are_linearizable() => Consistency::Unconfirmed,
            _ => Consistency::Linearizable,
        };
        NodeLoop {
            read_consistency,
            id: p.id,
            settings: p.settings,
            replica: p.replica,
            detector: p.detector,
            detector_out: DetectorEffects::default(),
            kv: p.kv,
            effects: Effects::new(),
            storage: p.storage,
            storage_done: p.storage_done,
            durable_seq: 0,
            held: VecDeque::new(),
            outbox: p.network.outbox(),
            network: p.network,
            incoming: p.incoming,
            calls: p.calls,
            commands: p.commands,
            client_addrs: p.client_addrs,
            batch: Batch::default(),
            waiting: Waiting::default(),
            next_proposal: 0,
            turn_reads: Vec::new(),
            next_read: 0,
            epoch: Instant::now(),
            role: Role::Follower,
            leader: None,
            stats: NodeStats::default(),
            fatal: None,
            clock: p.clock,
            paused: p.paused,
            power_loss: p.power_loss,
            metrics: p.metrics,
            lab: p.lab,
            faults: p.faults,
            power_off: false,
        }
    }

    /// A crash answers no one and syncs nothing; a power loss also loses
    /// what was written but not yet synced.
    async fn crash(&mut self) -> Exit {
        self.storage.abandon(self.power_loss.load(Ordering::Acquire));
        self.network.shutdown().await;
        Exit::Stopped
    }

    /// A paused node (a long GC pause, a frozen VM) handles nothing: no
    /// messages, no client requests, no ticks, no disk completions. Time
    /// goes on for the others; when it resumes, its clock has jumped.
    async fn pause(&mut self, stop: &CancellationToken, crash: &CancellationToken) -> PauseEnd {
        loop {
            if !*self.paused.borrow_and_update() {
                return PauseEnd::Resumed;
            }
            tokio::select! {
                biased;
                _ = crash.cancelled() => return PauseEnd::Crash,
                _ = stop.cancelled() => return PauseEnd::Stop,
                changed = self.paused.changed() => if changed.is_err() { return PauseEnd::Resumed },
            }
        }
    }

    pub async fn run(mut self, stop: CancellationToken, crash: CancellationToken) -> Exit {
        // Whatever the node asked for while starting.
        self.storage.submit_queued();
        let tick_every = Duration::from_millis(self.settings.node.tick_interval_ms);
        let mut tick = tokio::time::interval(tick_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let linger = Duration::from_micros(self.settings.node.batch_linger_us);
        loop {
            let batch_due = self.batch.opened().map(|opened| opened + linger);
            tokio::select! {
                biased;
                _ = crash.cancelled() => return self.crash().await,
                _ = stop.cancelled() => break,
                Ok(()) = self.paused.changed() => match self.pause(&stop, &crash).await {
                    PauseEnd::Resumed => {}
                    PauseEnd::Stop => break,
                    PauseEnd::Crash => return self.crash().await,
                },
                Some(done) = self.storage_done.recv() => self.on_storage_done(done),
                Some(batch) = self.incoming.recv() => {
                    for message in batch {
                        self.on_peer_message(message);
                    }
                }
                Some(call) = self.calls.recv() => {
                    self.on_client(call);
                    // Batching: take every request that is already here
                    // before proposing. A power loss (an admin request)
                    // ends the turn where it is, as a crash would.
                    while !self.power_off {
                        let Ok(call) = self.calls.try_recv() else { break };
                        self.on_client(call);
                    }
                    if self.power_off {
                        return self.crash().await;
                    }
                    self.request_reads();
                    if linger.is_zero() {
                        self.propose_batch();
                    }
                }
                _ = sleep_until_opt(batch_due) => self.propose_batch(),
                _ = tick.tick() => {
                    if self.is_keyed() {
                        self.step_keyed(KeyedInput::Tick);
                        self.stats.timeouts += self.expire_keyed(Instant::now());
                    } else {
                        self.step(Input::Tick);
                    }
                    self.detect(DetectorInput::Tick);
                    self.stats.timeouts += self.waiting.expire(Instant::now());
                }
                Some(command) = self.commands.recv() => self.on_command(command),
            }
            self.network.flush(&mut self.outbox);
            self.storage.submit_queued();
            if let Some(why) = self.fatal.take() {
                error!(node = self.id, "stopping: {why}");
                self.waiting.fail_all(ErrorKind::Unavailable, "the node stopped after a fatal error");
                if self.is_keyed() {
                    self.fail_keyed("the node stopped after a fatal error");
                }
                self.storage.abandon(false);
                self.network.shutdown().await;
                return Exit::Failed(why);
            }
        }
        self.waiting.fail_all(ErrorKind::Unavailable, "the node is shutting down");
        if self.is_keyed() {
            self.fail_keyed("the node is shutting down");
        }
        for write in self.batch.take() {
            write.to.error(ErrorKind::Unavailable, "the node is shutting down");
        }
        self.storage.close();
        self.network.shutdown().await;
        Exit::Stopped
    }

    pub(super) fn now(&self) -> replab_api::Instant {
        replab_api::Instant::from_micros(self.epoch.elapsed().as_micros() as u64)
    }

    pub(super) fn keyed_replica(&mut self) -> Option<&mut KeyedReplica> {
        match &mut self.replica {
            Replica::Keyed(keyed) => Some(keyed),
            Replica::Log(_) => None,
        }
    }

    fn is_keyed(&self) -> bool {
        matches!(self.replica, Replica::Keyed(_))
    }

    /// This node's wall clock, in ms since the epoch (skewed if a scenario
    /// skewed it).
    pub(super) fn wall_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Feeds one input to a log-based policy and carries out what it
    /// decided.
    pub(super) fn step(&mut self, input: Input) {
        let now = self.now();
        let Replica::Log(policy) = &mut self.replica else { unreachable!("log inputs go to log-based policies only") };
        match policy.step(now, input, &mut self.effects) {
            Ok(()) => {}
            Err(StepError::Decode { from, reason }) => {
                warn!(node = self.id, "dropped an undecodable message from node {from}: {reason}")
            }
            Err(e) => warn!(node = self.id, "input refused: {e}"),
        }
        self.carry_out();
    }

    fn on_peer_message(&mut self, message: Inbound) {
        // A lab node also drops what arrives on a link the lab cut: the
        // rules reach the sender only once it runs (a paused sender gets
        // them after SIGCONT), and in-process the sender's side alone
        // would have dropped them at once.
        if self.lab && self.faults.is_cut(message.from, self.id) {
            return;
        }
        match message.kind {
            Kind::Peer if self.is_keyed() => {
                self.step_keyed(KeyedInput::Message { from: message.from, bytes: message.payload })
            }
            Kind::Peer => self.step(Input::Message { from: message.from, bytes: message.payload }),
            Kind::Detector => self.detect(DetectorInput::Message { from: message.from, bytes: message.payload }),
            other => warn!(node = self.id, "ignoring a {other:?} envelope from node {}", message.from),
        }
    }

    /// Feeds the failure detector, sends what it asks and tells the policy
    /// about every changed verdict.
    fn detect(&mut self, input: DetectorInput) {
        let now = self.now();
        if let Err(e) = self.detector.step(now, input, &mut self.detector_out) {
            warn!(node = self.id, "failure detector refused an input: {e}");
        }
        for (to, bytes) in std::mem::take(&mut self.detector_out.sends) {
            if let Err(e) = self.network.stage(&mut self.outbox, to, Kind::Detector, bytes) {
                warn!(node = self.id, "cannot send: {e}");
            }
        }
        for (peer, liveness) in std::mem::take(&mut self.detector_out.verdicts) {
            info!(node = self.id, peer, "failure detector: node {peer} is now {liveness:?}");
            self.stats.liveness_changes += 1;
            if self.is_keyed() {
                self.step_keyed(KeyedInput::PeerLiveness { peer, liveness });
            } else {
                self.step(Input::PeerLiveness { peer, liveness });
            }
        }
    }

    fn on_storage_done(&mut self, done: StorageDone) {
        let done_what = match done.result {
            Ok(what) => what,
            Err(e) => {
                self.fatal = Some(format!("storage write {} failed: {e}", done.seq));
                return;
            }
        };
        debug_assert!(done.seq > self.durable_seq, "the log thread completes writes in order");
        self.durable_seq = done.seq;
        while self.held.front().is_some_and(|(seq, _, _)| *seq <= self.durable_seq) {
            let (_, to, bytes) = self.held.pop_front().expect("checked");
            self.send_now(to, bytes);
        }
        match done.kind {
            WriteKind::Append(position) => self.step(Input::Persisted { position }),
            WriteKind::SnapshotSaved(snapshot) => {
                self.stats.snapshots_taken += 1;
                self.step(Input::SnapshotTaken { snapshot });
            }
            WriteKind::Records => {
                let Done::Appended(range) = done_what else { unreachable!("records complete as appends") };
                self.step_keyed(KeyedInput::Persisted { up_to: range.end - 1 });
            }
            WriteKind::Other => {}
        }
    }

    /// A send that promises durability waits for the last write submitted
    /// before it; others leave at once.
    pub(super) fn send_after(&mut self, to: NodeId, bytes: Bytes, after_persist: bool) {
        let needs = self.storage.last_submitted();
        if after_persist && needs > self.durable_seq {
            self.held.push_back((needs, to, bytes));
        } else {
            self.send_now(to, bytes);
        }
    }

    pub(super) fn send_now(&mut self, to: NodeId, bytes: Bytes) {
        self.stats.messages_sent += 1;
        self.stats.message_bytes_sent += bytes.len() as u64;
        if let Err(e) = self.network.stage(&mut self.outbox, to, Kind::Peer, bytes) {
            warn!(node = self.id, "cannot send: {e}");
        }
    }

    pub(super) fn on_command(&mut self, command: Command) {
        match command {
            Command::Status(tx) => {
                let _ = tx.send(self.status());
            }
            Command::Dump(tx) => {
                let _ = tx.send(self.kv.dump());
            }
            Command::Replicas(tx) => {
                let state = match &self.replica {
                    Replica::Keyed(keyed) => keyed.policy.replica_state(),
                    Replica::Log(_) => Vec::new(),
                };
                let _ = tx.send(state);
            }
            Command::TransferLeader(_) if self.is_keyed() => {
                warn!(node = self.id, "a leader transfer means nothing to a policy without leaders");
            }
            Command::TransferLeader(to) => self.step(Input::TransferLeader { to }),
        }
    }

    pub(super) fn status(&self) -> NodeStatus {
        let wal = self.storage.wal_stats();
        let stats = NodeStats { fdatasyncs: wal.fdatasyncs, log_records: wal.records, ..self.stats };
        NodeStatus {
            policy: match &self.replica {
                Replica::Log(policy) => policy.status(),
                Replica::Keyed(keyed) => keyed.policy.status(),
            },
            keys: self.kv.len() as u64,
            sessions: self.kv.sessions() as u64,
            digest: self.kv.digest(),
            stats,
            liveness: self.detector.view(self.now()),
            policy_counters: match &self.replica {
                Replica::Log(policy) => policy.counters(),
                Replica::Keyed(keyed) => keyed.policy.counters(),
            }
            .into_iter()
            .map(|(name, n)| (name.to_string(), n))
            .collect(),
        }
    }

    pub(super) fn client_addr(&self, node: NodeId) -> Option<String> {
        self.client_addrs.get(&node).cloned()
    }

    fn redirect(&mut self, to: &ReplyTo) {
        self.stats.redirects += 1;
        let leader = self.leader.filter(|l| *l != self.id);
        let leader_addr = leader.and_then(|l| self.client_addr(l));
        to.send(ResponseBody::Redirect { leader, leader_addr });
    }

    fn reply_to(&self, request_id: u64, reply: mpsc::Sender<Response>, received: Instant) -> ReplyTo {
        ReplyTo { request_id, reply, received, metrics: Arc::clone(&self.metrics) }
    }

    fn on_client(&mut self, call: ClientCall) {
        let received = Instant::now();
        let request = match Request::decode(&call.payload) {
            Ok(request) => request,
            Err(e) => {
                self.stats.bad_requests += 1;
                self.reply_to(0, call.reply, received).error(ErrorKind::BadRequest, e);
                return;
            }
        };
        let to = self.reply_to(request.id, call.reply, received);
        let request = match request.body {
            RequestBody::Admin(admin) => return self.on_admin(admin, to),
            body => Request { id: request.id, body },
        };
        let limits = &self.settings.node;
        let deadline = Instant::now() + Duration::from_millis(limits.request_timeout_ms);
        if self.is_keyed() {
            return self.keyed_client(request, to, deadline);
        }
        if let RequestBody::Write { context: Some(_), .. } = &request.body {
            self.stats.bad_requests += 1;
            return to.error(
                ErrorKind::BadRequest,
                "a causal context is for policies that keep concurrent versions (leaderless); this one orders \
                 every write",
            );
        }
        match request.body {
            // Taken above; here only to keep the match whole.
            RequestBody::Admin(admin) => self.on_admin(admin, to),
            RequestBody::Status => to.send(ResponseBody::Status(Box::new(self.status()))),
            RequestBody::Read { key, consistency: Consistency::Stale } => {
                self.stats.reads_served += 1;
                let applied = self.kv.applied().index;
                to.send(value_response(self.kv.get(&key), Consistency::Stale, applied, self.id));
            }
            _ if self.role != Role::Leader => self.redirect(&to),
            _ if self.waiting.len() + self.batch.len() >= limits.max_pending_requests => to.error(
                ErrorKind::Busy,
                format!("{} requests already waiting; retry later", limits.max_pending_requests),
            ),
            RequestBody::Read { consistency: Consistency::Unconfirmed, .. } => to.error(
                ErrorKind::BadRequest,
                "a read asks for linearizable or stale; unconfirmed is only an answer".to_string(),
            ),
            RequestBody::Read { key, consistency: Consistency::Linearizable } => {
                if key.len() > limits.max_key_bytes {
                    return self.too_large(&to, "key", key.len(), limits.max_key_bytes);
                }
                self.next_read += 1;
                let id = self.next_read;
                self.waiting.read_sent(id, PendingRead { to, deadline, key });
                self.turn_reads.push(id);
            }
            RequestBody::Register => {
                let command = kv::encode(self.clock.now_ms(), kv::Command::Register);
                self.batch.push(PendingWrite { to, deadline, command }, Instant::now());
            }
            RequestBody::Write { client, seq, ack_below, op, .. } => {
                if op.key().len() > limits.max_key_bytes {
                    return self.too_large(&to, "key", op.key().len(), limits.max_key_bytes);
                }
                let value_bytes = op.size_bytes() - op.key().len();
                if value_bytes > limits.max_value_bytes {
                    return self.too_large(&to, "value", value_bytes, limits.max_value_bytes);
                }
                let command = kv::encode(self.clock.now_ms(), kv::Command::Request { client, seq, ack_below, op });
                self.batch.push(PendingWrite { to, deadline, command }, Instant::now());
            }
        }
        if self.batch.len() >= self.settings.node.batch_max_entries
            || self.batch.bytes() >= self.settings.node.batch_max_bytes
        {
            self.propose_batch();
        }
    }

    /// Hands the policy every linearizable read of this turn at once.
    fn request_reads(&mut self) {
        if self.turn_reads.is_empty() {
            return;
        }
        let ids = std::mem::take(&mut self.turn_reads);
        self.step(Input::Read { ids });
    }

    fn too_large(&mut self, to: &ReplyTo, what: &str, size: usize, max: usize) {
        self.stats.bad_requests += 1;
        to.error(ErrorKind::BadRequest, format!("{what} of {size} bytes is above the limit of {max} bytes"));
    }

    /// Hands the open batch to the policy as one proposal.
    pub(super) fn propose_batch(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let writes = self.batch.take();
        if self.role != Role::Leader {
            for write in &writes {
                self.redirect(&write.to);
            }
            return;
        }
        self.next_proposal += 1;
        let id = self.next_proposal;
        let commands = writes.iter().map(|w| w.command.clone()).collect();
        self.stats.proposals += 1;
        self.stats.proposed_entries += writes.len() as u64;
        self.waiting.proposal_sent(id, writes);
        self.step(Input::Propose { id, commands });
    }
}

async fn sleep_until_opt(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}
