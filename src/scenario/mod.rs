//! `replab run`: a Lua scenario against an in-process cluster.
//!
//! The script starts clusters, runs workloads, injects faults and checks
//! the recorded history (docs/LUA_API.md). Every call that waits is async
//! on tokio, so `spawn`ed Lua tasks run side by side with the script.

mod checks;
pub mod compare;
pub mod fault_windows;
mod host;
pub mod leader_watch;
mod lua_client;
mod lua_cluster;
mod lua_faults;
mod lua_stats;
pub mod measures;
mod ops;
mod recheck;
pub mod results;
pub mod run_state;
mod workload;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::check::{CheckReport, CheckStatus};
use crate::client::protocol::NodeStats;
use crate::config::{self, ConfigInput};
use crate::progress::Progress;
pub use recheck::recheck;
use results::RunReport;
use run_state::RunState;

pub struct RunOptions {
    pub script: PathBuf,
    pub config: ConfigInput,
    /// Overrides `cluster.seed`.
    pub seed: Option<u64>,
    /// Where history.jsonl and results.json go.
    pub out: Option<PathBuf>,
    pub limits: Limits,
    /// Where to show the run's progress (`compare` shows every run on one
    /// bar). None: a run of its own shows one once it has taken
    /// [`SHOW_PROGRESS_AFTER`].
    pub progress: Option<Arc<Progress>>,
}

/// A run shorter than this shows no progress: it would only flicker.
pub const SHOW_PROGRESS_AFTER: Duration = Duration::from_secs(3);

/// How often the progress display reads the operation count.
const PROGRESS_POLL: Duration = Duration::from_millis(250);

/// Bounds on what a script may take: a runaway loop or a memory bomb ends
/// the run with an error (exit 2) instead of hanging or aborting it.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Wall-clock time for the whole run, checks included.
    pub timeout: Duration,
    /// Memory the Lua state may allocate.
    pub lua_memory_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { timeout: Duration::from_secs(3_600), lua_memory_bytes: 1 << 30 }
    }
}

/// Exit codes: see [`exit`].
pub fn run(options: RunOptions) -> (u8, Option<RunReport>) {
    if let Some(out) = &options.out
        && let Err(e) = prepare_out(out)
    {
        // Found out now, not after a long run whose results have nowhere to go.
        eprintln!("error: cannot write results to {}: {e}", out.display());
        return (exit::ERROR, None);
    }
    let mut input = options.config.clone();
    if let Some(seed) = options.seed {
        input.sets.push(format!("cluster.seed={seed}"));
    }
    let settings = match config::load(&input) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return (2, None);
        }
    };
    let source = match std::fs::read_to_string(&options.script) {
        Ok(source) => source,
        Err(e) => {
            eprintln!("error: cannot read script {}: {e}", options.script.display());
            return (2, None);
        }
    };
    let script = options.script.display().to_string();
    let seed = settings.cluster.seed;
    let run = RunState::new(script.clone(), seed, input);
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return (2, None);
        }
    };
    let own_progress = Arc::new(std::sync::Mutex::new(None));
    let watch = runtime.spawn(watch_progress(run.clone(), options.progress.clone(), own_progress.clone()));
    let (error, stats) = runtime.block_on(execute(&run, &script, &source, options.limits));
    watch.abort();
    let own_progress = own_progress.lock().map(|mut own| own.take()).unwrap_or(None);
    if let Some(own) = own_progress {
        own.finish();
    }
    let mut report = build_report(&run, error, stats);
    if let Some(out) = &options.out
        && let Err(e) = write_outputs(out, &run, &report)
    {
        eprintln!("error: cannot write results to {}: {e}", out.display());
        report.exit_code = exit::ERROR;
    }
    print!("{}", report.summary());
    (report.exit_code, Some(report))
}

/// A progress display a run made for itself, kept where the run can
/// finish it once the watcher is stopped.
type OwnProgress = Arc<std::sync::Mutex<Option<Arc<Progress>>>>;

/// Keeps a progress display's operation count current, until aborted. A
/// run not given a display makes its own once it has run long enough.
async fn watch_progress(run: Arc<RunState>, given: Option<Arc<Progress>>, own: OwnProgress) {
    let mut shown = given;
    loop {
        tokio::time::sleep(PROGRESS_POLL).await;
        if shown.is_none() && run.started.elapsed() >= SHOW_PROGRESS_AFTER {
            let p = Arc::new(Progress::new("run", 1));
            p.start_step(&run.script);
            if let Ok(mut slot) = own.lock() {
                *slot = Some(p.clone());
            }
            shown = Some(p);
        }
        if let Some(p) = &shown {
            p.set_ops(run.recorder.len() as u64);
        }
    }
}

/// Creates the output directory and proves it writable.
fn prepare_out(out: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(out)?;
    let probe = out.join(".replab-write-test");
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(probe)
}

/// Runs the script, then waits for spawned tasks and stops every cluster.
async fn execute(run: &Arc<RunState>, script: &str, source: &str, limits: Limits) -> (Option<String>, NodeStats) {
    let host = match host::new(run, limits) {
        Ok(host) => host,
        Err(e) => return (Some(format!("cannot set up Lua: {e}")), NodeStats::default()),
    };
    let deadline = tokio::time::Instant::from_std(run.started) + limits.timeout;
    let chunk = host.lua.load(source).set_name(format!("@{script}"));
    // The hook stops a script that computes without ever waiting; this
    // stops one that waits too long.
    // Ctrl-C ends the run the way an error does: the clusters are stopped
    // below (node processes by pid), and the report is still written.
    let mut error = tokio::select! {
        result = tokio::time::timeout_at(deadline, chunk.exec_async()) => match result {
            Ok(result) => result.err().map(|e| describe_error(&e)),
            Err(_) => Some(timeout_message(limits)),
        },
        Ok(()) = tokio::signal::ctrl_c() => Some("interrupted (Ctrl-C)".to_string()),
    };
    let spawned: Vec<_> = std::mem::take(&mut *host.spawned.lock().expect("spawned lock"));
    if error.is_some() {
        // The run has failed: nothing a spawned task does can change that.
        for handle in &spawned {
            handle.abort();
        }
    }
    // Otherwise spawned tasks get a bounded grace period to finish.
    let grace = deadline.min(tokio::time::Instant::now() + Duration::from_secs(60));
    for handle in spawned {
        if tokio::time::timeout_at(grace, handle).await.is_err() && error.is_none() {
            error = Some(if grace == deadline {
                timeout_message(limits)
            } else {
                "a spawned task was still running 60 s after the script ended".into()
            });
        }
    }
    if error.is_none() {
        error = run.task_errors().into_iter().next();
    }
    let mut stats = lua_stats::Counters::default();
    let clusters: Vec<_> = std::mem::take(&mut *host.clusters.lock().expect("clusters lock"));
    for cell in clusters {
        stats.add_counters(&cell.shutdown().await);
    }
    (error, stats.node)
}

/// The exit codes of `replab run`, `compare` and `check`.
pub mod exit {
    /// Every check passed.
    pub const PASS: u8 = 0;
    /// A check failed: the run found a violation (the witness says which).
    pub const FAIL: u8 = 1;
    /// A Lua, usage or configuration error: the run did not complete.
    pub const ERROR: u8 = 2;
    /// No check failed, but at least one could not decide (its time budget
    /// ran out, or the final state could not be read). Not a pass: nothing
    /// was shown about what that check covers.
    pub const UNDECIDED: u8 = 3;
}

/// An error wins over a failure, a failure over an undecided check.
pub fn exit_code(error: bool, checks: &[CheckReport]) -> u8 {
    if error {
        exit::ERROR
    } else if checks.iter().any(|c| c.status == CheckStatus::Fail) {
        exit::FAIL
    } else if checks.iter().any(|c| c.status == CheckStatus::Unknown) {
        exit::UNDECIDED
    } else {
        exit::PASS
    }
}

fn build_report(run: &Arc<RunState>, error: Option<String>, stats: NodeStats) -> RunReport {
    let history = run.recorder.finish();
    let operations = results::op_counts(&history);
    let (throughput, latency) = results::performance(&history);
    let checks = run.checks();
    let exit_code = exit_code(error.is_some(), &checks);
    let duration_s = run.elapsed_s();
    let leadership = run.leadership_samples();
    let mut availability = leader_watch::Availability::default();
    for samples in &leadership {
        let a = leader_watch::availability(samples, duration_s);
        availability.watched_s += a.watched_s;
        availability.unavailable_s += a.unavailable_s;
        availability.leader_changes += a.leader_changes;
    }
    RunReport {
        script: run.script.clone(),
        seed: run.seed,
        exit_code,
        error,
        duration_s,
        cluster: results::totals(&stats, operations.total),
        operations,
        throughput_ops_per_s: throughput,
        latency,
        timeline: run.timeline(),
        fault_windows: run.fault_windows(duration_s),
        leadership,
        availability,
        checks,
        notes: run.notes(),
    }
}

fn write_outputs(out: &Path, run: &RunState, report: &RunReport) -> std::io::Result<()> {
    std::fs::create_dir_all(out)?;
    let history = run.recorder.finish();
    history.save_jsonl(&out.join("history.jsonl"))?;
    // Each check with the history it judged: the run's, or (a workload's,
    // a cluster's) a file of its own.
    let mut saved = Vec::new();
    for (i, (mut check, judged)) in run.saved_checks().into_iter().enumerate() {
        if let Some(judged) = judged {
            // A subset of the run's history with as many operations is all of it.
            let name = if judged.len() == history.len() {
                "history.jsonl".to_string()
            } else {
                let name = format!("check-{}.history.jsonl", i + 1);
                judged.save_jsonl(&out.join(&name))?;
                name
            };
            check.history = Some(name);
        }
        saved.push(check);
    }
    let json = serde_json::to_string_pretty(&saved).map_err(std::io::Error::other)?;
    std::fs::write(out.join(crate::check::replay::CHECKS_FILE), json + "\n")?;
    let json = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
    std::fs::write(out.join("results.json"), json + "\n")?;
    let evidence = run.evidence();
    crate::report::write_run_report(out, &crate::report::RunInput { report, history: &history, evidence: &evidence })
}

fn timeout_message(limits: Limits) -> String {
    format!("the run took longer than --timeout {} s and was stopped", limits.timeout.as_secs_f64())
}

/// A Lua error as one line that names the script's file and line.
pub fn describe_error(e: &mlua::Error) -> String {
    match e {
        mlua::Error::MemoryError(_) => {
            "the script used more memory than the Lua limit (--lua-memory-mb) and was stopped".to_string()
        }
        mlua::Error::CallbackError { traceback, cause } => {
            // The error came from Rust: its message has no location, but
            // the traceback does (the script line that made the call).
            let at = traceback
                .lines()
                .map(str::trim)
                .find(|l| l.contains(".lua:") && !l.starts_with("[C]"))
                .and_then(|l| l.split(": in ").next());
            let cause = describe_error(cause);
            match at {
                Some(at) if !cause.contains(at) => format!("{at}: {cause}"),
                _ => cause,
            }
        }
        mlua::Error::RuntimeError(message) | mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::WithContext { context, cause } => format!("{context}: {}", describe_error(cause)),
        other => other.to_string(),
    }
}
