//! The `replab` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use replab::config::{self, ConfigInput};

/// mimalloc's per-thread heaps suit the engine's pattern of many small
/// buffers allocated on one thread and freed on another (messages, WAL
/// batches), where glibc malloc keeps growing and trimming its heap.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "replab",
    version,
    about = "A replication laboratory: run, break and compare replication strategies.",
    long_about = "replab runs replication policies (Raft, ...) as plugins on a real engine: a \
write-ahead log with fdatasync, TCP between nodes, and a replicated-log pipeline. Lua scenarios \
start clusters, inject faults and check the recorded history.\n\n\
Configuration layers: config/default.toml < --config FILE < REPLAB_<SECTION>__<KEY> < --set key=value.",
    after_help = "Examples:\n  replab run scripts/quickstart.lua\n  replab node --config config/cluster-3.toml --id 1\n  \
replab client --config config/cluster-3.toml --cluster 127.0.0.1:7201 get color\n  replab bench wal\n  \
replab config --set wal.fsync=always"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options every command that reads configuration accepts.
#[derive(Args, Clone, Debug)]
struct ConfigArgs {
    /// A TOML file layered over the defaults.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Override one key, e.g. --set wal.fsync=always (repeatable; wins over file and environment).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
}

impl ConfigArgs {
    fn input(&self) -> ConfigInput {
        ConfigInput::from_process(self.config.clone(), self.sets.clone())
    }
}

/// Bounds on a scenario run.
#[derive(Args, Clone, Debug)]
struct LimitArgs {
    /// Stop the run, with exit code 2, after this many seconds of wall time.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600.0)]
    timeout: f64,
    /// The most memory the Lua script may use, in MiB (exceeding it ends the run with exit code 2).
    #[arg(long, value_name = "MIB", default_value_t = 1024)]
    lua_memory_mb: usize,
}

impl LimitArgs {
    fn limits(&self) -> Result<replab::scenario::Limits, String> {
        if !(self.timeout.is_finite() && self.timeout > 0.0 && self.timeout <= 7.0 * 86_400.0) {
            return Err(format!("--timeout {} must be a number of seconds within 0 .. 604800", self.timeout));
        }
        if !(1..=1 << 20).contains(&self.lua_memory_mb) {
            return Err(format!("--lua-memory-mb {} must be within 1 ..= 1048576", self.lua_memory_mb));
        }
        Ok(replab::scenario::Limits {
            timeout: std::time::Duration::from_secs_f64(self.timeout),
            lua_memory_bytes: self.lua_memory_mb << 20,
        })
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run a Lua scenario on an in-process cluster (--processes: on node processes) and check the history.
    #[command(after_help = "Examples:\n  replab run scripts/quickstart.lua\n  \
replab run scripts/leader-crash.lua --seed 7 --out results/\n  \
replab run scripts/partition-minority-leader.lua --set raft.pre_vote=false\n  \
replab run scripts/zombie-leader.lua --processes\n\n\
Exit codes: 0 every check passed, 1 a check failed, 2 a usage, config or Lua error (or --timeout, or the\n\
Lua memory limit), 3 no check failed but one could not decide.")]
    Run {
        /// The Lua scenario.
        script: PathBuf,
        #[command(flatten)]
        config: ConfigArgs,
        /// Seed for every random choice (overrides cluster.seed).
        #[arg(long)]
        seed: Option<u64>,
        /// Write history.jsonl, results.json and report.html into this directory.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Run every cluster of the script as `replab node` processes (cluster.processes = true).
        #[arg(long)]
        processes: bool,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Run one scenario under several configurations and compare them side by side.
    #[command(
        after_help = "Examples:\n  replab compare scripts/leader-crash.lua --variant always:wal.fsync=always --variant never:wal.fsync=never\n  \
replab compare scripts/quickstart.lua --variant gossip@config/gossip.toml --variant heartbeat@config/heartbeat.toml\n  \
replab compare scripts/partition-minority-leader.lua --variant prevote: --variant no-prevote:raft.pre_vote=false --out results/\n  \
replab compare scripts/leader-crash.lua --variant always:wal.fsync=always --variant never:wal.fsync=never --runs 3 --out cmp/\n\n\
A variant is NAME:KEY=VALUE[,KEY=VALUE...] (over the base --config and --set) or NAME@FILE (instead of\n\
the base --config). Every variant runs with the same seed.\n\n\
Exit codes: 0 every check of every variant passed, 1 a check failed, 2 a usage, config or Lua error,\n\
3 no check failed but one could not decide."
    )]
    Compare {
        /// The Lua scenario.
        script: PathBuf,
        #[command(flatten)]
        config: ConfigArgs,
        /// A configuration to compare (repeat; at least two).
        #[arg(long = "variant", value_name = "VARIANT", required = true)]
        variants: Vec<String>,
        /// Seed for every random choice, the same for every variant (overrides cluster.seed).
        #[arg(long)]
        seed: Option<u64>,
        /// Runs per variant, with seeds seed, seed+1, ..., seed+R-1; the table shows medians and ranges.
        #[arg(long, value_name = "R", default_value_t = 1)]
        runs: u64,
        /// Write each variant's outputs into DIR/NAME/ (DIR/NAME/seed-S/ with --runs), and
        /// report.html, compare.csv and compare.json into DIR.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Run every variant's clusters as `replab node` processes (cluster.processes = true).
        #[arg(long)]
        processes: bool,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Check a recorded history again, offline: the run's checks, with the same verdicts and exit codes.
    #[command(
        after_help = "Examples:\n  replab run scripts/quickstart.lua --out out/ && replab check out/history.jsonl\n  \
replab check out/history.jsonl --timeout 60\n\n\
With a checks.json beside the history (written by replab run --out), every check of the run is decided\n\
again from what the run saved. Without one, the history is checked for linearizability.\n\n\
Exit codes: 0 every check passed, 1 a check failed, 2 an unreadable or malformed input, 3 no check failed\n\
but one could not decide."
    )]
    Check {
        /// A history.jsonl (from replab run --out, or elsewhere in the same format).
        history: PathBuf,
        /// Time budget of the linearizability search, in seconds (default: what the run used, or 10).
        #[arg(long, value_name = "SECONDS")]
        timeout: Option<f64>,
    },
    /// Run one member of a multi-process cluster until SIGTERM or Ctrl-C.
    #[command(after_help = "Example (three terminals):\n  replab node --config config/cluster-3.toml --id 1\n  \
replab node --config config/cluster-3.toml --id 2\n  replab node --config config/cluster-3.toml --id 3\n\n\
Exit codes: 0 stopped by SIGTERM or Ctrl-C; 1 failed while running (a disk error); 2 could not start (a\n\
configuration error, a port in use, a data directory it cannot use or that another node holds, a log\n\
that refuses to open); 4 (a node started by replab run only) lost power at the lab's request.")]
    Node {
        #[command(flatten)]
        config: ConfigArgs,
        /// This node's id among cluster.members.
        #[arg(long)]
        id: u64,
        /// Before starting, cut this node's log at its first damaged record
        /// (when it refuses to open). Records from there on are lost here;
        /// the node will not vote for a less up-to-date candidate until it
        /// has fetched them from its peers. See docs/WAL.md, "Repair".
        #[arg(long)]
        repair_wal: bool,
        /// Lab only (`replab run` on processes): take admin requests (link faults, clock skew,
        /// power loss) from authenticated clients. Never set on a production node.
        #[arg(long, hide = true)]
        allow_fault_injection: bool,
        /// Lab only: stop when standard input ends (the lab holds the pipe).
        #[arg(long, hide = true)]
        exit_with_parent: bool,
        /// Lab only: start with the wall clock skewed by this many milliseconds.
        #[arg(long, hide = true, default_value_t = 0, allow_hyphen_values = true)]
        clock_skew_ms: i64,
    },
    /// Write a recorded history in another checker's format (Jepsen's EDN, for Knossos or Elle).
    #[command(
        after_help = "Examples:\n  replab run scripts/quickstart.lua --out out/ && replab export --format edn out/history.jsonl\n  \
replab export --format edn out/history.jsonl --output out/history.edn\n\n\
docs/CHECKERS.md gives the mapping. Exit codes: 0 written, 2 an unreadable or malformed history, or the\n\
output could not be written."
    )]
    Export {
        /// A history.jsonl (from replab run --out).
        history: PathBuf,
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// Write here instead of standard output.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Talk to a running cluster: put, get, del, cas, incr, status.
    #[command(after_help = "Examples:\n  \
replab client --config config/cluster-3.toml --cluster 127.0.0.1:7201,127.0.0.1:7202,127.0.0.1:7203 put color blue\n  \
replab client --config config/cluster-3.toml --cluster 127.0.0.1:7201 get color\n  \
replab client --config config/cluster-3.toml --cluster 127.0.0.1:7201,127.0.0.1:7202 status\n\n\
The client needs the cluster's id and secret: give it the nodes' --config (and the same REPLAB_*\n\
variables and --set). Without them every node refuses it at the handshake.\n\n\
Exit codes: 0 done (status: at least one node answered); 1 the operation failed or its outcome is\n\
unknown, or no node answered status; 2 a usage or configuration error.")]
    Client {
        #[command(flatten)]
        config: ConfigArgs,
        /// Client addresses of the nodes, comma separated.
        #[arg(long, value_delimiter = ',', required = true)]
        cluster: Vec<std::net::SocketAddr>,
        #[command(subcommand)]
        op: ClientOp,
    },
    /// Print the effective configuration: every key, its value and where it came from.
    #[command(after_help = "Example:\n  replab config --config config/default.toml --set wal.fsync=never")]
    Config {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Run a benchmark and print a table with its in-run baseline.
    #[command(after_help = "Example:\n  replab bench wal --records 2000 --repeats 3")]
    Bench {
        #[command(subcommand)]
        which: BenchCommand,
    },
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum ExportFormat {
    /// Jepsen's operation maps: :type :invoke/:ok/:fail/:info, :f, :value, :process, :time.
    Edn,
}

#[derive(Subcommand)]
enum ClientOp {
    /// Write a value.
    Put {
        key: String,
        value: String,
        /// The context a `get` printed (leaderless: the write replaces exactly the values it saw).
        #[arg(long, value_name = "HEX")]
        context: Option<String>,
    },
    /// Read a value (linearizable through the leader unless --stale).
    Get {
        key: String,
        /// Read the first --cluster node's own replica at once (may be behind).
        #[arg(long)]
        stale: bool,
    },
    /// Delete a key.
    Del {
        key: String,
        /// The context a `get` printed (leaderless: the delete removes exactly the values it saw).
        #[arg(long, value_name = "HEX")]
        context: Option<String>,
    },
    /// Compare-and-set: write NEW if the value is EXPECTED (absent if --expected is not given).
    Cas {
        key: String,
        new: String,
        #[arg(long)]
        expected: Option<String>,
    },
    /// Add BY (default 1) to a decimal value.
    Incr {
        key: String,
        #[arg(default_value_t = 1, allow_negative_numbers = true)]
        by: i64,
    },
    /// Each node's role, term, commit index, applied index, last log index and leader.
    Status,
}

/// `replab bench cluster --processes`: 3 `replab node` processes, closed-loop load, optionally etcd.
#[derive(Args, Clone, Debug)]
struct ProcessArgs {
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
}

#[derive(Subcommand)]
enum BenchCommand {
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
interleaved, and prints replab/etcd ratios. Every process started is stopped, also on Ctrl-C."
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

fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    match cli.command {
        Command::Config { config } => show_config(&config),
        Command::Bench { which } => bench(which),
        Command::Run { script, config, seed, out, processes, limits } => {
            let limits = match limits.limits() {
                Ok(l) => l,
                Err(e) => return usage_error(e),
            };
            let mut config = config.input();
            if processes {
                config.sets.push("cluster.processes=true".into());
            }
            let options = replab::scenario::RunOptions { script, config, seed, out, limits, progress: None };
            ExitCode::from(replab::scenario::run(options).0)
        }
        Command::Compare { script, config, variants, seed, runs, out, processes, limits } => {
            let limits = match limits.limits() {
                Ok(l) => l,
                Err(e) => return usage_error(e),
            };
            use replab::scenario::compare::{CompareOptions, Variant, compare};
            let variants: Result<Vec<Variant>, String> = variants.iter().map(|v| Variant::parse(v)).collect();
            let variants = match variants {
                Ok(v) => v,
                Err(e) => return usage_error(e),
            };
            let mut base = config.input();
            if processes {
                base.sets.push("cluster.processes=true".into());
            }
            ExitCode::from(compare(CompareOptions { script, base, variants, seed, runs, out, limits }))
        }
        Command::Export { history, format: ExportFormat::Edn, output } => export_edn(&history, output.as_deref()),
        Command::Check { history, timeout } => ExitCode::from(replab::scenario::recheck(&history, timeout)),
        Command::Node { config, id, repair_wal, allow_fault_injection, exit_with_parent, clock_skew_ms } => {
            let settings = match config::load(&config.input()) {
                Ok(s) => s,
                Err(e) => return usage_error(e),
            };
            if let Err(e) = replab::cluster::process::members(&settings, id) {
                return usage_error(e);
            }
            match node_runtime().block_on(replab::cluster::process::run_node(
                settings,
                id,
                replab::cluster::process::NodeOptions {
                    repair_wal,
                    lab: allow_fault_injection,
                    exit_with_parent,
                    clock_skew_ms,
                },
            )) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(e.exit_code())
                }
            }
        }
        Command::Client { config, cluster, op } => {
            let settings = match config::load(&config.input()) {
                Ok(s) => s,
                Err(e) => return usage_error(e),
            };
            use replab::client::cli::Operation;
            let op = match op {
                ClientOp::Put { key, value, context } => Operation::Put { key, value, context },
                ClientOp::Get { key, stale } => Operation::Get { key, stale },
                ClientOp::Del { key, context } => Operation::Del { key, context },
                ClientOp::Cas { key, new, expected } => Operation::Cas { key, expected, new },
                ClientOp::Incr { key, by } => Operation::Incr { key, by },
                ClientOp::Status => Operation::Status,
            };
            match runtime().block_on(replab::client::cli::run(&settings, cluster, op)) {
                Ok(text) => {
                    println!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Reads a history and writes it as EDN, naming the file that failed.
fn export_edn(history: &std::path::Path, output: Option<&std::path::Path>) -> ExitCode {
    let loaded = match replab::check::History::load_jsonl(history) {
        Ok(h) => h,
        Err(e) => return usage_error(format!("{}: {e}", history.display())),
    };
    let edn = replab::check::edn::to_edn(&loaded);
    let written = match output {
        Some(path) => std::fs::write(path, edn).map_err(|e| format!("cannot write {}: {e}", path.display())),
        None => {
            use std::io::Write;
            std::io::stdout().lock().write_all(edn.as_bytes()).map_err(|e| format!("cannot write to stdout: {e}"))
        }
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => usage_error(e),
    }
}

/// A node process runs its event loop, its links and its client
/// connections on one thread (its log has a thread of its own). A second
/// worker only moves the node's tasks between threads, and every such move
/// is a cross-CPU wake-up, which on a VM is the dominant cost of a request.
fn node_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime")
}

/// Configuration problems are usage errors: exit code 2, like clap's.
fn usage_error(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(2)
}

fn bench(which: BenchCommand) -> ExitCode {
    use replab::bench;
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
            if processes.processes || processes.etcd {
                if strategies || fsync.is_some() {
                    return usage_error(
                        "--processes measures the shipped wal.fsync (change it with --set); --strategies and --fsync are for the in-process bench",
                    );
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

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Configuration problems are usage errors: exit code 2, like clap's.
fn show_config(args: &ConfigArgs) -> ExitCode {
    match config::load_with_sources(&args.input()) {
        Ok(loaded) => {
            // Secrets come redacted, in the value and in the origin.
            for (key, (value, origin)) in &loaded.sources {
                println!("{key} = {value}    # from {origin}");
            }
            match replab::registry::describe(&loaded.settings) {
                Ok(line) => println!("# {line}"),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
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
