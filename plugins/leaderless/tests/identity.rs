//! A node that lost its state writes under a new name. Under version
//! vectors each version is named by a dot (writer, counter); a node that
//! restarts with an empty disk has forgotten its counters, and under its
//! old name would hand out dots its peers already hold, which they drop as
//! old: a put acknowledged `Written` would vanish. The engine gives such a
//! node a new incarnation (`KeyedRecovered::incarnation`), and the node
//! writes under `actor_id(node, incarnation)`.

mod support;

use bytes::Bytes;
use replab_api::{KeyedRecovered, PolicyContext, actor_id};
use replab_leaderless::{Bug, Leaderless, LeaderlessConfig};
use replab_version_vector::VersionVectors;
use support::{Net, config, is_written};

/// One blind write at node 1, node 1's disk lost, another blind write at
/// node 1, then time for anti-entropy: what node 2 and node 3 end with.
fn write_lose_the_disk_write_again(bug: Bug) -> (Vec<String>, Vec<String>, (u64, u64)) {
    let mut net = Net::<VersionVectors>::new(3, LeaderlessConfig { bug, ..config(3, 2, 2) });
    assert!(is_written(&net.put(1, "k", Some("old"), Bytes::new())));
    net.run(50);
    net.wipe(1, 7);
    net.restart(1);
    let identity = net.node(1).identity();
    assert!(is_written(&net.put(1, "k", Some("new"), Bytes::new())), "acknowledged by a peer");
    net.run(3_000);
    (net.values_at(2, "k"), net.values_at(3, "k"), identity)
}

#[test]
fn a_node_that_lost_its_disk_names_its_writes_anew_and_its_peers_keep_them() {
    let (two, three, identity) = write_lose_the_disk_write_again(Bug::None);
    assert_eq!(identity, (7, actor_id(1, 7)));
    assert_eq!(two, vec!["new", "old"], "two blind writes: siblings");
    assert_eq!(three, vec!["new", "old"]);
}

/// The checker's broken variant, on the same schedule: the write after the
/// lost disk reuses the dot (1, 1), which the peers hold for "old".
#[test]
fn under_its_old_name_the_node_reuses_a_dot_and_an_acknowledged_write_vanishes() {
    let (two, three, identity) = write_lose_the_disk_write_again(Bug::ForgetIncarnation);
    assert_eq!(identity, (7, 1));
    assert_eq!(two, vec!["old"], "\"new\" was acknowledged Written, and is gone");
    assert_eq!(three, vec!["old"]);
}

#[test]
fn a_node_with_its_state_keeps_its_name_across_restarts() {
    let mut net = Net::<VersionVectors>::new(3, config(3, 2, 2));
    assert_eq!(net.node(1).identity(), (0, 1), "the first incarnation writes under the node id");
    assert!(is_written(&net.put(1, "k", Some("a"), Bytes::new())));
    net.crash(1);
    net.restart(1);
    assert_eq!(net.node(1).identity(), (0, 1));
    net.wipe(2, 9);
    net.restart(2);
    net.crash(2);
    net.restart(2);
    assert_eq!(net.node(2).identity(), (9, actor_id(2, 9)), "the incarnation is kept with the state");
}

#[test]
fn member_ids_that_could_name_another_nodes_incarnation_are_refused() {
    let big = 1u64 << 63;
    let ctx = PolicyContext { id: 1, members: vec![1, 2, big], seed: 1 };
    let err = Leaderless::<VersionVectors>::recover(ctx, config(3, 2, 2), KeyedRecovered::default()).err().unwrap();
    assert!(err.contains("2^63"), "{err}");
}
