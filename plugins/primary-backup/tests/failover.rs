//! Failover driven by the failure detector: the live node with the most
//! up-to-date log takes over in the next generation (ties to the lower
//! id), a stale view still elects someone within the rank timeouts, and a
//! generation never has two primaries.

mod support;

use replab_api::{Liveness, NodeId, Role};
use replab_primary_backup::{Bug, Message, Mode, PrimaryBackup};
use replab_sim::Sim;
use support::*;

#[test]
fn at_cluster_start_the_lowest_id_becomes_primary_of_generation_one() {
    for mode in [Mode::Async, Mode::Sync, Mode::Quorum] {
        let mut sim = cluster(10, 3, config(mode));
        assert_eq!(elect(&mut sim), 1, "{mode}: every log is empty, so the lowest live id claims");
        assert_eq!(generation(&sim, 1), 1);
        sim.run_for(SECOND).unwrap();
        assert_eq!(primaries_by_generation(&sim).len(), 1, "{mode}: one takeover, no contention");
        assert!(nodes(&sim).iter().all(|&n| sim.policy(n).unwrap().primary() == Some(1)));
    }
}

/// Runs a 3-node cluster where `lagging` gets no appends from the primary
/// (its heartbeats still arrive, with everyone's positions), writes, then
/// kills the primary and declares it dead. With `blind`, the lagging node
/// hears nothing at all from the primary, not even positions.
fn fail_primary_with_a_lagging_backup(mode: Mode, lagging: NodeId, blind: bool) -> (Sim<PrimaryBackup>, NodeId) {
    let (mut sim, primary) = steady(11, 3, config(mode));
    assert_eq!(primary, 1);
    sim.set_filter(move |from, to, bytes| {
        let append = matches!(Message::decode(bytes), Ok(Message::Append(_)));
        !(from == primary && to == lagging && (append || blind))
    });
    for _ in 0..3 {
        propose(&mut sim, primary, 2);
        sim.run_for(20 * MS).unwrap();
    }
    sim.run_for(200 * MS).unwrap();
    sim.clear_filter();
    let up_to_date = others(&sim, primary).into_iter().find(|&n| n != lagging).unwrap();
    assert!(last_index(&sim, up_to_date) > last_index(&sim, lagging), "{mode}: node {lagging} lags");
    sim.crash(primary);
    declare_dead(&mut sim, primary);
    (sim, up_to_date)
}

#[test]
fn the_live_node_with_the_longest_log_takes_over_in_the_next_generation() {
    // Node 3 is ahead of node 2: it wins despite the higher id.
    for mode in [Mode::Async, Mode::Quorum, Mode::Sync] {
        let (mut sim, successor) = fail_primary_with_a_lagging_backup(mode, 2, false);
        assert_eq!(successor, 3);
        assert_eq!(sim.policy(2).unwrap().successor_rank(), 1, "{mode}: node 2 knows node 3 is ahead");
        let started = sim.now_us();
        let elected = sim.run_until_cond(started + SECOND, |s| s.leader().is_some()).unwrap();
        assert!(elected, "{mode}: a successor took over");
        assert_eq!(sim.leader(), Some(3), "{mode}: the longest log wins");
        assert_eq!(generation(&sim, 3), 2, "{mode}: generation + 1");
        assert!(sim.now_us() - started < 50 * MS, "{mode}: the first-ranked claims at once");
        assert_eq!(sim.policy(2).unwrap().stats().takeovers_started, 0, "{mode}: node 2 waited its rank");
        assert_one_primary_per_generation(&sim);
    }
}

/// Positions are as fresh as the last heartbeat: a backup that heard none
/// for a while ranks itself too high and claims too. Its claim is refused
/// (its log is shorter), which costs a generation, and the longest log
/// still wins.
#[test]
fn a_stale_position_costs_a_round_but_the_longest_log_still_wins() {
    for mode in [Mode::Async, Mode::Quorum] {
        let (mut sim, successor) = fail_primary_with_a_lagging_backup(mode, 2, true);
        assert_eq!(sim.policy(2).unwrap().successor_rank(), 0, "{mode}: node 2 does not know node 3 is ahead");
        sim.run_for(2 * SECOND).unwrap();
        assert_eq!(sim.leader(), Some(successor), "{mode}");
        assert!(sim.policy(2).unwrap().stats().takeovers_started >= 1, "{mode}: node 2 claimed on its stale view");
        assert!(generation(&sim, successor) > 2, "{mode}: the refused claim cost a generation");
        assert_one_primary_per_generation(&sim);
    }
}

#[test]
fn equal_logs_go_to_the_lower_id() {
    let (mut sim, primary) = steady(12, 5, config(Mode::Quorum));
    propose(&mut sim, primary, 3);
    sim.run_for(300 * MS).unwrap();
    sim.crash(primary);
    declare_dead(&mut sim, primary);
    let expected = others(&sim, primary)[0];
    sim.run_for(200 * MS).unwrap();
    assert_eq!(sim.leader(), Some(expected));
    assert_eq!(generation(&sim, expected), 2);
    let claims: u64 = nodes(&sim)
        .into_iter()
        .filter(|&n| sim.is_alive(n))
        .map(|n| sim.policy(n).unwrap().stats().takeovers_started)
        .sum();
    assert_eq!(claims, 1, "one claim, by the first-ranked node");
}

/// The first-ranked successor died too, but the detectors have not said
/// so: the others wait their rank, then the next one claims.
#[test]
fn a_stale_view_still_elects_someone_within_the_rank_timeouts() {
    let config = config(Mode::Quorum);
    let takeover_ms = config.takeover_timeout_ms;
    let (mut sim, primary) = steady(13, 5, config);
    assert_eq!(primary, 1);
    propose(&mut sim, primary, 2);
    sim.run_for(300 * MS).unwrap();
    sim.crash(1);
    sim.crash(2);
    // Only node 1 is declared dead; node 2 is believed alive and ranks
    // first everywhere (equal logs, lowest id).
    verdict(&mut sim, &[3, 4, 5], 1, Liveness::Dead);
    assert_eq!(sim.policy(3).unwrap().successor_rank(), 1);
    let started = sim.now_us();
    let elected = sim.run_until_cond(started + 3 * takeover_ms * MS, |s| s.leader().is_some()).unwrap();
    assert!(elected, "someone took over despite the stale view");
    let waited_ms = (sim.now_us() - started) / MS;
    assert_eq!(sim.leader(), Some(3), "the second-ranked node");
    assert!(
        (takeover_ms..takeover_ms + 100).contains(&waited_ms),
        "node 3 waited one takeover timeout ({takeover_ms} ms): {waited_ms} ms"
    );
    assert_one_primary_per_generation(&sim);
}

#[test]
fn a_takeover_needs_a_majority_of_promises_in_every_mode() {
    for mode in [Mode::Async, Mode::Sync, Mode::Quorum] {
        let (mut sim, primary) = steady(14, 3, config(mode));
        // Nodes 2 and 3 cannot hear each other; node 1 dies.
        sim.network_mut().cut(2, 3);
        sim.network_mut().cut(3, 2);
        sim.crash(primary);
        declare_dead(&mut sim, primary);
        verdict(&mut sim, &[2], 3, Liveness::Dead);
        verdict(&mut sim, &[3], 2, Liveness::Dead);
        sim.run_for(3 * SECOND).unwrap();
        assert_eq!(sim.leader(), None, "{mode}: one of three is no majority");
        let claims =
            sim.policy(2).unwrap().stats().takeovers_started + sim.policy(3).unwrap().stats().takeovers_started;
        assert!(claims >= 2, "{mode}: both kept trying ({claims} claims)");
        sim.network_mut().heal();
        verdict(&mut sim, &[2], 3, Liveness::Alive);
        verdict(&mut sim, &[3], 2, Liveness::Alive);
        sim.run_for(3 * SECOND).unwrap();
        assert!(sim.leader().is_some(), "{mode}: healed, a majority elects");
        assert_one_primary_per_generation(&sim);
    }
}

/// With `claim_without_promises`, both sides of the split make themselves
/// primary of the same generation; correct code makes neither.
#[test]
fn claim_without_promises_makes_two_primaries_in_one_generation() {
    let (mut sim, primary) = steady(15, 3, with_bug(Mode::Async, Bug::ClaimWithoutPromises));
    assert_one_primary_per_generation(&sim);
    sim.network_mut().cut(2, 3);
    sim.network_mut().cut(3, 2);
    sim.crash(primary);
    // Each survivor believes the other dead too: both rank first.
    verdict(&mut sim, &[2, 3], primary, Liveness::Dead);
    verdict(&mut sim, &[2], 3, Liveness::Dead);
    verdict(&mut sim, &[3], 2, Liveness::Dead);
    sim.run_for(100 * MS).unwrap();
    let twice: Vec<_> = primaries_by_generation(&sim).into_iter().filter(|(_, p)| p.len() > 1).collect();
    assert_eq!(twice.len(), 1, "two primaries in one generation: {twice:?}");
    assert_eq!(twice[0].1.len(), 2);
    assert!([2, 3].iter().all(|&n| sim.policy(n).unwrap().role() == Role::Leader));

    // The simulator's election-safety check catches it in quorum mode.
    let (mut sim, primary) = steady(15, 3, with_bug(Mode::Quorum, Bug::ClaimWithoutPromises));
    sim.network_mut().cut(2, 3);
    sim.network_mut().cut(3, 2);
    sim.crash(primary);
    verdict(&mut sim, &[2, 3], primary, Liveness::Dead);
    verdict(&mut sim, &[2], 3, Liveness::Dead);
    let violation = replab_sim::Invariant::ElectionSafety;
    let caught = (|| {
        sim.inject(3, replab_api::Input::PeerLiveness { peer: 2, liveness: Liveness::Dead })?;
        sim.run_for(100 * MS)
    })();
    assert_eq!(caught.expect_err("two primaries of one generation").invariant, violation);
}

#[test]
fn ignore_longer_logs_elects_a_primary_that_lacks_committed_entries() {
    // Node 3 lags (cut from the primary); with the bug, node 2 promises
    // to it although its own log is longer. Ranks are forced by declaring
    // node 2 dead at node 3 only, so node 3 claims first.
    let config = with_bug(Mode::Quorum, Bug::IgnoreLongerLogs);
    let (mut sim, primary) = steady(16, 3, config);
    sim.network_mut().cut(primary, 3);
    propose(&mut sim, primary, 2);
    sim.run_for(200 * MS).unwrap();
    assert!(sim.max_committed() > last_index(&sim, 3), "node 3 lacks committed entries");
    sim.crash(primary);
    verdict(&mut sim, &[2, 3], primary, Liveness::Dead);
    let caught = (|| {
        sim.inject(3, replab_api::Input::PeerLiveness { peer: 2, liveness: Liveness::Dead })?;
        sim.run_for(SECOND)
    })();
    let violation = caught.expect_err("a primary without committed entries");
    assert_eq!(violation.invariant, replab_sim::Invariant::LeaderCompleteness, "{violation}");
}

#[test]
fn without_the_bug_a_shorter_log_is_refused_and_the_longer_one_wins() {
    let (mut sim, primary) = steady(16, 3, config(Mode::Quorum));
    sim.network_mut().cut(primary, 3);
    propose(&mut sim, primary, 2);
    sim.run_for(200 * MS).unwrap();
    sim.crash(primary);
    verdict(&mut sim, &[2, 3], primary, Liveness::Dead);
    verdict(&mut sim, &[3], 2, Liveness::Dead);
    sim.run_for(2 * SECOND).unwrap();
    assert_eq!(sim.leader(), Some(2), "node 2 refused node 3 and claimed itself");
    assert!(sim.policy(2).unwrap().stats().promises_refused >= 1);
    assert_one_primary_per_generation(&sim);
}
