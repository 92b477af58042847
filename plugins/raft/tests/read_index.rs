//! Linearizable reads with ReadIndex.

mod support;

use replab_api::{EntryKind, RejectReason, Role};
use replab_raft::{Message, RaftConfig};
use replab_sim::{ReadStatus, Sim, SimOptions};
use support::*;

/// Acceptance 12: a new leader may not know the latest commit index (its
/// predecessor committed an entry and handed over before telling it). It
/// must serve no read until it commits an entry of its own term; serving
/// at its stale commit index would return a stale value.
#[test]
fn new_leader_serves_no_read_index_before_committing_an_entry_of_its_term() {
    let mut options = SimOptions::new(12, 3);
    options.link = fast_lan();
    let mut sim = cluster_with(options, |_| RaftConfig::default());
    let old = elect(&mut sim);
    sim.propose_commands(old, 3).unwrap();
    assert!(wait_applied_everywhere(&mut sim, 4, SECOND));
    let new = (1..=3).find(|&id| id != old).unwrap();

    // The new leader's appends carrying entries are lost; its heartbeats
    // (which confirm leadership for reads) get through.
    sim.set_filter(move |from, _, bytes| {
        from != new || !matches!(Message::decode(bytes), Ok(Message::Append(a)) if !a.entries.is_empty())
    });
    // A write the old leader commits right before handing over: `new`
    // stores it, but learns that it committed only from its own no-op.
    sim.propose_commands(old, 1).unwrap();
    sim.transfer_leader(old, new).unwrap();
    assert!(sim.run_until_cond(sim.now_us() + SECOND, |s| s.role(new) == Some(Role::Leader)).unwrap());
    let stale_commit = sim.status(new).unwrap().commit_index;
    assert!(stale_commit < sim.max_committed(), "the new leader's commit index lags the cluster's");

    let read = sim.read(new).unwrap();
    sim.run_for(SECOND).unwrap();
    assert_eq!(sim.role(new), Some(Role::Leader), "heartbeats kept it leader");
    assert_eq!(sim.read_record(read).unwrap().status, ReadStatus::Submitted, "no read before a commit in its term");
    assert_eq!(sim.status(new).unwrap().commit_index, stale_commit);

    sim.clear_filter();
    assert!(
        sim.run_until_cond(sim.now_us() + SECOND, |s| s.read_record(read).unwrap().status != ReadStatus::Submitted)
            .unwrap()
    );
    let noop = sim.policy(new).unwrap().log_entries().iter().rev().find(|e| e.kind == EntryKind::Noop).unwrap().index;
    let ReadStatus::Ready { index } = sim.read_record(read).unwrap().status else { panic!("the read is served") };
    assert!(index >= noop, "read index {index} covers the new leader's no-op at {noop}");
    assert!(index >= sim.max_committed().min(noop));
}

fn leader_and_reads(seed: u64) -> (Sim<replab_raft::Raft>, u64) {
    let mut options = SimOptions::new(seed, 3);
    options.link = fast_lan();
    let mut sim = cluster_with(options, |_| RaftConfig::default());
    let leader = elect(&mut sim);
    sim.propose_commands(leader, 2).unwrap();
    assert!(wait_applied_everywhere(&mut sim, 3, SECOND));
    (sim, leader)
}

#[test]
fn reads_on_the_leader_are_confirmed_by_a_heartbeat_round() {
    let (mut sim, leader) = leader_and_reads(1);
    let commit = sim.status(leader).unwrap().commit_index;
    let read = sim.read(leader).unwrap();
    assert_eq!(sim.read_record(read).unwrap().status, ReadStatus::Submitted, "a quorum must confirm first");
    sim.run_for(10 * MS).unwrap();
    assert_eq!(sim.read_record(read).unwrap().status, ReadStatus::Ready { index: commit });
}

#[test]
fn followers_reject_reads_with_a_leader_hint() {
    let (mut sim, leader) = leader_and_reads(2);
    let follower = (1..=3).find(|&id| id != leader).unwrap();
    let read = sim.read(follower).unwrap();
    assert_eq!(
        sim.read_record(read).unwrap().status,
        ReadStatus::Rejected(RejectReason::NotLeader { leader_hint: Some(leader) })
    );
}

#[test]
fn reads_pending_when_leadership_is_lost_are_rejected() {
    let (mut sim, leader) = leader_and_reads(3);
    sim.network_mut().isolate(leader);
    let read = sim.read(leader).unwrap();
    sim.run_for(SECOND).unwrap();
    assert_ne!(sim.role(leader), Some(Role::Leader), "CheckQuorum deposed the isolated leader");
    assert_eq!(sim.read_record(read).unwrap().status, ReadStatus::Rejected(RejectReason::LeadershipLost));
}

/// ReadIndex batching: reads handed over in one input share one heartbeat
/// round (one heartbeat per follower), and each is still confirmed only by
/// a round that started after it arrived.
#[test]
fn reads_that_arrive_together_share_one_heartbeat_round() {
    use std::cell::Cell;
    use std::rc::Rc;
    let (mut sim, leader) = leader_and_reads(5);
    let commit = sim.status(leader).unwrap().commit_index;
    let heartbeats = Rc::new(Cell::new(0u64));
    let counted = Rc::clone(&heartbeats);
    sim.set_filter(move |from, _, bytes| {
        if from == leader && matches!(Message::decode(bytes), Ok(Message::Heartbeat(_))) {
            counted.set(counted.get() + 1);
        }
        true
    });
    let batch = sim.read_many(leader, 10).unwrap();
    sim.run_for(MS).unwrap();
    assert_eq!(heartbeats.get(), 2, "one round of heartbeats, one per follower, for ten reads");
    sim.run_for(10 * MS).unwrap();
    for id in &batch {
        assert_eq!(sim.read_record(*id).unwrap().status, ReadStatus::Ready { index: commit });
    }

    // The same ten reads one input each: ten rounds.
    heartbeats.set(0);
    let single: Vec<_> = (0..10).map(|_| sim.read(leader).unwrap()).collect();
    sim.run_for(MS).unwrap();
    assert_eq!(heartbeats.get(), 20, "a round per read when each arrives alone");
    sim.run_for(10 * MS).unwrap();
    assert!(single.iter().all(|id| sim.read_record(*id).unwrap().status == ReadStatus::Ready { index: commit }));
}
