//! `replab check`: a run's checks again, offline, from what the run saved.
//!
//! A run with `--out DIR` writes, beside `history.jsonl`, `checks.json`:
//! every check the script made, in order, with what that checker needs to
//! decide again. The history it judged (the run's, or the file holding a
//! smaller one, such as one workload's); the final values `no_lost_writes`
//! read; the replicas `convergence` compared; the options. Replaying gives
//! the same verdicts, so a verdict can be re-examined, shared, or checked
//! after a checker was fixed. A history from elsewhere in the same format,
//! without `checks.json`, is checked for linearizability.
//!
//! What cannot be replayed is reported as the run recorded it, and says
//! so: a script's own assertion (`check.that`), and a check that could not
//! gather its input (the final values were unreadable, the replicas never
//! settled).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::history::History;
use super::linearizability::{LinearizabilityOptions, check_linearizable_with};
use super::lost_updates::check_lost_updates;
use super::lost_writes::{FinalValues, check_lost_writes_among};
use super::report::{CheckReport, CheckStatus};
use super::siblings::check_siblings;
use super::stale_reads::check_stale_reads;
use super::value::Value;
use super::{ReplicaState, check_convergence};

/// The file a run writes its checks to, beside `history.jsonl`.
pub const CHECKS_FILE: &str = "checks.json";

/// The default time budget of a linearizability check.
pub const DEFAULT_TIMEOUT_S: f64 = 10.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Checker {
    Linearizable,
    NoLostWrites,
    Convergence,
    StaleReads,
    LostUpdates,
    Siblings,
    /// A script's own assertion: replayed as recorded.
    That,
}

/// A key-value map as pairs (JSON object keys must be strings; values are
/// bytes).
pub type Pairs = Vec<(Value, Value)>;

/// One check as the run made it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SavedCheck {
    pub checker: Checker,
    /// The history file judged, relative to `checks.json`.
    #[serde(default)]
    pub history: Option<String>,
    /// Linearizability's time budget.
    #[serde(default)]
    pub timeout_s: Option<f64>,
    /// Stale reads tolerated.
    #[serde(default)]
    pub max_stale: Option<u64>,
    /// Siblings a read may return.
    #[serde(default)]
    pub max_siblings: Option<usize>,
    /// `no_lost_writes`, `lost_updates`: the values of every key present
    /// at the end (several: siblings).
    #[serde(default)]
    pub final_values: Option<Vec<(Value, Vec<Value>)>>,
    /// `convergence`: each node's data.
    #[serde(default)]
    pub replicas: Option<Vec<(u64, Pairs)>>,
    /// `convergence` under a keyed policy: each node's keys, with their
    /// registers and owners.
    #[serde(default)]
    pub owned_keys: Option<Vec<(u64, Vec<replab_api::KeyState>)>>,
    /// What the run decided.
    pub recorded: CheckReport,
}

/// The verdict of one replayed check.
#[derive(Clone, Debug)]
pub struct Replayed {
    pub report: CheckReport,
    /// Nothing to decide with: this is the run's own verdict.
    pub as_recorded: bool,
}

/// Reads `checks.json` from `dir`, if there is one.
pub fn load_saved(dir: &Path) -> Result<Option<Vec<SavedCheck>>, String> {
    let path = dir.join(CHECKS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    serde_json::from_str(&text).map(Some).map_err(|e| format!("{}: {e}", path.display()))
}

/// Decides one saved check again. `dir` holds `checks.json` and the
/// history files it names; `histories` caches them.
pub fn replay(
    saved: &SavedCheck,
    dir: &Path,
    histories: &mut BTreeMap<PathBuf, History>,
    timeout_override: Option<f64>,
) -> Result<Replayed, String> {
    let mut history = |name: &Option<String>| -> Result<History, String> {
        let name = name.as_ref().ok_or_else(|| format!("the saved {:?} check names no history", saved.checker))?;
        let path = dir.join(name);
        if !histories.contains_key(&path) {
            let loaded = History::load_jsonl(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            histories.insert(path.clone(), loaded);
        }
        Ok(histories[&path].clone())
    };
    let recorded = || Replayed { report: saved.recorded.clone(), as_recorded: true };
    let report = match saved.checker {
        Checker::That => return Ok(recorded()),
        Checker::Linearizable => {
            let secs = timeout_override.or(saved.timeout_s).unwrap_or(DEFAULT_TIMEOUT_S);
            let budget = Duration::try_from_secs_f64(secs).map_err(|e| format!("timeout {secs} s: {e}"))?;
            let options = LinearizabilityOptions::with_time_budget(budget);
            check_linearizable_with(&history(&saved.history)?, &options).to_check_report()
        }
        Checker::NoLostWrites | Checker::LostUpdates => {
            let Some(values) = &saved.final_values else { return Ok(recorded()) };
            let finals: FinalValues = values.iter().cloned().collect();
            let judged = history(&saved.history)?;
            if saved.checker == Checker::LostUpdates {
                check_lost_updates(&judged, &finals).to_check_report()
            } else {
                check_lost_writes_among(&judged, &finals).to_check_report()
            }
        }
        Checker::Siblings => check_siblings(&history(&saved.history)?).to_check_report(saved.max_siblings),
        Checker::StaleReads => {
            let stale = check_stale_reads(&history(&saved.history)?);
            stale_reads_verdict(&stale, saved.max_stale.unwrap_or(0))
        }
        Checker::Convergence if saved.owned_keys.is_some() => {
            let owned: BTreeMap<u64, Vec<replab_api::KeyState>> = saved.owned_keys.iter().flatten().cloned().collect();
            super::convergence::check_owner_convergence(&owned).to_check_report()
        }
        Checker::Convergence => {
            let Some(replicas) = &saved.replicas else { return Ok(recorded()) };
            let replicas: BTreeMap<u64, ReplicaState> =
                replicas.iter().map(|(id, data)| (*id, data.iter().cloned().collect())).collect();
            check_convergence(&replicas).to_check_report()
        }
    };
    Ok(Replayed { report, as_recorded: false })
}

/// Stale reads are counted; the script says how many it tolerates.
pub fn stale_reads_verdict(stale: &super::StaleReadsReport, max: u64) -> CheckReport {
    let mut report = stale.to_check_report();
    report.status = if (stale.stale_reads as u64) <= max { CheckStatus::Pass } else { CheckStatus::Fail };
    report.summary = format!("{} (allowed: {max})", report.summary);
    report
}
