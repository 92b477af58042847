//! The node runtime and clusters over real loopback TCP, real files and
//! real fdatasync.

mod bad_input;
mod hardening;
mod idempotency;
mod in_process;
mod keyed_identity;
mod leaderless;
mod metrics;
mod primary_backup;
mod process;
mod snapshot_catch_up;
mod wal_damage;

use std::time::Duration;

use replab::cluster::Cluster;
use replab::config::{self, ConfigInput, Settings};

/// Defaults plus `sets`, through the real config loader.
pub fn settings(nodes: u64, sets: &[&str]) -> Settings {
    let mut all = vec![format!("cluster.nodes={nodes}")];
    all.extend(sets.iter().map(|s| s.to_string()));
    config::load(&ConfigInput { sets: all, ..ConfigInput::default() }).expect("test settings are valid")
}

/// Logs go to the test's captured output, shown when a test fails.
pub fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

pub async fn cluster(nodes: u64, sets: &[&str]) -> Cluster {
    init_logs();
    Cluster::start(settings(nodes, sets)).await.expect("the cluster starts")
}

pub async fn leader(c: &Cluster) -> u64 {
    c.await_leader(Duration::from_secs(10)).await.expect("a leader within 10 s")
}

/// Waits until every running node has applied at least `index`.
pub async fn await_applied(c: &Cluster, index: u64, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let statuses = c.statuses().await;
        let behind: Vec<_> = statuses
            .iter()
            .filter_map(|(id, s)| s.as_ref().map(|s| (id, s.policy.applied_index)))
            .filter(|(_, applied)| *applied < index)
            .collect();
        if behind.is_empty() {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "nodes behind index {index}: {behind:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
