//! The Lua `cluster` table and the cluster object `c` it returns: starting,
//! crashing, restarting and stopping nodes, clients and workloads. Network
//! faults, pauses and clock skew are in `lua_faults.rs`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mlua::{Table, UserData, UserDataMethods, Value as LuaValue};
use tokio_util::sync::CancellationToken;

use replab_api::NodeId;

use super::fault_windows::FaultKind;
use super::leader_watch;
use super::lua_client::LuaClient;
use super::lua_stats::{Counters, stats_table, status_table};
use super::run_state::RunState;
use super::workload::{LuaHistory, LuaWorkload, WorkloadSpec};
use crate::check::Recorder;
use crate::cluster::Cluster;
use crate::config::{self, ConfigInput};
use crate::registry::Shape;

/// One cluster of a run, shared by the Lua object and the run's final
/// report.
pub struct ClusterCell {
    pub cluster: tokio::sync::Mutex<Option<Cluster>>,
    /// Counters of node incarnations that crashed (their stats died with
    /// them), and of the whole cluster once stopped, so the run's totals
    /// include them.
    retired: Mutex<Counters>,
    pub run: Arc<RunState>,
    /// The operations of this cluster's clients only (`c:history()`).
    pub recorder: Recorder,
    /// The leader watch, stopped with the cluster.
    watch: Mutex<Option<(CancellationToken, tokio::task::JoinHandle<()>)>>,
}

/// `c` in scripts.
#[derive(Clone)]
pub struct LuaCluster(pub Arc<ClusterCell>);

pub fn lua_error(message: impl std::fmt::Display) -> mlua::Error {
    mlua::Error::RuntimeError(message.to_string())
}

/// `cluster.start{ nodes = 3, ["raft.pre_vote"] = false, raft = { ... } }`:
/// table entries other than `nodes` are config keys layered over the run's
/// configuration, in `section.key` form or as nested tables.
pub async fn start(run: Arc<RunState>, options: Option<Table>) -> mlua::Result<(LuaCluster, Arc<ClusterCell>)> {
    let mut sets = vec![format!("cluster.seed={}", run.seed)];
    if let Some(options) = options {
        flatten_options(&options, "", &mut sets)?;
    }
    let mut input: ConfigInput = run.config.clone();
    input.sets.extend(sets);
    let settings = config::load(&input).map_err(|e| lua_error(format!("cluster.start: {e}")))?;
    let nodes = settings.cluster.nodes;
    let described = crate::registry::describe(&settings).map_err(|e| lua_error(format!("cluster.start: {e}")))?;
    let cluster = Cluster::start(settings).await.map_err(|e| lua_error(format!("cluster.start: {e}")))?;
    let how = if cluster.is_processes() {
        let pids: Vec<String> = cluster.ids().iter().filter_map(|id| cluster.pid(*id)).map(|p| p.to_string()).collect();
        format!(" as processes (pids {})", pids.join(", "))
    } else {
        String::new()
    };
    run.event(format!("started {nodes} nodes{how} in {}", cluster.data_dir().display()));
    run.event(described);
    let watch_stop = CancellationToken::new();
    let keyed = crate::registry::shape(cluster.settings()) == Shape::Keyed;
    let watch = leader_watch::watch(cluster.board(), nodes as usize, keyed, Arc::clone(&run), watch_stop.clone());
    let cell = Arc::new(ClusterCell {
        cluster: tokio::sync::Mutex::new(Some(cluster)),
        retired: Mutex::new(Counters::default()),
        recorder: Recorder::with_origin(run.started),
        run,
        watch: Mutex::new(Some((watch_stop, tokio::spawn(watch)))),
    });
    Ok((LuaCluster(Arc::clone(&cell)), cell))
}

fn flatten_options(table: &Table, prefix: &str, sets: &mut Vec<String>) -> mlua::Result<()> {
    for pair in table.pairs::<String, LuaValue>() {
        let (key, value) = pair?;
        let key = if prefix.is_empty() { key } else { format!("{prefix}.{key}") };
        let key = match key.as_str() {
            "nodes" => "cluster.nodes".to_string(),
            "processes" => "cluster.processes".to_string(),
            _ => key,
        };
        match value {
            LuaValue::Table(inner) => flatten_options(&inner, &key, sets)?,
            LuaValue::Boolean(b) => sets.push(format!("{key}={b}")),
            LuaValue::Integer(i) => sets.push(format!("{key}={i}")),
            LuaValue::Number(n) => sets.push(format!("{key}={n}")),
            LuaValue::String(s) => sets.push(format!("{key}={}", s.to_str()?)),
            other => {
                return Err(lua_error(format!("cluster.start: {key} = {} is not a config value", other.type_name())));
            }
        }
    }
    Ok(())
}

/// Node ids from a Lua id or a list of ids.
pub(super) fn ids(value: LuaValue) -> mlua::Result<Vec<NodeId>> {
    match value {
        LuaValue::Integer(i) if i > 0 => Ok(vec![i as NodeId]),
        LuaValue::Number(n) if n >= 1.0 && n.fract() == 0.0 => Ok(vec![n as NodeId]),
        LuaValue::Table(t) => t.sequence_values::<i64>().map(|v| v.map(|v| v as NodeId)).collect(),
        other => Err(lua_error(format!("expected a node id or a list of node ids, got {}", other.type_name()))),
    }
}

impl ClusterCell {
    pub(super) async fn with<R>(&self, f: impl AsyncFnOnce(&mut Cluster) -> mlua::Result<R>) -> mlua::Result<R> {
        let mut guard = self.cluster.lock().await;
        let cluster = guard.as_mut().ok_or_else(|| lua_error("the cluster was stopped"))?;
        f(cluster).await
    }

    pub(super) fn check_member(cluster: &Cluster, id: NodeId) -> mlua::Result<()> {
        if cluster.ids().contains(&id) {
            Ok(())
        } else {
            Err(lua_error(format!("node {id} is not a member (members: {:?})", cluster.ids())))
        }
    }

    /// Totals over every node and every crashed incarnation.
    pub async fn stats(&self) -> Counters {
        let mut guard = self.cluster.lock().await;
        self.stats_of(guard.as_mut()).await
    }

    async fn stats_of(&self, cluster: Option<&mut Cluster>) -> Counters {
        let mut total = self.retired.lock().expect("retired stats lock").clone();
        if let Some(cluster) = cluster {
            for status in cluster.statuses().await.into_values().flatten() {
                total.add(&status);
            }
        }
        total
    }

    /// Stops the cluster (by the script, or at the end of the run). Its
    /// final counters are kept, so the run's totals still include them.
    pub async fn shutdown(&self) -> Counters {
        let mut guard = self.cluster.lock().await;
        let total = self.stats_of(guard.as_mut()).await;
        let watch = self.watch.lock().expect("watch lock").take();
        if let Some((stop, task)) = watch {
            stop.cancel();
            let _ = task.await;
        }
        if let Some(cluster) = guard.take() {
            // Nothing is faulty in a cluster that no longer runs.
            self.run.faults_ended(&FaultKind::ALL);
            *self.retired.lock().expect("retired stats lock") = total.clone();
            cluster.shutdown().await;
        }
        total
    }
}

impl UserData for LuaCluster {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        super::lua_faults::add_methods(methods);
        methods.add_async_method("await_leader", |_, this, options: Option<Table>| async move {
            let (timeout_s, excluded) = match &options {
                Some(t) => {
                    let excluded = match t.get::<LuaValue>("other_than")? {
                        LuaValue::Nil => Vec::new(),
                        v => ids(v)?,
                    };
                    (t.get::<Option<f64>>("timeout")?.unwrap_or(10.0), excluded)
                }
                None => (10.0, Vec::new()),
            };
            if !(timeout_s.is_finite() && (0.0..=3600.0).contains(&timeout_s)) {
                return Err(lua_error(format!("await_leader: timeout {timeout_s} must be within 0 ..= 3600 s")));
            }
            let cell = Arc::clone(&this.0);
            let timeout = Duration::from_secs_f64(timeout_s);
            let keyed = cell.with(async |c| Ok(crate::registry::shape(c.settings()) == Shape::Keyed)).await?;
            if keyed {
                return Err(lua_error(
                    "await_leader: this cluster's policy has no leader; c:await_ready() waits for it to serve",
                ));
            }
            let leader = cell.with(async |c| Ok(c.await_leader_other_than(timeout, &excluded).await)).await?;
            let leader = leader.ok_or_else(|| {
                let other = if excluded.is_empty() { String::new() } else { format!(" other than {excluded:?}") };
                lua_error(format!("no leader{other} within {timeout_s} s"))
            })?;
            cell.run.event(format!("leader is node {leader}"));
            Ok(leader)
        });
        // Whatever the policy: a leader a majority agrees on, or (without
        // leaders) every running node answering. Returns the leader's id,
        // or true.
        methods.add_async_method("await_ready", |_, this, options: Option<Table>| async move {
            let timeout_s = match &options {
                Some(t) => t.get::<Option<f64>>("timeout")?.unwrap_or(10.0),
                None => 10.0,
            };
            if !(timeout_s.is_finite() && (0.0..=3600.0).contains(&timeout_s)) {
                return Err(lua_error(format!("await_ready: timeout {timeout_s} must be within 0 ..= 3600 s")));
            }
            let timeout = Duration::from_secs_f64(timeout_s);
            let cell = Arc::clone(&this.0);
            let ready = cell
                .with(async |c| {
                    if crate::registry::shape(c.settings()) == Shape::Log {
                        return Ok(c.await_leader(timeout).await.map(|id| LuaValue::Integer(id as i64)));
                    }
                    Ok(c.await_every_node_serving(timeout).await.then_some(LuaValue::Boolean(true)))
                })
                .await?;
            let ready = ready.ok_or_else(|| lua_error(format!("the cluster was not ready within {timeout_s} s")))?;
            match ready {
                LuaValue::Integer(leader) => cell.run.event(format!("leader is node {leader}")),
                _ => cell.run.event("every node serves"),
            }
            Ok(ready)
        });
        methods
            .add_async_method("leader", |_, this, ()| async move { this.0.with(async |c| Ok(c.leader().await)).await });
        methods.add_async_method("nodes", |_, this, ()| async move { this.0.with(async |c| Ok(c.ids())).await });
        methods.add_async_method("others", |_, this, exclude: LuaValue| async move {
            let exclude = ids(exclude)?;
            this.0.with(async |c| Ok(c.ids().into_iter().filter(|id| !exclude.contains(id)).collect::<Vec<_>>())).await
        });
        methods.add_async_method("crash", |_, this, (id, options): (NodeId, Option<Table>)| async move {
            let power_loss = match &options {
                Some(o) => o.get::<Option<bool>>("power_loss")?.unwrap_or(false),
                None => false,
            };
            let cell = Arc::clone(&this.0);
            cell.with(async |c| {
                ClusterCell::check_member(c, id)?;
                // Keep the dying incarnation's counters for the totals.
                if let Some(status) = c.statuses().await.remove(&id).flatten() {
                    cell.retired.lock().expect("retired stats lock").add(&status);
                }
                if power_loss { c.power_loss(id).await } else { c.crash(id).await }.map_err(lua_error)
            })
            .await?;
            let what = if power_loss { "power loss" } else { "crash" };
            cell.run.fault_started(FaultKind::Crash, format!("node {id}"), format!("{what} node {id}"), vec![id]);
            cell.run.event(if power_loss {
                format!("power loss at node {id}: crashed, and what it had not synced is gone")
            } else {
                format!("crash node {id}")
            });
            Ok(())
        });
        methods.add_async_method("restart", |_, this, (id, options): (NodeId, Option<Table>)| async move {
            let repair_wal = match &options {
                Some(o) => o.get::<Option<bool>>("repair_wal")?.unwrap_or(false),
                None => false,
            };
            let cell = Arc::clone(&this.0);
            let repaired = cell
                .with(async |c| {
                    ClusterCell::check_member(c, id)?;
                    let repaired = if repair_wal { c.repair_wal(id).map_err(lua_error)? } else { None };
                    c.restart(id).await.map_err(lua_error)?;
                    Ok(repaired)
                })
                .await?;
            cell.run.fault_ended(FaultKind::Crash, &format!("node {id}"));
            match repaired {
                Some(r) => cell.run.event(format!(
                    "restart node {id} after repairing its log: {} record(s) removed from index {}",
                    r.damage.records_removed(),
                    r.damage.index
                )),
                None => cell.run.event(format!("restart node {id}")),
            }
            Ok(())
        });
        methods.add_async_method("wipe", |_, this, id: NodeId| async move {
            let cell = Arc::clone(&this.0);
            cell.with(async |c| {
                ClusterCell::check_member(c, id)?;
                c.wipe(id).map_err(lua_error)
            })
            .await?;
            cell.run.event(format!("wipe the disk of node {id}"));
            Ok(())
        });
        methods.add_async_method("client", |_, this, options: Option<Table>| async move {
            let (pinned, only): (Option<NodeId>, Option<Vec<NodeId>>) = match &options {
                Some(o) => (o.get("node")?, o.get("nodes")?),
                None => (None, None),
            };
            let cell = Arc::clone(&this.0);
            let (client, addrs) = cell
                .with(async |c| {
                    let addrs = c.ids().into_iter().filter_map(|id| c.client_addr(id).map(|a| (id, a))).collect();
                    let client = match (pinned, only) {
                        (Some(_), Some(_)) => return Err(lua_error("client: give node or nodes, not both")),
                        (Some(id), None) => {
                            ClusterCell::check_member(c, id)?;
                            c.pinned_client(id).map_err(lua_error)?
                        }
                        (None, Some(ids)) => {
                            for id in &ids {
                                ClusterCell::check_member(c, *id)?;
                            }
                            if ids.is_empty() {
                                return Err(lua_error("client: nodes must name at least one node"));
                            }
                            c.client_of_nodes(&ids).map_err(lua_error)?
                        }
                        (None, None) => c.client(),
                    };
                    Ok((client, addrs))
                })
                .await?;
            let recorders = vec![cell.run.recorder.clone(), cell.recorder.clone()];
            Ok(LuaClient::new(client, addrs, recorders, Arc::clone(&cell.run)))
        });
        methods.add_async_method("workload", |_, this, options: Option<Table>| async move {
            let spec = WorkloadSpec::from_lua(options)?;
            let cell = Arc::clone(&this.0);
            let clients = cell
                .with(async |c| {
                    if !spec.spread {
                        return Ok((0..spec.clients).map(|_| c.client()).collect::<Vec<_>>());
                    }
                    let ids = c.ids();
                    let mut clients = Vec::with_capacity(spec.clients);
                    for i in 0..spec.clients {
                        let mut order = ids.clone();
                        order.rotate_left(i % ids.len());
                        clients.push(c.client_of_nodes(&order).map_err(lua_error)?);
                    }
                    Ok(clients)
                })
                .await?;
            Ok(LuaWorkload::new(spec, clients, cell.recorder.clone(), Arc::clone(&cell.run)))
        });
        // This cluster's operations only (`history()` has every cluster's).
        methods.add_method("history", |_, this, ()| Ok(LuaHistory(Arc::new(this.0.recorder.finish()))));
        methods.add_async_method("status", |lua, this, ()| async move {
            let (statuses, paused) = this
                .0
                .with(async |c| {
                    let paused: Vec<NodeId> = c.ids().into_iter().filter(|id| c.is_paused(*id)).collect();
                    Ok((c.statuses().await, paused))
                })
                .await?;
            status_table(&lua, statuses, &paused)
        });
        methods.add_async_method("stats", |lua, this, ()| async move { stats_table(&lua, &this.0.stats().await) });
        // `c:stop()` stops the cluster; `c:stop(id)` stops one node cleanly
        // (SIGTERM for a process), to be restarted with `c:restart(id)`.
        methods.add_async_method("stop", |_, this, id: Option<NodeId>| async move {
            let cell = Arc::clone(&this.0);
            let Some(id) = id else {
                cell.shutdown().await;
                cell.run.event("stopped the cluster");
                return Ok(());
            };
            cell.with(async |c| {
                ClusterCell::check_member(c, id)?;
                if let Some(status) = c.statuses().await.remove(&id).flatten() {
                    cell.retired.lock().expect("retired stats lock").add(&status);
                }
                c.stop(id).await.map_err(lua_error)
            })
            .await?;
            cell.run.fault_started(FaultKind::Crash, format!("node {id}"), format!("stop node {id}"), vec![id]);
            cell.run.event(format!("stop node {id}"));
            Ok(())
        });
        // Process mode: the pid of node `id`'s process (nil when it is down,
        // or in-process).
        methods.add_async_method("pid", |_, this, id: NodeId| async move {
            this.0
                .with(async |c| {
                    ClusterCell::check_member(c, id)?;
                    Ok(c.pid(id))
                })
                .await
        });
    }
}
