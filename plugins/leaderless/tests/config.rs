//! `[leaderless]` validation: every refusal names its key.

use replab_api::{ConflictResolver, KeyedFactory, KeyedRecovered, PolicyContext};
use replab_leaderless::{Leaderless, LeaderlessConfig, LeaderlessFactory};
use replab_version_vector::VersionVectors;

fn with(change: impl Fn(&mut LeaderlessConfig)) -> LeaderlessConfig {
    let mut config = LeaderlessConfig::default();
    change(&mut config);
    config
}

#[test]
fn errors_name_the_key() {
    let cases: Vec<(LeaderlessConfig, usize, &str)> = vec![
        (with(|c| c.replicas = 0), 3, "replicas"),
        (with(|c| c.replicas = 4), 3, "replicas"),
        (with(|c| c.write_quorum = 0), 3, "write_quorum"),
        (with(|c| c.write_quorum = 4), 3, "write_quorum"),
        (with(|c| c.read_quorum = 0), 3, "read_quorum"),
        (with(|c| c.read_quorum = 4), 3, "read_quorum"),
        (with(|c| c.request_timeout_ms = 0), 3, "request_timeout_ms"),
        (with(|c| c.anti_entropy_interval_ms = 5), 3, "anti_entropy_interval_ms"),
        (with(|c| c.anti_entropy_buckets = 0), 3, "anti_entropy_buckets"),
        (with(|c| c.anti_entropy_buckets = 65_537), 3, "anti_entropy_buckets"),
        (with(|c| c.ring_vnodes = 0), 3, "ring_vnodes"),
        (with(|c| c.ring_vnodes = 5_000), 3, "ring_vnodes"),
        (LeaderlessConfig::default(), 2, "replicas"),
        (LeaderlessConfig::default(), 0, "members"),
    ];
    for (config, members, key) in cases {
        let err = LeaderlessFactory::validate(&config, members).expect_err(key);
        assert_eq!(err.key, key, "{err}");
        assert!(err.to_string().starts_with(key), "{err}");
    }
}

#[test]
fn partial_quorums_and_the_edges_are_accepted() {
    let ok = [
        with(|c| (c.write_quorum, c.read_quorum) = (1, 1)),
        with(|c| (c.replicas, c.write_quorum, c.read_quorum) = (1, 1, 1)),
        with(|c| c.anti_entropy_interval_ms = 0),
        with(|c| c.checkpoint_every_records = 0),
        with(|c| c.ring_vnodes = 1),
    ];
    for config in ok {
        assert_eq!(LeaderlessFactory::validate(&config, 3), Ok(()), "{config:?}");
    }
    assert!(!with(|c| (c.write_quorum, c.read_quorum) = (1, 1)).quorums_overlap());
}

#[test]
fn the_factory_is_named_leaderless_and_builds_a_running_node() {
    assert_eq!(LeaderlessFactory::NAME, "leaderless");
    let ctx = PolicyContext { id: 2, members: vec![1, 2, 3], seed: 9 };
    let node =
        LeaderlessFactory::build::<VersionVectors>(ctx.clone(), LeaderlessConfig::default(), KeyedRecovered::default())
            .unwrap();
    assert_eq!(node.status().id, 2);
    assert_eq!(node.status().role, replab_api::Role::Peer);
    let counters: Vec<&str> = node.counters().into_iter().map(|(name, _)| name).collect();
    for name in [
        "reads",
        "writes",
        "forwarded",
        "failed_fast",
        "unknown_writes",
        "read_repairs",
        "anti_entropy_rounds",
        "anti_entropy_keys_repaired",
        "anti_entropy_messages",
        "anti_entropy_bytes",
        "messages_sent",
        "bytes_sent",
    ] {
        assert!(counters.contains(&name), "{name} missing from {counters:?}");
    }
    let direct = Leaderless::<VersionVectors>::recover(ctx, LeaderlessConfig::default(), KeyedRecovered::default());
    assert!(direct.is_ok());
    assert_eq!(VersionVectors::NAME, "version-vector");
}
