//! Log safety: the Figure 8 commit rule, uncommitted entries that may
//! vanish, divergent logs (Figure 7), and crashes between persisting a
//! term and persisting its entries.

mod support;

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;

use replab_api::{NodeId, Role, Term};
use replab_raft::{Bug, Message, RaftConfig};
use replab_sim::{Invariant, ProposalStatus, Sim, SimOptions, Violation};
use support::*;

/// Followers that must not start elections in a constructed scenario. A
/// node's leader lease lasts its own minimum election timeout, so these
/// run without CheckQuorum lest they ignore votes for a minute.
fn passive() -> RaftConfig {
    RaftConfig {
        election_timeout_min_ms: 60_000,
        election_timeout_max_ms: 61_000,
        check_quorum: false,
        ..RaftConfig::default()
    }
}

fn one_entry_per_append() -> RaftConfig {
    RaftConfig { max_entries_per_append: 1, ..RaftConfig::default() }
}

/// The Raft paper's Figure 8, state (c): S1 leads term 4 and has
/// replicated the term-2 entries to S2 and S3 (a majority of five) but not
/// its own no-op. S5, down, holds an entry of term 3 at index 2.
fn figure_8() -> Sim<replab_raft::Raft> {
    let (sim, result) = figure_8_with(Bug::None, true);
    result.unwrap_or_else(|v| panic!("{v}"));
    sim
}

/// [`figure_8`] with `bug` switched on in S1, and the
/// `ElectableWithoutCommitted` check on or off; also returns what running
/// into state (c) gave.
fn figure_8_with(bug: Bug, check_electable: bool) -> (Sim<replab_raft::Raft>, Result<(), Violation>) {
    let mut options = SimOptions::new(8, 5);
    options.link = fast_lan();
    options.check_electable_without_committed = check_electable;
    options.initial_state = vec![
        (1, recovered(2, Some(1), &[1, 2, 2])),
        (2, recovered(2, Some(1), &[1, 2])),
        (3, recovered(3, Some(5), &[1])),
        (4, recovered(3, Some(5), &[1])),
        (5, recovered(3, Some(5), &[1, 3])),
    ];
    options.initially_down = vec![5];
    let mut sim = cluster_with(options, move |id| match id {
        1 => RaftConfig { bug, ..one_entry_per_append() },
        5 => RaftConfig::default(),
        _ => passive(),
    });
    // Appends carrying an entry of S1's new term are lost, except the first
    // probe to each follower, which they reject (they lack index 3): that
    // rejection is what makes S1 back up and send the term-2 entries.
    let probes_sent: Rc<Cell<[u32; 6]>> = Rc::default();
    let counter = probes_sent.clone();
    sim.set_filter(move |from, to, bytes| {
        let Ok(Message::Append(append)) = Message::decode(bytes) else {
            return true;
        };
        if from != 1 || !append.entries.iter().any(|e| e.term == append.term) {
            return to != 4 || append.entries.is_empty();
        }
        let mut sent = counter.get();
        sent[to as usize] += 1;
        counter.set(sent);
        sent[to as usize] == 1 && to != 4
    });
    let leader = elect(&mut sim);
    assert_eq!(leader, 1, "only S1 campaigns");
    let result = sim.run_for(2 * SECOND);
    (sim, result)
}

/// Acceptance 2: an entry of an older term stored on a majority is not
/// committed by counting replicas; it commits only with an entry of the
/// current term. Had S1 committed it, S5 could now overwrite it.
#[test]
fn figure_8_older_term_entry_on_a_majority_is_not_committed_until_the_current_term_commits() {
    // State (c): index 3 (term 2) is on S1, S2 and S3, and S1 knows it.
    let mut sim = figure_8();
    let s1 = sim.policy(1).unwrap();
    let term = s1.term();
    assert!(term >= 4, "S1 leads a term after S5's term 3");
    for id in [1, 2, 3] {
        assert_eq!(sim.log(id).term_at(3), Some(2), "S{id} holds (3, term 2)");
    }
    assert_eq!(sim.log(4).last_index(), 1, "S4 got nothing");
    assert_eq!(s1.progress(2).unwrap().match_index, 3);
    assert_eq!(s1.progress(3).unwrap().match_index, 3);
    assert_eq!(sim.log(1).term_at(4), Some(term), "S1's no-op is only in its own log");
    assert_eq!(s1.log_entries().len(), 4);
    assert_eq!(sim.status(1).unwrap().commit_index, 0, "Figure 8: replicas of an older term are not counted");

    // (e): once the no-op reaches a majority, everything before commits.
    let mut committed = figure_8();
    committed.clear_filter();
    committed.run_for(SECOND).unwrap();
    assert_eq!(committed.status(1).unwrap().commit_index, 4);
    for id in [2, 3] {
        assert_eq!(committed.log(id).term_at(3), Some(2), "the term-2 entries survive on S{id}");
    }

    // (d): S1 crashes first. S5 (last entry of term 3) can win, and
    // overwrites the majority-replicated term-2 entries: legal only because
    // they were never committed (the checker would flag it otherwise).
    sim.crash(1);
    sim.clear_filter();
    sim.restart(5).unwrap();
    let new_leader = sim.wait_for_leader(10 * SECOND).unwrap().unwrap();
    assert_eq!(new_leader, 5, "only S5's log is up to date enough");
    sim.propose_commands(5, 1).unwrap();
    sim.run_for(SECOND).unwrap();
    for id in [2, 3, 4, 5] {
        assert_eq!(sim.log(id).term_at(2), Some(3), "S{id} now holds S5's entry at index 2");
        assert!(sim.status(id).unwrap().commit_index >= 3);
    }
    assert_eq!(sim.log(2).term_at(3), Some(term + 1), "the term-2 entry at index 3 is gone");
}

/// The same state with the current-term condition removed from S1's
/// commit rule (`Bug::CommitPreviousTerm`): S1 commits (3, term 2) by
/// counting its three replicas. The checker flags that commit at once: S5
/// lacks it, yet its last entry (term 3) outranks the replicas' (term 2),
/// so S2, S3 and S4 would vote for it. With that check off, state (d)
/// follows: S5 is elected without the committed entry.
#[test]
fn figure_8_commit_of_an_older_term_entry_by_counting_replicas_is_caught() {
    let (_, result) = figure_8_with(Bug::CommitPreviousTerm, true);
    let violation = result.expect_err("the unsafe commit is flagged");
    assert_eq!(violation.invariant, Invariant::ElectableWithoutCommitted, "{violation}");
    assert_eq!(violation.node, Some(5), "{violation}");

    let (mut sim, result) = figure_8_with(Bug::CommitPreviousTerm, false);
    result.unwrap_or_else(|v| panic!("{v}"));
    assert_eq!(sim.status(1).unwrap().commit_index, 3, "S1 counted the term-2 replicas");
    sim.crash(1);
    sim.clear_filter();
    sim.restart(5).unwrap();
    let violation = sim.wait_for_leader(10 * SECOND).expect_err("S5 wins without (3, term 2)");
    assert_eq!(violation.invariant, Invariant::LeaderCompleteness, "{violation}");
    assert_eq!(violation.node, Some(5), "{violation}");
}

/// Acceptance 3: a leader that replicated an entry only to a minority and
/// crashed may lose that entry; entries that were committed survive.
#[test]
fn entry_on_a_minority_may_vanish_but_committed_entries_survive() {
    let mut options = SimOptions::new(3, 5);
    options.link = fast_lan();
    let mut sim = cluster_with(options, |_| RaftConfig::default());
    let old = elect(&mut sim);
    let committed = sim.propose_commands(old, 5).unwrap();
    assert!(wait_applied_everywhere(&mut sim, 6, SECOND));
    let helper = (1..=5).find(|&id| id != old).unwrap();
    let others: Vec<NodeId> = (1..=5).filter(|&id| id != old && id != helper).collect();

    sim.network_mut().partition(&[&[old, helper], &others]);
    let doomed = sim.propose_commands(old, 1).unwrap();
    sim.run_for(200 * MS).unwrap();
    let ProposalStatus::Proposed { first_index, term, .. } = sim.proposal(doomed).unwrap().status else {
        panic!("the leader appended it");
    };
    assert_eq!(sim.durable(helper).term_at(first_index), Some(term), "the minority holds it durably");
    sim.crash(old);
    sim.crash(helper);
    sim.network_mut().heal();

    let new = sim.wait_for_leader(5 * SECOND).unwrap().unwrap();
    assert!(others.contains(&new));
    let replacement = sim.propose_commands(new, 1).unwrap();
    sim.run_for(SECOND).unwrap();
    sim.restart(old).unwrap();
    sim.restart(helper).unwrap();
    sim.propose_commands(new, 1).unwrap();
    sim.run_for(2 * SECOND).unwrap();

    assert!(matches!(sim.proposal(replacement).unwrap().status, ProposalStatus::Committed { .. }));
    assert_eq!(sim.proposal(doomed).unwrap().status, ProposalStatus::Lost, "the minority entry vanished");
    let ProposalStatus::Committed { first_index: kept, count, .. } = sim.proposal(committed).unwrap().status else {
        panic!("committed before the crash");
    };
    let reference: Vec<_> = sim.log(new).entries().iter().map(|e| e.position()).collect();
    for id in 1..=5 {
        let log: Vec<_> = sim.log(id).entries().iter().map(|e| e.position()).collect();
        assert_eq!(log, reference, "node {id} converged on the new leader's log");
        assert!(sim.log(id).term_at(first_index) != Some(term), "node {id} still holds the lost entry");
        for index in kept..kept + count {
            assert!(sim.log(id).entry(index).is_some(), "node {id} lost committed index {index}");
        }
    }
    assert!(sim.policy(helper).unwrap().stats().truncations >= 1, "the helper's copy was truncated");
}

/// Acceptance 4: the Raft paper's Figure 7. The leader of term 8 meets
/// followers that miss entries (a, b), hold extra uncommitted entries (c,
/// d), or both (e, f). Probing with conflict-term hints finds each match
/// point in one or two round trips, the conflicting tails are truncated,
/// and every log converges to the leader's.
#[test]
fn figure_7_divergent_logs_are_probed_truncated_and_converge() {
    let leader_terms: &[Term] = &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
    let followers: [(&str, &[Term]); 6] = [
        ("a", &[1, 1, 1, 4, 4, 5, 5, 6, 6]),
        ("b", &[1, 1, 1, 4]),
        ("c", &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6]),
        ("d", &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7]),
        ("e", &[1, 1, 1, 4, 4, 4, 4]),
        ("f", &[1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3]),
    ];
    let mut options = SimOptions::new(4, 7);
    options.link = fast_lan();
    options.initial_state.push((1, recovered(7, None, leader_terms)));
    for (i, (_, terms)) in followers.iter().enumerate() {
        options.initial_state.push((i as NodeId + 2, recovered(7, None, terms)));
    }
    let mut sim = cluster_with(options, |id| if id == 1 { RaftConfig::default() } else { passive() });
    assert_eq!(elect(&mut sim), 1, "a, b, e and f vote for the leader; c and d refuse");
    assert_eq!(sim.policy(1).unwrap().term(), 8);
    sim.run_for(2 * SECOND).unwrap();

    let mut expected = leader_terms.to_vec();
    expected.push(8);
    for id in 1..=7 {
        assert_eq!(terms_of(sim.log(id).entries()), expected, "node {id} converged");
        assert_eq!(sim.status(id).unwrap().commit_index, 11, "node {id} learned the commit index");
    }
    let truncated: HashMap<&str, u64> = followers
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (*name, sim.policy(i as NodeId + 2).unwrap().stats().truncations))
        .collect();
    for name in ["c", "d", "e", "f"] {
        assert_eq!(truncated[name], 1, "({name}) had its conflicting tail truncated once");
    }
    for name in ["a", "b"] {
        assert_eq!(truncated[name], 0, "({name}) only missed entries");
    }
    // Entry-by-entry backtracking would need 1 + 6 + 5 + 7 rejections for
    // a, b, e and f; term hints need one each.
    let rejections = sim.policy(1).unwrap().stats().append_rejections;
    assert!(rejections <= 6, "{rejections} rejections: backtracking did not skip terms");
}

/// Acceptance 5: a node persists a new term (it became leader), then
/// crashes before its entries of that term reach its disk. The committed
/// entries (stored by the other two) are never overwritten: the restarted
/// node's stale log cannot win an election, and it catches up.
#[test]
fn crash_between_persisting_a_term_and_its_entries_never_overwrites_a_committed_entry() {
    let mut options = SimOptions::new(21, 3);
    options.link = fast_lan();
    let mut sim = cluster_with(options, |_| RaftConfig::default());
    let first = elect(&mut sim);
    sim.propose_commands(first, 3).unwrap();
    assert!(wait_applied_everywhere(&mut sim, 4, SECOND));

    // Hand leadership to `a`, and stall its disk the moment it leads: its
    // term and vote are durable (its vote requests waited for them), its
    // no-op and the writes below are not.
    let a = (1..=3).find(|&id| id != first).unwrap();
    sim.transfer_leader(first, a).unwrap();
    assert!(sim.run_until_cond(sim.now_us() + SECOND, |s| s.role(a) == Some(Role::Leader)).unwrap());
    sim.set_disk_stalled(a, true);
    let term = sim.policy(a).unwrap().term();
    let writes = sim.propose_commands(a, 5).unwrap();
    assert!(sim.run_until_cond(sim.now_us() + SECOND, |s| s.committed_commands() >= 8).unwrap());
    let ProposalStatus::Committed { first_index, count, .. } = sim.proposal(writes).unwrap().status else {
        panic!("the two other nodes' acknowledgements commit it");
    };
    assert_eq!(sim.durable(a).hard_state.term, term, "the term is durable on a");
    // (Its no-op's sync may have started before the stall.)
    assert!(sim.durable(a).last_index() < first_index, "a's copies of the committed writes are not durable");

    sim.crash(a);
    sim.set_disk_stalled(a, false);
    sim.restart(a).unwrap();
    assert_eq!(sim.policy(a).unwrap().term(), term);
    // Leave a alone with one other node: only that node can lead.
    let b = (1..=3).find(|&id| id != a && id != first).unwrap();
    sim.crash(first);
    let leader = sim.wait_for_leader(5 * SECOND).unwrap().unwrap();
    assert_eq!(leader, b, "a's log lacks committed entries, so b must lead");
    sim.propose_commands(b, 1).unwrap();
    sim.run_for(SECOND).unwrap();
    sim.restart(first).unwrap();
    sim.run_for(SECOND).unwrap();
    for id in 1..=3 {
        for index in first_index..first_index + count {
            assert_eq!(sim.log(id).term_at(index), Some(term), "node {id} holds committed index {index}");
        }
        assert_eq!(sim.log(id).last_position(), sim.log(b).last_position(), "node {id} caught up");
    }
}
