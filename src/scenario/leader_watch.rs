//! Who leads, sampled while a scenario runs: leader changes for the
//! report's marks, and the time the cluster spent without a leader (or,
//! under a policy without leaders, without a serving majority).
//!
//! The script's calls hold the cluster for as long as they wait (an
//! `await_leader` through a whole failover), so the watch does not go
//! through it: it reads the nodes' published roles ([`NodeBoard`]) every
//! few milliseconds. The definitions are those of `Cluster::await_leader`:
//! a leader counts once a majority of the members agree on it (same term,
//! same leader) among the nodes that answer (running, not paused). Under
//! a keyed policy the cluster is available while a majority of members
//! answer; partitions between running nodes are not seen by that measure.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use replab_api::{NodeId, Role};

use super::run_state::RunState;
use crate::cluster::NodeBoard;
use crate::node::metrics::RoleView;

/// How often roles are sampled: well below an election timeout.
const SAMPLE_EVERY: Duration = Duration::from_millis(10);

/// The cluster's state as the watch saw it, from `at_s` until the next.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Leadership {
    /// Seconds since the run started.
    pub at_s: f64,
    #[serde(flatten)]
    pub state: LeaderState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum LeaderState {
    /// A leader a majority agrees on.
    Leader { leader: NodeId, term: u64 },
    /// None agreed on (an election, a partition, a crash).
    NoLeader,
    /// Keyed policy: a majority of members answer.
    Quorum,
    /// Keyed policy: fewer than a majority answer.
    NoQuorum,
    /// The cluster stopped; the watch ends here.
    Stopped,
}

impl LeaderState {
    pub fn available(self) -> bool {
        matches!(self, LeaderState::Leader { .. } | LeaderState::Quorum)
    }
}

/// Samples the board until `stop`, recording every change in the run.
pub async fn watch(board: NodeBoard, members: usize, keyed: bool, run: Arc<RunState>, stop: CancellationToken) {
    let cluster = run.new_cluster_watch();
    let mut last = None;
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let views: BTreeMap<NodeId, RoleView> =
            board.lock().expect("node board lock").iter().map(|(id, m)| (*id, m.role_view())).collect();
        let state = if keyed { quorum(&views, members) } else { agreed_leader(&views, members) };
        if last != Some(state) {
            last = Some(state);
            run.leadership(cluster, state);
        }
    }
    run.leadership(cluster, LeaderState::Stopped);
}

fn agreed_leader(views: &BTreeMap<NodeId, RoleView>, members: usize) -> LeaderState {
    let serving = || views.values().filter(|v| v.serving);
    let Some((id, leader)) =
        views.iter().filter(|(_, v)| v.serving && v.role == Role::Leader).max_by_key(|(_, v)| v.term)
    else {
        return LeaderState::NoLeader;
    };
    let agree = serving().filter(|v| v.term == leader.term && v.leader == Some(*id)).count();
    if agree * 2 > members { LeaderState::Leader { leader: *id, term: leader.term } } else { LeaderState::NoLeader }
}

fn quorum(views: &BTreeMap<NodeId, RoleView>, members: usize) -> LeaderState {
    let serving = views.values().filter(|v| v.serving).count();
    if serving * 2 > members { LeaderState::Quorum } else { LeaderState::NoQuorum }
}

/// What the samples add up to, over one run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Availability {
    /// Seconds from the first leader (or quorum) to the cluster's stop.
    pub watched_s: f64,
    /// Of those, seconds without a leader (or without a serving majority).
    pub unavailable_s: f64,
    /// Times the agreed leader changed to another node or term after the
    /// first one (failovers and re-elections).
    pub leader_changes: u64,
}

/// Sums the spans between samples; a span still open at `end_s` (the
/// cluster was never stopped) runs to it. Before the first available
/// sample the cluster is starting, which is not an outage.
pub fn availability(samples: &[Leadership], end_s: f64) -> Availability {
    let mut out = Availability::default();
    let Some(first) = samples.iter().position(|s| s.state.available()) else { return out };
    let mut leader = None;
    for (i, sample) in samples.iter().enumerate().skip(first) {
        if sample.state == LeaderState::Stopped {
            continue;
        }
        let until = samples.get(i + 1).map_or(end_s, |next| next.at_s).max(sample.at_s);
        out.watched_s += until - sample.at_s;
        if !sample.state.available() {
            out.unavailable_s += until - sample.at_s;
        }
        if let LeaderState::Leader { leader: id, term } = sample.state {
            if leader.is_some_and(|l| l != (id, term)) {
                out.leader_changes += 1;
            }
            leader = Some((id, term));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(role: Role, term: u64, leader: Option<NodeId>) -> RoleView {
        RoleView { serving: true, role, term, leader }
    }

    #[test]
    fn a_leader_counts_once_a_majority_agrees_and_a_paused_one_does_not() {
        let mut views = BTreeMap::from([
            (1, view(Role::Leader, 2, Some(1))),
            (2, view(Role::Follower, 2, Some(1))),
            (3, view(Role::Candidate, 3, None)),
        ]);
        assert_eq!(agreed_leader(&views, 3), LeaderState::Leader { leader: 1, term: 2 });
        views.get_mut(&2).unwrap().leader = None;
        assert_eq!(agreed_leader(&views, 3), LeaderState::NoLeader);
        views.get_mut(&2).unwrap().leader = Some(1);
        views.get_mut(&1).unwrap().serving = false;
        assert_eq!(agreed_leader(&views, 3), LeaderState::NoLeader);
        assert_eq!(quorum(&views, 3), LeaderState::Quorum);
        views.get_mut(&2).unwrap().serving = false;
        assert_eq!(quorum(&views, 3), LeaderState::NoQuorum);
    }

    #[test]
    fn unavailable_time_runs_from_the_first_leader_and_counts_the_gaps() {
        let at = |at_s, state| Leadership { at_s, state };
        let samples = [
            at(0.0, LeaderState::NoLeader),
            at(0.2, LeaderState::Leader { leader: 1, term: 1 }),
            at(1.0, LeaderState::NoLeader),
            at(1.3, LeaderState::Leader { leader: 3, term: 2 }),
            at(2.0, LeaderState::Stopped),
        ];
        let a = availability(&samples, 9.0);
        assert!((a.watched_s - 1.8).abs() < 1e-9, "{a:?}");
        assert!((a.unavailable_s - 0.3).abs() < 1e-9, "{a:?}");
        assert_eq!(a.leader_changes, 1);
        assert_eq!(availability(&samples[..1], 9.0), Availability::default());
    }
}
