//! Peer messages are untrusted bytes: garbage, truncated or nonsense
//! messages must come back as errors or be ignored, never panic, overflow
//! or break the node's own invariants.

use std::borrow::Cow;

use bytes::Bytes;
use proptest::prelude::*;
use replab_api::{
    Effects, Entry, EntryKind, Input, Instant, LogPosition, PolicyContext, Recovered, ReplicationPolicy, Role,
    Snapshot, SnapshotMeta, StepError,
};
use replab_raft::message::{
    AppendOutcome, AppendRequest, AppendResponse, Heartbeat, HeartbeatResponse, InstallSnapshotRequest, VoteRequest,
    VoteResponse,
};
use replab_raft::{Message, Raft, RaftConfig};

fn follower() -> Raft {
    let ctx = PolicyContext { id: 1, members: vec![1, 2, 3], seed: 1 };
    let mut raft = Raft::new(ctx, RaftConfig::default(), Recovered::default());
    raft.step(Instant::ZERO, Input::Tick, &mut Effects::new()).unwrap();
    raft
}

/// Node 1 of three, elected leader of term 1 by node 2's votes.
fn leader() -> Raft {
    let mut raft = follower();
    let mut out = Effects::new();
    raft.step(Instant::from_millis(1_000), Input::Tick, &mut out).unwrap();
    assert_eq!(raft.role(), Role::PreCandidate);
    let grant = |pre: bool| {
        let response = VoteResponse { term: 1, granted: true };
        let message = if pre { Message::PreVoteResponse(response) } else { Message::VoteResponse(response) };
        Input::Message { from: 2, bytes: message.encode() }
    };
    raft.step(Instant::from_millis(1_001), grant(true), &mut out).unwrap();
    raft.step(Instant::from_millis(1_002), grant(false), &mut out).unwrap();
    assert_eq!(raft.role(), Role::Leader);
    let position = LogPosition { index: 1, term: 1 };
    raft.step(Instant::from_millis(1_003), Input::Persisted { position }, &mut out).unwrap();
    raft
}

/// Steps `bytes` in as a message from node 2 and checks that the node is
/// still sane afterwards.
fn feed(raft: &mut Raft, at_ms: u64, bytes: Bytes) {
    let mut out = Effects::new();
    match raft.step(Instant::from_millis(at_ms), Input::Message { from: 2, bytes }, &mut out) {
        Ok(()) | Err(StepError::Decode { .. }) | Err(StepError::Rejected(_)) => {}
    }
    let status = raft.status();
    assert!(status.commit_index <= status.last_index, "{status:?}");
    assert!(status.applied_index <= status.commit_index, "{status:?}");
    assert!(status.first_index <= status.last_index + 1, "{status:?}");
}

fn position() -> impl Strategy<Value = LogPosition> {
    (any::<u64>(), any::<u64>()).prop_map(|(index, term)| LogPosition { index, term })
}

fn small_or_huge() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..8, Just(u64::MAX), Just(u64::MAX - 1), Just(1 << 62), any::<u64>()]
}

/// Well-formed messages with arbitrary (often absurd) numbers in them.
fn nonsense_message() -> impl Strategy<Value = Message<'static>> {
    let entry = (small_or_huge(), small_or_huge()).prop_map(|(index, term)| Entry {
        index,
        term,
        kind: EntryKind::Command,
        data: Bytes::from_static(b"x"),
    });
    prop_oneof![
        (small_or_huge(), position(), any::<bool>()).prop_map(|(term, last, forced)| Message::PreVote(VoteRequest {
            term,
            last,
            forced
        })),
        (small_or_huge(), position(), any::<bool>()).prop_map(|(term, last, forced)| Message::Vote(VoteRequest {
            term,
            last,
            forced
        })),
        (small_or_huge(), any::<bool>())
            .prop_map(|(term, granted)| Message::VoteResponse(VoteResponse { term, granted })),
        (small_or_huge(), any::<bool>())
            .prop_map(|(term, granted)| Message::PreVoteResponse(VoteResponse { term, granted })),
        (small_or_huge(), small_or_huge(), small_or_huge(), small_or_huge(), proptest::collection::vec(entry, 0..4))
            .prop_map(|(term, prev_index, prev_term, commit, entries)| Message::Append(AppendRequest {
                term,
                prev: LogPosition { index: prev_index, term: prev_term },
                commit,
                entries: Cow::Owned(entries),
            })),
        (small_or_huge(), small_or_huge()).prop_map(|(term, match_index)| Message::AppendResponse(AppendResponse {
            term,
            outcome: AppendOutcome::Accepted { match_index },
        })),
        (small_or_huge(), small_or_huge(), position(), any::<bool>()).prop_map(
            |(term, rejected_index, hint, memory_lost)| {
                Message::AppendResponse(AppendResponse {
                    term,
                    outcome: AppendOutcome::Rejected { rejected_index, hint, memory_lost },
                })
            }
        ),
        (small_or_huge(), any::<bool>()).prop_map(|(term, has_data)| Message::MemoryReport { term, has_data }),
        small_or_huge().prop_map(|term| Message::MemoryQuery { term }),
        (small_or_huge(), small_or_huge(), any::<u64>())
            .prop_map(|(term, commit, read_seq)| Message::Heartbeat(Heartbeat { term, commit, read_seq })),
        (small_or_huge(), any::<u64>())
            .prop_map(|(term, read_seq)| Message::HeartbeatResponse(HeartbeatResponse { term, read_seq })),
        (small_or_huge(), position()).prop_map(|(term, last_included)| Message::InstallSnapshot(
            InstallSnapshotRequest {
                term,
                snapshot: Snapshot { meta: SnapshotMeta { last_included }, data: Bytes::from_static(b"state") },
            }
        )),
        small_or_huge().prop_map(|term| Message::TimeoutNow { term }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic_a_follower_or_a_leader(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let bytes = Bytes::from(bytes);
        feed(&mut follower(), 2_000, bytes.clone());
        feed(&mut leader(), 2_000, bytes);
    }

    #[test]
    fn nonsense_messages_never_panic_a_follower_or_a_leader(messages in proptest::collection::vec(nonsense_message(), 1..6)) {
        let mut f = follower();
        let mut l = leader();
        for (i, message) in messages.iter().enumerate() {
            let bytes = message.encode();
            feed(&mut f, 2_000 + i as u64, bytes.clone());
            feed(&mut l, 2_000 + i as u64, bytes);
        }
    }

    #[test]
    fn corrupted_real_messages_never_panic(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let entries = vec![Entry { index: 2, term: 1, kind: EntryKind::Command, data: Bytes::from_static(b"command") }];
        let append = Message::Append(AppendRequest {
            term: 1,
            prev: LogPosition { index: 1, term: 1 },
            commit: 1,
            entries: Cow::Borrowed(&entries),
        });
        let mut bytes = append.encode().to_vec();
        for (at, value) in flips {
            let at = at % bytes.len();
            bytes[at] ^= value;
        }
        let bytes = Bytes::from(bytes);
        feed(&mut follower(), 2_000, bytes.clone());
        feed(&mut leader(), 2_000, bytes);
    }
}

#[test]
fn undecodable_bytes_are_reported_as_decode_errors() {
    let mut raft = follower();
    let result = raft.step(
        Instant::from_millis(5),
        Input::Message { from: 2, bytes: Bytes::from_static(&[0xff, 0xff]) },
        &mut Effects::new(),
    );
    assert!(matches!(result, Err(StepError::Decode { from: 2, .. })), "{result:?}");
    assert_eq!(raft.stats().decode_errors, 1);
}

#[test]
fn messages_from_strangers_are_rejected() {
    let mut raft = follower();
    let bytes = Message::TimeoutNow { term: 5 }.encode();
    let result = raft.step(Instant::from_millis(5), Input::Message { from: 9, bytes }, &mut Effects::new());
    assert!(matches!(result, Err(StepError::Rejected(_))), "{result:?}");
    assert_eq!(raft.term(), 0, "nothing was adopted from a stranger");
}

#[test]
fn an_acknowledgement_beyond_the_log_is_rejected_without_effect() {
    let mut raft = leader();
    let bytes =
        Message::AppendResponse(AppendResponse { term: 1, outcome: AppendOutcome::Accepted { match_index: 1_000 } })
            .encode();
    let result = raft.step(Instant::from_millis(2_000), Input::Message { from: 2, bytes }, &mut Effects::new());
    assert!(matches!(result, Err(StepError::Rejected(_))), "{result:?}");
    assert_eq!(raft.status().commit_index, 0, "the absurd ack did not commit anything");
    assert_eq!(raft.progress(2).unwrap().match_index, 0, "nor moved the follower's match");
}
