//! `replab bench cluster --processes`: durable replicated writes and
//! linearizable reads on three `replab node` processes on 127.0.0.1,
//! measured the way etcd's `benchmark` measures etcd, and with `--etcd`
//! against etcd itself in the same invocation (runs interleaved: replab,
//! etcd, replab, etcd, ...).
//!
//! The in-process `replab bench cluster` stays the default: it is cheap,
//! needs no binary on disk and backs the strategy comparison. This mode is
//! what users run (every hop a socket between processes, the client a
//! separate process) and what etcd's figures mean.

use std::path::PathBuf;
use std::time::Duration;

use super::etcd::{self, EtcdPhase, EtcdRun};
use super::floor::{self, Floor};
use super::load::{self, Op};
use super::process_figures::{self as report, Figures, PhaseResult, ReplabRun};
use super::procs::{self, NodeProcs};

#[derive(Clone, Debug)]
pub struct ProcessBenchArgs {
    /// raft | primary-backup | leaderless
    pub policy: String,
    /// `--set KEY=VALUE` for every node, after the generated file.
    pub sets: Vec<String>,
    /// Clients of the many-client phases.
    pub clients: usize,
    pub warmup_seconds: f64,
    pub seconds: f64,
    /// Measured operations per phase at most (over all clients).
    pub max_ops: u64,
    /// Invocations of each side, interleaved; the median run is reported.
    pub repeats: usize,
    pub json: Option<PathBuf>,
    /// `Some(script)`: run etcd's bench.sh too.
    pub etcd: Option<PathBuf>,
    /// Empty, or one directory per member (say, one per disk): each run
    /// keeps member i's data in a fresh directory inside the i-th.
    pub member_dirs: Vec<PathBuf>,
}

/// The TOML that selects the strategy. Every choice keeps the durability
/// promise: an acknowledged write is durable on a majority.
fn policy_toml(policy: &str) -> Result<&'static str, String> {
    match policy {
        "raft" => Ok("[policy]\nreplication = \"raft\"\n"),
        // quorum: acknowledged once durable on a majority, like Raft.
        "primary-backup" => Ok("[policy]\nreplication = \"primary-backup\"\n\n[primary_backup]\nmode = \"quorum\"\n"),
        // The shipped leaderless quorums (W = 2 of N = 3: a majority).
        "leaderless" => Ok("[policy]\nreplication = \"leaderless\"\nconflict_resolver = \"lww\"\n"),
        other => Err(format!("--policy: `{other}` is not one of raft, primary-backup, leaderless")),
    }
}

pub fn run(args: &ProcessBenchArgs) -> Result<(), String> {
    policy_toml(&args.policy)?;
    if args.clients == 0 || args.clients > 4096 {
        return Err("--clients must be within 1 ..= 4096".into());
    }
    if args.seconds.is_nan()
        || args.seconds <= 0.0
        || args.seconds > 3600.0
        || !(0.0..=600.0).contains(&args.warmup_seconds)
    {
        return Err("--seconds must be within (0, 3600] and --warmup-seconds within [0, 600]".into());
    }
    if args.max_ops == 0 {
        return Err("--max-ops must be above 0".into());
    }
    // A current-thread runtime for the load generator was tried twice:
    // 3.42x etcd at put-64 against 3.80x with this one, and, with the
    // nodes on current-thread runtimes, put-1 p50 538/575/544 µs against
    // 526/551/496 (docs/PERFORMANCE.md), so the default runtime stays.
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        // Both handlers exist before the first node starts: a Ctrl-C that
        // killed this process outright would leave the nodes running.
        let mut term = signal(SignalKind::terminate()).map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
        let mut interrupt = signal(SignalKind::interrupt()).map_err(|e| format!("cannot handle SIGINT: {e}"))?;
        // Whichever ends first, the benchmark's future is dropped here, and
        // with it the guards that stop every process it started.
        tokio::select! {
            result = run_all(args) => result,
            _ = interrupt.recv() => Err("interrupted (Ctrl-C); every process the benchmark started was stopped".into()),
            _ = term.recv() => Err("terminated (SIGTERM); every process the benchmark started was stopped".into()),
        }
    })
}

async fn run_all(args: &ProcessBenchArgs) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the replab binary: {e}"))?;
    let etcd_missing = args.etcd.as_deref().and_then(etcd::missing_reason);
    let mut replab_runs = Vec::new();
    let mut etcd_runs: Vec<EtcdRun> = Vec::new();
    let mut etcd_problem = etcd_missing.clone();
    for repeat in 1..=args.repeats.max(1) {
        eprintln!("run {repeat}: replab ({} s per phase)", args.seconds);
        let run = replab_run(&exe, args, repeat as u64).await?;
        report::print_replab(args, &run, repeat);
        replab_runs.push(run);
        if let (Some(script), None) = (&args.etcd, &etcd_missing) {
            eprintln!("run {repeat}: etcd ({})", script.display());
            match etcd::run(script, args.seconds, args.clients).await {
                Ok(run) => {
                    report::print_etcd(&run, repeat);
                    etcd_runs.push(run);
                }
                Err(e) => {
                    eprintln!("etcd run {repeat} failed: {e}");
                    etcd_problem = Some(format!("failed: {}", e.lines().next().unwrap_or("")));
                }
            }
        }
    }
    let summary = report::summarize(args, &replab_runs, &etcd_runs, etcd_problem);
    report::print_summary(&summary);
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&summary.to_json(args)).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let errors: u64 = replab_runs.iter().flat_map(|r| &r.phases).map(|p| p.errors).sum();
    if errors > 0 {
        return Err(format!("{errors} operation(s) failed during the measured phases (see the tables)"));
    }
    Ok(())
}

/// One replab run: the floor, then a fresh 3-process cluster through
/// every phase, then every node stopped.
async fn replab_run(exe: &std::path::Path, args: &ProcessBenchArgs, seed: u64) -> Result<ReplabRun, String> {
    let dir = tempfile::Builder::new().prefix("replab-bench-").tempdir().map_err(|e| e.to_string())?;
    // Each member's own directory inside --member-dirs, removed with it at
    // the end of the run; without them, all share the run's directory.
    let own: Vec<tempfile::TempDir> = args
        .member_dirs
        .iter()
        .map(|d| {
            let made = tempfile::Builder::new().prefix("replab-bench-member-").tempdir_in(d);
            made.map_err(|e| format!("--member-dirs: cannot create a directory in {}: {e}", d.display()))
        })
        .collect::<Result<_, _>>()?;
    let roots: [PathBuf; 3] = match own.as_slice() {
        [a, b, c] => [a, b, c].map(|t| t.path().to_path_buf()),
        [] => [1, 2, 3].map(|_| dir.path().join("data")),
        _ => return Err("--member-dirs takes one directory per member, three".into()),
    };
    let member_data = (!own.is_empty()).then(|| [1, 2, 3].map(|id| roots[id - 1].join(format!("node-{id}"))));
    let cfg = procs::write_config(dir.path(), policy_toml(&args.policy)?, &args.sets, member_data.as_ref())?;
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).map_err(|e| format!("cannot create {}: {e}", data.display()))?;
    // Before the nodes start, so they do not compete with it.
    let floor: Floor = floor::measure_floor(&roots, 2_000, 500, Duration::from_secs(3))?;
    let mut nodes = NodeProcs::start(exe, &cfg, dir.path())?;
    let result = drive(args, &cfg, &mut nodes, floor, seed, member_data.as_ref()).await;
    nodes.stop(Duration::from_secs(5));
    result.map_err(|e| {
        let logs: Vec<String> =
            (1..=3).map(|id| dir.path().join(format!("node-{id}.log")).display().to_string()).collect();
        // The directory goes away with this function; show the logs' tails.
        let tails: String = logs
            .iter()
            .map(|l| {
                let text = std::fs::read_to_string(l).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(5).collect();
                format!("\n{l}:\n  {}", tail.into_iter().rev().collect::<Vec<_>>().join("\n  "))
            })
            .collect();
        format!("{e}{tails}")
    })
}

async fn drive(
    args: &ProcessBenchArgs,
    cfg: &procs::ClusterConfig,
    nodes: &mut NodeProcs,
    floor: Floor,
    seed: u64,
    member_data: Option<&[PathBuf; 3]>,
) -> Result<ReplabRun, String> {
    let mut admin = procs::client(cfg, 1);
    let leader = procs::await_ready(&mut admin, cfg, nodes).await?;
    // A figure measured on other disks than the user named is void: each
    // node holds its directory's lock while it runs.
    for (id, want) in (1..=3).zip(member_data.into_iter().flatten()) {
        if !want.join(crate::node::lock::LOCK_FILE).exists() {
            return Err(format!("node {id} keeps no data in {}, where --member-dirs put it", want.display()));
        }
    }
    let pids = nodes.pids();
    let shown: Vec<String> = pids.iter().map(u32::to_string).collect();
    eprintln!("nodes ready (pids {}); counters from {leader}", shown.join(" "));
    let mut clients = Vec::new();
    for i in 0..args.clients {
        let mut c = procs::client(cfg, 100 + i as u64);
        // Opens the session and the connection before any phase is timed.
        c.register().await.map_err(|e| format!("client {i}: {e}"))?;
        clients.push(c);
    }
    let n = args.clients;
    let phases =
        [("put-1".to_string(), Op::Put, 1), (format!("put-{n}"), Op::Put, n), (format!("get-{n}"), Op::Get, n)];
    let mut results = Vec::new();
    for (i, (name, op, count)) in phases.into_iter().enumerate() {
        let mut idle = clients.split_off(count.min(clients.len()));
        let mut running = load::start_phase(&mut clients, op, args.max_ops, seed * 1000 + i as u64);
        tokio::time::sleep(Duration::from_secs_f64(args.warmup_seconds)).await;
        let cpu0 = procs::cpu_seconds(&pids)?;
        let me = [std::process::id()];
        let client_cpu0 = procs::cpu_seconds(&me)?;
        let s0 = procs::status(&mut admin, leader).await?;
        running.begin_measuring();
        let elapsed = running.wait(Duration::from_secs_f64(args.seconds)).await;
        let cpu1 = procs::cpu_seconds(&pids)?;
        let client_cpu1 = procs::cpu_seconds(&me)?;
        let s1 = procs::status(&mut admin, leader).await?;
        let phase = running.finish(elapsed, &mut clients).await?;
        clients.append(&mut idle);
        if let Some(why) = nodes.exited() {
            return Err(why);
        }
        let syncs = s1.stats.fdatasyncs.saturating_sub(s0.stats.fdatasyncs);
        let records = s1.stats.log_records.saturating_sub(s0.stats.log_records);
        let secs = phase.elapsed.as_secs_f64().max(1e-9);
        let q = |x: f64| phase.latency_us.value_at_quantile(x) as f64;
        results.push(PhaseResult {
            name,
            clients: count as u64,
            ops: phase.ops,
            errors: phase.errors,
            first_error: phase.first_error.clone(),
            f: Figures {
                ops_per_sec: phase.ops as f64 / secs,
                p50_us: q(0.5),
                p99_us: q(0.99),
                p999_us: q(0.999),
                server_cpu_us_per_op: (cpu1 - cpu0) * 1e6 / phase.ops.max(1) as f64,
                fdatasyncs_per_sec: syncs as f64 / secs,
                entries_per_fdatasync: if syncs > 0 { records as f64 / syncs as f64 } else { 0.0 },
            },
            client_cpu_us_per_op: (client_cpu1 - client_cpu0) * 1e6 / phase.ops.max(1) as f64,
            leader_kept: s1.policy.role == s0.policy.role && s1.policy.term == s0.policy.term,
        });
    }
    let wal_fsync = cfg.settings.wal.options().fsync;
    Ok(ReplabRun { floor, phases: results, counters_from: leader.to_string(), node_pids: pids, wal_fsync })
}

/// The etcd row a replab phase is compared with: etcd's phase names are
/// fixed (`put-64`, `lread-64L`) whatever `C` is; reads are compared at
/// the leader, as replab's client reads there.
pub fn etcd_counterpart<'a>(etcd: &'a EtcdRun, phase: &str) -> Option<&'a EtcdPhase> {
    let name = if phase == "put-1" {
        "put-1"
    } else if phase.starts_with("put-") {
        "put-64"
    } else {
        "lread-64L"
    };
    etcd.phase(name)
}
