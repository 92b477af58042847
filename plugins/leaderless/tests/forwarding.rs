//! With N below the member count, a node that owns none of a key hands
//! puts to an owner and relays the answer; it coordinates gets itself.

mod support;

use bytes::Bytes;
use replab_api::{KeyedInput, KeyedReply, Liveness};
use replab_leaderless::Message;
use replab_version_vector::VersionVectors;
use support::{Net, config, is_written, values};

fn five_nodes() -> (Net<VersionVectors>, String, Vec<u64>) {
    let net = Net::<VersionVectors>::new(5, config(3, 2, 2));
    let key = net.key_not_owned_by(5);
    let owners = net.node(1).owners(key.as_bytes());
    assert_eq!(owners.len(), 3);
    (net, key, owners)
}

#[test]
fn a_put_at_a_non_owner_is_forwarded_to_the_first_owner_and_the_answer_relayed() {
    let (mut net, key, owners) = five_nodes();
    assert!(is_written(&net.put(5, &key, Some("v"), Bytes::new())));
    assert_eq!(net.counter(5, "forwarded"), 1);
    assert_eq!(net.counter(5, "writes"), 0);
    assert_eq!(net.counter(owners[0], "writes"), 1, "the first owner coordinated");
    assert!(net.node(5).register(key.as_bytes()).is_none(), "the non-owner holds nothing");
    for owner in &owners {
        assert_eq!(net.values_at(*owner, &key), vec!["v"]);
    }
    let read = net.get(5, &key);
    assert_eq!(values(&read), vec!["v"]);
    assert_eq!(net.counter(5, "reads"), 1, "a get is coordinated where it arrives");
}

#[test]
fn forwarding_skips_owners_the_detector_calls_dead() {
    let (mut net, key, owners) = five_nodes();
    net.set_liveness(5, owners[0], Liveness::Dead);
    assert!(is_written(&net.put(5, &key, Some("v"), Bytes::new())));
    assert_eq!(net.counter(owners[0], "writes"), 0);
    assert_eq!(net.counter(owners[1], "writes"), 1);
}

#[test]
fn a_forwarded_put_fails_fast_when_fewer_than_w_owners_are_alive() {
    let (mut net, key, owners) = five_nodes();
    net.set_liveness(5, owners[0], Liveness::Dead);
    net.set_liveness(5, owners[2], Liveness::Dead);
    let id = net.put_request(5, &key, Some("v"), Bytes::new());
    assert!(matches!(net.reply(5, id), Some(KeyedReply::Failed { .. })));
    assert!(net.queue.is_empty(), "nothing was sent");
    assert_eq!(net.counter(5, "failed_fast"), 1);
}

#[test]
fn a_forwarded_put_whose_coordinator_never_answers_is_unknown() {
    let (mut net, key, owners) = five_nodes();
    net.crash(owners[0]); // the detector has not noticed
    let id = net.put_request(5, &key, Some("v"), Bytes::new());
    net.deliver_all();
    net.tick(1_999);
    assert_eq!(net.reply(5, id), None, "the forwarder waits two request timeouts");
    net.tick(1);
    assert!(matches!(net.reply(5, id), Some(KeyedReply::Unknown { .. })), "{:?}", net.reply(5, id));
    assert_eq!(net.counter(5, "unknown_writes"), 1);
}

#[test]
fn the_coordinators_unknown_is_relayed_as_unknown() {
    let (mut net, key, owners) = five_nodes();
    net.crash(owners[1]);
    net.crash(owners[2]);
    let id = net.put_request(5, &key, Some("v"), Bytes::new());
    let reply = net.wait(5, id, 3_000);
    assert!(matches!(reply, KeyedReply::Unknown { ref reason } if reason.contains("1 of the 2")), "{reply:?}");
    assert_eq!(net.counter(owners[0], "unknown_writes"), 1);
    assert_eq!(net.counter(5, "unknown_writes"), 0, "the forwarder relayed, it did not time out");
}

#[test]
fn an_answer_from_a_node_the_put_was_not_forwarded_to_is_rejected() {
    let (mut net, key, owners) = five_nodes();
    let id = net.put_request(5, &key, Some("v"), Bytes::new());
    let coordinate = net.queue.pop_front().expect("the forward");
    let tag = match Message::decode(&coordinate.2).unwrap() {
        Message::Coordinate { tag, .. } => tag,
        other => panic!("{other:?}"),
    };
    let impostor = owners[1];
    let forged = Message::Coordinated { tag, reply: KeyedReply::Written { context: Bytes::new() } };
    net.step(5, KeyedInput::Message { from: impostor, bytes: forged.encode() });
    assert_eq!(net.reply(5, id), None);
    assert!(matches!(net.errors.last(), Some((5, replab_api::StepError::Rejected(_)))));
}
