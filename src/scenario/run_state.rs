//! What one `replab run` accumulates while its script runs: the history of
//! every client operation, the fault timeline, check verdicts, notes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;

use replab_api::{NodeId, PluginRng};

use super::fault_windows::{FaultKind, FaultLog, FaultWindow};
use super::leader_watch::{LeaderState, Leadership};
use crate::check::replay::SavedCheck;
use crate::check::{CheckReport, History, LostUpdate, LostWrite, Recorder, StaleRead, Witness};
use crate::config::ConfigInput;

/// One thing that happened to the cluster, for the fault timeline.
#[derive(Clone, Debug, Serialize)]
pub struct TimelineEvent {
    /// Seconds since the run started.
    pub at_s: f64,
    pub event: String,
}

/// What a failed check found, kept structured for the report (the
/// `CheckReport` has it as text): the operations a linearizability
/// witness could not order, the writes lost, the reads that were stale.
#[derive(Clone, Debug)]
pub enum Evidence {
    NotLinearizable(Box<Witness>),
    LostWrites(Vec<LostWrite>),
    StaleReads { count: usize, examples: Vec<StaleRead> },
    LostUpdates(Vec<LostUpdate>),
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
    /// The same faults as windows, for the report's shading.
    faults: Mutex<FaultLog>,
    /// Each cluster's leadership samples (by the cluster's number).
    leadership: Mutex<Vec<Vec<Leadership>>>,
    /// What the checkers found, structured, for the report.
    evidence: Mutex<Vec<Evidence>>,
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
            faults: Mutex::new(FaultLog::default()),
            leadership: Mutex::new(Vec::new()),
            evidence: Mutex::new(Vec::new()),
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

    /// A fault begins on `target` (see [`FaultLog::open`]).
    pub fn fault_started(&self, kind: FaultKind, target: String, label: String, nodes: Vec<NodeId>) {
        let at_s = self.elapsed_s();
        self.faults.lock().expect("faults lock").open(at_s, kind, target, label, nodes);
    }

    /// The fault of this kind on `target` is undone.
    pub fn fault_ended(&self, kind: FaultKind, target: &str) {
        let at_s = self.elapsed_s();
        self.faults.lock().expect("faults lock").close(at_s, kind, target);
    }

    /// Every open fault of these kinds is undone (heal, a stopped cluster).
    pub fn faults_ended(&self, kinds: &[FaultKind]) {
        let at_s = self.elapsed_s();
        self.faults.lock().expect("faults lock").close_kinds(at_s, kinds);
    }

    /// The fault windows, the open ones reaching `end_s`.
    pub fn fault_windows(&self, end_s: f64) -> Vec<FaultWindow> {
        self.faults.lock().expect("faults lock").windows(end_s)
    }

    /// A number for a new cluster's leadership samples.
    pub fn new_cluster_watch(&self) -> usize {
        let mut all = self.leadership.lock().expect("leadership lock");
        all.push(Vec::new());
        all.len() - 1
    }

    pub fn leadership(&self, cluster: usize, state: LeaderState) {
        let sample = Leadership { at_s: self.elapsed_s(), state };
        if let Some(samples) = self.leadership.lock().expect("leadership lock").get_mut(cluster) {
            samples.push(sample);
        }
    }

    /// Each cluster's samples, in the order the clusters started.
    pub fn leadership_samples(&self) -> Vec<Vec<Leadership>> {
        self.leadership.lock().expect("leadership lock").clone()
    }

    pub fn add_evidence(&self, evidence: Evidence) {
        self.evidence.lock().expect("evidence lock").push(evidence);
    }

    pub fn evidence(&self) -> Vec<Evidence> {
        self.evidence.lock().expect("evidence lock").clone()
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
