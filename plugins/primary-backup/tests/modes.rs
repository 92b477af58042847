//! Each mode's acknowledgement rule: async acknowledges on the primary's
//! own disk, sync on every member's, quorum on a majority's.

mod support;

use replab_primary_backup::{Bug, Mode};
use support::*;

#[test]
fn async_acknowledges_once_durable_on_the_primary_before_any_backup_has_it() {
    let (mut sim, primary) = steady(1, 3, config(Mode::Async));
    let backups = others(&sim, primary);
    for &b in &backups {
        sim.set_disk_stalled(b, true);
    }
    let before = sim.policy(primary).unwrap().stats().acks_before_replication;
    let proposal = propose(&mut sim, primary, 3);
    let last = last_index_of(&sim, proposal);
    sim.run_for(50 * MS).unwrap();
    assert!(is_committed(&sim, proposal), "acknowledged with no backup's copy: {:?}", status_of(&sim, proposal));
    assert!(sim.durable(primary).last_index() >= last);
    for &b in &backups {
        assert!(sim.durable(b).last_index() < last, "node {b}'s disk is stalled");
        assert!(sim.log(b).last_index() >= last, "node {b} received the entries, unsynced");
    }
    let counted = sim.policy(primary).unwrap().stats().acks_before_replication - before;
    assert_eq!(counted, 3, "three entries acknowledged before replication");
}

#[test]
fn async_does_not_acknowledge_before_its_own_write_is_durable() {
    let (mut sim, primary) = steady(2, 3, config(Mode::Async));
    sim.set_disk_stalled(primary, true);
    let proposal = propose(&mut sim, primary, 1);
    let last = last_index_of(&sim, proposal);
    sim.run_for(200 * MS).unwrap();
    assert!(!is_committed(&sim, proposal));
    assert!(sim.commit_index(primary) < last);
    sim.set_disk_stalled(primary, false);
    sim.run_for(50 * MS).unwrap();
    assert!(is_committed(&sim, proposal));
}

#[test]
fn sync_waits_for_every_backup_and_stalls_while_one_is_down() {
    let (mut sim, primary) = steady(3, 3, config(Mode::Sync));
    let backups = others(&sim, primary);
    sim.set_disk_stalled(backups[1], true);
    let proposal = propose(&mut sim, primary, 2);
    let last = last_index_of(&sim, proposal);
    sim.run_for(300 * MS).unwrap();
    assert!(sim.durable(backups[0]).last_index() >= last, "a majority holds it durably");
    assert!(!is_committed(&sim, proposal), "one backup's disk is stalled: no acknowledgement");
    sim.set_disk_stalled(backups[1], false);
    sim.run_for(100 * MS).unwrap();
    assert!(is_committed(&sim, proposal), "every member holds it now");

    // A crashed backup stalls writes until it is back.
    sim.crash(backups[1]);
    declare_dead(&mut sim, backups[1]);
    let proposal = propose(&mut sim, primary, 1);
    sim.run_for(SECOND).unwrap();
    assert!(!is_committed(&sim, proposal), "sync stalls while any backup is down");
    assert_eq!(sim.leader(), Some(primary), "the primary is alive: no failover");
    sim.restart(backups[1]).unwrap();
    sim.run_for(SECOND).unwrap();
    assert!(is_committed(&sim, proposal), "the restarted backup caught up and the write was acknowledged");
}

#[test]
fn quorum_acknowledges_at_a_majority_not_before() {
    let (mut sim, primary) = steady(4, 5, config(Mode::Quorum));
    let backups = others(&sim, primary);
    for &b in &backups {
        sim.set_disk_stalled(b, true);
    }
    let proposal = propose(&mut sim, primary, 2);
    let last = last_index_of(&sim, proposal);
    sim.run_for(200 * MS).unwrap();
    assert!(!is_committed(&sim, proposal), "only the primary's copy is durable");
    sim.set_disk_stalled(backups[0], false);
    sim.run_for(200 * MS).unwrap();
    assert!(!is_committed(&sim, proposal), "two of five is not a majority");
    sim.set_disk_stalled(backups[1], false);
    sim.run_for(100 * MS).unwrap();
    assert!(is_committed(&sim, proposal), "three of five is");
    let durable = nodes(&sim).into_iter().filter(|&n| sim.durable(n).last_index() >= last).count();
    assert_eq!(durable, 3, "acknowledged with exactly a majority");
}

/// The `ack_before_quorum` switch makes quorum and sync mode acknowledge
/// on the primary's disk alone; the simulator's durability check sees it
/// at the first commit (the new primary's no-op).
#[test]
fn ack_before_quorum_is_caught_by_the_harness() {
    for mode in [Mode::Quorum, Mode::Sync] {
        let mut sim = cluster(5, 3, with_bug(mode, Bug::AckBeforeQuorum));
        let violation = sim.run_for(2 * SECOND).expect_err("a commit durable on fewer nodes than the mode needs");
        assert_eq!(violation.invariant, replab_sim::Invariant::CommitDurability, "{mode}: {violation}");
        // Correct code under the same schedule commits nothing early.
        let mut sim = cluster(5, 3, config(mode));
        sim.run_for(2 * SECOND).expect("no violation");
        assert!(sim.max_committed() >= 1);
    }
}

#[test]
fn a_full_primary_refuses_with_busy_and_a_backup_points_at_the_primary() {
    let config = replab_primary_backup::PrimaryBackupConfig { max_uncommitted_entries: 4, ..config(Mode::Quorum) };
    let (mut sim, primary) = steady(6, 3, config);
    for b in others(&sim, primary) {
        sim.set_disk_stalled(b, true);
    }
    let first = propose(&mut sim, primary, 4);
    assert!(matches!(status_of(&sim, first), replab_sim::ProposalStatus::Proposed { .. }));
    let refused = propose(&mut sim, primary, 1);
    assert_eq!(status_of(&sim, refused), replab_sim::ProposalStatus::Rejected(replab_api::RejectReason::Busy));
    let backup = others(&sim, primary)[0];
    let redirected = propose(&mut sim, backup, 1);
    let hint = replab_api::RejectReason::NotLeader { leader_hint: Some(primary) };
    assert_eq!(status_of(&sim, redirected), replab_sim::ProposalStatus::Rejected(hint));
}
