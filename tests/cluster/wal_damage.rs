//! Issue 10's acceptance in process mode: damage early in the last log
//! segment on two of three `replab node` processes. Before, the two
//! damaged nodes cut their logs, elected a leader on the shortened log and
//! overwrote the intact node: every acknowledged write was lost. Now they
//! refuse to start, naming the damage; repaired, they cannot elect each
//! other, and they catch up from the intact node. No acknowledged write is
//! lost.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use replab::config::{self, ConfigInput};

use crate::process::{agreed_leader, client, spawn, spawn_with, write_config};

const WRITES: usize = 100;

fn last_segment(node_dir: &Path) -> std::path::PathBuf {
    let mut segments: Vec<_> = std::fs::read_dir(node_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    segments.sort();
    segments.pop().expect("a segment")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_on_two_of_three_nodes_never_costs_an_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let (config_path, nodes) = write_config(dir.path());
    let settings = config::load(&ConfigInput { file: Some(config_path.clone()), ..ConfigInput::default() }).unwrap();
    let mut procs: Vec<_> = (1..=3).map(|id| spawn(&config_path, id, dir.path())).collect();
    let mut c = client(&settings, nodes.clone());
    let deadline = Instant::now() + Duration::from_secs(20);
    while agreed_leader(&mut c, &nodes).await.is_none() {
        assert!(Instant::now() < deadline, "no leader; logs in {}", dir.path().display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for i in 0..WRITES {
        c.put(format!("k{i}"), format!("v{i}")).await.expect("acknowledged put");
    }
    // Every node holds every write before the power goes.
    let deadline = Instant::now() + Duration::from_secs(10);
    for node in &nodes {
        while c.get_stale(*node, format!("k{}", WRITES - 1)).await.ok().and_then(|r| r.value).is_none() {
            assert!(Instant::now() < deadline, "{node} never caught up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    for p in &mut procs {
        p.child.kill().unwrap();
        p.child.wait().unwrap();
    }

    // One byte flipped early in the last segment of nodes 1 and 2, with
    // every later record intact.
    let data = dir.path().join("data");
    for id in [1, 2] {
        let segment = last_segment(&data.join(format!("node-{id}")));
        let mut bytes = std::fs::read(&segment).unwrap();
        assert!(bytes.len() > 4_000, "the segment holds the writes");
        bytes[16 + 300] ^= 0x20;
        std::fs::write(&segment, &bytes).unwrap();
    }

    // They refuse to start, and say where and what to do.
    for id in [1u64, 2] {
        let out = Command::new(env!("CARGO_BIN_EXE_replab"))
            .args(["node", "--config", config_path.to_str().unwrap(), "--id", &id.to_string()])
            .output()
            .unwrap();
        assert!(!out.status.success(), "node {id} started on a damaged log");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(".wal") && err.contains("offset") && err.contains("record"), "node {id}: {err}");
        assert!(err.contains("--repair-wal"), "node {id} names the way out: {err}");
    }

    // Repaired, the two damaged nodes alone must not elect a leader: they
    // no longer hold the writes they acknowledged.
    procs = vec![
        spawn_with(&config_path, 1, dir.path(), &["--repair-wal"]),
        spawn_with(&config_path, 2, dir.path(), &["--repair-wal"]),
    ];
    // Both must be up and answering first, or a slow start would pass the
    // check below without any chance of an election.
    let deadline = Instant::now() + Duration::from_secs(20);
    for node in &nodes[..2] {
        while c.status(*node).await.is_err() {
            assert!(Instant::now() < deadline, "repaired node {node} never answered; logs in {}", dir.path().display());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(agreed_leader(&mut c, &nodes[..2]).await, None, "the repaired nodes elected a leader on their own");

    // The intact node returns: it is elected, nothing is lost, and the
    // repaired nodes catch up from it.
    procs.push(spawn(&config_path, 3, dir.path()));
    let deadline = Instant::now() + Duration::from_secs(20);
    let (leader, _) = loop {
        if let Some(found) = agreed_leader(&mut c, &nodes).await {
            break found;
        }
        assert!(
            Instant::now() < deadline,
            "no leader after the intact node returned; logs in {}",
            dir.path().display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(leader, 3, "only the intact node can be elected");
    for i in 0..WRITES {
        let read = c.get(format!("k{i}")).await.expect("linearizable read");
        assert_eq!(read.value.as_deref(), Some(format!("v{i}").as_bytes()), "acknowledged write k{i} lost");
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    for node in &nodes[..2] {
        loop {
            let read = c.get_stale(*node, format!("k{}", WRITES - 1)).await;
            if matches!(&read, Ok(r) if r.value.is_some()) {
                break;
            }
            assert!(Instant::now() < deadline, "repaired node {node} never caught up: {read:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let log = std::fs::read_to_string(dir.path().join("node-1.log")).unwrap();
    assert!(log.contains("repaired the log"), "{log}");
    assert!(log.contains("caught up"), "the repaired node says when it votes again: {log}");
    for p in &mut procs {
        let pid = p.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        p.child.wait().unwrap();
    }
}
