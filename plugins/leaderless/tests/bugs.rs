//! The test-only bug switches: each one breaks one rule, visibly, so that
//! the invariant checkers built on this policy can be shown to catch it.
//! Every test runs the same schedule with and without the switch.

mod support;

use bytes::Bytes;
use replab_leaderless::{Bug, LeaderlessConfig};
use replab_version_vector::VersionVectors;
use support::{Net, config, is_written};

fn with_bug(bug: Bug, base: LeaderlessConfig) -> LeaderlessConfig {
    LeaderlessConfig { bug, ..base }
}

/// W=2; the replicas' records never become durable before they crash.
/// Returns how many owners hold the acknowledged write after restarting,
/// or None if it was not acknowledged.
fn ack_then_crash_replicas(bug: Bug) -> Option<usize> {
    let mut net = Net::<VersionVectors>::new(3, with_bug(bug, config(3, 2, 2)));
    net.auto_persist = false;
    let id = net.put_request(1, "k", Some("v"), Bytes::new());
    net.flush(1);
    net.deliver_all();
    let written = net.reply(1, id).is_some_and(|r| is_written(&r));
    net.crash(2);
    net.crash(3);
    net.restart(2);
    net.restart(3);
    written.then(|| [1, 2, 3].iter().filter(|n| !net.values_at(**n, "k").is_empty()).count())
}

#[test]
fn ack_before_persist_acknowledges_a_write_only_one_owner_keeps() {
    assert_eq!(ack_then_crash_replicas(Bug::None), None, "correct: no ack before the replicas' records are durable");
    assert_eq!(ack_then_crash_replicas(Bug::AckBeforePersist), Some(1), "W=2 promised, one copy survives");
}

/// Two clients write "k" blind (neither saw the other) through node 1.
fn two_blind_writes(bug: Bug) -> Vec<String> {
    let mut net = Net::<VersionVectors>::new(3, with_bug(bug, config(3, 2, 2)));
    assert!(is_written(&net.put(1, "k", Some("a"), Bytes::new())));
    assert!(is_written(&net.put(1, "k", Some("b"), Bytes::new())));
    net.values_at(2, "k")
}

#[test]
fn ignore_context_loses_a_concurrent_write_under_version_vectors() {
    assert_eq!(two_blind_writes(Bug::None), vec!["a", "b"]);
    assert_eq!(two_blind_writes(Bug::IgnoreContext), vec!["b"], "a was acknowledged, and is gone");
}

#[test]
fn corrupt_replica_value_shows_a_value_no_client_wrote() {
    let read_at_replica = |bug| {
        let mut net = Net::<VersionVectors>::new(3, with_bug(bug, config(3, 2, 1)));
        net.put(1, "k", Some("value"), Bytes::new());
        (net.values_at(1, "k"), net.values_at(2, "k"))
    };
    assert_eq!(read_at_replica(Bug::None), (vec!["value".to_string()], vec!["value".to_string()]));
    assert_eq!(read_at_replica(Bug::CorruptReplicaValue), (vec!["value".to_string()], vec!["valuf".to_string()]));
}

/// Nodes 1 and 3 each take a write the other side never sees; then
/// anti-entropy runs alone.
fn values_after_anti_entropy(bug: Bug) -> Vec<String> {
    let base = LeaderlessConfig { write_quorum: 1, anti_entropy_interval_ms: 100, ..config(3, 1, 1) };
    let mut net = Net::<VersionVectors>::new(3, with_bug(bug, base));
    net.partition(&[1], &[2, 3]);
    net.put(1, "k", Some("a"), Bytes::new());
    net.put(3, "k", Some("b"), Bytes::new());
    net.heal();
    net.run(3_000);
    let mut all: Vec<String> = [1, 2, 3].iter().flat_map(|n| net.values_at(*n, "k")).collect();
    all.sort();
    all.dedup();
    all
}

#[test]
fn anti_entropy_overwrites_loses_a_sibling_that_merging_keeps() {
    assert_eq!(values_after_anti_entropy(Bug::None), vec!["a", "b"]);
    let survivors = values_after_anti_entropy(Bug::AntiEntropyOverwrites);
    assert_eq!(survivors.len(), 1, "one acknowledged write vanished from every replica: {survivors:?}");
}
