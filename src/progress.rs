//! Progress of long work (`compare`, `bench`, long runs): which step
//! (variant and run, or benchmark case), the elapsed time and the
//! operations so far.
//!
//! On a terminal it is an indicatif bar on stderr. When stderr is not a
//! terminal (CI logs, a pipe) a bar's redraws would be noise, so plain log
//! lines replace it: one when a step starts and one every
//! [`LOG_EVERY`] while it runs.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a plain log line repeats during a step.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

pub struct Progress {
    /// What the whole job is ("compare", "bench cluster").
    job: String,
    steps: u64,
    started: Instant,
    bar: Option<ProgressBar>,
    state: Mutex<State>,
    ops: AtomicU64,
}

struct State {
    step: u64,
    label: String,
    last_line: Instant,
}

impl Progress {
    /// A bar on a terminal, log lines otherwise.
    pub fn new(job: &str, steps: u64) -> Progress {
        Progress::with_terminal(job, steps, std::io::stderr().is_terminal())
    }

    /// As [`Progress::new`], choosing the form explicitly (tests).
    pub fn with_terminal(job: &str, steps: u64, terminal: bool) -> Progress {
        let bar = terminal.then(|| {
            let bar = ProgressBar::with_draw_target(Some(steps), ProgressDrawTarget::stderr());
            let style =
                ProgressStyle::with_template("{spinner} {prefix} [{elapsed_precise}] [{bar:24}] {pos}/{len} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style.progress_chars("=> "));
            bar.set_prefix(job.to_string());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let now = Instant::now();
        Progress {
            job: job.to_string(),
            steps,
            started: now,
            bar,
            state: Mutex::new(State { step: 0, label: String::new(), last_line: now }),
            ops: AtomicU64::new(0),
        }
    }

    /// A step starts: `label` says which ("variant never, run 2/3 (seed 8)").
    pub fn start_step(&self, label: &str) {
        self.ops.store(0, Ordering::Relaxed);
        let mut state = self.lock();
        state.step += 1;
        state.label = label.to_string();
        match &self.bar {
            Some(bar) => bar.set_message(label.to_string()),
            None => {
                state.last_line = Instant::now();
                eprintln!("{}", self.line(&state));
            }
        }
    }

    /// Operations so far in the current step.
    pub fn set_ops(&self, ops: u64) {
        self.ops.store(ops, Ordering::Relaxed);
        let mut state = self.lock();
        match &self.bar {
            Some(bar) => bar.set_message(format!("{}: {ops} ops", state.label)),
            None if state.last_line.elapsed() >= LOG_EVERY => {
                state.last_line = Instant::now();
                eprintln!("{}", self.line(&state));
            }
            None => {}
        }
    }

    /// The current step is done.
    pub fn finish_step(&self) {
        match &self.bar {
            Some(bar) => bar.inc(1),
            // Says how far the step got, which its start line could not.
            None => eprintln!("{} done", self.line(&self.lock())),
        }
    }

    /// The whole job is done: the bar goes, a last line stays.
    pub fn finish(&self) {
        let done = format!("{}: done in {:.1} s", self.job, self.started.elapsed().as_secs_f64());
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        eprintln!("{done}");
    }

    /// Prints `text` without tearing the bar.
    pub fn println(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| println!("{text}")),
            None => println!("{text}"),
        }
    }

    /// The plain log line: `[  12.3s] compare 2/6: variant never, run 2/3: 3456 ops`.
    fn line(&self, state: &State) -> String {
        format!(
            "[{:7.1}s] {} {}/{}: {}: {} ops",
            self.started.elapsed().as_secs_f64(),
            self.job,
            state.step,
            self.steps,
            state.label,
            self.ops.load(Ordering::Relaxed)
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves a label at worst
        // half-updated: still fine to print.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    #[cfg(test)]
    fn last_line(&self) -> String {
        self.line(&self.lock())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_name_the_step_and_count_operations() {
        let p = Progress::with_terminal("compare", 4, false);
        p.start_step("variant never, run 2/2 (seed 8)");
        p.set_ops(1234);
        let line = p.last_line();
        assert!(line.contains("compare 1/4: variant never, run 2/2 (seed 8): 1234 ops"), "{line}");
        p.start_step("next");
        assert!(p.last_line().contains("2/4: next: 0 ops"), "{}", p.last_line());
    }
}
