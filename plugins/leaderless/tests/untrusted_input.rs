//! Peer messages are untrusted bytes, and no input of any kind may panic
//! a node: garbage, truncated or nonsense messages come back as errors or
//! are ignored, and the node's own invariants hold afterwards.

use std::collections::BTreeSet;

use bytes::Bytes;
use proptest::prelude::*;
use replab_api::{
    Clocks, ConflictResolver, HybridClock, Instant, KeyedEffect, KeyedEffects, KeyedInput, KeyedOp, KeyedPolicy,
    KeyedRecovered, KeyedReply, Liveness, LocalWrite, NodeId, PolicyContext, StepError,
};
use replab_leaderless::message::KeyRegister;
use replab_leaderless::{Leaderless, LeaderlessConfig, Message};
use replab_lww::{Lww, LwwRegister};
use replab_version_vector::VersionVectors;

const MEMBERS: [NodeId; 5] = [1, 2, 3, 4, 5];

fn config() -> LeaderlessConfig {
    LeaderlessConfig { anti_entropy_interval_ms: 100, ..LeaderlessConfig::default() }
}

/// A node under test and everything it sent so far.
struct Subject<R: ConflictResolver> {
    node: Leaderless<R>,
    now_ms: u64,
    answered: BTreeSet<u64>,
    /// Tags the node waits on (from its own Store/Fetch/Coordinate).
    tags: Vec<u64>,
    sent: Vec<Bytes>,
}

impl<R: ConflictResolver> Subject<R> {
    fn step(&mut self, input: KeyedInput) -> Result<(), StepError> {
        let clocks = Clocks { now: Instant::from_millis(self.now_ms), wall_ms: 1_000_000 + self.now_ms };
        let mut out = KeyedEffects::new();
        let result = self.node.step(clocks, input, &mut out);
        for effect in out.drain() {
            match effect {
                KeyedEffect::Reply { id, .. } => assert!(self.answered.insert(id), "request {id} answered twice"),
                KeyedEffect::Send { bytes, .. } => {
                    match Message::decode(&bytes).expect("the node's own messages decode") {
                        Message::Store { ack: Some(tag), .. } | Message::Fetch { tag, .. } => self.tags.push(tag),
                        Message::Coordinate { tag, .. } => self.tags.push(tag),
                        _ => {}
                    }
                    self.sent.push(bytes);
                }
                KeyedEffect::Persist { .. } | KeyedEffect::Checkpoint { .. } => {}
            }
        }
        let status = self.node.status();
        assert!(status.durable_index <= status.last_index, "{status:?}");
        assert!(status.first_index <= status.last_index + 1, "{status:?}");
        result
    }
}

/// Node 1 of five, with writes, reads and a forward pending and an
/// anti-entropy round started.
fn subject<R: ConflictResolver>() -> Subject<R> {
    let ctx = PolicyContext { id: 1, members: MEMBERS.to_vec(), seed: 3 };
    let node = Leaderless::<R>::recover(ctx, config(), KeyedRecovered::default()).unwrap();
    let mut s = Subject { node, now_ms: 0, answered: BTreeSet::new(), tags: Vec::new(), sent: Vec::new() };
    s.step(KeyedInput::Tick).unwrap();
    for (i, key) in keys().iter().enumerate() {
        let op = KeyedOp::Put { key: key.clone(), value: Some(Bytes::from_static(b"v")), context: Bytes::new() };
        s.step(KeyedInput::Client { id: i as u64, op }).unwrap();
        s.step(KeyedInput::Client { id: 100 + i as u64, op: KeyedOp::Get { key: key.clone() } }).unwrap();
    }
    let last = s.node.status().last_index;
    s.step(KeyedInput::Persisted { up_to: last }).unwrap();
    s.now_ms = 150;
    s.step(KeyedInput::Tick).unwrap();
    s
}

/// Keys node 1 owns and keys it does not.
fn keys() -> Vec<Bytes> {
    let ctx = PolicyContext { id: 1, members: MEMBERS.to_vec(), seed: 3 };
    let node = Leaderless::<VersionVectors>::recover(ctx, config(), KeyedRecovered::default()).unwrap();
    let (mut owned, mut foreign) = (Vec::new(), Vec::new());
    for i in 0..100 {
        let key = Bytes::from(format!("k{i}"));
        if node.owners(&key).contains(&1) { owned.push(key) } else { foreign.push(key) }
    }
    owned.truncate(3);
    foreign.truncate(2);
    owned.into_iter().chain(foreign).collect()
}

fn feed<R: ConflictResolver>(s: &mut Subject<R>, from: NodeId, bytes: Bytes) {
    match s.step(KeyedInput::Message { from, bytes }) {
        Ok(()) | Err(StepError::Decode { .. }) | Err(StepError::Rejected(_)) => {}
    }
}

/// Valid registers of resolver `R` (built by writes at random nodes and
/// wall clocks, some absurd) or random bytes.
fn register<R: ConflictResolver>() -> BoxedStrategy<Bytes> {
    let written = proptest::collection::vec((1u64..7, any::<Option<u8>>(), prop_oneof![0u64..10, any::<u64>()]), 0..4)
        .prop_map(|writes| {
            let mut register = R::Register::default();
            for (node, value, wall_ms) in writes {
                let value = value.map(|v| Bytes::from(vec![v]));
                let write = LocalWrite { node, actor: node, value: value.as_ref(), context: &[], wall_ms };
                R::write(&mut register, write, &mut HybridClock::new(node)).unwrap();
            }
            Bytes::from(postcard::to_allocvec(&register).unwrap())
        });
    prop_oneof![written, proptest::collection::vec(any::<u8>(), 0..24).prop_map(Bytes::from)].boxed()
}

fn key() -> BoxedStrategy<Bytes> {
    let known = keys();
    prop_oneof![
        (0..known.len()).prop_map(move |i| known[i].clone()),
        proptest::collection::vec(any::<u8>(), 0..6).prop_map(Bytes::from)
    ]
    .boxed()
}

fn tag(known: Vec<u64>) -> BoxedStrategy<u64> {
    prop_oneof![(0..known.len()).prop_map(move |i| known[i]), any::<u64>()].boxed()
}

fn reply() -> impl Strategy<Value = KeyedReply> {
    prop_oneof![
        any::<Vec<u8>>().prop_map(|c| KeyedReply::Written { context: Bytes::from(c) }),
        ".{0,8}".prop_map(|reason| KeyedReply::Failed { reason }),
        ".{0,8}".prop_map(|reason| KeyedReply::Unknown { reason }),
        Just(KeyedReply::Values { values: vec![], context: Bytes::new() }),
    ]
}

/// Well-formed messages with arbitrary (often absurd) contents.
fn message<R: ConflictResolver>(tags: Vec<u64>) -> BoxedStrategy<Message> {
    let key_register = (key(), register::<R>()).prop_map(|(key, register)| KeyRegister { key, register });
    let bucket_list = proptest::collection::btree_set(prop_oneof![0u32..70, any::<u32>()], 0..4)
        .prop_map(|set| set.into_iter().collect::<Vec<u32>>());
    prop_oneof![
        (tag(tags.clone()), key(), any::<Option<Vec<u8>>>(), any::<Vec<u8>>()).prop_map(
            |(tag, key, value, context)| {
                Message::Coordinate { tag, key, value: value.map(Bytes::from), context: Bytes::from(context) }
            }
        ),
        (tag(tags.clone()), reply()).prop_map(|(tag, reply)| Message::Coordinated { tag, reply }),
        (key(), register::<R>(), proptest::option::of(tag(tags.clone())))
            .prop_map(|(key, register, ack)| Message::Store { key, register, ack }),
        tag(tags.clone()).prop_map(|tag| Message::Stored { tag }),
        (tag(tags.clone()), key()).prop_map(|(tag, key)| Message::Fetch { tag, key }),
        (tag(tags), register::<R>()).prop_map(|(tag, register)| Message::Fetched { tag, register }),
        (any::<u64>(), prop_oneof![Just(64usize), 0usize..70]).prop_flat_map(|(round, n)| proptest::collection::vec(
            prop_oneof![Just(0u64), any::<u64>()],
            n
        )
        .prop_map(move |digests| Message::Digests { round, digests })),
        (any::<u64>(), bucket_list, proptest::collection::vec(key_register.clone(), 0..4))
            .prop_map(|(round, buckets, registers)| Message::DiffRegisters { round, buckets, registers }),
        (any::<u64>(), proptest::collection::vec(key_register, 0..4))
            .prop_map(|(round, registers)| Message::RepairRegisters { round, registers }),
    ]
    .boxed()
}

/// Any input at all, messages included, from members and strangers.
fn input<R: ConflictResolver>(tags: Vec<u64>) -> BoxedStrategy<(u64, KeyedInput)> {
    let peer = prop_oneof![2u64..6, 0u64..8];
    let op =
        (key(), any::<Option<Vec<u8>>>(), any::<Vec<u8>>(), any::<bool>()).prop_map(|(key, value, context, get)| {
            if get {
                KeyedOp::Get { key }
            } else {
                KeyedOp::Put { key, value: value.map(Bytes::from), context: Bytes::from(context) }
            }
        });
    let liveness = prop_oneof![Just(Liveness::Alive), Just(Liveness::Suspect), Just(Liveness::Dead)];
    let kind = prop_oneof![
        Just(KeyedInput::Tick),
        (peer.clone(), message::<R>(tags)).prop_map(|(from, m)| KeyedInput::Message { from, bytes: m.encode() }),
        (peer.clone(), proptest::collection::vec(any::<u8>(), 0..32))
            .prop_map(|(from, b)| KeyedInput::Message { from, bytes: Bytes::from(b) }),
        (1_000u64..2_000, op).prop_map(|(id, op)| KeyedInput::Client { id, op }),
        prop_oneof![0u64..40, any::<u64>()].prop_map(|up_to| KeyedInput::Persisted { up_to }),
        (peer, liveness).prop_map(|(peer, liveness)| KeyedInput::PeerLiveness { peer, liveness }),
    ];
    (prop_oneof![Just(0u64), 0u64..3_000], kind).boxed()
}

fn run_inputs<R: ConflictResolver>(inputs: Vec<(u64, KeyedInput)>) {
    let mut s = subject::<R>();
    let mut used = BTreeSet::new();
    for (advance_ms, input) in inputs {
        if let KeyedInput::Client { id, .. } = &input
            && !used.insert(*id)
        {
            continue; // the engine never reuses a request id
        }
        s.now_ms += advance_ms;
        let _ = s.step(input);
    }
    // Every request is answered in the end.
    s.now_ms += 10_000;
    s.step(KeyedInput::Tick).unwrap();
    assert_eq!(s.node.pending_requests(), 0);
    for id in used {
        assert!(s.answered.contains(&id), "request {id} never answered");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic_a_node(bytes in proptest::collection::vec(any::<u8>(), 0..256), from in 0u64..7) {
        let bytes = Bytes::from(bytes);
        feed(&mut subject::<VersionVectors>(), from, bytes.clone());
        feed(&mut subject::<Lww>(), from, bytes);
    }

    #[test]
    fn nonsense_messages_never_panic_a_version_vector_node(
        messages in proptest::collection::vec(message::<VersionVectors>(subject::<VersionVectors>().tags), 1..8),
        from in 2u64..6,
    ) {
        let mut s = subject::<VersionVectors>();
        for m in messages {
            feed(&mut s, from, m.encode());
        }
    }

    #[test]
    fn nonsense_messages_never_panic_an_lww_node(
        messages in proptest::collection::vec(message::<Lww>(subject::<Lww>().tags), 1..8),
        from in 2u64..6,
    ) {
        let mut s = subject::<Lww>();
        for m in messages {
            feed(&mut s, from, m.encode());
        }
    }

    #[test]
    fn corrupted_real_messages_never_panic(pick in any::<usize>(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut s = subject::<VersionVectors>();
        let mut bytes = s.sent[pick % s.sent.len()].to_vec();
        for (at, value) in flips {
            let at = at % bytes.len();
            bytes[at] ^= value;
        }
        feed(&mut s, 2, Bytes::from(bytes));
    }

    #[test]
    fn any_sequence_of_inputs_never_panics_and_every_request_is_answered_once(
        inputs in proptest::collection::vec(input::<VersionVectors>(subject::<VersionVectors>().tags), 1..24)
    ) {
        run_inputs::<VersionVectors>(inputs);
    }

    #[test]
    fn any_sequence_of_inputs_never_panics_an_lww_node(
        inputs in proptest::collection::vec(input::<Lww>(subject::<Lww>().tags), 1..24)
    ) {
        run_inputs::<Lww>(inputs);
    }
}

#[test]
fn undecodable_bytes_are_decode_errors() {
    let mut s = subject::<VersionVectors>();
    let result = s.step(KeyedInput::Message { from: 2, bytes: Bytes::from_static(&[0xff, 0xff]) });
    assert!(matches!(result, Err(StepError::Decode { from: 2, .. })), "{result:?}");
    let bad_register = Message::Store { key: keys()[0].clone(), register: Bytes::from_static(&[0xff; 9]), ack: None };
    let result = s.step(KeyedInput::Message { from: 2, bytes: bad_register.encode() });
    assert!(matches!(result, Err(StepError::Decode { .. })), "{result:?}");
    assert_eq!(s.node.stats().decode_errors, 2);
}

#[test]
fn messages_from_strangers_or_from_itself_are_rejected() {
    let mut s = subject::<VersionVectors>();
    for from in [0, 1, 6] {
        let result = s.step(KeyedInput::Message { from, bytes: Message::Stored { tag: 1 }.encode() });
        assert!(matches!(result, Err(StepError::Rejected(_))), "from {from}: {result:?}");
    }
    let result = s.step(KeyedInput::PeerLiveness { peer: 9, liveness: Liveness::Dead });
    assert!(matches!(result, Err(StepError::Rejected(_))));
}

#[test]
fn a_register_for_a_key_this_node_does_not_replicate_is_rejected() {
    let mut s = subject::<VersionVectors>();
    let foreign = keys()[4].clone();
    let before = s.node.replica_state();
    let register = Bytes::from(postcard::to_allocvec(&replab_version_vector::DvvRegister::default()).unwrap());
    let store = Message::Store { key: foreign, register, ack: Some(1) };
    let result = s.step(KeyedInput::Message { from: 2, bytes: store.encode() });
    assert!(matches!(result, Err(StepError::Rejected(_))), "{result:?}");
    assert_eq!(s.node.replica_state(), before);
}

#[test]
fn a_timestamp_out_of_range_is_refused_before_the_clock_sees_it() {
    let mut s = subject::<Lww>();
    let register = LwwRegister {
        value: Some(Bytes::from_static(b"x")),
        stamp: replab_api::HybridTimestamp { wall_ms: u64::MAX, logical: u32::MAX, node: 2 },
    };
    let bytes = Bytes::from(postcard::to_allocvec(&register).unwrap());
    let store = Message::Store { key: keys()[0].clone(), register: bytes, ack: None };
    let result = s.step(KeyedInput::Message { from: 2, bytes: store.encode() });
    assert!(matches!(result, Err(StepError::Decode { .. })), "{result:?}");
    // The node still writes, stamped at its own clock.
    let op = KeyedOp::Put { key: keys()[0].clone(), value: None, context: Bytes::new() };
    s.step(KeyedInput::Client { id: 77, op }).unwrap();
    assert!(s.node.register(&keys()[0]).unwrap().stamp.wall_ms < 1 << 62);
}

#[test]
fn digests_cut_into_another_number_of_buckets_are_rejected() {
    let mut s = subject::<VersionVectors>();
    let result =
        s.step(KeyedInput::Message { from: 2, bytes: Message::Digests { round: 1, digests: vec![1; 3] }.encode() });
    assert!(matches!(result, Err(StepError::Rejected(ref why)) if why.contains("anti_entropy_buckets")), "{result:?}");
}

#[test]
fn persisted_beyond_the_last_record_is_rejected_and_a_huge_key_is_failed() {
    let mut s = subject::<VersionVectors>();
    let last = s.node.status().last_index;
    assert!(matches!(s.step(KeyedInput::Persisted { up_to: last + 1 }), Err(StepError::Rejected(_))));
    assert_eq!(s.node.status().durable_index, last);
    let key = Bytes::from(vec![b'k'; replab_leaderless::message::MAX_KEY_BYTES + 1]);
    s.step(KeyedInput::Client { id: 500, op: KeyedOp::Get { key } }).unwrap();
    assert!(s.answered.contains(&500));
}
