//! Snapshots, compaction, and what a restart re-applies.

mod support;

use replab_api::{LogIndex, NodeId};
use replab_raft::RaftConfig;
use replab_sim::{Sim, SimOptions};
use support::*;

fn snapshotting(threshold: u64) -> RaftConfig {
    RaftConfig { snapshot_threshold_entries: threshold, ..RaftConfig::default() }
}

fn fingerprint(sim: &Sim<replab_raft::Raft>, id: NodeId) -> (LogIndex, u64) {
    let machine = sim.state_machine(id).unwrap();
    (machine.applied, machine.digest)
}

/// Acceptance 10: a follower that was down while the leader compacted its
/// log past the follower's last entry gets the snapshot, then continues
/// from the log like any other follower.
#[test]
fn follower_behind_the_compaction_point_gets_a_snapshot_then_resumes_from_the_log() {
    let mut options = SimOptions::new(10, 3);
    options.link = fast_lan();
    let mut sim = cluster_with(options, |_| snapshotting(20));
    let leader = elect(&mut sim);
    sim.propose_commands(leader, 5).unwrap();
    assert!(wait_applied_everywhere(&mut sim, 6, SECOND));
    let lagging = (1..=3).find(|&id| id != leader).unwrap();
    sim.crash(lagging);

    for _ in 0..20 {
        sim.propose_commands(leader, 5).unwrap();
        sim.run_for(20 * MS).unwrap();
    }
    sim.run_for(SECOND).unwrap();
    let leader_status = sim.status(leader).unwrap();
    assert!(leader_status.first_index > 7, "the leader compacted past the follower: {leader_status:?}");
    assert!(sim.durable(leader).snapshot_index() >= leader_status.first_index - 1);
    assert_eq!(sim.durable(lagging).last_index(), 6, "the follower stopped at index 6");

    sim.restart(lagging).unwrap();
    sim.run_for(SECOND).unwrap();
    let follower = sim.policy(lagging).unwrap();
    assert_eq!(follower.stats().snapshots_installed, 1, "caught up with one snapshot");
    assert!(sim.policy(leader).unwrap().stats().snapshots_sent >= 1);
    let installed_at = sim.durable(lagging).snapshot_index();
    assert!(installed_at >= leader_status.first_index - 1);

    // From here on, plain appends.
    sim.propose_commands(leader, 3).unwrap();
    sim.run_for(SECOND).unwrap();
    let last = sim.status(leader).unwrap().last_index;
    assert!(wait_applied_everywhere(&mut sim, last, SECOND));
    assert_eq!(sim.policy(lagging).unwrap().stats().snapshots_installed, 1, "no second snapshot was needed");
    assert!(
        sim.log(lagging).entries().iter().any(|e| e.index > installed_at && e.index == last),
        "the follower's log continues after the snapshot"
    );
    assert_eq!(fingerprint(&sim, lagging), fingerprint(&sim, leader), "same state as the leader");
}

/// Acceptance 13: after a restart a node re-applies the committed entries
/// after its snapshot exactly once each, in order, and ends in the same
/// state as the others; with or without a snapshot, follower or leader.
#[test]
fn restarted_node_reapplies_committed_entries_exactly_once() {
    for threshold in [0, 16] {
        let mut options = SimOptions::new(13, 3);
        options.link = fast_lan();
        let mut sim = cluster_with(options, move |_| snapshotting(threshold));
        let leader = elect(&mut sim);
        for _ in 0..10 {
            sim.propose_commands(leader, 5).unwrap();
            sim.run_for(20 * MS).unwrap();
        }
        assert!(wait_applied_everywhere(&mut sim, 51, SECOND));
        let follower = (1..=3).find(|&id| id != leader).unwrap();

        for node in [follower, leader] {
            sim.crash(node);
            sim.restart(node).unwrap();
            let snapshot = sim.durable(node).snapshot_index();
            assert_eq!(sim.status(node).unwrap().applied_index, snapshot, "restored from the snapshot only");
            if threshold > 0 {
                assert!(snapshot >= 16, "threshold {threshold}: a snapshot was taken");
            }
            if let Some(leader) = sim.leader() {
                sim.propose_commands(leader, 2).unwrap();
            }
            sim.run_for(2 * SECOND).unwrap();
            let commit = sim.status(node).unwrap().commit_index;
            let applied: Vec<LogIndex> = sim.applied(node).iter().map(|p| p.index).collect();
            assert_eq!(
                applied,
                (snapshot + 1..=commit).collect::<Vec<_>>(),
                "threshold {threshold}, node {node}: each committed entry after the snapshot applied once"
            );
            let others: Vec<NodeId> = (1..=3).filter(|&id| id != node).collect();
            let reference = others.iter().find(|&&id| sim.last_applied(id) == sim.last_applied(node)).copied();
            let reference = reference.expect("another node applied as far");
            assert_eq!(fingerprint(&sim, node), fingerprint(&sim, reference), "same state as node {reference}");
        }
    }
}
