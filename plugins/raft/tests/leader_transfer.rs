//! Leader transfer.

mod support;

use replab_api::{RejectReason, Role};
use replab_raft::RaftConfig;
use replab_sim::{ProposalStatus, SimOptions};
use support::*;

/// Acceptance 14: leadership moves to an up-to-date follower at once: the
/// old leader refuses proposals meanwhile, the target campaigns without
/// PreVote and wins although the other follower is inside its lease.
#[test]
fn leader_transfer_to_an_up_to_date_follower() {
    let mut options = SimOptions::new(14, 3);
    options.link = fast_lan();
    let mut sim = cluster_with(options, |_| RaftConfig::default());
    let old = elect(&mut sim);
    sim.propose_commands(old, 10).unwrap();
    assert!(wait_applied_everywhere(&mut sim, 11, SECOND));
    let term = sim.policy(old).unwrap().term();
    let target = (1..=3).find(|&id| id != old).unwrap();
    let pre_votes_before = sim.policy(target).unwrap().stats().pre_votes_started;

    sim.transfer_leader(old, target).unwrap();
    let refused = sim.propose_commands(old, 1).unwrap();
    assert_eq!(sim.proposal(refused).unwrap().status, ProposalStatus::Rejected(RejectReason::TransferInProgress));
    let started = sim.now_us();
    assert!(sim.run_until_cond(started + SECOND, |s| s.role(target) == Some(Role::Leader)).unwrap());
    let took_us = sim.now_us() - started;
    assert!(took_us < 50 * MS, "a transfer takes a round trip or two, not an election timeout: {took_us}us");

    let raft = sim.policy(target).unwrap();
    assert_eq!(raft.term(), term + 1);
    assert_eq!(raft.stats().pre_votes_started, pre_votes_before, "TimeoutNow skips PreVote");
    sim.run_for(200 * MS).unwrap();
    assert_eq!(leaders(&sim), vec![(target, term + 1)]);
    assert_eq!(sim.policy(old).unwrap().leader(), Some(target));
    let accepted = sim.propose_commands(target, 1).unwrap();
    sim.run_for(100 * MS).unwrap();
    assert!(matches!(sim.proposal(accepted).unwrap().status, ProposalStatus::Committed { .. }));
}

/// The leader first brings a lagging target up to date, then hands over.
#[test]
fn leader_transfer_catches_a_lagging_target_up_first() {
    let mut options = SimOptions::new(15, 3);
    options.link = fast_lan();
    let mut sim = cluster_with(options, |_| RaftConfig::default());
    let old = elect(&mut sim);
    let target = (1..=3).find(|&id| id != old).unwrap();
    sim.crash(target);
    sim.propose_commands(old, 20).unwrap();
    sim.run_for(200 * MS).unwrap();
    sim.restart(target).unwrap();
    sim.transfer_leader(old, target).unwrap();
    assert!(sim.run_until_cond(sim.now_us() + SECOND, |s| s.role(target) == Some(Role::Leader)).unwrap());
    assert!(sim.log(target).last_index() >= 22, "the target held the whole log when it won");
}

/// A transfer to a node that never answers is abandoned after an election
/// timeout, and proposals are accepted again.
#[test]
fn leader_transfer_to_a_dead_node_is_abandoned() {
    let mut options = SimOptions::new(16, 3);
    options.link = fast_lan();
    let mut sim = cluster_with(options, |_| RaftConfig::default());
    let leader = elect(&mut sim);
    let target = (1..=3).find(|&id| id != leader).unwrap();
    sim.crash(target);
    sim.transfer_leader(leader, target).unwrap();
    assert_eq!(sim.policy(leader).unwrap().transfer_target(), Some(target));
    sim.run_for(400 * MS).unwrap();
    let raft = sim.policy(leader).unwrap();
    assert_eq!(raft.transfer_target(), None);
    assert_eq!(raft.stats().transfers_aborted, 1);
    let id = sim.propose_commands(leader, 1).unwrap();
    sim.run_for(100 * MS).unwrap();
    assert!(matches!(sim.proposal(id).unwrap().status, ProposalStatus::Committed { .. }));
}

#[test]
fn only_the_leader_transfers_and_only_to_members() {
    let mut options = SimOptions::new(17, 3);
    options.link = fast_lan();
    let mut sim = cluster_with(options, |_| RaftConfig::default());
    let leader = elect(&mut sim);
    let follower = (1..=3).find(|&id| id != leader).unwrap();
    assert!(sim.transfer_leader(follower, leader).unwrap().is_some(), "a follower refuses");
    assert!(sim.transfer_leader(leader, 9).unwrap().is_some(), "an unknown target is refused");
    assert!(sim.transfer_leader(leader, leader).unwrap().is_none(), "to itself: nothing to do");
    assert_eq!(sim.policy(leader).unwrap().transfer_target(), None);
}
