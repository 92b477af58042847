//! The Lua `check` and `report` tables.
//!
//! A check records its verdict in the run (results.json, the summary) and
//! returns true or false to the script; a failed check fails the run
//! (exit code 1) after the script finishes, so every check still runs and
//! reports.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use mlua::{Lua, Table, UserDataRef, Value as LuaValue};

use super::lua_cluster::{LuaCluster, lua_error};
use super::run_state::{Evidence, RunState};
use super::workload::LuaHistory;
use crate::check::replay::{Checker, DEFAULT_TIMEOUT_S, SavedCheck, stale_reads_verdict};
use crate::check::{
    self, CheckReport, CheckStatus, FinalValues, History, LinearizabilityOptions, ReplicaState, Value,
    check_convergence, check_lost_updates, check_lost_writes_among, check_siblings, check_stale_reads,
};
use crate::client::ClientError;

/// Records the verdict, and what `replab check` needs to reach it again.
fn record_saved(run: &RunState, saved: SavedCheck, history: Option<Arc<History>>) -> bool {
    let report = saved.recorded.clone();
    run.save_check(saved, history);
    record(run, report)
}

fn saved(checker: Checker, recorded: CheckReport) -> SavedCheck {
    SavedCheck {
        checker,
        history: None,
        timeout_s: None,
        max_stale: None,
        max_siblings: None,
        final_values: None,
        replicas: None,
        owned_keys: None,
        recorded,
    }
}

fn record(run: &RunState, report: CheckReport) -> bool {
    let line = format!("check {}: {} — {}", report.name, report.status, report.summary);
    match report.status {
        CheckStatus::Pass => println!("{line}"),
        _ => {
            println!("{line}");
            if !report.witness.is_empty() {
                println!("{}", indent(&report.witness));
            }
        }
    }
    let passed = report.passed();
    run.add_check(report);
    passed
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
}

fn option_secs(options: &Option<Table>, key: &str, default: f64) -> mlua::Result<Duration> {
    let secs = match options {
        Some(t) => t.get::<Option<f64>>(key)?.unwrap_or(default),
        None => default,
    };
    if !(secs.is_finite() && secs > 0.0 && secs <= 3600.0) {
        return Err(lua_error(format!("{key} = {secs} must be within 0 .. 3600 seconds")));
    }
    Ok(Duration::from_secs_f64(secs))
}

pub fn install(lua: &Lua, run: &Arc<RunState>) -> mlua::Result<()> {
    let check = lua.create_table()?;

    let r = Arc::clone(run);
    check.set(
        "linearizable",
        lua.create_async_function(move |_, (h, options): (UserDataRef<LuaHistory>, Option<Table>)| {
            let run = Arc::clone(&r);
            let history = Arc::clone(&h.0);
            async move {
                let budget = option_secs(&options, "timeout", DEFAULT_TIMEOUT_S)?;
                // The search is CPU-bound: keep it off the runtime's threads.
                let checked = Arc::clone(&history);
                let report = tokio::task::spawn_blocking(move || {
                    check::check_linearizable_with(&checked, &LinearizabilityOptions::with_time_budget(budget))
                })
                .await
                .map_err(|e| lua_error(format!("the checker failed: {e}")))?;
                if let check::Verdict::NotLinearizable { witness, .. } = &report.verdict {
                    run.add_evidence(Evidence::NotLinearizable(witness.clone()));
                }
                let saved = SavedCheck {
                    timeout_s: Some(budget.as_secs_f64()),
                    ..saved(Checker::Linearizable, report.to_check_report())
                };
                Ok(record_saved(&run, saved, Some(history)))
            }
        })?,
    )?;

    for (name, checker) in [("no_lost_writes", Checker::NoLostWrites), ("lost_updates", Checker::LostUpdates)] {
        let r = Arc::clone(run);
        check.set(
            name,
            lua.create_async_function(move |_, (h, c): (UserDataRef<LuaHistory>, UserDataRef<LuaCluster>)| {
                let run = Arc::clone(&r);
                let history = Arc::clone(&h.0);
                let cluster = c.clone();
                async move {
                    let keys: Vec<Value> = history.by_key().keys().map(|k| (*k).clone()).collect();
                    let values = final_values(&cluster, &keys).await;
                    let report = final_values_verdict(&run, checker, &history, &values);
                    let saved = SavedCheck {
                        final_values: values.ok().map(|v| v.into_iter().collect()),
                        ..saved(checker, report)
                    };
                    Ok(record_saved(&run, saved, Some(history)))
                }
            })?,
        )?;
    }

    let r = Arc::clone(run);
    check.set(
        "siblings",
        lua.create_function(move |_, (h, options): (UserDataRef<LuaHistory>, Option<Table>)| {
            let max: Option<usize> = match &options {
                Some(t) => t.get("max")?,
                None => None,
            };
            let report = check_siblings(&h.0);
            let saved = SavedCheck { max_siblings: max, ..saved(Checker::Siblings, report.to_check_report(max)) };
            record_saved(&r, saved, Some(Arc::clone(&h.0)));
            Ok(report.max_siblings)
        })?,
    )?;

    let r = Arc::clone(run);
    check.set(
        "convergence",
        lua.create_async_function(move |_, (c, options): (UserDataRef<LuaCluster>, Option<Table>)| {
            let run = Arc::clone(&r);
            let cluster = c.clone();
            async move {
                let timeout = option_secs(&options, "timeout", 10.0)?;
                if cluster_is_keyed(&cluster).await {
                    let (report, owned) = owners_agree(&cluster, timeout).await;
                    let saved = SavedCheck { owned_keys: owned, ..saved(Checker::Convergence, report) };
                    return Ok(record_saved(&run, saved, None));
                }
                let replicas = quiesced_replicas(&cluster, timeout).await;
                let (report, replicas) = match replicas {
                    Ok(replicas) => {
                        let mut report = check_convergence(&replicas).to_check_report();
                        report.summary += &format!(" (replicas judged: {})", node_list(replicas.keys()));
                        (report, Some(replicas))
                    }
                    Err(unsettled) => {
                        let (status, summary) = match unsettled {
                            Unsettled::Lagging(why) => (CheckStatus::Fail, why),
                            Unsettled::Unreadable(why) => (CheckStatus::Unknown, why),
                        };
                        let report = CheckReport {
                            name: "convergence".into(),
                            status,
                            summary,
                            witness: String::new(),
                            violations: None,
                            elapsed: timeout,
                        };
                        (report, None)
                    }
                };
                let replicas =
                    replicas.map(|r| r.into_iter().map(|(id, data)| (id, data.into_iter().collect())).collect());
                let saved = SavedCheck { replicas, ..saved(Checker::Convergence, report) };
                Ok(record_saved(&run, saved, None))
            }
        })?,
    )?;

    let r = Arc::clone(run);
    check.set(
        "stale_reads",
        lua.create_function(move |_, (h, options): (UserDataRef<LuaHistory>, Option<Table>)| {
            let max: u64 = match &options {
                Some(t) => t.get::<Option<u64>>("max")?.unwrap_or(0),
                None => 0,
            };
            let stale = check_stale_reads(&h.0);
            if stale.stale_reads > 0 {
                r.add_evidence(Evidence::StaleReads { count: stale.stale_reads, examples: stale.examples.clone() });
            }
            // Counting is the point; the script says how many it tolerates.
            let report = stale_reads_verdict(&stale, max);
            let saved = SavedCheck { max_stale: Some(max), ..saved(Checker::StaleReads, report) };
            record_saved(&r, saved, Some(Arc::clone(&h.0)));
            Ok(stale.stale_reads)
        })?,
    )?;
    let r = Arc::clone(run);
    check.set(
        "that",
        lua.create_function(move |_, (name, condition, detail): (String, bool, Option<String>)| {
            let report = CheckReport {
                name,
                status: if condition { CheckStatus::Pass } else { CheckStatus::Fail },
                summary: detail.unwrap_or_else(|| if condition { "holds".into() } else { "does not hold".into() }),
                witness: String::new(),
                violations: None,
                elapsed: Duration::ZERO,
            };
            Ok(record_saved(&r, saved(Checker::That, report), None))
        })?,
    )?;
    lua.globals().set("check", check)?;

    let report = lua.create_table()?;
    let r = Arc::clone(run);
    report.set(
        "note",
        lua.create_function(move |lua, (name, value): (String, LuaValue)| {
            let json = lua_to_json(lua, value)?;
            println!("note {name}: {json}");
            r.note(name, json);
            Ok(())
        })?,
    )?;
    lua.globals().set("report", report)?;
    Ok(())
}

fn lua_to_json(lua: &Lua, value: LuaValue) -> mlua::Result<serde_json::Value> {
    use mlua::LuaSerdeExt;
    lua.from_value(value)
}

/// A verdict that needs the final values: `unknown` if they could not be
/// read.
fn final_values_verdict(
    run: &RunState,
    checker: Checker,
    history: &History,
    values: &Result<FinalValues, String>,
) -> CheckReport {
    let name = match checker {
        Checker::LostUpdates => "lost_updates",
        _ => "no_lost_writes",
    };
    match values {
        Ok(values) => match checker {
            Checker::LostUpdates => {
                let report = check_lost_updates(history, values);
                if !report.lost.is_empty() {
                    run.add_evidence(Evidence::LostUpdates(report.lost.clone()));
                }
                report.to_check_report()
            }
            _ => {
                let report = check_lost_writes_among(history, values);
                if !report.lost.is_empty() {
                    run.add_evidence(Evidence::LostWrites(report.lost.clone()));
                }
                report.to_check_report()
            }
        },
        Err(why) => CheckReport {
            name: name.into(),
            status: CheckStatus::Unknown,
            summary: format!("could not read the final values: {why}"),
            witness: String::new(),
            violations: None,
            elapsed: Duration::ZERO,
        },
    }
}

/// The values of each key (siblings included), read through the leader
/// once the cluster has one, or through the leaderless policy's read
/// quorum. These reads are not part of the history.
/// How many reads of the final values are in flight at once. Each is a
/// linearizable read (a quorum round trip under Raft); read one after
/// another, 500 keys over a 10 ms link took 13 s.
const FINAL_READERS: usize = 16;

async fn final_values(cluster: &LuaCluster, keys: &[Value]) -> Result<FinalValues, String> {
    let clients: Vec<_> = {
        let mut guard = cluster.0.cluster.lock().await;
        let c = guard.as_mut().ok_or("the cluster was stopped")?;
        if crate::registry::shape(c.settings()) == crate::registry::Shape::Log {
            c.await_leader(Duration::from_secs(10)).await.ok_or("no leader within 10 s")?;
        }
        (0..FINAL_READERS.min(keys.len()).max(1)).map(|_| c.client()).collect()
    };
    // Reader i takes keys i, i + n, i + 2n, ...: the order of the keys
    // says nothing about their cost, so a plain stride balances well.
    let readers = clients.len();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, mut client) in clients.into_iter().enumerate() {
        let share: Vec<Value> = keys.iter().skip(i).step_by(readers).cloned().collect();
        tasks.spawn(async move {
            let mut values = Vec::new();
            for key in share {
                match client.get(key.bytes().clone()).await {
                    Ok(read) if read.siblings.is_empty() => {}
                    Ok(read) => values.push((key, read.siblings.into_iter().map(Value::new).collect())),
                    Err(e @ (ClientError::Unknown(_) | ClientError::Failed(_) | ClientError::Refused(_))) => {
                        return Err(format!("reading {key}: {e}"));
                    }
                }
            }
            Ok(values)
        });
    }
    let mut values = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        let share = joined.map_err(|e| format!("a final read task failed: {e}"))??;
        values.extend(share);
    }
    Ok(values)
}

async fn cluster_is_keyed(cluster: &LuaCluster) -> bool {
    let guard = cluster.0.cluster.lock().await;
    guard.as_ref().is_some_and(|c| crate::registry::shape(c.settings()) == crate::registry::Shape::Keyed)
}

/// Under a keyed policy there is no index to settle on: replicas converge
/// through read repair and anti-entropy. Waits until every owner of every
/// key holds the same register, or the timeout, and judges the last view.
async fn owners_agree(
    cluster: &LuaCluster,
    timeout: Duration,
) -> (CheckReport, Option<Vec<(u64, Vec<replab_api::KeyState>)>>) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let (states, silent) = {
            let guard = cluster.0.cluster.lock().await;
            let Some(c) = guard.as_ref() else {
                let report = CheckReport {
                    name: "convergence".into(),
                    status: CheckStatus::Fail,
                    summary: "the cluster was stopped".into(),
                    witness: String::new(),
                    violations: None,
                    elapsed: Duration::ZERO,
                };
                return (report, None);
            };
            let mut states = BTreeMap::new();
            let mut silent = Vec::new();
            // A paused node is left out, as a stopped one: it is not
            // expected to converge until it runs again. A running node that
            // does not answer is different: the check cannot judge it.
            for id in c.running().into_iter().filter(|id| !c.is_paused(*id)) {
                match c.replicas(id).await {
                    Ok(Some(keys)) => {
                        states.insert(id, keys);
                    }
                    Ok(None) => silent.push((id, "its loop has ended".to_string())),
                    Err(e) => silent.push((id, e.to_string())),
                }
            }
            (states, silent)
        };
        let report = check::convergence::check_owner_convergence(&states);
        let timed_out = tokio::time::Instant::now() >= deadline;
        if !silent.is_empty() && timed_out {
            let report = CheckReport {
                name: "convergence".into(),
                status: CheckStatus::Unknown,
                summary: unreadable(&silent, states.keys()),
                witness: String::new(),
                violations: None,
                elapsed: timeout,
            };
            return (report, None);
        }
        if (report.converged && silent.is_empty()) || timed_out {
            let mut report = report.to_check_report();
            report.summary += &format!(" (replicas judged: {})", node_list(states.keys()));
            return (report, Some(states.into_iter().collect()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Why the replicas could not be compared.
enum Unsettled {
    /// Every running replica answered, but they did not reach the same
    /// applied index in time: a convergence failure.
    Lagging(String),
    /// A running, unpaused replica did not answer: the check cannot judge
    /// it, so it cannot pass (undecided, never a pass over fewer nodes).
    Unreadable(String),
}

fn node_list<'a>(ids: impl Iterator<Item = &'a u64>) -> String {
    let ids: Vec<String> = ids.map(|id| format!("node {id}")).collect();
    if ids.is_empty() { "none".into() } else { ids.join(", ") }
}

fn unreadable<'a>(silent: &[(u64, String)], judged: impl Iterator<Item = &'a u64>) -> String {
    let why: Vec<String> = silent.iter().map(|(id, e)| format!("node {id} ({e})")).collect();
    format!(
        "running replicas did not answer, so convergence cannot be judged: {}; answered: {}",
        why.join(", "),
        node_list(judged)
    )
}

/// Every running replica's data, once they all applied the same index.
/// Paused nodes are left out; a running one that does not answer makes the
/// result `Unreadable`.
async fn quiesced_replicas(cluster: &LuaCluster, timeout: Duration) -> Result<BTreeMap<u64, ReplicaState>, Unsettled> {
    let guard = cluster.0.cluster.lock().await;
    let c = guard.as_ref().ok_or_else(|| Unsettled::Lagging("the cluster was stopped".into()))?;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let expected: Vec<u64> = c.running().into_iter().filter(|id| !c.is_paused(*id)).collect();
        let all = c.statuses().await;
        let silent: Vec<(u64, String)> = expected
            .iter()
            .filter(|id| all.get(id).is_none_or(Option::is_none))
            .map(|id| (*id, "no status".to_string()))
            .collect();
        let statuses: Vec<_> = all.into_iter().filter_map(|(id, s)| s.map(|s| (id, s))).collect();
        let commit = statuses.iter().map(|(_, s)| s.policy.commit_index).max().unwrap_or(0);
        let settled = statuses.iter().all(|(_, s)| s.policy.applied_index == commit);
        if settled && silent.is_empty() && !statuses.is_empty() {
            let mut replicas = BTreeMap::new();
            for (id, _) in &statuses {
                let dump = match c.dump(*id).await {
                    Ok(Some(dump)) => dump,
                    Ok(None) => {
                        return Err(Unsettled::Unreadable(format!("node {id} stopped before returning its data")));
                    }
                    Err(e) => return Err(Unsettled::Unreadable(format!("node {id} did not return its data: {e}"))),
                };
                replicas.insert(*id, dump.into_iter().map(|(k, v)| (Value::new(k), Value::new(v))).collect());
            }
            return Ok(replicas);
        }
        if tokio::time::Instant::now() >= deadline {
            if !silent.is_empty() {
                return Err(Unsettled::Unreadable(unreadable(&silent, statuses.iter().map(|(id, _)| id))));
            }
            let applied: Vec<String> =
                statuses.iter().map(|(id, s)| format!("node {id} applied {}", s.policy.applied_index)).collect();
            return Err(Unsettled::Lagging(format!(
                "replicas did not settle within {} s (highest commit {commit}; {})",
                timeout.as_secs_f64(),
                applied.join(", ")
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
