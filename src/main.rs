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
        which: replab::bench::command::BenchCommand,
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

fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    match cli.command {
        Command::Config { config } => show_config(&config),
        Command::Bench { which } => replab::bench::command::run(which),
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
