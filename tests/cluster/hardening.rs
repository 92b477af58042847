//! Issue 11, process-mode hardening: each was tried against a 3-node
//! `replab node` cluster.

use std::path::Path;
use std::process::ExitStatus;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use replab::client::{Client, ClientError, ClientOptions};
use replab::cluster::{Cluster, ClusterError};

use crate::process::{NodeProcess, spawn, spawn_with, write_config};
use crate::{init_logs, leader, settings};

/// The exit status of `p` within `limit`, or `None` if it still runs (it is
/// killed when `p` is dropped).
fn exit_within(p: &mut NodeProcess, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = p.child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until node `id`'s log (in `dir`) says it is listening.
fn await_started(dir: &Path, id: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let log = dir.join(format!("node-{id}.log"));
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("peers on") {
        assert!(Instant::now() < deadline, "node {id} did not start: {}", std::fs::read_to_string(&log).unwrap());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn log_of(dir: &Path, id: u64) -> String {
    std::fs::read_to_string(dir.join(format!("node-{id}.log"))).unwrap_or_default()
}

#[test]
fn a_second_node_process_on_the_same_directory_exits_2_naming_it_and_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = write_config(dir.path());
    let data = dir.path().join("data");
    let mut first = spawn(&config, 1, dir.path());
    await_started(dir.path(), 1);

    // Same id and data directory, other ports: before, it ran beside the first.
    let other = tempfile::tempdir().unwrap();
    let (other_config, _) = write_config(other.path());
    let set_data = format!("cluster.data_dir={}", data.display());
    let mut second = spawn_with(&other_config, 1, other.path(), &["--set", &set_data]);
    let status = exit_within(&mut second, Duration::from_secs(10)).expect("the second node must not run");
    assert_eq!(status.code(), Some(2), "{}", log_of(other.path(), 1));
    let err = log_of(other.path(), 1);
    let pid = first.child.id();
    assert!(err.contains(&data.join("node-1").display().to_string()), "names the directory: {err}");
    assert!(err.contains(&format!("process {pid}")), "names the holder: {err}");
    assert_eq!(std::fs::read_to_string(data.join("node-1").join("LOCK")).unwrap().trim(), pid.to_string());

    // SIGKILL releases the lock: the node starts again on its directory.
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let mut again = spawn_with(&other_config, 1, other.path(), &["--set", &set_data]);
    assert!(exit_within(&mut again, Duration::from_secs(1)).is_none(), "{}", log_of(other.path(), 1));
    await_started(other.path(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_process_node_on_a_directory_in_use_is_refused_and_a_crashed_node_restarts() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = format!("cluster.data_dir={}", dir.path().display());
    let mut first = Cluster::start(settings(3, &[&data_dir])).await.expect("the cluster starts");
    leader(&first).await;

    let err = match Cluster::start(settings(3, &[&data_dir])).await {
        Ok(_) => panic!("a second cluster started on directories in use"),
        Err(e) => e,
    };
    assert!(matches!(err, ClusterError::Node(replab::node::NodeError::Lock { id: 1, .. })), "{err}");
    let text = err.to_string();
    assert!(text.contains(&dir.path().join("node-1").display().to_string()), "{text}");
    assert!(text.contains(&format!("this process (pid {})", std::process::id())), "{text}");

    // A crash drops the node's tasks, and the lock with them.
    let mut client = first.client();
    client.put("before", "crash").await.unwrap();
    for id in [1, 2] {
        first.crash(id).await.unwrap();
        first.restart(id).await.expect("a crashed node restarts on its directory");
    }
    first.stop(3).await.unwrap();
    first.restart(3).await.expect("a stopped node restarts on its directory");
    leader(&first).await;
    client.put("after", "restarts").await.unwrap();
    first.shutdown().await;

    // A clean stop releases every lock.
    let second = Cluster::start(settings(3, &[&data_dir])).await.expect("the directories are free again");
    leader(&second).await;
    second.shutdown().await;
}

#[test]
fn a_port_in_use_exits_2_naming_the_address() {
    let dir = tempfile::tempdir().unwrap();
    let (config, clients) = write_config(dir.path());
    let _taken = std::net::TcpListener::bind(clients[0]).unwrap();
    let mut node = spawn(&config, 1, dir.path());
    let status = exit_within(&mut node, Duration::from_secs(10)).expect("a node without its port must not run");
    let err = log_of(dir.path(), 1);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains(&clients[0].to_string()) && err.contains("client_addr"), "{err}");
}

#[test]
fn an_unusable_data_directory_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = write_config(dir.path());
    let not_a_dir = dir.path().join("data-is-a-file");
    std::fs::write(&not_a_dir, b"not a directory").unwrap();
    let set = format!("cluster.data_dir={}", not_a_dir.display());
    let mut node = spawn_with(&config, 1, dir.path(), &["--set", &set]);
    let status = exit_within(&mut node, Duration::from_secs(10)).expect("a node without a directory must not run");
    let err = log_of(dir.path(), 1);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("data-is-a-file"), "{err}");
}

/// A failure after the start stays exit code 1: the leader's directory is
/// deleted under it, and its log cannot start a new segment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_failure_after_the_start_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let (config, nodes) = write_config(dir.path());
    let small = ["--set", "wal.segment_size_bytes=4096"];
    let mut procs: Vec<NodeProcess> = (1..=3).map(|id| spawn_with(&config, id, dir.path(), &small)).collect();
    let settings =
        replab::config::load(&replab::config::ConfigInput { file: Some(config.clone()), ..Default::default() })
            .unwrap();
    let mut c = crate::process::client(&settings, nodes.clone());
    let (leader, _) = crate::process::await_agreed_leader(&mut c, &nodes, dir.path()).await;
    std::fs::remove_dir_all(dir.path().join("data").join(format!("node-{leader}"))).unwrap();
    let victim = procs.iter_mut().find(|p| p.id == leader).unwrap();
    let value = "v".repeat(1_000);
    let mut status = None;
    for i in 0..40 {
        let _ = tokio::time::timeout(Duration::from_secs(2), c.put(format!("k{i}"), value.clone())).await;
        status = victim.child.try_wait().unwrap();
        if status.is_some() {
            break;
        }
    }
    let status = status.or_else(|| exit_within(victim, Duration::from_secs(5))).expect("the leader kept running");
    let log = log_of(dir.path(), leader);
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains(&format!("node {leader} failed")), "{log}");
}

fn client_with(c: &Cluster, cluster_id: &str, secret: &str) -> Client {
    let settings = c.settings();
    Client::new(ClientOptions {
        nodes: c.client_addrs(),
        cluster_id: cluster_id.into(),
        secret: secret.into(),
        net: settings.net.clone(),
        op_timeout: Duration::from_secs(5),
        attempt_timeout: Duration::from_secs(1),
        name: 4242,
        pinned: false,
    })
}

/// Before, a refused client retried without a pause for the whole 5 s
/// (23,569 handshakes) and then said `outcome unknown`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_refused_at_the_handshake_fails_at_once() {
    let c = crate::cluster(3, &[]).await;
    leader(&c).await;
    let id = c.settings().cluster.id.clone();
    for (cluster_id, secret, why) in [(id.as_str(), "wrong", "wrong cluster secret"), ("other", "x", "cluster id")] {
        let mut client = client_with(&c, cluster_id, secret);
        let started = Instant::now();
        let err = client.put("k", "v").await.unwrap_err();
        // Well under the 5 s op timeout a retrying client would run into;
        // not tighter, since a loaded machine can stall a handshake.
        assert!(started.elapsed() < Duration::from_secs(3), "took {:?}: {err}", started.elapsed());
        assert!(matches!(&err, ClientError::Failed(m) if m.contains(why)), "{err}");
        assert!(matches!(client.get("k").await, Err(ClientError::Failed(_))));
        assert!(matches!(client.status(c.client_addrs()[0]).await, Err(ClientError::Failed(_))));
    }

    // `replab client` says so and exits 1, as fast.
    let cluster = c.client_addrs().iter().map(|a| a.to_string()).collect::<Vec<_>>().join(",");
    let out = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_replab"))
            .args(["client", "--set", "cluster.secret=wrong", "--cluster", &cluster, "put", "k", "v"])
            .output()
            .unwrap();
        (out, started.elapsed())
    })
    .await
    .unwrap();
    let (out, took) = out;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("error: failed:") && err.contains("wrong cluster secret"), "{err}");
    assert!(took < Duration::from_secs(4), "took {took:?}, near the 5 s request timeout");
    c.shutdown().await;
}

/// A node that closes every connection at once: a client must pause
/// between attempts, not spin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_backs_off_from_a_node_that_drops_every_connection() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let accepted = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let counter = {
        let (accepted, stop) = (Arc::clone(&accepted), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        accepted.fetch_add(1, Ordering::Relaxed);
                        drop(stream);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(1)),
                }
            }
        })
    };
    let mut client = Client::new(ClientOptions {
        nodes: vec![addr],
        cluster_id: "lab".into(),
        secret: "s".into(),
        net: replab::net::NetConfig::default(),
        op_timeout: Duration::from_secs(1),
        attempt_timeout: Duration::from_millis(500),
        name: 1,
        pinned: false,
    });
    let err = client.put("k", "v").await.unwrap_err();
    stop.store(true, Ordering::Relaxed);
    counter.join().unwrap();
    let attempts = accepted.load(Ordering::Relaxed);
    assert!(matches!(err, ClientError::Unknown(_)), "{err}");
    assert!((2..=40).contains(&attempts), "{attempts} connections in 1 s");
}
