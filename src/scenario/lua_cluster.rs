//! The Lua `cluster` table and the cluster object `c` it returns.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mlua::{Lua, Table, UserData, UserDataMethods, Value as LuaValue};

use replab_api::NodeId;

use super::lua_client::LuaClient;
use super::run_state::RunState;
use super::workload::{LuaWorkload, WorkloadSpec};
use crate::client::protocol::NodeStats;
use crate::cluster::Cluster;
use crate::config::{self, ConfigInput};
use crate::net::{Delay, LinkFaults};

/// One cluster of a run, shared by the Lua object and the run's final
/// report.
pub struct ClusterCell {
    pub cluster: tokio::sync::Mutex<Option<Cluster>>,
    /// Counters of node incarnations that crashed (their stats died with
    /// them), so the run's totals include them.
    retired: Mutex<NodeStats>,
    pub run: Arc<RunState>,
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
    let cluster = Cluster::start(settings).await.map_err(|e| lua_error(format!("cluster.start: {e}")))?;
    run.event(format!("started {nodes} nodes in {}", cluster.data_dir().display()));
    let cell = Arc::new(ClusterCell {
        cluster: tokio::sync::Mutex::new(Some(cluster)),
        retired: Mutex::new(NodeStats::default()),
        run,
    });
    Ok((LuaCluster(Arc::clone(&cell)), cell))
}

fn flatten_options(table: &Table, prefix: &str, sets: &mut Vec<String>) -> mlua::Result<()> {
    for pair in table.pairs::<String, LuaValue>() {
        let (key, value) = pair?;
        let key = if prefix.is_empty() { key } else { format!("{prefix}.{key}") };
        let key = if key == "nodes" { "cluster.nodes".to_string() } else { key };
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
fn ids(value: LuaValue) -> mlua::Result<Vec<NodeId>> {
    match value {
        LuaValue::Integer(i) if i > 0 => Ok(vec![i as NodeId]),
        LuaValue::Number(n) if n >= 1.0 && n.fract() == 0.0 => Ok(vec![n as NodeId]),
        LuaValue::Table(t) => t.sequence_values::<i64>().map(|v| v.map(|v| v as NodeId)).collect(),
        other => Err(lua_error(format!("expected a node id or a list of node ids, got {}", other.type_name()))),
    }
}

impl ClusterCell {
    async fn with<R>(&self, f: impl AsyncFnOnce(&mut Cluster) -> mlua::Result<R>) -> mlua::Result<R> {
        let mut guard = self.cluster.lock().await;
        let cluster = guard.as_mut().ok_or_else(|| lua_error("the cluster was stopped"))?;
        f(cluster).await
    }

    fn check_member(cluster: &Cluster, id: NodeId) -> mlua::Result<()> {
        if cluster.ids().contains(&id) {
            Ok(())
        } else {
            Err(lua_error(format!("node {id} is not a member (members: {:?})", cluster.ids())))
        }
    }

    /// Totals over every node and every crashed incarnation.
    pub async fn stats(&self) -> NodeStats {
        let mut total = *self.retired.lock().expect("retired stats lock");
        if let Some(cluster) = self.cluster.lock().await.as_ref() {
            for status in cluster.statuses().await.into_values().flatten() {
                add_stats(&mut total, &status.stats);
            }
        }
        total
    }

    /// Stops the cluster (end of run), keeping its final counters.
    pub async fn shutdown(&self) -> NodeStats {
        let stats = self.stats().await;
        if let Some(cluster) = self.cluster.lock().await.take() {
            cluster.shutdown().await;
        }
        stats
    }
}

fn add_stats(total: &mut NodeStats, s: &NodeStats) {
    total.candidacies += s.candidacies;
    total.became_leader += s.became_leader;
    total.leader_changes += s.leader_changes;
    total.proposals += s.proposals;
    total.proposed_entries += s.proposed_entries;
    total.applied_entries += s.applied_entries;
    total.writes_ok += s.writes_ok;
    total.duplicate_writes += s.duplicate_writes;
    total.reads_served += s.reads_served;
    total.redirects += s.redirects;
    total.timeouts += s.timeouts;
    total.bad_requests += s.bad_requests;
    total.snapshots_taken += s.snapshots_taken;
    total.snapshots_installed += s.snapshots_installed;
    total.messages_sent += s.messages_sent;
    total.message_bytes_sent += s.message_bytes_sent;
}

fn link_faults(options: &Table) -> mlua::Result<LinkFaults> {
    let mut faults = LinkFaults::default();
    for pair in options.pairs::<String, LuaValue>() {
        let (key, value) = pair?;
        let number = |v: &LuaValue| -> mlua::Result<f64> {
            match v {
                LuaValue::Integer(i) => Ok(*i as f64),
                LuaValue::Number(n) => Ok(*n),
                other => Err(lua_error(format!("link option {key} must be a number, got {}", other.type_name()))),
            }
        };
        match key.as_str() {
            "drop" => faults.drop = number(&value)?,
            "duplicate" => faults.duplicate = number(&value)?,
            "reorder" => faults.reorder = number(&value)?,
            "reorder_window_ms" => faults.reorder_window_ms = number(&value)?,
            "delay_ms" => faults.delay = Delay::Fixed { ms: number(&value)? },
            "delay_uniform_ms" => {
                let t = value.as_table().ok_or_else(|| lua_error("delay_uniform_ms takes {min, max}"))?;
                faults.delay = Delay::Uniform { min_ms: t.get(1)?, max_ms: t.get(2)? };
            }
            "delay_exponential_ms" => faults.delay = Delay::Exponential { mean_ms: number(&value)? },
            "cut" => faults.cut = value.as_boolean().ok_or_else(|| lua_error("cut must be true or false"))?,
            other => {
                return Err(lua_error(format!(
                    "unknown link option `{other}`; known: drop, duplicate, reorder, reorder_window_ms, delay_ms, \
                     delay_uniform_ms, delay_exponential_ms, cut"
                )));
            }
        }
    }
    faults.validate().map_err(lua_error)?;
    Ok(faults)
}

fn status_table(
    lua: &Lua,
    statuses: BTreeMap<NodeId, Option<crate::client::protocol::NodeStatus>>,
) -> mlua::Result<Table> {
    let out = lua.create_table()?;
    for (id, status) in statuses {
        let row = lua.create_table()?;
        match status {
            None => row.set("up", false)?,
            Some(s) => {
                let p = &s.policy;
                row.set("up", true)?;
                row.set("role", p.role.to_string())?;
                row.set("term", p.term)?;
                row.set("leader", p.leader)?;
                row.set("commit", p.commit_index)?;
                row.set("applied", p.applied_index)?;
                row.set("first", p.first_index)?;
                row.set("last", p.last_index)?;
                row.set("durable", p.durable_index)?;
                row.set("keys", s.keys)?;
                row.set("digest", format!("{:016x}", s.digest))?;
                row.set("snapshots_installed", s.stats.snapshots_installed)?;
                // The failure detector's verdict and suspicion per peer.
                let liveness = lua.create_table()?;
                let suspicion = lua.create_table()?;
                for view in &s.liveness {
                    liveness.set(view.peer, format!("{:?}", view.liveness).to_lowercase())?;
                    suspicion.set(view.peer, view.suspicion)?;
                }
                row.set("liveness", liveness)?;
                row.set("suspicion", suspicion)?;
            }
        }
        out.set(id, row)?;
    }
    Ok(out)
}

impl UserData for LuaCluster {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
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
            let leader = cell.with(async |c| Ok(c.await_leader_other_than(timeout, &excluded).await)).await?;
            let leader = leader.ok_or_else(|| {
                let other = if excluded.is_empty() { String::new() } else { format!(" other than {excluded:?}") };
                lua_error(format!("no leader{other} within {timeout_s} s"))
            })?;
            cell.run.event(format!("leader is node {leader}"));
            Ok(leader)
        });
        methods
            .add_async_method("leader", |_, this, ()| async move { this.0.with(async |c| Ok(c.leader().await)).await });
        methods.add_async_method("nodes", |_, this, ()| async move { this.0.with(async |c| Ok(c.ids())).await });
        methods.add_async_method("others", |_, this, exclude: LuaValue| async move {
            let exclude = ids(exclude)?;
            this.0.with(async |c| Ok(c.ids().into_iter().filter(|id| !exclude.contains(id)).collect::<Vec<_>>())).await
        });
        methods.add_async_method("crash", |_, this, id: NodeId| async move {
            let cell = Arc::clone(&this.0);
            cell.with(async |c| {
                ClusterCell::check_member(c, id)?;
                // Keep the dying incarnation's counters for the totals.
                if let Some(status) = c.statuses().await.remove(&id).flatten() {
                    add_stats(&mut cell.retired.lock().expect("retired stats lock"), &status.stats);
                }
                c.crash(id).await.map_err(lua_error)
            })
            .await?;
            cell.run.event(format!("crash node {id}"));
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
        methods.add_async_method("partition", |_, this, (a, b): (LuaValue, LuaValue)| async move {
            let (a, b) = (ids(a)?, ids(b)?);
            let cell = Arc::clone(&this.0);
            cell.with(async |c| {
                c.faults().partition(&a, &b);
                Ok(())
            })
            .await?;
            cell.run.event(format!("partition {a:?} | {b:?}"));
            Ok(())
        });
        methods.add_async_method("isolate", |_, this, id: NodeId| async move {
            let cell = Arc::clone(&this.0);
            cell.with(async |c| {
                ClusterCell::check_member(c, id)?;
                c.faults().isolate(id, &c.ids());
                Ok(())
            })
            .await?;
            cell.run.event(format!("isolate node {id}"));
            Ok(())
        });
        methods.add_async_method("cut", |_, this, (from, to): (NodeId, NodeId)| async move {
            let cell = Arc::clone(&this.0);
            cell.with(async |c| {
                c.faults().cut(from, to);
                Ok(())
            })
            .await?;
            cell.run.event(format!("cut {from} -> {to}"));
            Ok(())
        });
        methods.add_async_method("link", |_, this, (from, to, options): (NodeId, NodeId, Table)| async move {
            let faults = link_faults(&options)?;
            let cell = Arc::clone(&this.0);
            cell.with(async |c| c.faults().set(from, to, faults).map_err(lua_error)).await?;
            cell.run.event(format!("link {from} -> {to}: {faults:?}"));
            Ok(())
        });
        methods.add_async_method("heal", |_, this, ()| async move {
            let cell = Arc::clone(&this.0);
            cell.with(async |c| {
                c.faults().heal();
                Ok(())
            })
            .await?;
            cell.run.event("heal");
            Ok(())
        });
        methods.add_async_method("transfer_leader", |_, this, to: NodeId| async move {
            let cell = Arc::clone(&this.0);
            cell.with(async |c| {
                let leader = c.leader().await.ok_or_else(|| lua_error("no leader to transfer from"))?;
                let ok = match c.node(leader) {
                    Some(node) => node.transfer_leader(to).await,
                    None => false,
                };
                if ok { Ok(()) } else { Err(lua_error("the leader is not running")) }
            })
            .await?;
            cell.run.event(format!("transfer leadership to node {to}"));
            Ok(())
        });
        methods.add_async_method("client", |_, this, ()| async move {
            let cell = Arc::clone(&this.0);
            let (client, addrs) = cell
                .with(async |c| {
                    let addrs = c.ids().into_iter().filter_map(|id| c.client_addr(id).map(|a| (id, a))).collect();
                    Ok((c.client(), addrs))
                })
                .await?;
            Ok(LuaClient::new(client, addrs, Arc::clone(&cell.run)))
        });
        methods.add_async_method("workload", |_, this, options: Option<Table>| async move {
            let spec = WorkloadSpec::from_lua(options)?;
            let cell = Arc::clone(&this.0);
            let clients = cell.with(async |c| Ok((0..spec.clients).map(|_| c.client()).collect::<Vec<_>>())).await?;
            Ok(LuaWorkload::new(spec, clients, Arc::clone(&cell.run)))
        });
        methods.add_async_method("status", |lua, this, ()| async move {
            let statuses = this.0.with(async |c| Ok(c.statuses().await)).await?;
            status_table(&lua, statuses)
        });
        methods.add_async_method("stats", |lua, this, ()| async move {
            let s = this.0.stats().await;
            let t = lua.create_table()?;
            t.set("elections", s.became_leader)?;
            t.set("candidacies", s.candidacies)?;
            t.set("leader_changes", s.leader_changes)?;
            t.set("applied_entries", s.applied_entries)?;
            t.set("writes_ok", s.writes_ok)?;
            t.set("duplicate_writes", s.duplicate_writes)?;
            t.set("reads_served", s.reads_served)?;
            t.set("redirects", s.redirects)?;
            t.set("timeouts", s.timeouts)?;
            t.set("snapshots_taken", s.snapshots_taken)?;
            t.set("snapshots_installed", s.snapshots_installed)?;
            t.set("messages", s.messages_sent)?;
            t.set("message_bytes", s.message_bytes_sent)?;
            Ok(t)
        });
        methods.add_async_method("stop", |_, this, ()| async move {
            this.0.shutdown().await;
            this.0.run.event("stopped the cluster");
            Ok(())
        });
    }
}
