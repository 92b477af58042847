//! The checkers can fail: configurations broken on purpose make them fail
//! with a printed witness.

use crate::*;

fn broken(name: &str) -> std::path::PathBuf {
    root().join("tests/scenarios/broken").join(name)
}

#[test]
fn a_leader_that_acknowledges_before_a_quorum_loses_writes_and_no_lost_writes_says_so() {
    let r = run(&broken("minority-leader-acks.lua"), &["--set", "raft.bug=commit_without_quorum"]);
    assert_eq!(r.code, Some(1), "{}", r.explain());
    assert_eq!(r.check_status("no_lost_writes").as_deref(), Some("fail"), "{}", r.explain());
    assert!(r.stdout.contains("lost"), "the witness names the lost writes:\n{}", r.stdout);
}

#[test]
fn the_same_scenario_with_a_correct_raft_loses_nothing() {
    let r = run(&broken("minority-leader-acks.lua"), &[]);
    assert_eq!(r.code, Some(0), "{}", r.explain());
}

#[test]
fn a_deposed_leader_serving_reads_without_read_index_is_not_linearizable() {
    let r = run(&broken("stale-leader-reads.lua"), &["--set", "raft.bug=read_without_read_index"]);
    assert_eq!(r.code, Some(1), "{}", r.explain());
    assert_eq!(r.check_status("linearizable").as_deref(), Some("fail"), "{}", r.explain());
    assert!(r.stdout.contains("get"), "the witness shows the offending read:\n{}", r.stdout);
}

#[test]
fn the_same_reads_with_read_index_are_linearizable() {
    let r = run(&broken("stale-leader-reads.lua"), &[]);
    assert_eq!(r.code, Some(0), "{}", r.explain());
}

#[test]
fn a_read_from_an_isolated_follower_is_caught_as_not_linearizable() {
    let r = run(&broken("follower-reads.lua"), &[]);
    assert_eq!(r.code, Some(1), "{}", r.explain());
    assert_eq!(r.check_status("linearizable").as_deref(), Some("fail"), "{}", r.explain());
    assert!(r.stdout.contains("\"x\"") || r.stdout.contains(" x"), "the witness names key x:\n{}", r.stdout);
}
