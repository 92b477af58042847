//! Process mode: `replab node --config FILE --id N` runs one member of a
//! cluster whose members are listed in the config file.
//!
//! SIGTERM or Ctrl-C stop the node cleanly (queued writes synced, clients
//! told). After SIGKILL the node recovers from its files on the next start.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::signal::unix::{Signal, SignalKind, signal};

use replab_api::NodeId;

use crate::config::Settings;
use crate::net::FaultTable;
use crate::node::lock::DirLock;
use crate::node::{self, Exit, MemberAddrs, NodeSpec, storage};
use crate::wal::WalError;

/// The members from config, checked for this node.
pub fn members(settings: &Settings, id: NodeId) -> Result<BTreeMap<NodeId, MemberAddrs>, String> {
    if settings.cluster.members.is_empty() {
        return Err("cluster.members is empty: list every member with its peer_addr and client_addr \
                    (see config/cluster-3.toml)"
            .into());
    }
    let mut members = BTreeMap::new();
    for m in &settings.cluster.members {
        let parse = |field: &str, text: &str| -> Result<SocketAddr, String> {
            text.parse().map_err(|_| format!("member {}: {field} {text:?} is not an IP:port address", m.id))
        };
        members.insert(
            m.id,
            MemberAddrs { peer: parse("peer_addr", &m.peer_addr)?, client: parse("client_addr", &m.client_addr)? },
        );
    }
    if !members.contains_key(&id) {
        let ids: Vec<String> = members.keys().map(u64::to_string).collect();
        return Err(format!("--id {id} is not a member; members are {}", ids.join(", ")));
    }
    Ok(members)
}

/// How `replab node` was started. The lab (`replab run` on processes)
/// sets the hidden flags; an operator sets only `repair_wal`.
#[derive(Clone, Copy, Debug, Default)]
pub struct NodeOptions {
    /// `--repair-wal`: cut the log at its first damage before starting.
    pub repair_wal: bool,
    /// `--allow-fault-injection`: take the lab's admin requests.
    pub lab: bool,
    /// `--exit-with-parent`: stop when standard input ends (the lab holds
    /// its write end; it closes when the lab exits, however it exits).
    pub exit_with_parent: bool,
    /// `--clock-skew-ms`: the wall clock's skew from the first read (a
    /// skew belongs to the machine and outlives restarts).
    pub clock_skew_ms: i64,
}

/// The exit code of a node that lost power at the lab's request.
pub const EXIT_POWER_LOSS: u8 = 4;

/// Why `run_node` returned an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunError {
    /// The node did not start: its configuration, a port, its data
    /// directory or its log. Exit code 2, like a configuration error: a
    /// supervisor should not restart it until someone fixes that.
    Start(String),
    /// The node ran, then failed (a disk error). Exit code 1.
    Failed(String),
    /// The lab cut its power (an admin request): exit code 4.
    PowerLoss(String),
}

impl RunError {
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Start(_) => 2,
            RunError::Failed(_) => 1,
            RunError::PowerLoss(_) => EXIT_POWER_LOSS,
        }
    }
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Start(why) | RunError::Failed(why) | RunError::PowerLoss(why) => f.write_str(why),
        }
    }
}

/// Runs node `id` until SIGTERM or Ctrl-C (or, with `exit_with_parent`,
/// until standard input ends).
pub async fn run_node(settings: Settings, id: NodeId, options: NodeOptions) -> Result<(), RunError> {
    let handle = start_node(settings, id, options).await.map_err(RunError::Start)?;
    let parent_gone = tokio_util::sync::CancellationToken::new();
    if options.exit_with_parent {
        let gone = parent_gone.clone();
        // A blocking read on its own thread: EOF (or an error) means the
        // process holding the pipe's other end is gone.
        std::thread::spawn(move || {
            let mut sink = [0u8; 64];
            let mut stdin = std::io::stdin().lock();
            while matches!(std::io::Read::read(&mut stdin, &mut sink), Ok(n) if n > 0) {}
            gone.cancel();
        });
    }
    let metrics_stop = tokio_util::sync::CancellationToken::new();
    if let Some(listener) = handle.metrics {
        tokio::spawn(node::metrics_server::serve(listener, handle.node.probe(), metrics_stop.clone()));
    }
    let (mut term, mut interrupt) = handle.signals;
    let mut watchdog = tokio::time::interval(std::time::Duration::from_millis(20));
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = interrupt.recv() => break,
            _ = parent_gone.cancelled() => {
                eprintln!("node {id}: the lab that started it is gone; stopping");
                break;
            }
            _ = watchdog.tick() => if !handle.node.is_running() { break },
        }
    }
    metrics_stop.cancel();
    if handle.node.lost_power() {
        let _ = handle.node.shutdown().await;
        return Err(RunError::PowerLoss(format!("node {id}: power loss (asked by the lab)")));
    }
    match handle.node.shutdown().await {
        Exit::Stopped => {
            eprintln!("node {id}: stopped");
            Ok(())
        }
        Exit::Failed(why) => Err(RunError::Failed(format!("node {id} failed: {why}"))),
    }
}

struct Started {
    node: node::NodeHandle,
    signals: (Signal, Signal),
    /// Bound before the node starts, so a taken port refuses the start.
    metrics: Option<TcpListener>,
}

/// Everything before the node runs; an error here is [`RunError::Start`].
async fn start_node(settings: Settings, id: NodeId, options: NodeOptions) -> Result<Started, String> {
    let repair_wal = options.repair_wal;
    let members = members(&settings, id)?;
    let dir = settings.node_dir(id);
    // Before the repair, which writes to the directory too.
    let lock = DirLock::acquire(&dir).map_err(|e| format!("node {id}: {e}"))?;
    if repair_wal {
        match storage::repair(&dir, &settings.wal.options()) {
            Ok(Some(repaired)) => eprintln!(
                "node {id}: repaired the log: removed {} record(s) from index {} ({}); this node catches up from \
                 its peers before it votes for anyone less up to date than index {} of term {}",
                repaired.damage.records_removed(),
                repaired.damage.index,
                repaired.damage,
                repaired.reached.index,
                repaired.reached.term
            ),
            Ok(None) => eprintln!("node {id}: --repair-wal: the log in {} needs no repair", dir.display()),
            Err(e) => return Err(format!("node {id}: cannot repair the log in {}: {e}", dir.display())),
        }
    }
    let me = members[&id];
    let peer_listener = TcpListener::bind(me.peer)
        .await
        .map_err(|e| format!("node {id}: cannot listen for peers on {} (peer_addr): {e}", me.peer))?;
    let client_listener = TcpListener::bind(me.client)
        .await
        .map_err(|e| format!("node {id}: cannot listen for clients on {} (client_addr): {e}", me.client))?;
    let metrics = match node::metrics_server::parse_addr(&settings.node.metrics_addr) {
        Ok(Some(addr)) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|e| format!("node {id}: cannot serve metrics on {addr} (node.metrics_addr): {e}"))?,
        ),
        Ok(None) => None,
        Err(e) => return Err(format!("node.metrics_addr: {e}")),
    };
    let signals = (
        signal(SignalKind::terminate()).map_err(|e| format!("cannot handle SIGTERM: {e}"))?,
        signal(SignalKind::interrupt()).map_err(|e| format!("cannot handle SIGINT: {e}"))?,
    );
    let faults = Arc::new(FaultTable::new(settings.cluster.seed));
    // A process cannot tell a first start from a wiped disk.
    let origin = storage::Origin::Existing;
    let clock = node::clock::WallClock::default();
    clock.set_skew_ms(options.clock_skew_ms);
    let spec = NodeSpec {
        id,
        members,
        dir: dir.clone(),
        origin,
        settings,
        faults,
        peer_listener,
        client_listener,
        clock,
        lab: options.lab,
    };
    let handle = node::start_locked(spec, lock).map_err(|e| match e {
        node::NodeError::Storage { source: storage::StorageError::Wal(wal @ WalError::Corrupt { .. }), .. } => format!(
            "node {id}: {wal}\nThe log refuses to open. To cut it at the damage and let this node catch up from its \
             peers, start it with --repair-wal (docs/WAL.md, \"Repair\")."
        ),
        e => e.to_string(),
    })?;
    eprintln!("node {id}: peers on {}, clients on {}, data in {}", me.peer, me.client, dir.display());
    if let Some(listener) = &metrics
        && let Ok(addr) = listener.local_addr()
    {
        eprintln!("node {id}: metrics on http://{addr}/metrics");
    }
    Ok(Started { node: handle, signals, metrics })
}
