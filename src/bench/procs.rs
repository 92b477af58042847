//! Three `replab node` processes on 127.0.0.1 for `replab bench cluster
//! --processes`: their config file, their start and stop, and what the
//! benchmark reads from them (status counters, CPU time from /proc).
//!
//! Every process started here is owned by a [`NodeProcs`] guard that stops
//! it by pid when dropped: after a normal end, an error, a panic or a
//! Ctrl-C (the caller drops the future that owns the guard).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use replab_api::Role;

use crate::client::protocol::NodeStatus;
use crate::client::{Client, ClientOptions};
use crate::cluster::children::{Children, Spawn, free_ports};
use crate::config::{self, ConfigInput, Settings};

/// The cluster id the generated config uses; clients must present it.
const CLUSTER_ID: &str = "replab-bench";

/// A generated three-member config on free loopback ports.
pub struct ClusterConfig {
    pub path: PathBuf,
    pub clients: Vec<SocketAddr>,
    pub settings: Settings,
    /// The `--set` overrides every node gets, after the file.
    pub sets: Vec<String>,
}

/// Writes `<dir>/cluster.toml`: the members on free ports, the data
/// directory (`<dir>/data`, or each member's own in `member_data`) and
/// the strategy's `policy_toml`; everything else is the
/// shipped default, whose `wal.fsync = "batch"` (group commit) answers no
/// append before it is fdatasync'ed, so an acknowledged write is durable
/// on a majority. `sets` are checked here, so a bad key fails before any
/// process starts.
pub fn write_config(
    dir: &Path,
    policy_toml: &str,
    sets: &[String],
    member_data: Option<&[PathBuf; 3]>,
) -> Result<ClusterConfig, String> {
    let ports = free_ports(6)?;
    // A path is written as a TOML string, quoted and escaped; one that is
    // not UTF-8 cannot be, and is refused rather than altered.
    let quoted = |path: &Path| -> Result<String, String> {
        let text = path.to_str().ok_or_else(|| format!("{path:?} is not valid UTF-8"))?;
        Ok(toml::Value::String(text.to_string()).to_string())
    };
    let mut text = format!(
        "# Written by `replab bench cluster --processes`.\n[cluster]\nid = \"{CLUSTER_ID}\"\ndata_dir = {}\n\n{policy_toml}\n",
        quoted(&dir.join("data"))?
    );
    let mut clients = Vec::new();
    for id in 1..=3usize {
        let (peer, client) = (ports[id - 1], ports[id + 2]);
        text.push_str(&format!(
            "\n[[cluster.members]]\nid = {id}\npeer_addr = \"127.0.0.1:{peer}\"\nclient_addr = \"127.0.0.1:{client}\"\n"
        ));
        if let Some(dirs) = member_data {
            text.push_str(&format!("data_dir = {}\n", quoted(&dirs[id - 1])?));
        }
        clients.push(SocketAddr::from(([127, 0, 0, 1], client)));
    }
    let path = dir.join("cluster.toml");
    std::fs::write(&path, &text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let input = ConfigInput { file: Some(path.clone()), env: Vec::new(), sets: sets.to_vec() };
    let settings = config::load(&input).map_err(|e| e.to_string())?;
    Ok(ClusterConfig { path, clients, settings, sets: sets.to_vec() })
}

/// The node processes; dropping this stops every one of them.
pub struct NodeProcs {
    children: Children,
}

impl NodeProcs {
    /// Starts `replab node --id 1..=3` from the config; each node's stderr
    /// goes to `<dir>/node-<id>.log`.
    pub fn start(exe: &Path, cfg: &ClusterConfig, dir: &Path) -> Result<NodeProcs, String> {
        let mut procs = NodeProcs { children: Children::default() };
        for id in 1..=3u64 {
            let log = dir.join(format!("node-{id}.log"));
            procs.children.spawn(Spawn {
                exe,
                config: &cfg.path,
                id,
                sets: &cfg.sets,
                extra: Vec::new(),
                log: &log,
                tied_to_parent: false,
            })?;
        }
        Ok(procs)
    }

    pub fn pids(&self) -> Vec<u32> {
        self.children.pids()
    }

    /// A node that already exited, with its status: the benchmark is void.
    pub fn exited(&mut self) -> Option<String> {
        self.children.exited().map(|(id, pid, status)| format!("node {id} (pid {pid}) exited: {status}"))
    }

    /// SIGTERM to each node (a clean stop syncs and closes its log), then
    /// SIGKILL to any still alive after `grace`; waits for every one.
    pub fn stop(&mut self, grace: Duration) {
        self.children.stop_all(grace);
    }
}

/// A client for the bench's load and status calls.
pub fn client(cfg: &ClusterConfig, name: u64) -> Client {
    Client::new(ClientOptions {
        nodes: cfg.clients.clone(),
        cluster_id: cfg.settings.cluster.id.clone(),
        secret: cfg.settings.cluster.secret.clone(),
        net: cfg.settings.net.clone(),
        op_timeout: Duration::from_secs(10),
        attempt_timeout: Duration::from_secs(2),
        name,
        pinned: false,
    })
}

/// The node the counters are read from: the leader a majority agrees on,
/// or node 1 under a policy without leaders once all three answer.
pub async fn await_ready(c: &mut Client, cfg: &ClusterConfig, procs: &mut NodeProcs) -> Result<SocketAddr, String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(why) = procs.exited() {
            return Err(why);
        }
        let mut views = Vec::new();
        for node in &cfg.clients {
            if let Ok(s) = c.status(*node).await {
                views.push((*node, s.policy));
            }
        }
        if views.len() == 3 && views.iter().all(|(_, p)| p.role == Role::Peer) {
            return Ok(cfg.clients[0]);
        }
        if let Some((addr, leader)) = views.iter().filter(|(_, p)| p.role == Role::Leader).max_by_key(|(_, p)| p.term) {
            let agree = views.iter().filter(|(_, p)| p.term == leader.term && p.leader == Some(leader.id)).count();
            if agree >= 2 {
                return Ok(*addr);
            }
        }
        if Instant::now() > deadline {
            return Err("no leader (or not every node serving) within 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn status(c: &mut Client, node: SocketAddr) -> Result<NodeStatus, String> {
    c.status(node).await.map_err(|e| format!("status of {node}: {e}"))
}

/// User plus system CPU time of the processes, in seconds, from each
/// one's CPU-time clock (`clock_getcpuclockid`): nanoseconds, every
/// thread counted. /proc/<pid>/stat counts in 10 ms clock ticks, which
/// a short phase (300 gets take tens of milliseconds) can read as zero.
pub fn cpu_seconds(pids: &[u32]) -> Result<f64, String> {
    let mut total = 0.0;
    for &pid in pids {
        let pid_t = libc::pid_t::try_from(pid).map_err(|_| format!("pid {pid}: out of range"))?;
        let mut clock: libc::clockid_t = 0;
        // SAFETY: `clock` is a valid place for the id to be written.
        let err = unsafe { libc::clock_getcpuclockid(pid_t, &mut clock) };
        if err != 0 {
            return Err(format!("CPU clock of pid {pid}: {}", std::io::Error::from_raw_os_error(err)));
        }
        let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `now` is a valid timespec to write into.
        if unsafe { libc::clock_gettime(clock, &mut now) } != 0 {
            return Err(format!("CPU time of pid {pid}: {}", std::io::Error::last_os_error()));
        }
        total += now.tv_sec as f64 + now.tv_nsec as f64 * 1e-9;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_seconds_reads_this_process_and_refuses_a_missing_pid() {
        // Burn a little CPU so the figure is above zero.
        let mut x = 0u64;
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(50) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        assert!(x != 7);
        let me = std::process::id();
        assert!(cpu_seconds(&[me]).unwrap() > 0.0);
        assert!(cpu_seconds(&[u32::MAX]).is_err());
    }

    /// A phase can be shorter than a clock tick (10 ms); the tick-counted
    /// figure from /proc/<pid>/stat read a millisecond of work as zero.
    #[test]
    fn cpu_seconds_sees_less_than_a_clock_tick_of_work() {
        let me = [std::process::id()];
        let mut x = 0u64;
        for _ in 0..20 {
            let before = cpu_seconds(&me).unwrap();
            let start = Instant::now();
            while start.elapsed() < Duration::from_millis(1) {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            // The ceiling catches a unit slip (nanoseconds read as
            // seconds); it is loose because the test harness's other
            // threads run in this process too.
            let used = cpu_seconds(&me).unwrap() - before;
            assert!(used > 0.0 && used < 5.0, "a millisecond of work read as {used} s");
        }
        assert!(x != 7);
    }

    #[test]
    fn cpu_seconds_reads_another_process_until_it_is_gone() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        assert!(cpu_seconds(&[pid]).unwrap() >= 0.0);
        child.kill().unwrap();
        child.wait().unwrap();
        let err = cpu_seconds(&[pid]).unwrap_err();
        assert!(err.contains(&format!("pid {pid}")), "{err}");
    }

    #[test]
    fn the_config_gives_each_member_the_data_dir_it_was_given() {
        let dir = tempfile::tempdir().unwrap();
        // A quote and a backslash in a path must survive the TOML.
        let members =
            [1, 2, 3].map(|id| dir.path().join(format!("disk \"{id}\" \\ member")).join(format!("node-{id}")));
        let cfg = write_config(dir.path(), "", &[], Some(&members)).unwrap();
        for (i, want) in members.iter().enumerate() {
            let id = i as u64 + 1;
            assert_eq!(cfg.settings.cluster.members[i].data_dir, want.display().to_string());
            assert_eq!(cfg.settings.node_dir(id), *want);
        }
        let shared = write_config(dir.path(), "", &[], None).unwrap();
        assert!(shared.settings.cluster.members.iter().all(|m| m.data_dir.is_empty()));
        assert_eq!(shared.settings.node_dir(2), dir.path().join("data").join("node-2"));
    }
}
