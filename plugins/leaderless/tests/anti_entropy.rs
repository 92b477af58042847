//! Anti-entropy: replicas converge without anyone reading, at a cost the
//! counters measure.

mod support;

use bytes::Bytes;
use replab_api::KeyedPolicy;
use replab_leaderless::LeaderlessConfig;
use replab_version_vector::VersionVectors;
use support::{Net, config, is_written};

/// `keys` puts at node 1 whose `Store`s to node 3 are lost.
fn with_stale_node_3(keys: usize, anti_entropy: LeaderlessConfig) -> Net<VersionVectors> {
    let mut net = Net::new(3, anti_entropy);
    net.block(1, 3);
    for i in 0..keys {
        assert!(is_written(&net.put(1, &format!("k{i}"), Some(&format!("v{i}")), Bytes::new())));
    }
    net.heal();
    net
}

fn with_interval(interval_ms: u64) -> LeaderlessConfig {
    LeaderlessConfig { anti_entropy_interval_ms: interval_ms, ..config(3, 2, 2) }
}

fn converged(net: &Net<VersionVectors>) -> bool {
    let state = |id| net.node(id).replica_state();
    state(1) == state(2) && state(2) == state(3)
}

#[test]
fn anti_entropy_converges_replicas_without_reads() {
    let mut net = with_stale_node_3(20, with_interval(100));
    assert!(net.node(3).replica_state().is_empty());
    net.run(2_000);
    assert!(converged(&net), "node 3 holds {} keys", net.node(3).replica_state().len());
    assert_eq!(net.values_at(3, "k7"), vec!["v7"]);
    assert_eq!(net.total("reads"), 0, "no read was involved");
    assert_eq!(net.total("anti_entropy_keys_repaired"), 20, "each missing key repaired once");
    assert!(net.total("anti_entropy_rounds") >= 30, "three nodes, one round per 100 ms each");
    assert!(net.total("anti_entropy_messages") >= net.total("anti_entropy_rounds"));
    assert!(net.total("anti_entropy_bytes") > 0);
    assert!(net.total("messages_sent") > net.total("anti_entropy_messages"), "the puts' messages count too");
    assert_eq!(net.node(3).status().last_index, 20, "node 3 persisted what it was repaired with");
}

#[test]
fn anti_entropy_is_off_at_interval_zero() {
    let mut net = with_stale_node_3(5, with_interval(0));
    net.run(5_000);
    assert!(net.node(3).replica_state().is_empty(), "nobody repaired node 3");
    for counter in ["anti_entropy_rounds", "anti_entropy_messages", "anti_entropy_bytes", "anti_entropy_keys_repaired"]
    {
        assert_eq!(net.total(counter), 0, "{counter}");
    }
}

#[test]
fn between_converged_replicas_a_round_costs_one_digest_message() {
    let mut net = with_stale_node_3(10, with_interval(100));
    net.run(2_000);
    assert!(converged(&net));
    let (rounds, messages, bytes) =
        (net.total("anti_entropy_rounds"), net.total("anti_entropy_messages"), net.total("anti_entropy_bytes"));
    net.run(1_000);
    let more_rounds = net.total("anti_entropy_rounds") - rounds;
    assert!(more_rounds >= 25, "{more_rounds}");
    assert_eq!(net.total("anti_entropy_messages") - messages, more_rounds, "digests only, no registers");
    let per_round = (net.total("anti_entropy_bytes") - bytes) / more_rounds;
    // 64 buckets of varint digests, each up to 10 bytes, plus the header.
    assert!((64..=64 * 10 + 16).contains(&per_round), "{per_round} bytes per idle round");
    assert_eq!(net.total("anti_entropy_keys_repaired"), 10);
}

#[test]
fn anti_entropy_skips_peers_the_detector_calls_dead() {
    let mut net = with_stale_node_3(3, with_interval(100));
    for (at, peer) in [(1, 3), (2, 3), (3, 1), (3, 2)] {
        net.set_liveness(at, peer, replab_api::Liveness::Dead);
    }
    net.run(2_000);
    assert!(net.node(3).replica_state().is_empty());
    assert_eq!(net.counter(3, "anti_entropy_rounds"), 0, "node 3 has no live peer to talk to");
}

#[test]
fn a_divergence_larger_than_one_message_is_repaired_over_several_rounds() {
    // One bucket holding 5000 keys: more than a message carries, so each
    // round repairs a slice.
    let config = LeaderlessConfig { anti_entropy_buckets: 1, ..with_interval(100) };
    let mut net = with_stale_node_3(5_000, config);
    let mut held = Vec::new();
    for _ in 0..30 {
        net.run(100);
        held.push(net.node(3).replica_state().len());
    }
    assert!(held.iter().any(|n| (1..5_000).contains(n)), "never partly repaired: {held:?}");
    assert!(converged(&net), "node 3 holds {} of 5000 keys", net.node(3).replica_state().len());
    assert_eq!(net.counter(3, "anti_entropy_keys_repaired"), 5_000);
}

#[test]
fn anti_entropy_carries_versions_both_ways_and_keeps_siblings() {
    // Nodes 1 and 3 each take a write the other never sees (W=1).
    let config = LeaderlessConfig { write_quorum: 1, ..with_interval(100) };
    let mut net = Net::<VersionVectors>::new(3, config);
    net.partition(&[1], &[2, 3]);
    net.put(1, "k", Some("a"), Bytes::new());
    net.put(3, "k", Some("b"), Bytes::new());
    net.heal();
    net.run(2_000);
    assert!(converged(&net));
    for node in [1, 2, 3] {
        assert_eq!(net.values_at(node, "k"), vec!["a", "b"], "node {node}");
    }
}

#[test]
fn anti_entropy_never_hands_out_a_version_that_is_not_durable_yet() {
    // Node 1 coordinates a write whose record is not durable. If
    // anti-entropy carried it to a peer and node 1 then crashed, node 1
    // would reuse the write's dot for its next write, which the peer would
    // silently drop as already seen.
    let mut net = Net::<VersionVectors>::new(3, with_interval(100));
    net.auto_persist = false;
    let id = net.put_request(1, "k", Some("not yet durable"), Bytes::new());
    for _ in 0..30 {
        net.tick(10);
        net.deliver_all();
        for peer in [2, 3] {
            net.flush(peer);
        }
        net.deliver_all();
    }
    assert!(net.total("anti_entropy_rounds") > 0);
    assert_eq!(net.values_at(2, "k"), Vec::<String>::new());
    assert_eq!(net.values_at(3, "k"), Vec::<String>::new());
    net.crash(1);
    net.restart(1);
    net.auto_persist = true;
    assert_eq!(net.reply(1, id), None);
    assert!(is_written(&net.put(1, "k", Some("second"), Bytes::new())));
    net.run(1_000);
    for node in [1, 2, 3] {
        assert_eq!(net.values_at(node, "k"), vec!["second"], "node {node}");
    }
}
