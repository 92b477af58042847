//! The faults a script injects through `c`: network partitions and link
//! faults, paused nodes, skewed clocks, leader transfers. (Crashes,
//! restarts and wiped disks are in `lua_cluster.rs`.)
//!
//! Every call checks its node ids first: a fault on a node that is not a
//! member, a partition whose sides overlap or a link from a node to itself
//! is a mistake in the script, and silently doing nothing would make the
//! scenario test something other than what it says.

use std::sync::Arc;
use std::time::Duration;

use mlua::{Table, UserDataMethods, Value as LuaValue};

use replab_api::NodeId;

use super::fault_windows::FaultKind;
use super::lua_cluster::{ClusterCell, LuaCluster, ids, lua_error};
use crate::cluster::Cluster;
use crate::net::{Delay, LinkFaults};

fn check_members(cluster: &Cluster, ids: &[NodeId], what: &str) -> mlua::Result<()> {
    let members = cluster.ids();
    match ids.iter().find(|id| !members.contains(id)) {
        Some(bad) => Err(lua_error(format!("{what}: node {bad} is not a member (members: {members:?})"))),
        None => Ok(()),
    }
}

fn check_link(cluster: &Cluster, from: NodeId, to: NodeId, what: &str) -> mlua::Result<()> {
    check_members(cluster, &[from, to], what)?;
    if from == to {
        return Err(lua_error(format!("{what}: a link goes from a node to another, not from node {from} to itself")));
    }
    Ok(())
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

/// How long a leader transfer may take before the script hears it was
/// abandoned: the policy gives up after an election timeout; this adds an
/// election and some slack.
fn transfer_wait(cluster: &Cluster) -> Duration {
    match cluster.settings().plugin::<replab_raft::RaftConfig>("raft") {
        Ok(raft) => Duration::from_millis(raft.election_timeout_min_ms + 2 * raft.election_timeout_max_ms + 500),
        Err(_) => Duration::from_secs(2),
    }
}

pub fn add_methods<M: UserDataMethods<LuaCluster>>(methods: &mut M) {
    methods.add_async_method("partition", |_, this, (a, b): (LuaValue, LuaValue)| async move {
        let (a, b) = (ids(a)?, ids(b)?);
        if let Some(both) = a.iter().find(|id| b.contains(id)) {
            return Err(lua_error(format!("partition: node {both} is on both sides ({a:?} | {b:?})")));
        }
        let cell = Arc::clone(&this.0);
        cell.with(async |c| {
            check_members(c, &a, "partition")?;
            check_members(c, &b, "partition")?;
            c.faults().partition(&a, &b);
            c.apply_faults().await.map_err(lua_error)
        })
        .await?;
        let label = format!("partition {a:?} | {b:?}");
        let nodes = a.iter().chain(&b).copied().collect();
        cell.run.fault_started(FaultKind::Partition, label.clone(), label.clone(), nodes);
        cell.run.event(label);
        Ok(())
    });
    methods.add_async_method("isolate", |_, this, id: NodeId| async move {
        let cell = Arc::clone(&this.0);
        cell.with(async |c| {
            ClusterCell::check_member(c, id)?;
            c.faults().isolate(id, &c.ids());
            c.apply_faults().await.map_err(lua_error)
        })
        .await?;
        let label = format!("isolate node {id}");
        cell.run.fault_started(FaultKind::Partition, label.clone(), label.clone(), vec![id]);
        cell.run.event(label);
        Ok(())
    });
    methods.add_async_method("cut", |_, this, (from, to): (NodeId, NodeId)| async move {
        let cell = Arc::clone(&this.0);
        cell.with(async |c| {
            check_link(c, from, to, "cut")?;
            c.faults().cut(from, to);
            c.apply_faults().await.map_err(lua_error)
        })
        .await?;
        let label = format!("cut {from} -> {to}");
        cell.run.fault_started(FaultKind::Partition, label.clone(), label.clone(), vec![from, to]);
        cell.run.event(label);
        Ok(())
    });
    methods.add_async_method("link", |_, this, (from, to, options): (NodeId, NodeId, Table)| async move {
        let faults = link_faults(&options)?;
        let cell = Arc::clone(&this.0);
        cell.with(async |c| {
            check_link(c, from, to, "link")?;
            c.faults().set(from, to, faults).map_err(lua_error)?;
            c.apply_faults().await.map_err(lua_error)
        })
        .await?;
        let target = format!("{from} -> {to}");
        if faults == LinkFaults::default() {
            cell.run.fault_ended(FaultKind::Link, &target);
        } else {
            cell.run.fault_started(FaultKind::Link, target, format!("link {from} -> {to}"), vec![from, to]);
        }
        cell.run.event(format!("link {from} -> {to}: {faults:?}"));
        Ok(())
    });
    methods.add_async_method("heal", |_, this, ()| async move {
        let cell = Arc::clone(&this.0);
        cell.with(async |c| {
            c.faults().heal();
            c.apply_faults().await.map_err(lua_error)
        })
        .await?;
        cell.run.faults_ended(&[FaultKind::Partition, FaultKind::Link]);
        cell.run.event("heal");
        Ok(())
    });
    methods.add_async_method("pause", |_, this, id: NodeId| async move {
        let cell = Arc::clone(&this.0);
        cell.with(async |c| {
            ClusterCell::check_member(c, id)?;
            c.pause(id).map_err(lua_error)
        })
        .await?;
        cell.run.fault_started(FaultKind::Pause, format!("node {id}"), format!("pause node {id}"), vec![id]);
        cell.run.event(format!("pause node {id}"));
        Ok(())
    });
    methods.add_async_method("resume", |_, this, id: NodeId| async move {
        let cell = Arc::clone(&this.0);
        cell.with(async |c| {
            ClusterCell::check_member(c, id)?;
            if !c.is_paused(id) {
                return Err(lua_error(format!("resume: node {id} is not paused")));
            }
            c.resume(id).await.map_err(lua_error)
        })
        .await?;
        cell.run.fault_ended(FaultKind::Pause, &format!("node {id}"));
        cell.run.event(format!("resume node {id}"));
        Ok(())
    });
    methods.add_async_method("clock_skew", |_, this, (id, ms): (NodeId, i64)| async move {
        const MAX_SKEW_MS: i64 = 365 * 24 * 3_600 * 1_000;
        if ms.abs() > MAX_SKEW_MS {
            return Err(lua_error(format!("clock_skew: {ms} ms is more than a year")));
        }
        let cell = Arc::clone(&this.0);
        cell.with(async |c| {
            ClusterCell::check_member(c, id)?;
            c.clock_skew(id, ms).await.map_err(lua_error)
        })
        .await?;
        if ms == 0 {
            cell.run.fault_ended(FaultKind::Skew, &format!("node {id}"));
        } else {
            let label = format!("node {id} clock {ms:+} ms");
            cell.run.fault_started(FaultKind::Skew, format!("node {id}"), label, vec![id]);
        }
        cell.run.event(format!("clock of node {id} skewed by {ms} ms"));
        Ok(())
    });
    methods.add_async_method("transfer_leader", |_, this, to: NodeId| async move {
        let cell = Arc::clone(&this.0);
        let (from, wait) = cell
            .with(async |c| {
                ClusterCell::check_member(c, to)?;
                let leader = c.leader().await.ok_or_else(|| lua_error("transfer_leader: there is no leader"))?;
                let sent = c.transfer_leader(leader, to).await.map_err(lua_error)?;
                if !sent {
                    return Err(lua_error(format!("transfer_leader: the leader, node {leader}, is not running")));
                }
                Ok((leader, transfer_wait(c)))
            })
            .await?;
        cell.run.event(format!("transfer leadership from node {from} to node {to}"));
        if from == to {
            return Ok(true);
        }
        // The outcome, not just the request: a transfer can be abandoned
        // (the target is behind or cut off), and the script should know.
        let leader = cell
            .with(async |c| match c.await_leader_other_than(wait, &[from]).await {
                Some(new) => Ok(Some(new)),
                None => Ok(c.leader().await),
            })
            .await?;
        if leader == Some(to) {
            cell.run.event(format!("node {to} leads after the transfer"));
            Ok(true)
        } else {
            let now = leader.map_or("no agreed leader".to_string(), |l| format!("node {l} leads"));
            cell.run.event(format!("transfer to node {to} abandoned: {now} after {} ms", wait.as_millis()));
            Ok(false)
        }
    });
}
