//! The node runtime: one event loop per node that owns the policy, the
//! key-value store and the waiting lists, and does all of the node's I/O.
//!
//! The loop is the node's *singular update queue*: peer messages, client
//! requests, disk completions and timer ticks all arrive on channels and
//! are handled one at a time, so the policy and the store need no locks.
//! The policy decides; the loop carries out its effects in order
//! (`effects.rs`): disk writes through the group-commit log thread, sends
//! through the transport (held back until durable when they promise
//! durability), applies to the store, answers to clients.

pub mod admin;
pub mod clock;
mod effects;
mod event_loop;
mod keyed;
pub mod lock;
pub mod metrics;
pub mod metrics_server;
mod requests;
pub mod storage;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use replab_api::{NodeId, PolicyContext};

use crate::client::protocol::NodeStatus;
use crate::config::Settings;
use crate::net::{ClientListener, Credentials, FaultTable, LinkStats, Network, NetworkSetup, Role};
use clock::WallClock;
use event_loop::Replica;
use keyed::KeyedReplica;
use metrics::NodeMetrics;

/// The addresses of one member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberAddrs {
    pub peer: SocketAddr,
    pub client: SocketAddr,
}

/// Everything a node needs to start.
pub struct NodeSpec {
    pub id: NodeId,
    pub members: BTreeMap<NodeId, MemberAddrs>,
    /// This node's own directory (log, hard state, snapshot).
    pub dir: PathBuf,
    /// Whether an empty `dir` is a first start or may be a wiped disk.
    pub origin: storage::Origin,
    pub settings: Settings,
    pub faults: Arc<FaultTable>,
    /// Bound by the caller, so an in-process cluster can pick free ports
    /// and keep them across restarts.
    pub peer_listener: TcpListener,
    pub client_listener: TcpListener,
    /// The node's wall clock (shared with its owner, who may skew it).
    pub clock: WallClock,
    /// Started by the lab (`replab node --allow-fault-injection`): the node
    /// takes admin requests on its client port (`admin.rs`). False for
    /// every node an operator starts, and in-process, where the cluster
    /// reaches the node directly.
    pub lab: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("node {id}: {source}")]
    Storage { id: NodeId, source: storage::StorageError },
    #[error("node {id}: {message}")]
    Config { id: NodeId, message: String },
    #[error("node {id}: {source}")]
    Lock { id: NodeId, source: lock::LockError },
}

/// Requests to a running node from its owner (cluster, CLI, tests).
enum Command {
    Status(oneshot::Sender<NodeStatus>),
    Dump(oneshot::Sender<BTreeMap<bytes::Bytes, bytes::Bytes>>),
    TransferLeader(NodeId),
    /// A keyed policy's view of every key it replicates.
    Replicas(oneshot::Sender<Vec<replab_api::KeyState>>),
}

/// How the node's loop ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    Stopped,
    /// The disk failed (an fsync error is fatal) or state was corrupt.
    Failed(String),
}

/// A running node.
pub struct NodeHandle {
    pub id: NodeId,
    commands: mpsc::Sender<Command>,
    stop: CancellationToken,
    crash: CancellationToken,
    /// Set before `crash` fires when the crash is a power loss.
    power_loss: Arc<AtomicBool>,
    paused: watch::Sender<bool>,
    task: JoinHandle<Exit>,
    network_stats: NetworkStats,
    metrics: Arc<NodeMetrics>,
}

type NetworkStats = Arc<dyn Fn() -> BTreeMap<NodeId, LinkStats> + Send + Sync>;

/// What observers outside the node's owner may read: its status (through
/// its loop), its link counters and its metrics. Cloneable, so a metrics
/// endpoint can hold one while the owner keeps the handle.
#[derive(Clone)]
pub struct NodeProbe {
    commands: mpsc::Sender<Command>,
    network_stats: NetworkStats,
    metrics: Arc<NodeMetrics>,
}

impl NodeProbe {
    /// The node's status, or `None` if its loop has ended.
    pub async fn status(&self) -> Option<NodeStatus> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(Command::Status(tx)).await.ok()?;
        rx.await.ok()
    }

    pub fn network_stats(&self) -> BTreeMap<NodeId, LinkStats> {
        (self.network_stats)()
    }

    pub fn metrics(&self) -> &Arc<NodeMetrics> {
        &self.metrics
    }
}

impl NodeHandle {
    /// The node's status, or `None` if its loop has ended.
    pub async fn status(&self) -> Option<NodeStatus> {
        self.probe().status().await
    }

    pub fn probe(&self) -> NodeProbe {
        NodeProbe {
            commands: self.commands.clone(),
            network_stats: Arc::clone(&self.network_stats),
            metrics: Arc::clone(&self.metrics),
        }
    }

    /// Role, term, indexes and latencies, readable without asking the loop.
    pub fn metrics(&self) -> &Arc<NodeMetrics> {
        &self.metrics
    }

    /// Every key and value in this replica's store.
    pub async fn dump(&self) -> Option<BTreeMap<bytes::Bytes, bytes::Bytes>> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(Command::Dump(tx)).await.ok()?;
        rx.await.ok()
    }

    /// Every key this node replicates under a keyed policy (empty under a
    /// log-based one), or `None` if its loop has ended.
    pub async fn replicas(&self) -> Option<Vec<replab_api::KeyState>> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(Command::Replicas(tx)).await.ok()?;
        rx.await.ok()
    }

    pub async fn transfer_leader(&self, to: NodeId) -> bool {
        self.commands.send(Command::TransferLeader(to)).await.is_ok()
    }

    pub fn network_stats(&self) -> BTreeMap<NodeId, LinkStats> {
        (self.network_stats)()
    }

    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }

    /// Clean stop: pending requests are answered `Unavailable`, queued
    /// writes are synced, connections closed.
    pub async fn shutdown(self) -> Exit {
        self.stop.cancel();
        self.task.await.unwrap_or_else(|e| Exit::Failed(format!("node task panicked: {e}")))
    }

    /// Crash: the node's memory and tasks are dropped at once; writes not
    /// yet handed to the kernel are lost, as with SIGKILL. Files stay.
    pub async fn crash(self) -> Exit {
        self.crash.cancel();
        self.task.await.unwrap_or_else(|e| Exit::Failed(format!("node task panicked: {e}")))
    }

    /// A power loss: as `crash`, and whatever the node wrote but had not
    /// yet fdatasynced is gone too, as after the machine lost power.
    pub async fn power_loss(self) -> Exit {
        self.power_loss.store(true, Ordering::Release);
        self.crash().await
    }

    /// Freezes the node: it handles nothing (no messages, requests, ticks
    /// or disk completions) until `resume`, while time goes on for the
    /// others. Its connections stay open; what peers send waits unread.
    pub fn pause(&self) {
        self.metrics.set_paused(true);
        self.paused.send_replace(true);
    }

    pub fn resume(&self) {
        self.metrics.set_paused(false);
        self.paused.send_replace(false);
    }

    pub fn is_paused(&self) -> bool {
        *self.paused.borrow()
    }

    /// Whether the node lost power (`power_loss`, or an admin request).
    pub fn lost_power(&self) -> bool {
        self.power_loss.load(Ordering::Acquire)
    }
}

/// What a node's directory held, in the shape of its policy.
enum Recovering {
    Log(storage::Recovery),
    Keyed(storage::KeyedRecovery),
}

/// A node that lost durable state says so at the default log level.
fn warn_about_memory(id: NodeId, memory: replab_api::Memory) {
    match memory {
        replab_api::Memory::Intact => {}
        replab_api::Memory::Truncated { reached } => warn!(
            node = id,
            "this node's log was repaired and once reached index {} of term {}: it will not vote for a less up to \
             date candidate, nor campaign, until it has caught up",
            reached.index,
            reached.term
        ),
        replab_api::Memory::Blank => warn!(
            node = id,
            "this node starts with no durable state (a first start or a wiped disk): it will not vote or \
             campaign until every member says it holds no data, or it has caught up from a leader"
        ),
    }
}

/// Locks the node's directory, recovers the node from it and starts its
/// loop, transport and client port.
pub fn start(spec: NodeSpec) -> Result<NodeHandle, NodeError> {
    let lock = lock::DirLock::acquire(&spec.dir).map_err(|source| NodeError::Lock { id: spec.id, source })?;
    start_locked(spec, lock)
}

/// [`start`] with the lock of `spec.dir` already held (process mode takes
/// it before it repairs the log). The node's task keeps it until it ends.
pub fn start_locked(spec: NodeSpec, lock: lock::DirLock) -> Result<NodeHandle, NodeError> {
    let id = spec.id;
    let settings = spec.settings;
    let keyed = crate::registry::shape(&settings) == crate::registry::Shape::Keyed;
    let mut recovery = if keyed {
        let recovery = storage::recover_keyed(&spec.dir, settings.wal.options(), spec.origin, spec.clock.now_us())
            .map_err(|source| NodeError::Storage { id, source })?;
        if recovery.renewed {
            warn!(
                node = id,
                incarnation = recovery.recovered.incarnation,
                "this node found its state missing (a first start, a wiped disk or a repaired log): it writes \
                 under a new incarnation, so it never reuses a version name its peers may hold"
            );
        }
        Recovering::Keyed(recovery)
    } else {
        let recovery = storage::recover(&spec.dir, settings.wal.options(), settings.kv.clone(), spec.origin)
            .map_err(|source| NodeError::Storage { id, source })?;
        warn_about_memory(id, recovery.recovered.memory);
        Recovering::Log(recovery)
    };
    let report = match &recovery {
        Recovering::Log(r) => &r.report,
        Recovering::Keyed(r) => &r.report,
    };
    if let Some(damage) = &report.damage {
        // Only a torn tail gets here (other damage refuses to open), but
        // every cut is worth an operator's look.
        warn!(
            node = id,
            "cut a torn tail off the log: {} byte(s), about {} record(s) from index {}: {damage}",
            report.truncated_bytes,
            report.dropped_records,
            report.cut_at_index.unwrap_or_default()
        );
    }
    let members: Vec<NodeId> = spec.members.keys().copied().collect();
    let seed = settings.cluster.seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // The detector's generation clock: the start time (only the engine may
    // read the wall clock), but always above the last start's, which is
    // kept in the node's directory, so a clock stepped back cannot make a
    // restarted node look older than its previous life.
    let now_us = spec.clock.now_us();
    let wal = match &mut recovery {
        Recovering::Log(r) => &mut r.wal,
        Recovering::Keyed(r) => &mut r.wal,
    };
    let generation = wal.next_generation(now_us).map_err(|e| NodeError::Storage { id, source: e.into() })?;
    let detector = crate::registry::build_detector(&settings, id, &members, seed.rotate_left(17), generation)
        .map_err(|e| NodeError::Config { id, message: e.to_string() })?;
    let ctx = PolicyContext { id, members, seed };
    let config_error = |e: replab_api::ConfigError| NodeError::Config { id, message: e.to_string() };
    let (wal, kv, replica) = match recovery {
        Recovering::Log(r) => {
            let policy = crate::registry::build(&settings, ctx, r.recovered).map_err(config_error)?;
            (r.wal, r.kv, Replica::Log(policy))
        }
        Recovering::Keyed(r) => {
            let last_seq = r.recovered.last_seq;
            let policy = crate::registry::build_keyed(&settings, ctx, r.recovered).map_err(config_error)?;
            (r.wal, crate::kv::Kv::new(settings.kv.clone()), Replica::Keyed(KeyedReplica::new(policy, last_seq, id)))
        }
    };

    let creds = Credentials {
        cluster_id: settings.cluster.id.clone(),
        secret: settings.cluster.secret.clone(),
        node_id: id,
        role: Role::Peer,
    };
    let peers = spec.members.iter().filter(|(p, _)| **p != id).map(|(p, a)| (*p, a.peer)).collect();
    let (network, incoming) = Network::start(NetworkSetup {
        creds: creds.clone(),
        config: settings.net.clone(),
        listener: spec.peer_listener,
        peers,
        faults: Arc::clone(&spec.faults),
        seed: settings.cluster.seed ^ id,
    });
    let network = Arc::new(network);
    let (calls_tx, calls) = mpsc::channel(4096);
    let client_cancel = CancellationToken::new();
    let client_tracker = tokio_util::task::TaskTracker::new();
    let client_port = Arc::new(ClientListener {
        creds,
        config: settings.net.clone(),
        calls: calls_tx,
        cancel: client_cancel.clone(),
        tracker: client_tracker.clone(),
    });
    client_tracker.spawn(client_port.run(spec.client_listener));

    let (commands_tx, commands) = mpsc::channel(64);
    let (paused, paused_rx) = watch::channel(false);
    let power_loss = Arc::new(AtomicBool::new(false));
    let stop = CancellationToken::new();
    let crash = CancellationToken::new();
    let client_addrs = spec.members.iter().map(|(id, a)| (*id, a.client.to_string())).collect();
    let (storage, storage_done) = storage::Storage::new(wal);
    let role = if keyed { replab_api::Role::Peer } else { replab_api::Role::Follower };
    let metrics = Arc::new(NodeMetrics::new(id, role, storage.sync_latency()));
    let stats_network = Arc::clone(&network);
    let node = event_loop::NodeLoop::new(event_loop::Parts {
        id,
        settings,
        replica,
        detector,
        kv,
        storage,
        storage_done,
        network,
        incoming,
        calls,
        commands,
        client_addrs,
        lab: spec.lab,
        faults: Arc::clone(&spec.faults),
        clock: spec.clock,
        paused: paused_rx,
        power_loss: Arc::clone(&power_loss),
        metrics: Arc::clone(&metrics),
    });
    let (stop_token, crash_token) = (stop.clone(), crash.clone());
    let task_metrics = Arc::clone(&metrics);
    let task = tokio::spawn(async move {
        let exit = node.run(stop_token, crash_token).await;
        task_metrics.set_up(false);
        client_cancel.cancel();
        client_tracker.close();
        client_tracker.wait().await;
        // The log thread has stopped and every file is closed: another
        // incarnation may open the directory (a crashed node's restart).
        drop(lock);
        exit
    });
    Ok(NodeHandle {
        id,
        commands: commands_tx,
        stop,
        crash,
        power_loss,
        paused,
        task,
        network_stats: Arc::new(move || stats_network.stats()),
        metrics,
    })
}
