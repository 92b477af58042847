//! `replab node`'s metrics endpoint (node.metrics_addr): Prometheus text
//! that answers while the cluster takes writes, with counters that move.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use replab::config::{self, ConfigInput};

use crate::process::{NodeProcess, await_agreed_leader, client, spawn_with, write_config};

/// One scrape over plain HTTP/1.1: (status line, body).
fn scrape(addr: SocketAddr, path: &str) -> std::io::Result<(String, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    Ok((head.lines().next().unwrap_or("").to_string(), body.to_string()))
}

/// Samples by name and labels as written: `name{labels}` -> value.
fn samples(body: &str) -> BTreeMap<String, f64> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_endpoint_answers_under_load_and_its_counters_move() {
    let dir = tempfile::tempdir().unwrap();
    let (config_path, nodes) = write_config(dir.path());
    let settings = config::load(&ConfigInput { file: Some(config_path.clone()), ..ConfigInput::default() }).unwrap();
    let metrics: Vec<SocketAddr> = (0..3).map(|_| format!("127.0.0.1:{}", free_port()).parse().unwrap()).collect();
    let _procs: Vec<NodeProcess> = (1..=3u64)
        .map(|id| {
            let set = format!("node.metrics_addr={}", metrics[id as usize - 1]);
            spawn_with(&config_path, id, dir.path(), &["--set", &set])
        })
        .collect();
    let mut c = client(&settings, nodes.clone());
    let (leader, _) = await_agreed_leader(&mut c, &nodes, dir.path()).await;
    let at = metrics[leader as usize - 1];
    let node = format!("node=\"{leader}\"");

    // The counters before any load: scraped first, so the load cannot be
    // over before the baseline is taken (400 puts can take under 200 ms).
    let (status, first) = tokio::task::spawn_blocking(move || scrape(at, "/metrics")).await.unwrap().unwrap();
    assert_eq!(status, "HTTP/1.1 200 OK", "{first}");
    // Load in the background while we scrape.
    let load_settings = settings.clone();
    let load_nodes = nodes.clone();
    let load = tokio::spawn(async move {
        let mut c = client(&load_settings, load_nodes);
        for i in 0..400 {
            c.put(format!("k{}", i % 20), format!("v{i}")).await.expect("put under load");
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (status, during) = tokio::task::spawn_blocking(move || scrape(at, "/metrics")).await.unwrap().unwrap();
    assert_eq!(status, "HTTP/1.1 200 OK", "the endpoint answers under load: {during}");
    load.await.unwrap();
    let (_, second) = tokio::task::spawn_blocking(move || scrape(at, "/metrics")).await.unwrap().unwrap();
    let (a, b) = (samples(&first), samples(&second));

    assert_eq!(b[&format!("replab_node_role{{{node},role=\"leader\"}}")], 1.0, "{second}");
    assert_eq!(b[&format!("replab_node_status_ok{{{node}}}")], 1.0, "{second}");
    assert!(b[&format!("replab_node_term{{{node}}}")] >= 1.0);
    for moved in [
        format!("replab_node_commit_index{{{node}}}"),
        format!("replab_node_applied_index{{{node}}}"),
        format!("replab_proposals_total{{{node}}}"),
        format!("replab_wal_fdatasyncs_total{{{node}}}"),
        format!("replab_client_requests_total{{{node},result=\"ok\"}}"),
        format!("replab_client_request_duration_seconds_count{{{node}}}"),
        format!("replab_wal_fdatasync_duration_seconds_count{{{node}}}"),
    ] {
        let (before, after) = (a.get(&moved), b.get(&moved));
        assert!(after > before, "{moved} did not move: {before:?} -> {after:?}\n{second}");
    }
    let peer = if leader == 1 { 2 } else { 1 };
    let sent = format!("replab_peer_bytes_sent_total{{{node},peer=\"{peer}\"}}");
    assert!(b[&sent] > a[&sent], "{sent}: {} -> {}", a[&sent], b[&sent]);
    assert!(b.contains_key(&format!("replab_peer_suspicion{{{node},peer=\"{peer}\"}}")), "{second}");
    assert!(b[&format!("replab_entries_per_fdatasync{{{node}}}")] > 0.0);
    // A follower serves its own view.
    let follower = metrics[peer as usize - 1];
    let (_, body) = tokio::task::spawn_blocking(move || scrape(follower, "/")).await.unwrap().unwrap();
    assert_eq!(samples(&body)[&format!("replab_node_role{{node=\"{peer}\",role=\"follower\"}}")], 1.0, "{body}");
    let (status, _) = tokio::task::spawn_blocking(move || scrape(at, "/other")).await.unwrap().unwrap();
    assert_eq!(status, "HTTP/1.1 404 Not Found");
}

#[test]
fn a_metrics_address_off_loopback_refuses_to_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let (config_path, _) = write_config(dir.path());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_replab"))
        .args(["node", "--config", config_path.to_str().unwrap(), "--id", "1"])
        .args(["--set", "node.metrics_addr=0.0.0.0:9101"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("node.metrics_addr") && stderr.contains("loopback"), "{stderr}");
}
