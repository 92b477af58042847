//! Three `replab node` processes from one config file, killed with SIGKILL.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use replab::client::{Client, ClientOptions};
use replab::config::{self, ConfigInput, Settings};
use replab_api::Role;

const ELECTION_TIMEOUT_MAX_MS: u64 = 600;

/// Kills the node process when the test ends, pass or fail.
pub struct NodeProcess {
    pub id: u64,
    pub child: Child,
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<_> = (0..n).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    listeners.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

pub fn write_config(dir: &Path) -> (std::path::PathBuf, Vec<SocketAddr>) {
    let raft = format!("[raft]\nelection_timeout_min_ms = 300\nelection_timeout_max_ms = {ELECTION_TIMEOUT_MAX_MS}\n");
    write_config_with(dir, &raft)
}

/// A three-member config on free loopback ports, with `policy` (TOML
/// sections choosing and tuning the strategy) and durable writes.
pub fn write_config_with(dir: &Path, policy: &str) -> (std::path::PathBuf, Vec<SocketAddr>) {
    let ports = free_ports(6);
    let mut text = format!(
        "[cluster]\nid = \"process-test\"\ndata_dir = \"{}\"\n\n{policy}\n[wal]\nfsync = \"always\"\n",
        dir.join("data").display()
    );
    let mut clients = Vec::new();
    for id in 1..=3u64 {
        let (peer, client) = (ports[id as usize - 1], ports[id as usize + 2]);
        text.push_str(&format!(
            "\n[[cluster.members]]\nid = {id}\npeer_addr = \"127.0.0.1:{peer}\"\nclient_addr = \"127.0.0.1:{client}\"\n"
        ));
        clients.push(format!("127.0.0.1:{client}").parse().unwrap());
    }
    let path = dir.join("cluster.toml");
    std::fs::write(&path, text).unwrap();
    (path, clients)
}

pub fn spawn(config: &Path, id: u64, dir: &Path) -> NodeProcess {
    spawn_with(config, id, dir, &[])
}

/// Starts `replab node` with extra arguments; its stderr goes to
/// `node-<id>.log` in `dir` (appended to, across restarts).
pub fn spawn_with(config: &Path, id: u64, dir: &Path, extra: &[&str]) -> NodeProcess {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join(format!("node-{id}.log"))).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_replab"))
        .args(["node", "--config", config.to_str().unwrap(), "--id", &id.to_string()])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start replab node");
    NodeProcess { id, child }
}

pub fn client(settings: &Settings, nodes: Vec<SocketAddr>) -> Client {
    Client::new(ClientOptions {
        nodes,
        cluster_id: settings.cluster.id.clone(),
        secret: settings.cluster.secret.clone(),
        net: settings.net.clone(),
        op_timeout: Duration::from_secs(10),
        attempt_timeout: Duration::from_millis(500),
        name: 77,
        pinned: false,
    })
}

/// (leader id, its term) once a majority of reachable nodes agree.
pub async fn agreed_leader(c: &mut Client, nodes: &[SocketAddr]) -> Option<(u64, u64)> {
    let mut views = Vec::new();
    for node in nodes {
        if let Ok(s) = c.status(*node).await {
            views.push(s.policy);
        }
    }
    let leader = views.iter().filter(|p| p.role == Role::Leader).max_by_key(|p| p.term)?;
    let agree = views.iter().filter(|p| p.term == leader.term && p.leader == Some(leader.id)).count();
    (agree >= 2).then_some((leader.id, leader.term))
}

/// The agreed leader, waiting up to 20 s for one; the panic names the
/// directory with the nodes' logs.
pub async fn await_agreed_leader(c: &mut Client, nodes: &[SocketAddr], logs: &Path) -> (u64, u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(found) = agreed_leader(c, nodes).await {
            return found;
        }
        assert!(Instant::now() < deadline, "no leader; logs in {}", logs.display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_node_processes_survive_kill_9_of_the_leader_without_losing_acknowledged_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (config_path, nodes) = write_config(dir.path());
    let bound = Duration::from_millis(2 * ELECTION_TIMEOUT_MAX_MS);
    survive_kill_9_of_the_leader(dir.path(), &config_path, nodes, bound, "twice the maximum election timeout").await;
}

/// Issue 13: primary-backup in process mode. Every member starts on an
/// empty directory (a first start looks like a wiped disk), so they must
/// first agree that nobody holds data (before that fix, no member ever
/// claimed); then the primary is killed and the failure detector's
/// verdict (gossip by default) hands the role to a backup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_backup_processes_fail_over_after_kill_9_without_losing_acknowledged_writes() {
    let dir = tempfile::tempdir().unwrap();
    let policy = "[policy]\nreplication = \"primary-backup\"\n\n[primary_backup]\nmode = \"quorum\"\n";
    let (config_path, nodes) = write_config_with(dir.path(), policy);
    survive_kill_9_of_the_leader(dir.path(), &config_path, nodes, Duration::from_secs(10), "10 s").await;
}

/// Starts three nodes from `config_path`, writes, kills the leader with
/// SIGKILL, expects a successor within `bound` and every acknowledged
/// write at it, restarts the old leader and sees it catch up.
async fn survive_kill_9_of_the_leader(
    dir: &Path,
    config_path: &Path,
    nodes: Vec<SocketAddr>,
    bound: Duration,
    bound_name: &str,
) {
    let settings =
        config::load(&ConfigInput { file: Some(config_path.to_path_buf()), ..ConfigInput::default() }).unwrap();
    let mut procs: Vec<NodeProcess> = (1..=3).map(|id| spawn(config_path, id, dir)).collect();
    let mut c = client(&settings, nodes.clone());

    let (old_leader, old_term) = await_agreed_leader(&mut c, &nodes, dir).await;
    for i in 0..50 {
        c.put(format!("k{i}"), format!("v{i}")).await.expect("put through the leader");
    }
    // Every node serves the data (its own replica, once caught up).
    for node in &nodes {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let read = c.get_stale(*node, "k49").await.unwrap();
            if read.value.as_deref() == Some(&b"v49"[..]) {
                break;
            }
            assert!(Instant::now() < deadline, "{node} never caught up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    // SIGKILL the leader.
    let victim = procs.iter().position(|p| p.id == old_leader).unwrap();
    let killed_at = Instant::now();
    procs[victim].child.kill().unwrap();
    procs[victim].child.wait().unwrap();
    let survivors: Vec<SocketAddr> = nodes.iter().enumerate().filter(|(i, _)| *i != victim).map(|(_, a)| *a).collect();
    let (new_leader, new_term) = loop {
        if let Some((id, term)) = agreed_leader(&mut c, &survivors).await
            && id != old_leader
        {
            break (id, term);
        }
        assert!(killed_at.elapsed() < bound + Duration::from_secs(5), "no new leader after the kill");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let failover = killed_at.elapsed();
    eprintln!("new leader {new_leader} (term {new_term}, was {old_term}) after {failover:?}");
    assert!(failover <= bound, "failover took {failover:?}, more than {bound_name}");
    for i in 0..50 {
        let read = c.get(format!("k{i}")).await.expect("linearizable read at the new leader");
        assert_eq!(read.value.as_deref(), Some(format!("v{i}").as_bytes()), "acknowledged write k{i} lost");
    }
    c.put("after", "failover").await.unwrap();

    // The old leader comes back and catches up from its files and the log.
    procs[victim] = spawn(config_path, old_leader, dir);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let read = c.get_stale(nodes[victim], "after").await;
        if matches!(&read, Ok(r) if r.value.as_deref() == Some(&b"failover"[..])) {
            break;
        }
        assert!(Instant::now() < deadline, "the restarted node never caught up: {read:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // SIGTERM stops each node cleanly.
    for p in &mut procs {
        let pid = p.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let status = p.child.wait().unwrap();
        assert!(status.success(), "node {} exited with {status}", p.id);
    }
}

/// A member that names its own `data_dir` (a disk of its own) keeps its
/// log there and nothing under the cluster's `data_dir`.
#[test]
fn a_member_keeps_its_log_in_its_own_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = write_config(dir.path());
    let own = dir.path().join("disk-of-node-1").join("log");
    let text = std::fs::read_to_string(&config).unwrap();
    let quoted = toml::Value::String(own.display().to_string()).to_string();
    std::fs::write(&config, text.replacen("id = 1\n", &format!("id = 1\ndata_dir = {quoted}\n"), 1)).unwrap();
    let node = spawn(&config, 1, dir.path());
    let started = Instant::now();
    let has_log = || {
        std::fs::read_dir(&own)
            .is_ok_and(|entries| entries.flatten().any(|e| e.path().extension().is_some_and(|x| x == "wal")))
    };
    while !has_log() && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(has_log(), "node 1 opened no log segment in {}", own.display());
    assert!(own.join("LOCK").exists(), "node 1 holds its own directory");
    assert!(!dir.path().join("data").join("node-1").exists(), "nothing under the cluster's data_dir");
    drop(node);
}

#[test]
fn a_config_file_with_a_missing_peer_address_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(
        &path,
        "[[cluster.members]]\nid = 1\npeer_addr = \"127.0.0.1:7101\"\nclient_addr = \"127.0.0.1:7201\"\n\n\
         [[cluster.members]]\nid = 2\nclient_addr = \"127.0.0.1:7202\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_replab"))
        .args(["node", "--config", path.to_str().unwrap(), "--id", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("peer_addr") && err.contains("broken.toml"), "{err}");
}
