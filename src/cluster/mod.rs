//! A cluster of nodes in this process: each node on its own loopback ports,
//! with its own data directory, over real TCP.
//!
//! `crash` drops a node's memory and tasks and keeps its files, as SIGKILL
//! would; `restart` recovers it from those files on the same ports. The
//! cluster shares one fault table with its nodes, so partitions and lossy
//! links can be set from outside (the Lua `c:partition(...)`).

pub mod children;
mod clients;
mod leader_queries;
pub mod process;
mod procs;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tracing::warn;

use replab_api::NodeId;

use crate::config::Settings;
use crate::net::FaultTable;
use crate::node::clock::WallClock;
use crate::node::metrics::NodeMetrics;
use crate::node::storage::{Origin, Repaired, repair};
use crate::node::{self, MemberAddrs, NodeHandle, NodeSpec};

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot bind a loopback port: {0}")]
    Bind(std::io::Error),
    #[error("cannot create the data directory {}: {source}", path.display())]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Node(#[from] node::NodeError),
    #[error("node {0} is not a member of this cluster")]
    NoSuchNode(NodeId),
    #[error("node {0} is already running")]
    AlreadyRunning(NodeId),
    #[error("node {0} is not running")]
    NotRunning(NodeId),
    #[error("cannot wipe the directory {} of node {id}: {source}", path.display())]
    Wipe { id: NodeId, path: PathBuf, source: std::io::Error },
    #[error("node {id}: {source}")]
    Repair { id: NodeId, source: node::storage::StorageError },
    /// Process mode: a node process could not be started, signalled or
    /// reached.
    #[error("{0}")]
    Process(String),
}

/// Where the nodes' directories live; a temporary root is deleted with the
/// cluster.
enum Root {
    Temporary(tempfile::TempDir),
    Kept(PathBuf),
}

impl Root {
    fn path(&self) -> &std::path::Path {
        match self {
            Root::Temporary(t) => t.path(),
            Root::Kept(p) => p,
        }
    }
}

struct Slot {
    addrs: MemberAddrs,
    dir: PathBuf,
    handle: Option<NodeHandle>,
    /// The node's wall clock: it belongs to the machine, so a skew set on
    /// it outlives crashes and restarts.
    clock: WallClock,
}

pub struct Cluster {
    /// Process mode (`cluster.processes`): the node processes. First, so
    /// that on drop they stop before their directories are deleted.
    procs: Option<procs::Procs>,
    settings: Settings,
    root: Root,
    faults: Arc<FaultTable>,
    slots: BTreeMap<NodeId, Slot>,
    members: BTreeMap<NodeId, MemberAddrs>,
    clients_made: u64,
    board: NodeBoard,
}

/// Each member's [`NodeMetrics`], replaced when it restarts.
pub type NodeBoard = Arc<std::sync::Mutex<BTreeMap<NodeId, Arc<NodeMetrics>>>>;

impl Cluster {
    /// Starts `settings.cluster.nodes` nodes, ids 1..=N, on free ports of
    /// this cluster's own loopback address ([`cluster_address`]), in
    /// `settings.cluster.data_dir` (or a temporary directory).
    pub async fn start(settings: Settings) -> Result<Cluster, ClusterError> {
        let root = if settings.cluster.data_dir.is_empty() {
            Root::Temporary(
                tempfile::Builder::new()
                    .prefix("replab-")
                    .tempdir()
                    .map_err(|source| ClusterError::DataDir { path: std::env::temp_dir(), source })?,
            )
        } else {
            Root::Kept(PathBuf::from(&settings.cluster.data_dir))
        };
        let ip = cluster_address();
        if settings.cluster.processes {
            return Cluster::start_processes(settings, root, ip).await;
        }
        let mut listeners = Vec::new();
        let mut members = BTreeMap::new();
        for id in 1..=settings.cluster.nodes {
            let peer = TcpListener::bind((ip, 0)).await.map_err(ClusterError::Bind)?;
            let client = TcpListener::bind((ip, 0)).await.map_err(ClusterError::Bind)?;
            let addrs = MemberAddrs {
                peer: peer.local_addr().map_err(ClusterError::Bind)?,
                client: client.local_addr().map_err(ClusterError::Bind)?,
            };
            members.insert(id, addrs);
            listeners.push((id, peer, client));
        }
        let faults = Arc::new(FaultTable::new(settings.cluster.seed));
        let mut cluster = Cluster {
            settings,
            root,
            faults,
            slots: BTreeMap::new(),
            members: members.clone(),
            clients_made: 0,
            board: NodeBoard::default(),
            procs: None,
        };
        for (id, peer, client) in listeners {
            let dir = cluster.root.path().join(format!("node-{id}"));
            cluster.slots.insert(id, Slot { addrs: members[&id], dir, handle: None, clock: WallClock::default() });
            cluster.launch(id, peer, client, Origin::NewCluster)?;
        }
        Ok(cluster)
    }

    /// [`Cluster::start`] with every member a `replab node` process.
    async fn start_processes(
        mut settings: Settings,
        root: Root,
        ip: std::net::Ipv4Addr,
    ) -> Result<Cluster, ClusterError> {
        let root_path = root.path().to_path_buf();
        let (config, members) = procs::write_config(&mut settings, &root_path, ip)?;
        let board = NodeBoard::default();
        let procs = procs::Procs::new(&settings, config, root_path.clone(), &members, &board)?;
        let mut cluster = Cluster {
            faults: Arc::new(FaultTable::new(settings.cluster.seed)),
            settings,
            root,
            slots: BTreeMap::new(),
            members: members.clone(),
            clients_made: 0,
            board,
            procs: Some(procs),
        };
        for (id, addrs) in &members {
            let dir = root_path.join(format!("node-{id}"));
            cluster.slots.insert(*id, Slot { addrs: *addrs, dir, handle: None, clock: WallClock::default() });
        }
        for id in members.keys() {
            cluster.spawn(*id).await?;
        }
        Ok(cluster)
    }

    /// Process mode: starts node `id`'s process with its skew, and hands it
    /// its links' rules.
    async fn spawn(&mut self, id: NodeId) -> Result<(), ClusterError> {
        let slot = self.slots.get(&id).ok_or(ClusterError::NoSuchNode(id))?;
        let (addr, skew) = (slot.addrs.client, slot.clock.skew_ms());
        let procs = self.procs.as_mut().expect("process mode");
        procs.spawn(id, addr, skew, &self.board).await?;
        procs.push_links(Some(id), &self.faults, &self.members).await
    }

    /// Whether this cluster's nodes are processes.
    pub fn is_processes(&self) -> bool {
        self.procs.is_some()
    }

    /// Process mode: node `id`'s pid while it runs.
    pub fn pid(&self, id: NodeId) -> Option<u32> {
        self.procs.as_ref().and_then(|p| p.pid(id))
    }

    fn is_up(&self, id: NodeId) -> bool {
        match &self.procs {
            Some(p) => p.is_up(id),
            None => self.slots.get(&id).is_some_and(|s| s.handle.is_some()),
        }
    }

    /// After a change of `faults()`: process mode hands every running node
    /// the rules of its outgoing links (in-process, the nodes share the
    /// table and there is nothing to do).
    pub async fn apply_faults(&self) -> Result<(), ClusterError> {
        match &self.procs {
            Some(p) => p.push_links(None, &self.faults, &self.members).await,
            None => Ok(()),
        }
    }

    fn member_client(&self, id: NodeId) -> Result<SocketAddr, ClusterError> {
        self.members.get(&id).map(|m| m.client).ok_or(ClusterError::NoSuchNode(id))
    }

    /// Every key and value of node `id`'s store; `None` if it is down.
    pub async fn dump(&self, id: NodeId) -> Result<Option<BTreeMap<bytes::Bytes, bytes::Bytes>>, ClusterError> {
        match &self.procs {
            None => Ok(match self.node(id) {
                Some(node) => node.dump().await,
                None => None,
            }),
            Some(p) if !p.is_up(id) || p.is_paused(id) => Ok(None),
            Some(p) => match p.admin(id, self.member_client(id)?, crate::client::protocol::AdminRequest::Dump).await? {
                crate::client::protocol::ResponseBody::Dump(pairs) => Ok(Some(pairs.into_iter().collect())),
                other => Err(ClusterError::Process(format!("node {id}: unexpected answer to a dump: {other:?}"))),
            },
        }
    }

    /// Node `id`'s keys under a keyed policy; `None` if it is down or paused.
    pub async fn replicas(&self, id: NodeId) -> Result<Option<Vec<replab_api::KeyState>>, ClusterError> {
        use crate::client::protocol::{AdminRequest, ResponseBody};
        match &self.procs {
            None => Ok(match self.node(id) {
                Some(node) if !node.is_paused() => node.replicas().await,
                _ => None,
            }),
            Some(p) if !p.is_up(id) || p.is_paused(id) => Ok(None),
            Some(p) => match p.admin(id, self.member_client(id)?, AdminRequest::Replicas).await? {
                ResponseBody::Replicas(keys) => Ok(Some(keys)),
                other => Err(ClusterError::Process(format!("node {id}: unexpected answer to replicas: {other:?}"))),
            },
        }
    }

    /// Asks `leader` to hand leadership to `to`; false if it is not running.
    pub async fn transfer_leader(&self, leader: NodeId, to: NodeId) -> Result<bool, ClusterError> {
        match &self.procs {
            None => Ok(match self.node(leader) {
                Some(node) => node.transfer_leader(to).await,
                None => false,
            }),
            Some(p) if !p.is_up(leader) || p.is_paused(leader) => Ok(false),
            Some(p) => {
                let request = crate::client::protocol::AdminRequest::TransferLeader { to };
                p.admin(leader, self.member_client(leader)?, request).await?;
                Ok(true)
            }
        }
    }

    fn launch(
        &mut self,
        id: NodeId,
        peer_listener: TcpListener,
        client_listener: TcpListener,
        origin: Origin,
    ) -> Result<(), ClusterError> {
        let slot = self.slots.get(&id).ok_or(ClusterError::NoSuchNode(id))?;
        let spec = NodeSpec {
            id,
            members: self.members.clone(),
            dir: slot.dir.clone(),
            origin,
            settings: self.settings.clone(),
            faults: Arc::clone(&self.faults),
            peer_listener,
            client_listener,
            clock: slot.clock.clone(),
            lab: false,
        };
        let handle = node::start(spec)?;
        self.board.lock().expect("node board lock").insert(id, Arc::clone(handle.metrics()));
        self.slots.get_mut(&id).expect("checked").handle = Some(handle);
        Ok(())
    }

    /// Every member's metrics (its latest incarnation's), readable without
    /// the cluster: a watcher samples roles while a script holds it.
    pub fn board(&self) -> NodeBoard {
        Arc::clone(&self.board)
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn ids(&self) -> Vec<NodeId> {
        self.slots.keys().copied().collect()
    }

    pub fn running(&self) -> Vec<NodeId> {
        self.slots.keys().copied().filter(|id| self.is_up(*id)).collect()
    }

    pub fn data_dir(&self) -> &std::path::Path {
        self.root.path()
    }

    pub fn faults(&self) -> &Arc<FaultTable> {
        &self.faults
    }

    pub fn client_addr(&self, id: NodeId) -> Option<SocketAddr> {
        self.members.get(&id).map(|m| m.client)
    }

    pub fn client_addrs(&self) -> Vec<SocketAddr> {
        self.members.values().map(|m| m.client).collect()
    }

    /// The in-process node `id` (None while it is down, and always on a
    /// process-mode cluster: use `dump`, `replicas`, `statuses` there).
    pub fn node(&self, id: NodeId) -> Option<&NodeHandle> {
        self.slots.get(&id).and_then(|s| s.handle.as_ref())
    }

    /// Kills node `id`: memory and tasks gone, unsynced writes lost, files
    /// kept.
    pub async fn crash(&mut self, id: NodeId) -> Result<(), ClusterError> {
        if let Some(p) = &mut self.procs {
            self.slots.get(&id).ok_or(ClusterError::NoSuchNode(id))?;
            return p.crash(id, &self.board).await;
        }
        let slot = self.slots.get_mut(&id).ok_or(ClusterError::NoSuchNode(id))?;
        let handle = slot.handle.take().ok_or(ClusterError::NotRunning(id))?;
        handle.crash().await;
        Ok(())
    }

    /// Stops node `id` cleanly.
    pub async fn stop(&mut self, id: NodeId) -> Result<(), ClusterError> {
        if let Some(p) = &mut self.procs {
            self.slots.get(&id).ok_or(ClusterError::NoSuchNode(id))?;
            return p.stop(id, &self.board).await;
        }
        let slot = self.slots.get_mut(&id).ok_or(ClusterError::NoSuchNode(id))?;
        let handle = slot.handle.take().ok_or(ClusterError::NotRunning(id))?;
        handle.shutdown().await;
        Ok(())
    }

    /// Starts node `id` again from its files, on its old ports.
    pub async fn restart(&mut self, id: NodeId) -> Result<(), ClusterError> {
        let slot = self.slots.get(&id).ok_or(ClusterError::NoSuchNode(id))?;
        if self.is_up(id) {
            return Err(ClusterError::AlreadyRunning(id));
        }
        if self.procs.is_some() {
            return self.spawn(id).await;
        }
        let addrs = slot.addrs;
        let peer = rebind(addrs.peer).await?;
        let client = rebind(addrs.client).await?;
        // An empty directory now is a wiped disk, never a first start.
        self.launch(id, peer, client, Origin::Existing)
    }

    /// Deletes the directory of node `id`, which must be down, as an
    /// operator replacing its disk would. It restarts with no state.
    pub fn wipe(&mut self, id: NodeId) -> Result<(), ClusterError> {
        let slot = self.slots.get(&id).ok_or(ClusterError::NoSuchNode(id))?;
        if self.is_up(id) {
            return Err(ClusterError::AlreadyRunning(id));
        }
        match std::fs::remove_dir_all(&slot.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(ClusterError::Wipe { id, path: slot.dir.clone(), source }),
        }
    }

    /// Cuts the log of node `id`, which must be down, at its first damage
    /// (`replab node --repair-wal`). `None`: nothing needed repair.
    pub fn repair_wal(&mut self, id: NodeId) -> Result<Option<Repaired>, ClusterError> {
        let slot = self.slots.get(&id).ok_or(ClusterError::NoSuchNode(id))?;
        if self.is_up(id) {
            return Err(ClusterError::AlreadyRunning(id));
        }
        repair(&slot.dir, &self.settings.wal.options()).map_err(|source| ClusterError::Repair { id, source })
    }

    /// The directory of node `id` (its log, hard state and snapshot).
    pub fn node_dir(&self, id: NodeId) -> Option<&std::path::Path> {
        self.slots.get(&id).map(|s| s.dir.as_path())
    }

    /// Kills node `id` as a power loss would: besides its memory, whatever
    /// it wrote but had not yet fdatasynced is lost.
    pub async fn power_loss(&mut self, id: NodeId) -> Result<(), ClusterError> {
        if let Some(p) = &mut self.procs {
            let addr = self.members.get(&id).ok_or(ClusterError::NoSuchNode(id))?.client;
            return p.power_loss(id, addr, &self.board).await;
        }
        let slot = self.slots.get_mut(&id).ok_or(ClusterError::NoSuchNode(id))?;
        let handle = slot.handle.take().ok_or(ClusterError::NotRunning(id))?;
        handle.power_loss().await;
        Ok(())
    }

    /// Freezes node `id` (see `NodeHandle::pause`).
    pub fn pause(&mut self, id: NodeId) -> Result<(), ClusterError> {
        if let Some(p) = &mut self.procs {
            self.slots.get(&id).ok_or(ClusterError::NoSuchNode(id))?;
            return p.pause(id, &self.board);
        }
        self.running_node(id)?.pause();
        Ok(())
    }

    /// Resumes a paused node. Process mode: SIGCONT, then the node gets
    /// what was set while it was frozen (its links' rules, its skew).
    pub async fn resume(&mut self, id: NodeId) -> Result<(), ClusterError> {
        if let Some(p) = &mut self.procs {
            let slot = self.slots.get(&id).ok_or(ClusterError::NoSuchNode(id))?;
            let (addr, ms) = (slot.addrs.client, slot.clock.skew_ms());
            p.resume(id, &self.board)?;
            p.push_links(Some(id), &self.faults, &self.members).await?;
            p.admin(id, addr, crate::client::protocol::AdminRequest::ClockSkew { ms }).await?;
            return Ok(());
        }
        self.running_node(id)?.resume();
        Ok(())
    }

    pub fn is_paused(&self, id: NodeId) -> bool {
        match &self.procs {
            Some(p) => p.is_paused(id),
            None => self.node(id).is_some_and(NodeHandle::is_paused),
        }
    }

    /// Shifts node `id`'s wall clock by `ms` from the real time (it stays
    /// shifted across restarts, as a machine's clock would).
    pub async fn clock_skew(&mut self, id: NodeId, ms: i64) -> Result<(), ClusterError> {
        let slot = self.slots.get(&id).ok_or(ClusterError::NoSuchNode(id))?;
        slot.clock.set_skew_ms(ms);
        // Process mode: a node down gets it at its start (--clock-skew-ms),
        // a paused one when it resumes.
        if let Some(p) = &self.procs
            && p.is_up(id)
            && !p.is_paused(id)
        {
            p.admin(id, slot.addrs.client, crate::client::protocol::AdminRequest::ClockSkew { ms }).await?;
        }
        Ok(())
    }

    fn running_node(&self, id: NodeId) -> Result<&NodeHandle, ClusterError> {
        let slot = self.slots.get(&id).ok_or(ClusterError::NoSuchNode(id))?;
        slot.handle.as_ref().ok_or(ClusterError::NotRunning(id))
    }

    /// Stops every running node cleanly.
    pub async fn shutdown(mut self) {
        if let Some(p) = &mut self.procs {
            p.shutdown(&self.board).await;
        }
        for slot in self.slots.values_mut() {
            if let Some(handle) = slot.handle.take() {
                handle.shutdown().await;
            }
        }
    }
}

/// Binds a port a crashed node just released; the kernel may take a moment.
/// A loopback address for one in-process cluster, 127.x.y.z, distinct per
/// process (x, y from the pid) and per cluster within it (z). A crashed
/// node restarts on the port it had, and in the meantime anything else
/// binding port 0 may take that port; on 127.0.0.1 another cluster of the
/// same test run did, and the restart failed. Ports on different
/// addresses do not collide, and outgoing connections take their source
/// ports on 127.0.0.1.
fn cluster_address() -> std::net::Ipv4Addr {
    static CLUSTERS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = CLUSTERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let pid = std::process::id();
    let x = 1 + (pid % 254) as u8;
    let y = ((pid / 254) % 256) as u8;
    let z = 1 + (n % 254) as u8;
    std::net::Ipv4Addr::new(127, x, y, z)
}

async fn rebind(addr: SocketAddr) -> Result<TcpListener, ClusterError> {
    let mut last = None;
    for _ in 0..50 {
        match TcpListener::bind(addr).await {
            Ok(listener) => return Ok(listener),
            Err(e) => {
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    let e = last.expect("at least one attempt");
    warn!("cannot rebind {addr}: {e}");
    Err(ClusterError::Bind(e))
}
