//! What the cluster's nodes say about themselves, and waiting for a
//! leader a majority agrees on.

use std::collections::BTreeMap;
use std::time::Duration;

use replab_api::{NodeId, Role};

use super::Cluster;
use crate::client::protocol::NodeStatus;

impl Cluster {
    /// Every node's status; `None` for nodes that are down or paused (a
    /// paused node answers nothing).
    pub async fn statuses(&self) -> BTreeMap<NodeId, Option<NodeStatus>> {
        let mut out = BTreeMap::new();
        if let Some(p) = &self.procs {
            for (id, slot) in &self.slots {
                out.insert(*id, p.status(*id, slot.addrs.client).await);
            }
            return out;
        }
        for (id, slot) in &self.slots {
            let status = match &slot.handle {
                Some(h) if !h.is_paused() => h.status().await,
                _ => None,
            };
            out.insert(*id, status);
        }
        out
    }

    /// The running node that is leader in the highest term, if any.
    pub async fn leader(&self) -> Option<NodeId> {
        self.statuses()
            .await
            .into_iter()
            .filter_map(|(id, s)| s.map(|s| (id, s)))
            .filter(|(_, s)| s.policy.role == Role::Leader)
            .max_by_key(|(_, s)| s.policy.term)
            .map(|(id, _)| id)
    }

    /// Waits for a leader that a majority of running nodes agree on.
    pub async fn await_leader(&self, timeout: Duration) -> Option<NodeId> {
        self.await_leader_other_than(timeout, &[]).await
    }

    /// Waits for an agreed leader that is not one of `excluded` (a new
    /// leader after the old one was cut off, say).
    pub async fn await_leader_other_than(&self, timeout: Duration, excluded: &[NodeId]) -> Option<NodeId> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(leader) = self.stable_leader().await.filter(|l| !excluded.contains(l)) {
                return Some(leader);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until every running node answers a status request: what
    /// "ready" means for a policy without leaders, where any node
    /// coordinates.
    pub async fn await_every_node_serving(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let statuses = self.statuses().await;
            if self.running().iter().all(|id| statuses.get(id).is_some_and(Option::is_some)) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn stable_leader(&self) -> Option<NodeId> {
        let statuses: Vec<NodeStatus> = self.statuses().await.into_values().flatten().collect();
        let leader = statuses.iter().filter(|s| s.policy.role == Role::Leader).max_by_key(|s| s.policy.term)?;
        let term = leader.policy.term;
        let agree =
            statuses.iter().filter(|s| s.policy.term == term && s.policy.leader == Some(leader.policy.id)).count();
        (agree * 2 > self.slots.len()).then_some(leader.policy.id)
    }
}
