//! Leader election: one leader per term, stability, CheckQuorum, PreVote,
//! and split votes.

mod support;

use replab_api::{NodeId, Role};
use replab_raft::RaftConfig;
use replab_sim::{LinkConfig, SimOptions};
use support::*;

/// Acceptance 1: a 3- and a 5-node cluster elect exactly one leader, and
/// without faults nobody campaigns again over a long run.
#[test]
fn one_leader_per_term_and_no_further_elections_without_faults() {
    for nodes in [3, 5] {
        let mut options = SimOptions::new(7, nodes);
        options.link = fast_lan();
        let mut sim = cluster_with(options, |_| RaftConfig::default());
        let leader = elect(&mut sim);
        let term = sim.policy(leader).unwrap().term();
        assert_eq!(leaders(&sim), vec![(leader, term)], "{nodes} nodes: exactly one leader");
        let campaigns = |sim: &replab_sim::Sim<replab_raft::Raft>| -> (u64, u64) {
            (1..=nodes as NodeId)
                .map(|id| sim.policy(id).unwrap().stats())
                .fold((0, 0), |(e, p), s| (e + s.elections_started, p + s.pre_votes_started))
        };
        let before = campaigns(&sim);

        // A minute of virtual time with a steady trickle of writes.
        for _ in 0..600 {
            sim.propose_commands(leader, 1).unwrap();
            sim.run_for(100 * MS).unwrap();
        }
        // Neither an election nor even a PreVote round: no follower ever
        // timed out.
        assert_eq!(campaigns(&sim), before, "{nodes} nodes: a node campaigned without any fault");
        assert_eq!(sim.leaders_by_term().len(), 1, "{nodes} nodes: leaders by term {:?}", sim.leaders_by_term());
        for id in 1..=nodes as NodeId {
            let raft = sim.policy(id).unwrap();
            assert_eq!((raft.term(), raft.leader()), (term, Some(leader)), "node {id} disagrees");
        }
        assert!(sim.committed_commands() >= 590, "writes kept committing: {}", sim.committed_commands());
    }
}

/// Acceptance 8: nodes that time out together split the vote; randomized
/// timeouts still converge to one leader.
#[test]
fn split_votes_converge_to_one_leader() {
    let mut seeds_with_split = 0;
    for seed in 0..30 {
        let mut options = SimOptions::new(seed, 5);
        // Ticks every millisecond, a narrow timeout range and slow links:
        // several candidates per round are likely.
        options.tick_interval_us = MS;
        options.link = LinkConfig { delay_min_us: 3 * MS, delay_max_us: 8 * MS, ..LinkConfig::BENIGN };
        let config = RaftConfig {
            pre_vote: false,
            election_timeout_min_ms: 150,
            election_timeout_max_ms: 156,
            ..RaftConfig::default()
        };
        let mut sim = cluster_with(options, move |_| config.clone());
        let leader = sim.wait_for_leader(30 * SECOND).unwrap().unwrap_or_else(|| panic!("seed {seed}: no leader"));
        let term = sim.policy(leader).unwrap().term();
        if term > 1 {
            seeds_with_split += 1;
        }
        sim.run_for(5 * SECOND).unwrap();
        assert_eq!(leaders(&sim), vec![(leader, term)], "seed {seed}: one stable leader");
        for id in 1..=5 {
            assert_eq!(sim.policy(id).unwrap().leader(), Some(leader), "seed {seed}: node {id} follows");
        }
    }
    // Term 1 can only be won by the first candidate; a higher first
    // winning term means earlier rounds were split.
    assert!(seeds_with_split >= 5, "only {seeds_with_split} of 30 seeds split a vote: the test shows nothing");
}

/// Acceptance 6: an isolated leader cannot commit; with CheckQuorum it
/// steps down within an election timeout, and after the heal it adopts
/// the majority's higher term. Without CheckQuorum it would keep believing
/// it leads.
#[test]
fn isolated_leader_stops_committing_steps_down_and_adopts_the_higher_term() {
    for check_quorum in [true, false] {
        let mut options = SimOptions::new(11, 5);
        options.link = fast_lan();
        let mut sim = cluster_with(options, move |_| RaftConfig { check_quorum, ..RaftConfig::default() });
        let old = elect(&mut sim);
        sim.propose_commands(old, 3).unwrap();
        sim.run_for(500 * MS).unwrap();
        let old_term = sim.policy(old).unwrap().term();
        let commit_before = sim.status(old).unwrap().commit_index;

        sim.network_mut().isolate(old);
        let lost = sim.propose_commands(old, 1).unwrap();
        sim.run_for(2 * SECOND).unwrap();
        assert_eq!(sim.status(old).unwrap().commit_index, commit_before, "an isolated leader committed");
        let new = sim.leader().expect("the majority elected a leader");
        assert_ne!(new, old);
        let new_term = sim.policy(new).unwrap().term();
        assert!(new_term > old_term);
        let old_raft = sim.policy(old).unwrap();
        if check_quorum {
            // Stepped down, and since then probing with PreVote rounds that
            // cannot succeed.
            assert!(matches!(old_raft.role(), Role::Follower | Role::PreCandidate), "CheckQuorum: it steps down");
            assert_eq!(old_raft.stats().check_quorum_step_downs, 1);
            assert_eq!(old_raft.term(), old_term, "stepping down does not raise the term");
        } else {
            assert_eq!(old_raft.role(), Role::Leader, "without CheckQuorum nothing tells it");
        }

        sim.network_mut().heal();
        sim.run_for(SECOND).unwrap();
        let old_raft = sim.policy(old).unwrap();
        assert_eq!(old_raft.term(), sim.policy(new).unwrap().term(), "the old leader adopts the higher term");
        assert_eq!(old_raft.leader(), Some(new));
        assert_eq!(old_raft.role(), Role::Follower);
        assert!(
            matches!(sim.proposal(lost).unwrap().status, replab_sim::ProposalStatus::Lost),
            "the write taken while isolated is overwritten: {:?}",
            sim.proposal(lost).unwrap().status
        );
    }
}

/// Acceptance 7: a follower cut off for many election timeouts does not
/// inflate its term with PreVote, so when it returns the healthy leader
/// stays. With PreVote off its term climbs and its return deposes the
/// leader, which is what makes the first half meaningful.
#[test]
fn rejoining_node_does_not_depose_a_healthy_leader_with_pre_vote() {
    for pre_vote in [true, false] {
        let mut options = SimOptions::new(5, 5);
        options.link = fast_lan();
        let mut sim = cluster_with(options, move |_| RaftConfig { pre_vote, ..RaftConfig::default() });
        let leader = elect(&mut sim);
        let term = sim.policy(leader).unwrap().term();
        let straggler = (1..=5).find(|&id| id != leader).unwrap();

        sim.network_mut().isolate(straggler);
        sim.run_for(3 * SECOND).unwrap();
        let straggler_term = sim.policy(straggler).unwrap().term();
        sim.network_mut().heal();
        for _ in 0..20 {
            sim.propose_commands(leader, 1).unwrap();
            sim.run_for(100 * MS).unwrap();
        }

        let now_leader = sim.leader().unwrap();
        let now_term = sim.policy(now_leader).unwrap().term();
        if pre_vote {
            assert_eq!(straggler_term, term, "PreVote: the isolated node never raised its term");
            assert_eq!((now_leader, now_term), (leader, term), "PreVote: the leader was not disturbed");
            assert_eq!(sim.leaders_by_term().len(), 1);
            assert!(sim.policy(straggler).unwrap().stats().pre_votes_started > 5, "it did try");
        } else {
            assert!(straggler_term > term + 5, "without PreVote the term climbs: {straggler_term}");
            assert!(now_term > straggler_term, "without PreVote the return forces a new election");
        }
        assert_eq!(sim.policy(straggler).unwrap().leader(), Some(now_leader));
        assert_eq!(sim.status(straggler).unwrap().term, now_term);
    }
}

/// CheckQuorum's leader lease: a node that cannot hear the leader (but
/// reaches everyone else) times out and campaigns; followers that hear the
/// leader ignore it, so the healthy leader stays. Without CheckQuorum they
/// grant its (pre)votes and the leader is replaced for nothing.
#[test]
fn followers_in_a_leader_lease_ignore_a_node_that_cannot_hear_the_leader() {
    for check_quorum in [true, false] {
        let mut options = SimOptions::new(6, 3);
        options.link = fast_lan();
        let mut sim = cluster_with(options, move |_| RaftConfig { check_quorum, ..RaftConfig::default() });
        let leader = elect(&mut sim);
        let term = sim.policy(leader).unwrap().term();
        // Its log is as fresh as anyone's, so only the lease stops it.
        assert!(wait_applied_everywhere(&mut sim, 1, SECOND));
        let cut_off = (1..=3).find(|&id| id != leader).unwrap();
        sim.network_mut().cut(leader, cut_off);
        sim.network_mut().cut(cut_off, leader);
        sim.run_for(3 * SECOND).unwrap();
        if check_quorum {
            let attempts = sim.policy(cut_off).unwrap().stats().pre_votes_started;
            assert!(attempts > 5, "the cut-off node kept campaigning ({attempts} PreVote rounds)");
            assert_eq!(sim.leader(), Some(leader), "the lease kept the leader");
            assert_eq!(sim.leaders_by_term().len(), 1, "no other term got a leader: {:?}", sim.leaders_by_term());
            assert_eq!(sim.policy(leader).unwrap().term(), term);
        } else {
            assert!(sim.leaders_by_term().len() > 1, "without the lease the leader gets replaced");
        }
    }
}
