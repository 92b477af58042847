//! A [`Cluster`](super::Cluster) whose members are `replab node` processes
//! (`cluster.processes = true`, `replab run --processes`).
//!
//! The lab spawns its own executable once per member, from a config file
//! written from the run's settings, with the hidden lab flags:
//! `--allow-fault-injection` (it takes admin requests on its client port)
//! and `--exit-with-parent` (it stops when the lab's end of its stdin pipe
//! closes). Crash is SIGKILL, stop SIGTERM, pause SIGSTOP, resume SIGCONT;
//! link faults, clock skew and power loss go through the admin channel
//! (`node/admin.rs`). The lab keeps the link rules and the skews itself,
//! as the in-process cluster does, and hands them to a node again when it
//! restarts (rules) or at its start (skew, `--clock-skew-ms`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use replab_api::NodeId;

use super::children::{Children, Spawn, free_ports_on};
use super::{ClusterError, NodeBoard};
use crate::client::protocol::{AdminRequest, NodeStatus, ResponseBody};
use crate::client::{Client, ClientOptions};
use crate::config::{MemberSettings, Settings};
use crate::histogram::LatencyHistogram;
use crate::net::FaultTable;
use crate::node::MemberAddrs;
use crate::node::metrics::NodeMetrics;

/// How long a node process may take to answer on its client port after
/// it was spawned.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// How long the lab keeps asking a running node an admin request.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the leader watch's board is refreshed from the nodes.
const POLL_EVERY: Duration = Duration::from_millis(20);

pub(super) struct Procs {
    exe: PathBuf,
    config: PathBuf,
    root: PathBuf,
    children: Children,
    paused: BTreeSet<NodeId>,
    /// Status and admin requests; one request at a time.
    client: tokio::sync::Mutex<Client>,
    poll_stop: CancellationToken,
    poll: Option<tokio::task::JoinHandle<()>>,
}

fn lab_client(settings: &Settings, nodes: Vec<SocketAddr>, name: u64) -> Client {
    Client::new(ClientOptions {
        nodes,
        cluster_id: settings.cluster.id.clone(),
        secret: settings.cluster.secret.clone(),
        net: settings.net.clone(),
        op_timeout: Duration::from_secs(2),
        attempt_timeout: Duration::from_millis(500),
        name,
        pinned: false,
    })
}

/// Members on free ports of `ip`, and the config file every node reads:
/// the run's settings as the in-process cluster would get them, with the
/// members and the data directory filled in.
pub(super) fn write_config(
    settings: &mut Settings,
    root: &Path,
    ip: std::net::Ipv4Addr,
) -> Result<(PathBuf, BTreeMap<NodeId, MemberAddrs>), ClusterError> {
    let n = settings.cluster.nodes as usize;
    let ports = free_ports_on(ip, 2 * n).map_err(ClusterError::Process)?;
    let mut members = BTreeMap::new();
    settings.cluster.members.clear();
    for i in 0..n {
        let id = i as NodeId + 1;
        let addrs = MemberAddrs {
            peer: SocketAddr::from((ip, ports[2 * i])),
            client: SocketAddr::from((ip, ports[2 * i + 1])),
        };
        settings.cluster.members.push(MemberSettings {
            data_dir: String::new(),
            id,
            peer_addr: addrs.peer.to_string(),
            client_addr: addrs.client.to_string(),
        });
        members.insert(id, addrs);
    }
    settings.cluster.data_dir = root.display().to_string();
    // The lab's nodes take admin requests (power loss, link faults) from
    // anyone holding the secret, and they listen where every local user
    // can connect: a fresh random secret per cluster, not the shipped one.
    settings.cluster.secret = random_secret()?;
    let text = toml::to_string(&*settings)
        .map_err(|e| ClusterError::Process(format!("cannot write the nodes' config: {e}")))?;
    let path = root.join("cluster.toml");
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        // It holds the cluster secret.
        use std::os::unix::fs::PermissionsExt;
        let mut f = std::fs::OpenOptions::new().create(true).truncate(true).write(true).mode(0o600).open(&path)?;
        // `mode` applies only to a file this call creates; one left in a
        // kept data directory keeps its own mode otherwise.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(b"# Written by `replab run` for its `replab node` processes.\n")?;
        f.write_all(text.as_bytes())
    };
    write().map_err(|e| ClusterError::Process(format!("cannot write {}: {e}", path.display())))?;
    Ok((path, members))
}

/// What the board knows of a node process before its first status answer.
fn board_metrics(id: NodeId, up: bool) -> Arc<NodeMetrics> {
    let metrics = NodeMetrics::new(id, replab_api::Role::Follower, Arc::new(LatencyHistogram::default()));
    metrics.set_up(up);
    Arc::new(metrics)
}

fn random_secret() -> Result<String, ClusterError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ClusterError::Process(format!("no randomness for the secret: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Procs {
    pub(super) fn new(
        settings: &Settings,
        config: PathBuf,
        root: PathBuf,
        members: &BTreeMap<NodeId, MemberAddrs>,
        board: &NodeBoard,
    ) -> Result<Procs, ClusterError> {
        let exe = std::env::current_exe()
            .map_err(|e| ClusterError::Process(format!("cannot find replab's own executable: {e}")))?;
        let addrs: Vec<SocketAddr> = members.values().map(|m| m.client).collect();
        {
            let mut b = board.lock().expect("node board lock");
            for id in members.keys() {
                b.insert(*id, board_metrics(*id, false));
            }
        }
        let poll_stop = CancellationToken::new();
        let poller = lab_client(settings, addrs.clone(), 999_999);
        let poll = tokio::spawn(poll_board(poller, members.clone(), Arc::clone(board), poll_stop.clone()));
        Ok(Procs {
            exe,
            config,
            root,
            children: Children::default(),
            paused: BTreeSet::new(),
            client: tokio::sync::Mutex::new(lab_client(settings, addrs, 999_998)),
            poll_stop,
            poll: Some(poll),
        })
    }

    pub(super) fn is_up(&self, id: NodeId) -> bool {
        self.children.is_running(id)
    }

    pub(super) fn is_paused(&self, id: NodeId) -> bool {
        self.paused.contains(&id)
    }

    pub(super) fn pid(&self, id: NodeId) -> Option<u32> {
        self.children.pid(id)
    }

    fn log_path(&self, id: NodeId) -> PathBuf {
        self.root.join(format!("node-{id}.log"))
    }

    /// The last lines of a node's log, for an error message.
    fn log_tail(&self, id: NodeId) -> String {
        let text = std::fs::read_to_string(self.log_path(id)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(4)..].join("\n")
    }

    /// Starts node `id` and waits until its client port answers.
    pub(super) async fn spawn(
        &mut self,
        id: NodeId,
        addr: SocketAddr,
        skew_ms: i64,
        board: &NodeBoard,
    ) -> Result<(), ClusterError> {
        let mut extra = vec!["--allow-fault-injection".to_string(), "--exit-with-parent".to_string()];
        if skew_ms != 0 {
            extra.push(format!("--clock-skew-ms={skew_ms}"));
        }
        let log = self.log_path(id);
        self.children
            .spawn(Spawn {
                exe: &self.exe,
                config: &self.config,
                id,
                sets: &[],
                extra,
                log: &log,
                tied_to_parent: true,
            })
            .map_err(ClusterError::Process)?;
        self.paused.remove(&id);
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.children.wait(id, Duration::ZERO).await {
                return Err(ClusterError::Process(format!(
                    "node {id} exited at its start ({status}): {}",
                    self.log_tail(id)
                )));
            }
            if self.client.lock().await.status(addr).await.is_ok() {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                // Not left running behind a board that says it is down.
                let _ = self.children.kill(id).await;
                return Err(ClusterError::Process(format!(
                    "node {id} did not answer on {addr} within {} s (killed): {}",
                    START_TIMEOUT.as_secs(),
                    self.log_tail(id)
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Fresh metrics, as an in-process restart gets: the old ones say
        // what the previous process was (a leader, maybe), and a status
        // poll in flight across the restart writes into those, not these.
        board.lock().expect("node board lock").insert(id, board_metrics(id, true));
        Ok(())
    }

    fn mark_down(&mut self, id: NodeId, board: &NodeBoard) {
        self.paused.remove(&id);
        if let Some(m) = board.lock().expect("node board lock").get(&id) {
            m.set_up(false);
            m.set_paused(false);
        }
    }

    /// SIGKILL.
    pub(super) async fn crash(&mut self, id: NodeId, board: &NodeBoard) -> Result<(), ClusterError> {
        if !self.is_up(id) {
            return Err(ClusterError::NotRunning(id));
        }
        self.mark_down(id, board);
        self.children.kill(id).await.map_err(ClusterError::Process)?;
        Ok(())
    }

    /// SIGTERM, and wait (SIGKILL after 10 s).
    pub(super) async fn stop(&mut self, id: NodeId, board: &NodeBoard) -> Result<(), ClusterError> {
        if !self.is_up(id) {
            return Err(ClusterError::NotRunning(id));
        }
        self.mark_down(id, board);
        self.children.terminate(id, Duration::from_secs(10)).await.map_err(ClusterError::Process)?;
        Ok(())
    }

    /// Asks the node to lose power, then waits for it to exit with the
    /// power-loss code.
    pub(super) async fn power_loss(
        &mut self,
        id: NodeId,
        addr: SocketAddr,
        board: &NodeBoard,
    ) -> Result<(), ClusterError> {
        if !self.is_up(id) {
            return Err(ClusterError::NotRunning(id));
        }
        if self.is_paused(id) {
            return Err(ClusterError::Process(format!(
                "power loss on node {id}: it is paused (SIGSTOP) and cannot be told; resume it first"
            )));
        }
        // No answer comes: the node crashes as it reads the request.
        let sent = self.client.lock().await.admin(addr, AdminRequest::PowerLoss).await;
        if let Err(crate::client::ClientError::Failed(why)) = sent {
            return Err(ClusterError::Process(format!("power loss on node {id}: {why}")));
        }
        self.mark_down(id, board);
        match self.children.wait(id, Duration::from_secs(10)).await {
            Some(status) if status.code() == Some(i32::from(super::process::EXIT_POWER_LOSS)) => Ok(()),
            Some(status) => Err(ClusterError::Process(format!(
                "node {id} did not lose power as asked: it exited with {status}: {}",
                self.log_tail(id)
            ))),
            None => {
                let _ = self.children.kill(id).await;
                Err(ClusterError::Process(format!("node {id} did not lose power within 10 s; killed it")))
            }
        }
    }

    pub(super) fn pause(&mut self, id: NodeId, board: &NodeBoard) -> Result<(), ClusterError> {
        self.children.signal(id, libc::SIGSTOP).map_err(|_| ClusterError::NotRunning(id))?;
        self.paused.insert(id);
        if let Some(m) = board.lock().expect("node board lock").get(&id) {
            m.set_paused(true);
        }
        Ok(())
    }

    pub(super) fn resume(&mut self, id: NodeId, board: &NodeBoard) -> Result<(), ClusterError> {
        self.children.signal(id, libc::SIGCONT).map_err(|_| ClusterError::NotRunning(id))?;
        self.paused.remove(&id);
        if let Some(m) = board.lock().expect("node board lock").get(&id) {
            m.set_paused(false);
        }
        Ok(())
    }

    /// An admin request to node `id`, which must be running and not paused.
    /// Every admin request but a power loss (sent on its own, above) sets
    /// or reads state, so asking again is safe: a node busy catching up
    /// after a resume gets until `ADMIN_TIMEOUT`, not one attempt.
    pub(super) async fn admin(
        &self,
        id: NodeId,
        addr: SocketAddr,
        request: AdminRequest,
    ) -> Result<ResponseBody, ClusterError> {
        debug_assert!(!matches!(request, AdminRequest::PowerLoss), "a power loss is never repeated");
        let deadline = tokio::time::Instant::now() + ADMIN_TIMEOUT;
        loop {
            let answer = self.client.lock().await.admin(addr, request.clone()).await;
            match answer {
                Err(crate::client::ClientError::Unknown(_)) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                other => return other.map_err(|e| ClusterError::Process(format!("node {id}: {e}"))),
            }
        }
    }

    /// Hands every running, unpaused node the rules of its links, both
    /// ways: it applies its outgoing links' rules when it sends, as the
    /// in-process table does, and drops what arrives on a cut incoming
    /// link, which covers a sender that cannot be told yet (paused: it
    /// gets its rules when it resumes; crashed: when it restarts).
    pub(super) async fn push_links(
        &self,
        only: Option<NodeId>,
        faults: &FaultTable,
        members: &BTreeMap<NodeId, MemberAddrs>,
    ) -> Result<(), ClusterError> {
        for (id, addrs) in members {
            if only.is_some_and(|o| o != *id) || !self.is_up(*id) || self.is_paused(*id) {
                continue;
            }
            let rules = members
                .keys()
                .filter(|peer| *peer != id)
                .flat_map(|peer| [(*id, *peer, faults.get(*id, *peer)), (*peer, *id, faults.get(*peer, *id))])
                .collect();
            self.admin(*id, addrs.client, AdminRequest::Links { rules }).await?;
        }
        Ok(())
    }

    /// The node's status; `None` when it is down, paused or silent.
    pub(super) async fn status(&self, id: NodeId, addr: SocketAddr) -> Option<NodeStatus> {
        if !self.is_up(id) || self.is_paused(id) {
            return None;
        }
        self.client.lock().await.status(addr).await.ok()
    }

    /// Stops every node (SIGTERM, SIGKILL after a grace period) and the
    /// board's poller.
    pub(super) async fn shutdown(&mut self, board: &NodeBoard) {
        self.poll_stop.cancel();
        if let Some(poll) = self.poll.take() {
            let _ = poll.await;
        }
        let ids: Vec<NodeId> =
            board.lock().expect("node board lock").keys().copied().filter(|id| self.is_up(*id)).collect();
        for id in ids {
            self.mark_down(id, board);
            let _ = self.children.terminate(id, Duration::from_secs(5)).await;
        }
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        self.poll_stop.cancel();
        // `children` stops any node still running when it drops.
    }
}

/// Keeps the board (roles, terms, leaders) current for the leader watch,
/// from the nodes' status answers.
async fn poll_board(
    mut client: Client,
    members: BTreeMap<NodeId, MemberAddrs>,
    board: NodeBoard,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        for (id, addrs) in &members {
            let metrics = board.lock().expect("node board lock").get(id).cloned();
            let Some(metrics) = metrics else { continue };
            if !metrics.role_view().serving {
                continue;
            }
            let status = tokio::select! {
                _ = stop.cancelled() => return,
                s = client.status(addrs.client) => s,
            };
            if let Ok(status) = status {
                let p = &status.policy;
                metrics.set_role(p.role, p.term, p.leader);
                metrics.set_commit_index(p.commit_index);
                metrics.set_applied_index(p.applied_index);
            }
        }
    }
}
