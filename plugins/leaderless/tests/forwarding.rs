//! With N below the member count, a node that owns none of a key hands
//! puts to an owner and relays the answer; it coordinates gets itself.

mod support;

use bytes::Bytes;
use replab_api::{KeyedInput, KeyedReply, Liveness};
use replab_leaderless::{Bug, LeaderlessConfig, Message};
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

fn five_nodes_with(bug: Bug) -> (Net<VersionVectors>, String, Vec<u64>) {
    let net = Net::<VersionVectors>::new(5, LeaderlessConfig { bug, ..config(3, 2, 2) });
    let key = net.key_not_owned_by(5);
    let owners = net.node(1).owners(key.as_bytes());
    (net, key, owners)
}

/// A forwarded put whose `Coordinate` the network delivers three times:
/// once, again while the first copy is in progress, and again after it was
/// answered. Returns the forwarder's answer, the puts the coordinator
/// started, and how many versions the coordinator holds.
fn a_forward_delivered_three_times(bug: Bug) -> (Option<KeyedReply>, u64, usize) {
    let (mut net, key, owners) = five_nodes_with(bug);
    let id = net.put_request(5, &key, Some("v"), Bytes::new());
    let coordinate = net.queue.pop_front().expect("the forward");
    assert_eq!(coordinate.1, owners[0]);
    net.queue.push_front(coordinate.clone());
    net.deliver_one();
    net.queue.push_front(coordinate.clone());
    net.deliver_one();
    net.deliver_all();
    let answer = net.reply(5, id);
    net.queue.push_back(coordinate);
    net.deliver_all();
    assert!(net.errors.is_empty(), "{:?}", net.errors);
    let versions = net.node(owners[0]).register(key.as_bytes()).unwrap().versions().count();
    (answer, net.counter(owners[0], "writes"), versions)
}

#[test]
fn a_duplicated_forward_is_coordinated_once() {
    let (answer, writes, versions) = a_forward_delivered_three_times(Bug::None);
    assert!(answer.as_ref().is_some_and(is_written), "{answer:?}");
    assert_eq!((writes, versions), (1, 1), "one put, one version");
    let (answer, writes, versions) = a_forward_delivered_three_times(Bug::CoordinateDuplicates);
    assert!(answer.as_ref().is_some_and(is_written), "{answer:?}");
    assert_eq!((writes, versions), (3, 3), "the broken coordinator applies one client put three times");
}

#[test]
fn a_copy_of_an_answered_forward_gets_the_first_answer_again() {
    let (mut net, key, owners) = five_nodes_with(Bug::None);
    net.put_request(5, &key, Some("v"), Bytes::new());
    let coordinate = net.queue.front().cloned().expect("the forward");
    net.deliver_all();
    net.queue.push_back(coordinate);
    net.deliver_one();
    let resent: Vec<KeyedReply> = net
        .queue
        .iter()
        .filter_map(|(from, to, bytes)| match Message::decode(bytes).unwrap() {
            Message::Coordinated { reply, .. } if (*from, *to) == (owners[0], 5) => Some(reply),
            _ => None,
        })
        .collect();
    assert_eq!(resent.len(), 1, "{resent:?}");
    assert!(is_written(&resent[0]));
    assert_eq!(net.counter(owners[0], "duplicate_forwards"), 1);
}

/// The simulation's finding: the copy that arrives while the first is in
/// progress, after the coordinator's detector called two owners dead, must
/// not fail fast and tell the forwarder "certainly not applied" first.
fn a_copy_arrives_after_the_detector_changed_its_mind(bug: Bug) -> (Option<KeyedReply>, Vec<String>) {
    let (mut net, key, owners) = five_nodes_with(bug);
    let id = net.put_request(5, &key, Some("v"), Bytes::new());
    let coordinate = net.queue.pop_front().expect("the forward");
    net.queue.push_front(coordinate.clone());
    net.deliver_one();
    net.set_liveness(owners[0], owners[1], Liveness::Dead);
    net.set_liveness(owners[0], owners[2], Liveness::Dead);
    net.step(owners[0], KeyedInput::Message { from: 5, bytes: coordinate.2 });
    net.deliver_all();
    (net.reply(5, id), net.values_at(owners[1], &key))
}

#[test]
fn a_duplicated_forward_never_answers_failed_for_a_put_that_was_applied() {
    let (answer, stored) = a_copy_arrives_after_the_detector_changed_its_mind(Bug::None);
    assert!(answer.as_ref().is_some_and(is_written), "{answer:?}");
    assert_eq!(stored, vec!["v"]);
    let (answer, stored) = a_copy_arrives_after_the_detector_changed_its_mind(Bug::CoordinateDuplicates);
    assert!(matches!(answer, Some(KeyedReply::Failed { .. })), "the broken coordinator: {answer:?}");
    assert_eq!(stored, vec!["v"], "yet every owner holds it");
}

/// A coordinator that refuses a forwarded put for lack of live owners
/// writes nothing, but another copy of the same forward may be applied (by
/// it before a restart, or after it forgot this one): it answers `Unknown`.
#[test]
fn a_coordinator_refusing_a_forwarded_put_says_unknown_not_failed() {
    let (mut net, key, owners) = five_nodes_with(Bug::None);
    net.set_liveness(owners[0], owners[1], Liveness::Dead);
    net.set_liveness(owners[0], owners[2], Liveness::Dead);
    let id = net.put_request(5, &key, Some("v"), Bytes::new());
    net.deliver_all();
    let answer = net.reply(5, id);
    assert!(matches!(answer, Some(KeyedReply::Unknown { ref reason }) if reason.contains("duplicate")), "{answer:?}");
    assert_eq!(net.counter(owners[0], "writes"), 0, "nothing was written");
    assert_eq!(net.counter(owners[0], "failed_fast"), 1);
}

#[test]
fn remembered_forwards_are_forgotten_after_three_request_timeouts() {
    let (mut net, key, owners) = five_nodes_with(Bug::None);
    assert!(is_written(&net.put(5, &key, Some("v"), Bytes::new())));
    assert_eq!(net.node(owners[0]).remembered_forwards(), 1);
    net.run(2_990);
    assert_eq!(net.node(owners[0]).remembered_forwards(), 1);
    net.run(20);
    assert_eq!(net.node(owners[0]).remembered_forwards(), 0);
}
