//! Concurrent writes, resolved by the resolver the policy is built with:
//! siblings under version vectors, one value under last-writer-wins; and
//! the context a read returns, which lets a later put replace exactly the
//! siblings its client saw.

mod support;

use bytes::Bytes;
use replab_api::{ConflictResolver, KeyedOp, KeyedPolicy, KeyedReply};
use replab_lww::Lww;
use replab_version_vector::VersionVectors;
use support::{Net, config, context, is_written, key_bytes, values};

/// Node 1 alone and nodes 2-3 each take a put to "k" (W=1) while
/// partitioned; then the partition heals and node 3 reads with R=3.
fn write_on_both_sides<R: ConflictResolver>() -> (Net<R>, KeyedReply) {
    let mut net = Net::<R>::new(3, config(3, 1, 3));
    net.partition(&[1], &[2, 3]);
    assert!(is_written(&net.put(1, "k", Some("from 1"), Bytes::new())));
    net.tick(5);
    assert!(is_written(&net.put(2, "k", Some("from 2"), Bytes::new())));
    net.heal();
    let read = net.get(3, "k");
    (net, read)
}

#[test]
fn concurrent_writes_across_a_partition_become_two_siblings_under_version_vectors() {
    let (net, read) = write_on_both_sides::<VersionVectors>();
    assert_eq!(values(&read), vec!["from 1", "from 2"], "neither acknowledged write is lost");
    // Read repair gave every owner the merge.
    let registers = net.registers_of("k");
    assert!(registers.windows(2).all(|w| w[0].1 == w[1].1), "{registers:?}");
    assert_eq!(net.values_at(1, "k"), vec!["from 1", "from 2"]);
}

#[test]
fn concurrent_writes_across_a_partition_become_one_value_under_lww() {
    let (net, read) = write_on_both_sides::<Lww>();
    assert_eq!(values(&read), vec!["from 2"], "the later timestamp wins; node 1's write is gone");
    assert_eq!(net.values_at(1, "k"), vec!["from 2"]);
}

#[test]
fn a_put_with_the_context_of_a_read_resolves_the_siblings_it_saw() {
    let (mut net, read) = write_on_both_sides::<VersionVectors>();
    let written = net.put(3, "k", Some("merged"), context(&read));
    assert!(is_written(&written), "{written:?}");
    for node in [1, 2, 3] {
        assert_eq!(values(&net.get(node, "k")), vec!["merged"], "read at node {node}");
    }
}

#[test]
fn a_blind_put_beside_siblings_adds_one_instead_of_replacing_them() {
    let (mut net, _) = write_on_both_sides::<VersionVectors>();
    assert!(is_written(&net.put(1, "k", Some("blind"), Bytes::new())));
    assert_eq!(values(&net.get(2, "k")), vec!["blind", "from 1", "from 2"]);
}

#[test]
fn the_context_of_a_written_reply_covers_the_write() {
    let mut net = Net::<VersionVectors>::new(3, config(3, 2, 2));
    let first = net.put(1, "k", Some("v1"), Bytes::new());
    // A client that goes on from its own write's context replaces it.
    assert!(is_written(&net.put(2, "k", Some("v2"), context(&first))));
    assert_eq!(values(&net.get(3, "k")), vec!["v2"]);
}

#[test]
fn a_delete_with_a_context_removes_what_it_saw() {
    let mut net = Net::<VersionVectors>::new(3, config(3, 2, 2));
    net.put(1, "k", Some("v1"), Bytes::new());
    let read = net.get(2, "k");
    assert!(is_written(&net.put(3, "k", None, context(&read))));
    assert_eq!(values(&net.get(1, "k")), Vec::<String>::new());
    let state = net.node(1).replica_state();
    assert_eq!(state[0].values, Vec::<Bytes>::new(), "a tombstone, with no live value");
}

#[test]
fn a_context_that_does_not_decode_is_failed_and_changes_nothing() {
    let mut net = Net::<VersionVectors>::new(3, config(3, 2, 2));
    net.put(1, "k", Some("v1"), Bytes::new());
    let before = net.node(1).replica_state();
    let trace_before = net.trace.len();
    let id = net.request(1, KeyedOp::Put { key: key_bytes("k"), value: None, context: Bytes::from_static(&[0xff; 3]) });
    match net.reply(1, id) {
        Some(KeyedReply::Failed { reason }) => assert!(reason.contains("context"), "{reason}"),
        other => panic!("expected failed, got {other:?}"),
    }
    assert!(net.trace[trace_before..].iter().all(|e| !e.contains("Persist") && !e.contains("Send")));
    assert_eq!(net.node(1).replica_state(), before);
    // Forwarded to the coordinator, the failure comes back the same way.
    let mut net = Net::<VersionVectors>::new(5, config(3, 2, 2));
    let key = net.key_not_owned_by(1);
    let id = net.request(1, KeyedOp::Put { key: key_bytes(&key), value: None, context: Bytes::from_static(&[0xff]) });
    net.deliver_all();
    assert!(matches!(net.reply(1, id), Some(KeyedReply::Failed { reason }) if reason.contains("context")));
}

#[test]
fn a_node_stamps_its_writes_after_versions_it_has_seen_even_with_a_slow_clock() {
    // Node 2's wall clock runs an hour ahead, and its write carries that
    // time. Node 1 (on time) has only received that version as a replica;
    // its own next write, to another key, is still stamped after it.
    let mut net = Net::<Lww>::new(3, config(3, 2, 2));
    net.nodes.get_mut(&2).unwrap().wall_offset_ms = 3_600_000;
    net.put(2, "k", Some("ahead"), Bytes::new());
    let ahead = net.node(1).register(b"k").expect("node 1 replicates k").stamp;
    assert!(is_written(&net.put(1, "other", Some("x"), Bytes::new())));
    let mine = net.node(1).register(b"other").unwrap().stamp;
    assert!(mine > ahead, "{mine:?} is not after {ahead:?}");
    assert_eq!(mine.node, 1);
    // And an overwrite of k at node 1 wins everywhere, clock or no clock.
    assert!(is_written(&net.put(1, "k", Some("later"), Bytes::new())));
    assert_eq!(values(&net.get(3, "k")), vec!["later"]);
}
