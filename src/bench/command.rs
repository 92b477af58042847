//! The `replab bench` command line: its arguments (clap) and the checks
//! that turn bad ones into a usage error (exit 2) before anything runs.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

/// `replab bench cluster --processes`: 3 `replab node` processes, closed-loop load, optionally etcd.
#[derive(Args, Clone, Debug)]
pub struct ProcessArgs {
    /// Benchmark 3 `replab node` processes on 127.0.0.1 instead of an in-process cluster.
    #[arg(long)]
    processes: bool,
    /// Also run etcd (../shared/peers/etcd/bench.sh, or --etcd-script), interleaved; implies --processes.
    #[arg(long)]
    etcd: bool,
    /// The etcd peer script [default: ../shared/peers/etcd/bench.sh].
    #[arg(long, value_name = "FILE")]
    etcd_script: Option<PathBuf>,
    /// --processes: the strategy: raft, primary-backup (quorum) or leaderless.
    #[arg(long, default_value = "raft")]
    policy: String,
    /// --processes: clients of the many-client phases.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// --processes: warm-up before each measured phase, in seconds.
    #[arg(long, default_value_t = 2.0)]
    warmup_seconds: f64,
    /// --processes: measured operations per phase at most (each phase also stops after --seconds).
    #[arg(long, default_value_t = 2_000_000)]
    max_ops: u64,
    /// --processes: write the figures as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// --processes: override one node setting, e.g. --set node.batch_max_entries=128 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// --processes: one directory per member, comma separated (say, one per disk), each member's data in a fresh
    /// directory inside its own [default: all three in one temporary directory].
    #[arg(long, value_delimiter = ',', value_name = "DIR,DIR,DIR")]
    member_dirs: Vec<PathBuf>,
}

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Linearizability checker speed on generated histories (default: 10 clients x 10,000 ops).
    #[command(after_help = "Example:\n  replab bench check --ops 10000 --clients 10 --keys 100,10")]
    Check {
        #[arg(long, default_value_t = 10_000)]
        ops: usize,
        #[arg(long, default_value_t = 10)]
        clients: usize,
        /// Key counts, one case each, comma separated.
        #[arg(long, value_delimiter = ',', default_values_t = [100usize, 10])]
        keys: Vec<usize>,
        /// Fraction of operations whose outcome is unknown.
        #[arg(long, default_value_t = 0.002)]
        unknown_rate: f64,
        #[arg(long, default_value_t = 5)]
        repeats: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Time budget handed to the checker per run, in seconds.
        #[arg(long, default_value_t = 60.0)]
        budget_s: f64,
    },
    /// Client write latency on a 3-node in-process cluster, per fsync policy or per strategy.
    #[command(
        after_help = "Examples:\n  replab bench cluster --fsync always --puts 2000\n  replab bench cluster --strategies\n  \
replab bench cluster --processes --etcd --json bench.json\n\n\
--strategies measures raft against leaderless (version vectors) at W=1 and W=2, alternating in one run\n\
(fsync batch unless --fsync names others).\n\n\
--processes starts 3 `replab node` processes on 127.0.0.1 (the shipped defaults: wal.fsync = batch, durable) and measures puts with 1\n\
client, puts with --clients clients and linearizable gets with --clients clients, closed loop, 16-byte keys\n\
over 100,000, 256-byte values. --etcd (implies --processes) also runs ../shared/peers/etcd/bench.sh, runs\n\
interleaved, and prints replab/etcd ratios. Every process started is stopped, also on Ctrl-C.\n\n\
--member-dirs /mnt/d1,/mnt/d2,/mnt/d3 keeps each member's log (and the floor's syncs for it) on a disk of its\n\
own, as in a deployment; by default the three share one temporary directory, and so one disk."
    )]
    Cluster {
        /// Puts per run (each run also stops after --seconds).
        #[arg(long, default_value_t = 2_000)]
        puts: u64,
        /// Seconds per run [default: 5; with --processes: 10 per measured phase].
        #[arg(long)]
        seconds: Option<f64>,
        /// Runs per policy; the run with the median p50 is reported [default: 3; with --processes: 1].
        #[arg(long)]
        repeats: Option<usize>,
        /// fsync policies to compare, comma separated [default: always,batch,never; with --strategies: batch].
        #[arg(long, value_delimiter = ',')]
        fsync: Option<Vec<String>>,
        #[arg(long, default_value_t = 100)]
        value_bytes: usize,
        /// Compare strategies: raft, leaderless W=1, leaderless W=2 (under each --fsync policy).
        #[arg(long)]
        strategies: bool,
        #[command(flatten)]
        processes: ProcessArgs,
    },
    /// Raft protocol cost: committed entries per CPU-second on a 3-node in-memory cluster.
    #[command(after_help = "Example:\n  replab bench raft --batch-sizes 1,64 --entries 200000")]
    Raft {
        /// Commands per proposal, comma separated.
        #[arg(long, value_delimiter = ',', default_values_t = [1usize, 64])]
        batch_sizes: Vec<usize>,
        /// Committed entries per run.
        #[arg(long, default_value_t = 200_000)]
        entries: u64,
        /// Runs per case; the median run is reported.
        #[arg(long, default_value_t = 5)]
        repeats: usize,
    },
    /// Transport throughput and round trips on one loopback link, against plain tokio TCP.
    #[command(after_help = "Example:\n  replab bench net --seconds 2 --repeats 3")]
    Net {
        /// Payload sizes in bytes, comma separated.
        #[arg(long, value_delimiter = ',', default_values_t = [64usize, 1024, 65536])]
        sizes: Vec<usize>,
        /// Time limit per streaming case, in seconds.
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        /// Round trips per ping-pong case.
        #[arg(long, default_value_t = 5_000)]
        round_trips: u64,
        /// Runs per case; the median run is reported.
        #[arg(long, default_value_t = 3)]
        repeats: usize,
    },
    /// Time and size of report.html for a large simulated run (target: 100,000 operations, < 2 s, < 5 MB).
    #[command(after_help = "Example:\n  replab bench report --ops 100000 --repeats 5")]
    Report {
        #[arg(long, default_value_t = 100_000)]
        ops: usize,
        /// Runs; the median time is reported.
        #[arg(long, default_value_t = 5)]
        repeats: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Keep report.html in this directory.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// WAL append throughput and latency against raw write+fdatasync and buffered writes.
    #[command(after_help = "Example:\n  replab bench wal --dir /var/tmp/replab-bench --records 5000")]
    Wal {
        /// Directory to benchmark in (default: a fresh temporary directory).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Records per synced case (each case also stops after --seconds).
        #[arg(long, default_value_t = 3_000)]
        records: u64,
        /// Records per unsynced case.
        #[arg(long, default_value_t = 200_000)]
        unsynced_records: u64,
        /// Payload size of each record.
        #[arg(long, default_value_t = 256)]
        record_bytes: usize,
        /// Time limit per case, in seconds.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Runs per case; the median run is reported.
        #[arg(long, default_value_t = 5)]
        repeats: usize,
    },
}

/// Runs one `replab bench` command; exit 2 for bad arguments.
pub fn run(which: BenchCommand) -> ExitCode {
    use crate::bench;
    match which {
        BenchCommand::Wal { dir, records, unsynced_records, record_bytes, seconds, repeats } => {
            let args = bench::wal::WalBenchArgs { dir, records, unsynced_records, record_bytes, seconds, repeats };
            finish(bench::wal::run(&args).map(|_| ()))
        }
        BenchCommand::Net { sizes, seconds, round_trips, repeats } => {
            if let Some(bad) = sizes.iter().find(|s| **s == 0 || **s > 8 << 20) {
                eprintln!("error: --sizes: {bad} is outside 1 ..= 8388608 bytes");
                return ExitCode::from(2);
            }
            let args = bench::net::NetBenchArgs { sizes, seconds, round_trips, repeats };
            finish(bench::net::run(&args).map(|_| ()))
        }
        BenchCommand::Cluster { puts, seconds, repeats, fsync, value_bytes, strategies, processes } => {
            let on_processes = processes.processes || processes.etcd;
            if !on_processes && !processes.member_dirs.is_empty() {
                return usage_error("--member-dirs places the members of --processes; add --processes");
            }
            if on_processes {
                if strategies || fsync.is_some() {
                    return usage_error(
                        "--processes measures the shipped wal.fsync (change it with --set); --strategies and --fsync are for the in-process bench",
                    );
                }
                if !processes.member_dirs.is_empty() && processes.member_dirs.len() != 3 {
                    return usage_error(format!(
                        "--member-dirs takes one directory per member, three, comma separated; got {}",
                        processes.member_dirs.len()
                    ));
                }
                if let Some(bad) = processes.member_dirs.iter().find(|d| !d.is_dir()) {
                    return usage_error(format!("--member-dirs: {bad:?} is not a directory"));
                }
                // The nodes read their directories from a TOML file.
                if let Some(bad) = processes.member_dirs.iter().find(|d| d.to_str().is_none()) {
                    return usage_error(format!("--member-dirs: {bad:?} is not valid UTF-8"));
                }
                let args = bench::processes::ProcessBenchArgs {
                    policy: processes.policy,
                    sets: processes.sets,
                    clients: processes.clients,
                    warmup_seconds: processes.warmup_seconds,
                    seconds: seconds.unwrap_or(10.0),
                    max_ops: processes.max_ops,
                    repeats: repeats.unwrap_or(1),
                    json: processes.json,
                    etcd: processes.etcd.then(|| processes.etcd_script.unwrap_or_else(bench::etcd::default_script)),
                    member_dirs: processes.member_dirs,
                };
                return finish(bench::processes::run(&args));
            }
            let (seconds, repeats) = (seconds.unwrap_or(5.0), repeats.unwrap_or(3));
            let default_fsync: &[&str] = if strategies { &["batch"] } else { &["always", "batch", "never"] };
            let fsync = fsync.unwrap_or_else(|| default_fsync.iter().map(|f| f.to_string()).collect());
            if let Some(bad) = fsync.iter().find(|f| !["always", "batch", "interval", "never"].contains(&f.as_str())) {
                return usage_error(format!("--fsync: `{bad}` is not one of always, batch, interval, never"));
            }
            let cases =
                if strategies { bench::cluster::strategy_cases(&fsync) } else { bench::cluster::fsync_cases(&fsync) };
            let args = bench::cluster::ClusterBenchArgs { puts, seconds, repeats, cases, value_bytes };
            finish(bench::cluster::run(&args).map(|_| ()))
        }
        BenchCommand::Check { ops, clients, keys, unknown_rate, repeats, seed, budget_s } => {
            if ops == 0 || clients == 0 || keys.contains(&0) || !(0.0..=1.0).contains(&unknown_rate) || budget_s <= 0.0
            {
                return usage_error(
                    "--ops, --clients, --keys and --budget-s must be above 0, --unknown-rate within 0..=1",
                );
            }
            let args = bench::check::CheckBenchArgs { ops, clients, keys, unknown_rate, repeats, seed, budget_s };
            finish(bench::check::run(&args))
        }
        BenchCommand::Report { ops, repeats, seed, out } => {
            if ops == 0 || ops > 10_000_000 || repeats == 0 {
                return usage_error("--ops must be within 1 ..= 10000000 and --repeats above 0");
            }
            finish(bench::report::run(&bench::report::ReportBenchArgs { ops, repeats, seed, out }).map(|_| ()))
        }
        BenchCommand::Raft { batch_sizes, entries, repeats } => {
            if batch_sizes.iter().any(|b| *b == 0 || *b > 100_000) || entries == 0 {
                eprintln!("error: --batch-sizes must be within 1 ..= 100000 and --entries above 0");
                return ExitCode::from(2);
            }
            let args = bench::raft::RaftBenchArgs { batch_sizes, entries, repeats };
            bench::raft::run_all(&args);
            ExitCode::SUCCESS
        }
    }
}

fn finish(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Bad arguments are usage errors: exit code 2, like clap's.
fn usage_error(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(2)
}
