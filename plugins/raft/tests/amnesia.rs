//! Members that lost durable state (a wiped disk, a log cut by repair):
//! they catch up, and they cannot help elect a leader that lacks entries
//! they once acknowledged (`amnesia.rs`).

mod support;

use std::cell::Cell;
use std::rc::Rc;

use bytes::Bytes;
use replab_api::{
    Effect, Effects, Input, Instant, LogIndex, LogPosition, Memory, NodeId, PolicyContext, Recovered,
    ReplicationPolicy, Role,
};
use replab_raft::message::{VoteRequest, VoteResponse};
use replab_raft::{Message, Raft, RaftConfig};
use replab_sim::{ProposalStatus, Sim, SimOptions};
use support::*;

/// Proposes `n` commands at the leader, one batch of 4 every 10 ms, and
/// returns the highest index the leader committed.
fn load(sim: &mut Sim<Raft>, batches: usize) -> LogIndex {
    for _ in 0..batches {
        if let Some(leader) = sim.leader() {
            sim.propose_commands(leader, 4).unwrap();
        }
        sim.run_for(10 * MS).unwrap();
    }
    sim.leader().map_or(0, |l| sim.commit_index(l))
}

#[test]
fn a_wiped_follower_catches_up_under_load_and_the_leader_restarts_its_progress() {
    let mut sim = cluster(11, 3, RaftConfig::default());
    let leader = elect(&mut sim);
    let follower = (1..=3).find(|&id| id != leader).unwrap();
    let committed = load(&mut sim, 50);
    assert!(wait_applied_everywhere(&mut sim, committed, 2 * SECOND));

    sim.crash(follower);
    sim.wipe(follower);
    sim.restart(follower).unwrap();
    assert_eq!(sim.policy(follower).unwrap().memory(), Memory::Blank);
    // Load goes on while the wiped follower rejoins.
    let committed = load(&mut sim, 100);
    assert!(committed > 600, "the cluster kept committing: {committed}");
    assert!(
        wait_applied_everywhere(&mut sim, committed, 3 * SECOND),
        "the wiped follower caught up: applied {} of {committed}",
        sim.last_applied(follower)
    );
    let raft = sim.policy(follower).unwrap();
    assert_eq!(raft.memory(), Memory::Intact, "caught up, it remembers again");
    assert_eq!(raft.stats().memory_restored_by_catch_up, 1);
    assert_eq!(sim.durable(follower).memory, Memory::Intact, "and that is durable");
    let leader = sim.leader().unwrap();
    assert!(sim.policy(leader).unwrap().stats().progress_resets_after_memory_loss >= 1);
    // Its durable log is the leader's.
    assert_eq!(sim.durable(follower).last_index(), sim.durable(leader).last_index());
}

/// Node 1 leads and commits with node 2 while node 3 is cut off; then the
/// leader dies and node 2's disk is wiped. Nodes 2 and 3 alone must not
/// elect a leader: node 3 lacks the committed entries and node 2 no longer
/// knows it. `memory_on_restart` is what the engine reports for node 2.
fn wiped_voter_scenario(memory_on_restart: Memory) -> (Sim<Raft>, LogPosition, Option<NodeId>) {
    let reported = Rc::new(Cell::new(Memory::Intact));
    let report = Rc::clone(&reported);
    let mut options = SimOptions::new(5, 3);
    // The wipe takes node 2 below a quorum of copies of committed entries,
    // which the harness's durability invariant rightly reports; this test
    // checks the outcome itself.
    options.check_invariants = false;
    let mut sim = Sim::new(options, move |ctx: PolicyContext, mut recovered: Recovered| {
        if ctx.id == 2 && recovered.memory == Memory::Blank {
            recovered.memory = report.get();
        }
        Raft::new(ctx, RaftConfig::default(), recovered)
    });
    // Node 1 must be the leader: give the others no chance.
    sim.network_mut().isolate(3);
    let mut leader = elect(&mut sim);
    while leader != 1 {
        sim.crash(leader);
        sim.run_for(SECOND).unwrap();
        sim.restart(leader).unwrap();
        leader = elect(&mut sim);
    }
    let committed = load(&mut sim, 30);
    assert!(wait_applied_everywhere(&mut sim, committed, SECOND) || sim.last_applied(2) >= committed);
    assert!(sim.durable(3).last_index() < committed, "node 3 missed the committed entries");
    let committed = LogPosition { index: committed, term: sim.durable(1).term_at(committed).unwrap() };

    sim.crash(1);
    sim.crash(2);
    sim.wipe(2);
    reported.set(memory_on_restart);
    sim.restart(2).unwrap();
    sim.network_mut().heal();
    sim.run_for(3 * SECOND).unwrap();
    let stale_leader = sim.leader();
    (sim, committed, stale_leader)
}

#[test]
fn a_wiped_voter_cannot_elect_a_leader_that_lacks_entries_it_acknowledged() {
    let (mut sim, committed, stale_leader) = wiped_voter_scenario(Memory::Blank);
    assert_eq!(stale_leader, None, "nodes 2 and 3 elected a leader without the committed entries");
    assert_eq!(sim.policy(2).unwrap().memory(), Memory::Blank, "node 3 holds data, so node 2 stays blank");

    // The node that holds the entries comes back: it is elected (node 3
    // votes for it), node 2 catches up, and nothing committed is lost.
    sim.restart(1).unwrap();
    let leader = sim.wait_for_leader(5 * SECOND).unwrap().expect("node 1 is elected");
    assert_eq!(leader, 1);
    assert!(wait_applied_everywhere(&mut sim, committed.index, 5 * SECOND));
    for id in 1..=3 {
        assert_eq!(sim.durable(id).term_at(committed.index), Some(committed.term), "node {id} holds the entry");
    }
    assert_eq!(sim.policy(2).unwrap().memory(), Memory::Intact);
}

/// The broken variant: an engine that reports a wiped disk as intact. The
/// same schedule elects node 3 and the entries node 1 committed are gone.
#[test]
fn a_wiped_voter_reported_as_intact_elects_a_stale_leader_and_loses_entries() {
    let (mut sim, committed, stale_leader) = wiped_voter_scenario(Memory::Intact);
    let stale = stale_leader.expect("a leader was elected without node 1");
    assert_ne!(stale, 1);
    sim.restart(1).unwrap();
    sim.run_for(3 * SECOND).unwrap();
    for id in 1..=3 {
        assert_ne!(
            sim.durable(id).term_at(committed.index),
            Some(committed.term),
            "node {id}: the committed entry {committed:?} was overwritten"
        );
    }
}

#[test]
fn a_fresh_cluster_of_blank_nodes_elects_once_every_member_says_it_holds_nothing() {
    let mut options = SimOptions::new(3, 3);
    options.link = fast_lan();
    let mut sim = Sim::new(options, |ctx: PolicyContext, mut recovered: Recovered| {
        recovered.memory = Memory::Blank;
        Raft::new(ctx, RaftConfig::default(), recovered)
    });
    // One member is down: the others cannot tell a first start from two
    // wiped disks, so they wait for it.
    sim.crash(3);
    sim.run_for(3 * SECOND).unwrap();
    assert_eq!(sim.leader(), None);
    sim.restart(3).unwrap();
    let leader = elect(&mut sim);
    for id in 1..=3 {
        let raft = sim.policy(id).unwrap();
        assert_eq!(raft.memory(), Memory::Intact, "node {id}");
    }
    let by_empty_cluster: u64 =
        (1..=3).map(|id| sim.policy(id).unwrap().stats().memory_restored_by_empty_cluster).sum();
    assert!(by_empty_cluster >= 2, "restored by the empty-cluster rule: {by_empty_cluster}");
    let proposal = sim.propose_commands(leader, 3).unwrap();
    sim.run_for(SECOND).unwrap();
    assert!(matches!(sim.proposal(proposal).unwrap().status, ProposalStatus::Committed { .. }));
}

fn node_with(memory: Memory, terms: &[u64]) -> Raft {
    let ctx = PolicyContext { id: 1, members: vec![1, 2, 3], seed: 7 };
    let recovered = Recovered { memory, ..recovered(terms.last().copied().unwrap_or(0), None, terms) };
    Raft::new(ctx, RaftConfig::default(), recovered)
}

/// Steps a vote request from node 2 and returns the answer.
fn ask_vote(raft: &mut Raft, term: u64, last: LogPosition) -> VoteResponse {
    let bytes = Message::Vote(VoteRequest { term, last, forced: false }).encode();
    let mut out = Effects::new();
    raft.step(Instant::from_micros(1), Input::Message { from: 2, bytes }, &mut out).unwrap();
    let answers: Vec<Bytes> = out
        .drain()
        .filter_map(|e| match e {
            Effect::Send { to: 2, bytes, .. } => Some(bytes),
            _ => None,
        })
        .collect();
    match Message::decode(answers.last().expect("an answer")).unwrap() {
        Message::VoteResponse(response) => response,
        other => panic!("unexpected answer {other:?}"),
    }
}

#[test]
fn a_repaired_node_votes_only_for_candidates_as_up_to_date_as_the_log_it_had() {
    // Its log was cut to [1, 1, 2] but once reached index 6 of term 2.
    let reached = LogPosition { index: 6, term: 2 };
    let memory = Memory::Truncated { reached };
    let behind = LogPosition { index: 5, term: 2 };
    assert!(!ask_vote(&mut node_with(memory, &[1, 1, 2]), 3, behind).granted, "shorter than what it had");
    assert!(ask_vote(&mut node_with(memory, &[1, 1, 2]), 3, reached).granted);
    assert!(ask_vote(&mut node_with(memory, &[1, 1, 2]), 3, LogPosition { index: 4, term: 3 }).granted);
    // The same node with its memory intact would grant the shorter log.
    assert!(ask_vote(&mut node_with(Memory::Intact, &[1, 1, 2]), 3, behind).granted);
    // A blank node grants nothing.
    assert!(!ask_vote(&mut node_with(Memory::Blank, &[]), 3, LogPosition { index: 90, term: 3 }).granted);
}

#[test]
fn a_node_that_lost_state_never_campaigns() {
    for memory in [Memory::Blank, Memory::Truncated { reached: LogPosition { index: 9, term: 1 } }] {
        let mut raft = node_with(memory, &[1, 1]);
        let mut out = Effects::new();
        for ms in 0..5_000u64 {
            raft.step(Instant::from_micros(ms * 1_000), Input::Tick, &mut out).unwrap();
        }
        assert_eq!(raft.role(), Role::Follower, "{memory:?}");
        assert_eq!(raft.stats().pre_votes_started + raft.stats().elections_started, 0, "{memory:?}");
        assert_eq!(raft.term(), 1, "{memory:?}: the term did not move");
    }
}
