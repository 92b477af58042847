//! Same seed, same inputs, same effects: the simulator and a replayed
//! scenario depend on it.

mod support;

use bytes::Bytes;
use replab_api::{ConflictResolver, KeyedOp};
use replab_leaderless::LeaderlessConfig;
use replab_lww::Lww;
use replab_version_vector::VersionVectors;
use support::{Net, context};

/// Partitions, concurrent writes, crashes, forwards, read repair and
/// anti-entropy rounds on five nodes; returns every effect in order.
fn scenario<R: ConflictResolver>(seed: u64) -> Vec<String> {
    let config = LeaderlessConfig { anti_entropy_interval_ms: 50, write_quorum: 1, ..LeaderlessConfig::default() };
    let mut net = Net::<R>::with_seed(5, config, seed);
    for i in 0..20 {
        net.put_request(1 + i % 5, &format!("k{}", i % 7), Some(&format!("v{i}")), Bytes::new());
        net.run(20);
    }
    net.partition(&[1, 2], &[3, 4, 5]);
    net.put_request(1, "k1", Some("left"), Bytes::new());
    net.put_request(4, "k1", Some("right"), Bytes::new());
    net.crash(5);
    net.run(300);
    net.heal();
    net.restart(5);
    let id = net.request(3, KeyedOp::Get { key: Bytes::from_static(b"k1") });
    let read = net.wait(3, id, 2_000);
    net.put_request(2, "k1", Some("resolved"), context(&read));
    net.run(1_000);
    net.trace.clone()
}

#[test]
fn the_same_seed_and_inputs_give_the_same_effects() {
    let a = scenario::<VersionVectors>(11);
    assert_eq!(a, scenario::<VersionVectors>(11));
    assert!(a.len() > 300, "a scenario with some activity: {} effects", a.len());
    assert_eq!(scenario::<Lww>(11), scenario::<Lww>(11));
}

#[test]
fn the_seed_steers_anti_entropy() {
    // Different seeds pick different anti-entropy peers (and tags).
    assert_ne!(scenario::<VersionVectors>(11), scenario::<VersionVectors>(12));
}
