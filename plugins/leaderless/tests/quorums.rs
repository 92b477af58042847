//! W and R: how many owners a put waits for, how many a get merges, and
//! what a client is told when they do not answer.

mod support;

use bytes::Bytes;
use replab_api::{KeyedEffect, KeyedInput, KeyedOp, KeyedPolicy, KeyedReply, Liveness};
use replab_leaderless::LeaderlessConfig;
use replab_version_vector::VersionVectors;
use support::{Net, config, is_written, key_bytes, values};

#[test]
fn a_write_with_w2_succeeds_with_one_replica_down_and_a_quorum_read_sees_it() {
    let mut net = Net::<VersionVectors>::new(3, config(3, 2, 2));
    net.crash(3);
    let reply = net.put(1, "k", Some("v1"), Bytes::new());
    assert!(is_written(&reply), "{reply:?}");
    assert_eq!(values(&net.get(2, "k")), vec!["v1"]);
    assert_eq!(net.counter(1, "writes"), 1);
    assert_eq!(net.counter(2, "reads"), 1);
}

#[test]
fn a_write_with_w3_and_a_replica_down_times_out_as_unknown_and_may_surface_later() {
    let mut net = Net::<VersionVectors>::new(3, config(3, 3, 1));
    net.crash(3);
    let id = net.put_request(1, "k", Some("v1"), Bytes::new());
    net.deliver_all();
    assert_eq!(net.reply(1, id), None, "two of three acks: still waiting");
    net.tick(999);
    assert_eq!(net.reply(1, id), None, "the deadline is request_timeout_ms");
    net.tick(1);
    match net.reply(1, id) {
        Some(KeyedReply::Unknown { reason }) => assert!(reason.contains("2 of the 3"), "{reason}"),
        other => panic!("expected unknown, got {other:?}"),
    }
    assert_eq!(net.counter(1, "unknown_writes"), 1);
    // Unknown, not failed: the value is on two replicas, and a read finds it.
    assert_eq!(values(&net.get(2, "k")), vec!["v1"]);
}

#[test]
fn fewer_than_w_owners_alive_by_the_detector_fails_fast_and_writes_nothing() {
    let mut net = Net::<VersionVectors>::new(3, config(3, 2, 2));
    net.set_liveness(1, 2, Liveness::Dead);
    net.set_liveness(1, 3, Liveness::Suspect);
    let id = net.put_request(1, "k", Some("v"), Bytes::new());
    assert!(is_written(&net.wait(1, id, 2_000)), "a suspect still counts: 2 of 3 owners alive");

    net.set_liveness(1, 3, Liveness::Dead);
    let trace_before = net.trace.len();
    let id = net.put_request(1, "k", Some("v2"), Bytes::new());
    match net.reply(1, id) {
        Some(KeyedReply::Failed { reason }) => assert!(reason.contains("write quorum is 2"), "{reason}"),
        other => panic!("expected an immediate failure, got {other:?}"),
    }
    let effects = &net.trace[trace_before..];
    assert!(effects.iter().all(|e| !e.contains("Persist") && !e.contains("Send")), "nothing written: {effects:?}");
    assert_eq!(net.counter(1, "failed_fast"), 1);
    assert_eq!(net.values_at(1, "k"), vec!["v"], "v2 was never applied");

    net.set_liveness(1, 3, Liveness::Alive);
    assert!(is_written(&net.put(1, "k", Some("v3"), Bytes::new())), "a revived peer counts again");
}

#[test]
fn a_read_that_hears_fewer_than_r_owners_in_time_fails_and_changes_nothing() {
    let mut net = Net::<VersionVectors>::new(3, config(3, 1, 3));
    assert!(is_written(&net.put(1, "k", Some("v"), Bytes::new())));
    net.crash(3);
    let trace_before = net.trace.len();
    let id = net.request(1, KeyedOp::Get { key: key_bytes("k") });
    match net.wait(1, id, 2_000) {
        KeyedReply::Failed { reason } => assert!(reason.contains("2 of the 3 replies"), "{reason}"),
        other => panic!("expected failed, got {other:?}"),
    }
    assert!(net.trace[trace_before..].iter().all(|e| !e.contains("Persist")), "a read persists nothing");
    assert_eq!(net.counter(1, "failed_reads"), 1);
}

#[test]
fn a_read_with_fewer_than_r_owners_alive_by_the_detector_fails_fast() {
    let mut net = Net::<VersionVectors>::new(3, config(3, 2, 3));
    net.set_liveness(2, 3, Liveness::Dead);
    let id = net.request(2, KeyedOp::Get { key: key_bytes("k") });
    assert!(matches!(net.reply(2, id), Some(KeyedReply::Failed { .. })));
    assert_eq!(net.counter(2, "failed_fast"), 1);
}

#[test]
fn the_coordinator_counts_itself_only_once_its_record_is_durable() {
    let mut net = Net::<VersionVectors>::new(3, config(3, 1, 1));
    net.auto_persist = false;
    let id = net.put_request(1, "k", Some("v"), Bytes::new());
    net.deliver_all();
    assert_eq!(net.reply(1, id), None, "W=1, but the coordinator's own record is not durable");
    assert!(net.queue.is_empty(), "and its Stores wait for that record too");
    net.flush(1);
    assert!(is_written(&net.reply(1, id).expect("answered once durable")));
}

#[test]
fn a_read_waits_for_the_local_register_to_be_durable_before_counting_it() {
    let mut net = Net::<VersionVectors>::new(3, config(3, 1, 1));
    net.auto_persist = false;
    let write = net.put_request(1, "k", Some("v"), Bytes::new());
    let id = net.request(1, KeyedOp::Get { key: key_bytes("k") });
    assert_eq!(net.reply(1, id), None, "the local register holds a version not durable yet");
    net.flush(1);
    assert_eq!(values(&net.reply(1, id).expect("answered")), vec!["v"]);
    assert!(is_written(&net.reply(1, write).unwrap()));
}

#[test]
fn quorums_overlap_only_when_r_plus_w_exceeds_n() {
    let overlap = |replicas, write_quorum, read_quorum| {
        LeaderlessConfig { replicas, write_quorum, read_quorum, ..LeaderlessConfig::default() }.quorums_overlap()
    };
    assert!(overlap(3, 2, 2));
    assert!(overlap(3, 3, 1));
    assert!(!overlap(3, 1, 1));
    assert!(!overlap(5, 2, 3));
    assert!(overlap(5, 3, 3));
}

#[test]
fn a_partial_quorum_read_can_miss_an_acknowledged_write() {
    // R + W <= N: the write went to node 1 only (its Stores are cut), the
    // read asks node 2 only.
    let mut net = Net::<VersionVectors>::new(3, config(3, 1, 1));
    net.block(1, 2);
    net.block(1, 3);
    assert!(is_written(&net.put(1, "k", Some("v"), Bytes::new())));
    assert_eq!(values(&net.get(2, "k")), Vec::<String>::new(), "a stale read, as PBS predicts");
}

#[test]
fn the_status_is_a_peer_without_term_with_record_sequence_numbers() {
    let mut net = Net::<VersionVectors>::new(3, config(3, 2, 2));
    net.put(1, "a", Some("1"), Bytes::new());
    net.put(1, "b", Some("2"), Bytes::new());
    let status = net.node(1).status();
    assert_eq!(status.role, replab_api::Role::Peer);
    assert_eq!((status.term, status.leader), (0, None));
    assert_eq!((status.first_index, status.last_index, status.durable_index), (1, 2, 2));
    assert_eq!((status.commit_index, status.applied_index), (2, 2));
    let state = net.node(2).replica_state();
    assert_eq!(state.len(), 2);
    assert_eq!(state[0].owners.len(), 3);
    // Persisted beyond what was asked for is refused.
    let mut out = replab_api::KeyedEffects::new();
    let mut node = replab_leaderless::Leaderless::<VersionVectors>::recover(
        replab_api::PolicyContext { id: 1, members: vec![1, 2, 3], seed: 1 },
        config(3, 2, 2),
        replab_api::KeyedRecovered::default(),
    )
    .unwrap();
    let clocks = replab_api::Clocks { now: replab_api::Instant::ZERO, wall_ms: 0 };
    assert!(node.step(clocks, KeyedInput::Persisted { up_to: 5 }, &mut out).is_err());
    assert!(out.as_slice().iter().all(|e| !matches!(e, KeyedEffect::Reply { .. })));
}
