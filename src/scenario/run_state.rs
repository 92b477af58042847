//! What one `replab run` accumulates while its script runs: the history of
//! every client operation, the fault timeline, check verdicts, notes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;

use replab_api::PluginRng;

use crate::check::replay::SavedCheck;
use crate::check::{CheckReport, History, Recorder};
use crate::config::ConfigInput;

/// One thing that happened to the cluster, for the fault timeline.
#[derive(Clone, Debug, Serialize)]
pub struct TimelineEvent {
    /// Seconds since the run started.
    pub at_s: f64,
    pub event: String,
}

pub struct RunState {
    pub script: String,
    pub seed: u64,
    /// The run's configuration input; `cluster.start{...}` layers on it.
    pub config: ConfigInput,
    pub started: Instant,
    /// Every client operation of the run, on one clock.
    pub recorder: Recorder,
    timeline: Mutex<Vec<TimelineEvent>>,
    checks: Mutex<Vec<CheckReport>>,
    /// What `replab check` needs to decide each check again, with the
    /// history it judged (written out by `--out`).
    saved_checks: Mutex<Vec<(SavedCheck, Option<Arc<History>>)>>,
    notes: Mutex<BTreeMap<String, serde_json::Value>>,
    rng: Mutex<PluginRng>,
    /// Errors raised in spawned Lua tasks (they fail the run).
    task_errors: Mutex<Vec<String>>,
    next_client: Mutex<u64>,
}

impl RunState {
    pub fn new(script: String, seed: u64, config: ConfigInput) -> Arc<RunState> {
        let started = Instant::now();
        Arc::new(RunState {
            script,
            seed,
            config,
            started,
            recorder: Recorder::with_origin(started),
            timeline: Mutex::new(Vec::new()),
            checks: Mutex::new(Vec::new()),
            saved_checks: Mutex::new(Vec::new()),
            notes: Mutex::new(BTreeMap::new()),
            rng: Mutex::new(PluginRng::from_seed_u64(seed)),
            task_errors: Mutex::new(Vec::new()),
            next_client: Mutex::new(0),
        })
    }

    pub fn elapsed_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    pub fn event(&self, event: impl Into<String>) {
        let event = TimelineEvent { at_s: self.elapsed_s(), event: event.into() };
        tracing::info!("{:.3}s {}", event.at_s, event.event);
        self.timeline.lock().expect("timeline lock").push(event);
    }

    pub fn timeline(&self) -> Vec<TimelineEvent> {
        self.timeline.lock().expect("timeline lock").clone()
    }

    pub fn add_check(&self, report: CheckReport) {
        self.checks.lock().expect("checks lock").push(report);
    }

    pub fn checks(&self) -> Vec<CheckReport> {
        self.checks.lock().expect("checks lock").clone()
    }

    pub fn save_check(&self, saved: SavedCheck, history: Option<Arc<History>>) {
        self.saved_checks.lock().expect("saved checks lock").push((saved, history));
    }

    pub fn saved_checks(&self) -> Vec<(SavedCheck, Option<Arc<History>>)> {
        self.saved_checks.lock().expect("saved checks lock").clone()
    }

    pub fn note(&self, name: String, value: serde_json::Value) {
        self.notes.lock().expect("notes lock").insert(name, value);
    }

    pub fn notes(&self) -> BTreeMap<String, serde_json::Value> {
        self.notes.lock().expect("notes lock").clone()
    }

    pub fn task_error(&self, error: String) {
        self.task_errors.lock().expect("task errors lock").push(error);
    }

    pub fn task_errors(&self) -> Vec<String> {
        self.task_errors.lock().expect("task errors lock").clone()
    }

    /// A seeded draw: the same seed gives the script the same numbers.
    pub fn random_u64(&self) -> u64 {
        self.rng.lock().expect("rng lock").next_u64()
    }

    /// A fresh seed for something random inside the run (a workload).
    pub fn derive_seed(&self) -> u64 {
        self.random_u64()
    }

    /// A new client number for the history.
    pub fn next_client_id(&self) -> u64 {
        let mut next = self.next_client.lock().expect("client counter lock");
        *next += 1;
        *next
    }
}
