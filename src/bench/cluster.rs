//! `replab bench cluster`: client-visible write latency on a 3-node
//! in-process cluster over loopback TCP, per fsync policy.
//!
//! One client, one put at a time: each put is a round trip to the leader,
//! a log append (and fdatasync, per policy) on the leader and a majority of
//! followers, the commit, the apply and the answer.

use std::time::{Duration, Instant};

use super::{Measurement, median, print_table};
use crate::cluster::Cluster;
use crate::config::{self, ConfigInput};

#[derive(Clone, Debug)]
pub struct ClusterBenchArgs {
    pub puts: u64,
    pub seconds: f64,
    pub repeats: usize,
    pub fsync: Vec<String>,
    pub value_bytes: usize,
}

impl Default for ClusterBenchArgs {
    fn default() -> ClusterBenchArgs {
        ClusterBenchArgs {
            puts: 2_000,
            seconds: 5.0,
            repeats: 3,
            fsync: vec!["always".into(), "batch".into(), "never".into()],
            value_bytes: 100,
        }
    }
}

pub fn run(args: &ClusterBenchArgs) -> Result<Vec<Measurement>, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(run_all(args))
}

async fn run_all(args: &ClusterBenchArgs) -> Result<Vec<Measurement>, String> {
    let mut runs: Vec<Vec<Measurement>> = vec![Vec::new(); args.fsync.len()];
    for _ in 0..args.repeats.max(1) {
        for (slot, fsync) in args.fsync.iter().enumerate() {
            runs[slot].push(one_run(args, fsync).await?);
        }
    }
    let rows: Vec<Measurement> = runs
        .into_iter()
        .map(|case| {
            let med = median(case.iter().map(|m| m.p50_us() as f64).collect());
            case.into_iter().find(|m| m.p50_us() as f64 == med).expect("median is a run")
        })
        .collect();
    print_table(
        &format!(
            "Cluster benchmark: one client, sequential puts of {} B, 3 in-process nodes on loopback (run with the median p50 of {})",
            args.value_bytes, args.repeats
        ),
        &rows,
    );
    Ok(rows)
}

async fn one_run(args: &ClusterBenchArgs, fsync: &str) -> Result<Measurement, String> {
    let sets = vec!["cluster.nodes=3".to_string(), format!("wal.fsync={fsync}")];
    let settings = config::load(&ConfigInput { sets, ..ConfigInput::default() }).map_err(|e| e.to_string())?;
    let mut cluster = Cluster::start(settings).await.map_err(|e| e.to_string())?;
    cluster.await_leader(Duration::from_secs(10)).await.ok_or("no leader within 10 s")?;
    let mut client = cluster.client();
    client.register().await.map_err(|e| e.to_string())?;
    let value = vec![b'v'; args.value_bytes];
    let mut m = Measurement::new(format!("put, fsync {fsync}"));
    let budget = Duration::from_secs_f64(args.seconds);
    let start = Instant::now();
    while m.ops < args.puts && start.elapsed() < budget {
        let key = format!("key{}", m.ops % 64);
        let t = Instant::now();
        client.put(key, value.clone()).await.map_err(|e| e.to_string())?;
        m.record_latency(t.elapsed());
        m.ops += 1;
        m.bytes += args.value_bytes as u64;
    }
    m.elapsed = start.elapsed();
    cluster.shutdown().await;
    Ok(m)
}
