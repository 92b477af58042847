//! What `c:status()` and `c:stats()` show: per-node state, and counters
//! summed over every node and every incarnation.

use std::collections::BTreeMap;

use mlua::{Lua, Table};

use replab_api::NodeId;

use crate::client::protocol::{NodeStats, NodeStatus};

/// Counters summed over nodes: the engine's (`NodeStats`) and the
/// policy's own, by name.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    pub node: NodeStats,
    pub policy: BTreeMap<String, u64>,
}

impl Counters {
    pub fn add(&mut self, status: &NodeStatus) {
        add_node_stats(&mut self.node, &status.stats);
        for (name, n) in &status.policy_counters {
            *self.policy.entry(name.clone()).or_default() += n;
        }
    }

    pub fn add_counters(&mut self, other: &Counters) {
        add_node_stats(&mut self.node, &other.node);
        for (name, n) in &other.policy {
            *self.policy.entry(name.clone()).or_default() += n;
        }
    }

    fn policy_counter(&self, name: &str) -> u64 {
        self.policy.get(name).copied().unwrap_or(0)
    }
}

fn add_node_stats(total: &mut NodeStats, s: &NodeStats) {
    total.candidacies += s.candidacies;
    total.became_leader += s.became_leader;
    total.leader_changes += s.leader_changes;
    total.liveness_changes += s.liveness_changes;
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
    total.fdatasyncs += s.fdatasyncs;
    total.log_records += s.log_records;
}

fn ratio(n: u64, d: u64) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

/// `c:stats()`; docs/LUA_API.md documents every field.
pub fn stats_table(lua: &Lua, c: &Counters) -> mlua::Result<Table> {
    let s = &c.node;
    let t = lua.create_table()?;
    t.set("elections", s.became_leader)?;
    t.set("candidacies", s.candidacies)?;
    t.set("leader_view_changes", s.leader_changes)?;
    t.set("liveness_changes", s.liveness_changes)?;
    t.set("proposals", s.proposals)?;
    t.set("proposed_entries", s.proposed_entries)?;
    t.set("entries_per_proposal", ratio(s.proposed_entries, s.proposals))?;
    t.set("applied_entries", s.applied_entries)?;
    t.set("writes_ok", s.writes_ok)?;
    t.set("duplicate_writes", s.duplicate_writes)?;
    t.set("reads_served", s.reads_served)?;
    t.set("redirects", s.redirects)?;
    t.set("timeouts", s.timeouts)?;
    t.set("bad_requests", s.bad_requests)?;
    t.set("snapshots_taken", s.snapshots_taken)?;
    t.set("snapshots_installed", s.snapshots_installed)?;
    t.set("messages", s.messages_sent)?;
    t.set("message_bytes", s.message_bytes_sent)?;
    t.set("fdatasyncs", s.fdatasyncs)?;
    t.set("log_records", s.log_records)?;
    t.set("entries_per_fdatasync", ratio(s.log_records, s.fdatasyncs))?;
    t.set("transfers_started", c.policy_counter("transfers_started"))?;
    t.set("transfers_abandoned", c.policy_counter("transfers_aborted"))?;
    let policy = lua.create_table()?;
    for (name, n) in &c.policy {
        policy.set(name.as_str(), *n)?;
    }
    t.set("policy", policy)?;
    Ok(t)
}

/// `c:status()`: one row per member; `up = false` for a node that is down
/// or paused.
pub fn status_table(
    lua: &Lua,
    statuses: BTreeMap<NodeId, Option<NodeStatus>>,
    paused: &[NodeId],
) -> mlua::Result<Table> {
    let out = lua.create_table()?;
    for (id, status) in statuses {
        let row = lua.create_table()?;
        row.set("paused", paused.contains(&id))?;
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
