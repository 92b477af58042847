//! Restart: the generation and the promise survive it (no second promise
//! in one generation), the claim and the promise are durable before they
//! leave, and a node that lost durable state neither promises nor claims
//! until it has caught up from a primary.

mod support;

use bytes::Bytes;
use replab_api::{
    Effect, Effects, Entry, EntryKind, HardState, Input, Instant, LogPosition, Memory, PolicyContext, Recovered,
    ReplicationPolicy, Role,
};
use replab_primary_backup::{Message, Mode, PrimaryBackup, PrimaryBackupConfig};
use support::*;

fn node(id: u64, recovered: Recovered) -> PrimaryBackup {
    let ctx = PolicyContext { id, members: vec![1, 2, 3], seed: 7 };
    let mut node = PrimaryBackup::new(ctx, PrimaryBackupConfig::default(), recovered);
    node.step(Instant::ZERO, Input::Tick, &mut Effects::new()).unwrap();
    node
}

fn at(index: u64, term: u64) -> LogPosition {
    LogPosition { index, term }
}

/// Sends a claim from `from` and returns whether it was promised, with
/// the effects.
fn claim(node: &mut PrimaryBackup, from: u64, generation: u64, last: LogPosition) -> (bool, Vec<Effect>) {
    let mut out = Effects::new();
    let bytes = Message::Claim { generation, last }.encode();
    node.step(Instant::from_millis(10), Input::Message { from, bytes }, &mut out).unwrap();
    let effects: Vec<Effect> = out.drain().collect();
    let promised = effects.iter().find_map(|e| match e {
        Effect::Send { to, bytes, after_persist } if *to == from => {
            assert!(after_persist, "a promise leaves only once durable");
            match Message::decode(bytes).unwrap() {
                Message::ClaimAnswer { promised, .. } => Some(promised),
                other => panic!("answered a claim with {other:?}"),
            }
        }
        _ => None,
    });
    (promised.expect("a claim is always answered"), effects)
}

fn log(terms: &[u64]) -> Vec<Entry> {
    (1..)
        .zip(terms)
        .map(|(index, &term)| Entry { index, term, kind: EntryKind::Command, data: Bytes::from_static(b"x") })
        .collect()
}

#[test]
fn a_promise_survives_a_restart_and_is_not_given_twice() {
    let mut fresh = node(3, Recovered::default());
    let (promised, effects) = claim(&mut fresh, 1, 5, at(0, 0));
    assert!(promised);
    let saved = effects.iter().position(|e| *e == Effect::SaveHardState(HardState { term: 5, vote: Some(1) }));
    let answer = effects.iter().position(|e| matches!(e, Effect::Send { .. }));
    assert!(saved.unwrap() < answer.unwrap(), "the promise is saved before the answer: {effects:?}");

    let recovered = Recovered { hard_state: fresh.hard_state(), ..Recovered::default() };
    let mut restarted = node(3, recovered);
    assert_eq!(restarted.generation(), 5);
    assert!(!claim(&mut restarted, 2, 5, at(0, 0)).0, "promised node 1 in generation 5 before the restart");
    assert!(claim(&mut restarted, 1, 5, at(0, 0)).0, "the same claimant may ask again");
    assert!(claim(&mut restarted, 2, 6, at(0, 0)).0, "a newer generation is a new promise");
    assert_eq!(restarted.hard_state(), HardState { term: 6, vote: Some(2) });
}

#[test]
fn promises_go_only_to_logs_at_least_as_up_to_date() {
    let recovered =
        Recovered { hard_state: HardState { term: 2, vote: None }, entries: log(&[1, 2, 2]), ..Recovered::default() };
    let mut backup = node(3, recovered);
    assert!(!claim(&mut backup, 1, 3, at(9, 1)).0, "an older last generation loses whatever its length");
    assert!(!claim(&mut backup, 1, 4, at(2, 2)).0, "shorter in the same generation");
    assert_eq!(backup.generation(), 4, "refused, but the generation is adopted");
    assert!(claim(&mut backup, 2, 5, at(3, 2)).0);
}

#[test]
fn a_claim_is_durable_before_it_leaves() {
    let mut sim = cluster(40, 3, config(Mode::Quorum));
    elect(&mut sim);
    let log = sim.effect_log();
    let claimant = log.iter().find(|r| matches!(r.effect, Effect::RoleChanged { role: Role::Candidate, .. })).unwrap();
    let effects: Vec<&Effect> = log.iter().filter(|r| r.node == claimant.node).map(|r| &r.effect).collect();
    let saved = effects.iter().position(|e| matches!(e, Effect::SaveHardState(h) if h.vote == Some(claimant.node)));
    let first_claim = effects.iter().position(|e| matches!(e, Effect::Send { .. })).unwrap();
    assert!(saved.unwrap() < first_claim);
    assert!(effects.iter().all(|e| !matches!(e, Effect::Send { after_persist: false, bytes, .. }
        if matches!(Message::decode(bytes), Ok(Message::Claim { .. })))));
}

/// Restarting members in the simulator: the checker sees every hard-state
/// change and fails on a second promise in one generation.
#[test]
fn restarts_keep_generations_and_promises_in_the_simulator() {
    let (mut sim, primary) = steady(41, 3, config(Mode::Quorum));
    for round in 0..3 {
        for node in nodes(&sim) {
            let before = sim.policy(node).unwrap().hard_state();
            sim.crash(node);
            sim.restart(node).unwrap();
            assert_eq!(sim.policy(node).unwrap().hard_state(), before, "round {round}, node {node}");
        }
        sim.run_for(SECOND).unwrap();
        let leader = sim.leader().expect("a primary after the restarts");
        propose(&mut sim, leader, 2);
        sim.run_for(200 * MS).unwrap();
    }
    assert!(sim.max_committed() > 3);
    assert_one_primary_per_generation(&sim);
    let _ = primary;
}

#[test]
fn a_blank_node_neither_promises_nor_claims_until_it_caught_up() {
    let mut blank = node(2, Recovered { memory: Memory::Blank, ..Recovered::default() });
    assert!(!claim(&mut blank, 1, 1, at(0, 0)).0, "it may have promised anything");

    // In the simulator: a wiped node ranks first (lowest live id, equal
    // logs) but waits; it catches up from the primary and then is whole.
    let (mut sim, primary) = steady(42, 3, config(Mode::Quorum));
    let wiped = others(&sim, primary)[0];
    sim.crash(wiped);
    sim.wipe(wiped);
    sim.restart(wiped).unwrap();
    assert_eq!(sim.policy(wiped).unwrap().memory(), Memory::Blank);
    propose(&mut sim, primary, 2);
    sim.run_for(SECOND).unwrap();
    let stats = sim.policy(wiped).unwrap().stats();
    assert_eq!(sim.policy(wiped).unwrap().memory(), Memory::Intact, "{stats:?}");
    assert_eq!(stats.memory_restored, 1);
    assert_eq!(stats.memory_restored_by_empty_cluster, 0, "its peers hold data");
    assert_eq!(stats.takeovers_started, 0);
    assert_eq!(sim.last_applied(wiped), sim.last_applied(primary));
}

/// A `replab node` cluster's first start: every member finds an empty
/// directory and cannot tell it from a wiped disk. They ask each other,
/// learn that nobody holds data, and elect a primary; without the
/// question none of them would ever claim.
#[test]
fn a_cluster_whose_every_member_starts_blank_elects_a_primary() {
    for mode in [Mode::Async, Mode::Sync, Mode::Quorum] {
        let mut sim = cluster(7, 3, config(mode));
        for id in nodes(&sim) {
            sim.crash(id);
            sim.wipe(id);
        }
        for id in nodes(&sim) {
            sim.restart(id).unwrap();
            assert_eq!(sim.policy(id).unwrap().memory(), Memory::Blank);
        }
        let primary = elect(&mut sim);
        for id in nodes(&sim) {
            let node = sim.policy(id).unwrap();
            assert_eq!(node.memory(), Memory::Intact, "{mode}: node {id}");
            assert_eq!(node.stats().memory_restored_by_empty_cluster, 1, "{mode}: node {id}");
        }
        propose(&mut sim, primary, 3);
        sim.run_for(SECOND).unwrap();
        assert_eq!(sim.last_applied(primary), sim.last_applied(others(&sim, primary)[0]), "{mode}");
    }
}

#[test]
fn a_truncated_node_promises_only_to_logs_past_what_it_reached() {
    let recovered = Recovered {
        hard_state: HardState { term: 3, vote: None },
        entries: log(&[1, 1]),
        memory: Memory::Truncated { reached: at(5, 3) },
        ..Recovered::default()
    };
    let mut repaired = node(3, recovered);
    assert!(!claim(&mut repaired, 1, 4, at(4, 3)).0, "short of what it once held");
    assert!(claim(&mut repaired, 2, 5, at(5, 3)).0);
}

/// The conservative cost: with the primary dead, a blank survivor refuses
/// every promise and never claims, so the one intact survivor cannot
/// reach a majority. Nothing acknowledged is put at risk for it.
#[test]
fn a_blank_survivor_blocks_failover_rather_than_risk_a_promise() {
    let (mut sim, primary) = steady(43, 3, config(Mode::Quorum));
    let [wiped, intact] = others(&sim, primary)[..] else { unreachable!() };
    sim.crash(wiped);
    sim.wipe(wiped);
    sim.crash(primary);
    sim.restart(wiped).unwrap();
    declare_dead(&mut sim, primary);
    sim.run_for(3 * SECOND).unwrap();
    assert_eq!(sim.leader(), None);
    assert!(sim.policy(intact).unwrap().stats().takeovers_started >= 2, "the intact node keeps claiming");
    let blank = sim.policy(wiped).unwrap();
    assert_eq!((blank.stats().takeovers_started, blank.stats().promises_granted), (0, 0));
    assert!(blank.stats().promises_refused >= 2);
    sim.restart(primary).unwrap();
    sim.run_for(3 * SECOND).unwrap();
    assert!(sim.leader().is_some(), "two intact members make a majority again");
}
