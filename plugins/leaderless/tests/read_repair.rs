//! Read repair: a get sends the merged register to every owner that
//! answered with something different.

mod support;

use bytes::Bytes;
use replab_api::KeyedPolicy;
use support::{Net, config, is_written, values};

/// A put at node 1 whose `Store` to node 3 is lost: node 3 is stale.
fn with_stale_node_3(read_repair: bool) -> Net<replab_version_vector::VersionVectors> {
    let mut net = Net::new(3, replab_leaderless::LeaderlessConfig { read_repair, ..config(3, 2, 2) });
    net.block(1, 3);
    assert!(is_written(&net.put(1, "k", Some("v"), Bytes::new())));
    net.heal();
    assert_eq!(net.values_at(3, "k"), Vec::<String>::new(), "node 3 missed the write");
    net
}

#[test]
fn read_repair_brings_a_stale_replica_up_to_date_even_when_it_answers_after_the_quorum() {
    let mut net = with_stale_node_3(true);
    // R=2: node 2 answers with its own register and node 1's; node 3's
    // reply comes third, after the client has its answer.
    assert_eq!(values(&net.get(2, "k")), vec!["v"]);
    assert_eq!(net.values_at(3, "k"), vec!["v"], "repaired");
    assert_eq!(net.counter(2, "read_repairs"), 1, "one stale owner, one repair");
    let registers = net.registers_of("k");
    assert!(registers.windows(2).all(|w| w[0].1 == w[1].1), "{registers:?}");
    // Once converged, a read repairs nothing.
    net.get(2, "k");
    assert_eq!(net.counter(2, "read_repairs"), 1);
}

#[test]
fn a_stale_coordinator_repairs_its_own_replica() {
    let mut net = with_stale_node_3(true);
    assert_eq!(values(&net.get(3, "k")), vec!["v"]);
    assert_eq!(net.values_at(3, "k"), vec!["v"]);
    assert_eq!(net.counter(3, "read_repairs"), 1);
    assert_eq!(net.node(3).status().last_index, 1, "the repair was persisted");
}

#[test]
fn without_read_repair_the_stale_replica_stays_stale() {
    let mut net = with_stale_node_3(false);
    assert_eq!(values(&net.get(2, "k")), vec!["v"]);
    assert_eq!(values(&net.get(3, "k")), vec!["v"], "the quorum still finds it");
    assert_eq!(net.values_at(3, "k"), Vec::<String>::new(), "but nobody told node 3");
    assert_eq!(net.total("read_repairs"), 0);
}

#[test]
fn a_read_at_a_non_owner_repairs_the_owners() {
    let mut net = Net::<replab_version_vector::VersionVectors>::new(5, config(3, 2, 2));
    let key = net.key_not_owned_by(5);
    let owners = net.node(1).owners(key.as_bytes());
    let (coordinator, stale) = (owners[0], owners[2]);
    net.block(coordinator, stale);
    assert!(is_written(&net.put(coordinator, &key, Some("v"), Bytes::new())));
    net.heal();
    assert_eq!(values(&net.get(5, &key)), vec!["v"]);
    assert_eq!(net.values_at(stale, &key), vec!["v"]);
    assert_eq!(net.counter(5, "read_repairs"), 1);
    assert!(net.node(5).register(key.as_bytes()).is_none(), "the non-owner keeps nothing");
}
