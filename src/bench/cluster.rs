//! `replab bench cluster`: client-visible write latency on a 3-node
//! in-process cluster over loopback TCP, per fsync policy, or per
//! replication strategy (`--strategies`: raft against leaderless at W=1
//! and W=2, in one run).
//!
//! One client, one put at a time. Under raft each put is a round trip to
//! the leader, a log append (and fdatasync, per policy) on the leader and a
//! majority of followers, the commit, the apply and the answer. Under
//! leaderless it is a round trip to a coordinator, its own durable write,
//! and W - 1 replicas' durable acknowledgements.

use std::time::{Duration, Instant};

use super::{Measurement, median, print_table};
use crate::cluster::Cluster;
use crate::config::{self, ConfigInput};
use crate::progress::Progress;

#[derive(Clone, Debug)]
pub struct ClusterBenchArgs {
    pub puts: u64,
    pub seconds: f64,
    pub repeats: usize,
    /// What to measure: a label and the settings that make it.
    pub cases: Vec<(String, Vec<String>)>,
    pub value_bytes: usize,
}

/// One case per fsync policy, under the default policy.
pub fn fsync_cases(policies: &[String]) -> Vec<(String, Vec<String>)> {
    policies.iter().map(|f| (format!("put, fsync {f}"), vec![format!("wal.fsync={f}")])).collect()
}

/// Raft against leaderless (version vectors) at W=1 and W=2, under each
/// of the fsync policies given.
pub fn strategy_cases(fsync: &[String]) -> Vec<(String, Vec<String>)> {
    let mut cases = Vec::new();
    for f in fsync {
        cases.push((format!("put, raft, fsync {f}"), vec![format!("wal.fsync={f}")]));
        for w in [1, 2] {
            cases.push((
                format!("put, leaderless N=3 W={w}, fsync {f}"),
                vec![
                    "policy.replication=leaderless".into(),
                    "policy.conflict_resolver=version-vector".into(),
                    format!("leaderless.write_quorum={w}"),
                    format!("wal.fsync={f}"),
                ],
            ));
        }
    }
    cases
}

impl Default for ClusterBenchArgs {
    fn default() -> ClusterBenchArgs {
        ClusterBenchArgs {
            puts: 2_000,
            seconds: 5.0,
            repeats: 3,
            cases: fsync_cases(&["always".into(), "batch".into(), "never".into()]),
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
    let mut runs: Vec<Vec<Measurement>> = vec![Vec::new(); args.cases.len()];
    let repeats = args.repeats.max(1);
    let progress = Progress::new("bench cluster", (repeats * args.cases.len()) as u64);
    // Cases alternate within each repeat, so a noisy moment hits them all.
    for repeat in 0..repeats {
        for (slot, (label, sets)) in args.cases.iter().enumerate() {
            progress.start_step(&format!("{label}, run {}/{repeats}", repeat + 1));
            let run = one_run(args, label, sets, &progress).await;
            progress.finish_step();
            match run {
                Ok(m) => runs[slot].push(m),
                Err(e) => {
                    progress.finish();
                    return Err(e);
                }
            }
        }
    }
    progress.finish();
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

async fn one_run(
    args: &ClusterBenchArgs,
    label: &str,
    extra: &[String],
    progress: &Progress,
) -> Result<Measurement, String> {
    let mut sets = vec!["cluster.nodes=3".to_string()];
    sets.extend(extra.iter().cloned());
    let settings = config::load(&ConfigInput { sets, ..ConfigInput::default() }).map_err(|e| e.to_string())?;
    let keyed = crate::registry::shape(&settings) == crate::registry::Shape::Keyed;
    let mut cluster = Cluster::start(settings).await.map_err(|e| e.to_string())?;
    if keyed {
        if !cluster.await_every_node_serving(Duration::from_secs(10)).await {
            return Err("not every node served within 10 s".into());
        }
    } else {
        cluster.await_leader(Duration::from_secs(10)).await.ok_or("no leader within 10 s")?;
    }
    let mut client = cluster.client();
    client.register().await.map_err(|e| e.to_string())?;
    let value = vec![b'v'; args.value_bytes];
    let mut m = Measurement::new(label.to_string());
    let budget = Duration::from_secs_f64(args.seconds);
    let start = Instant::now();
    while m.ops < args.puts && start.elapsed() < budget {
        let key = format!("key{}", m.ops % 64);
        let t = Instant::now();
        client.put(key, value.clone()).await.map_err(|e| e.to_string())?;
        m.record_latency(t.elapsed());
        m.ops += 1;
        m.bytes += args.value_bytes as u64;
        if m.ops.is_multiple_of(100) {
            progress.set_ops(m.ops);
        }
    }
    m.elapsed = start.elapsed();
    cluster.shutdown().await;
    Ok(m)
}
