//! Peer messages are untrusted bytes: garbage, truncated or nonsense
//! messages come back as `StepError::Decode` or are refused or ignored,
//! never a panic, an overflow or a broken invariant of the node.

use std::borrow::Cow;

use bytes::Bytes;
use replab_api::{
    Effects, Entry, EntryKind, Input, Instant, Liveness, LogPosition, PluginRng, PolicyContext, Recovered,
    ReplicationPolicy, Role, Snapshot, SnapshotMeta, StepError,
};
use replab_primary_backup::message::{Append, AppendOutcome, Heartbeat};
use replab_primary_backup::{Message, PrimaryBackup, PrimaryBackupConfig};

fn backup() -> PrimaryBackup {
    let ctx = PolicyContext { id: 1, members: vec![1, 2, 3], seed: 1 };
    let mut node = PrimaryBackup::new(ctx, PrimaryBackupConfig::default(), Recovered::default());
    node.step(Instant::ZERO, Input::Tick, &mut Effects::new()).unwrap();
    node
}

/// Node 1 of three, primary of generation 1 with node 2's promise.
fn primary() -> PrimaryBackup {
    let mut node = backup();
    let mut out = Effects::new();
    node.step(Instant::from_millis(1_000), Input::Tick, &mut out).unwrap();
    assert_eq!(node.role(), Role::Candidate);
    let answer = Message::ClaimAnswer { generation: 1, promised: true, last: LogPosition::default() };
    node.step(Instant::from_millis(1_001), Input::Message { from: 2, bytes: answer.encode() }, &mut out).unwrap();
    assert_eq!(node.role(), Role::Leader);
    let position = LogPosition { index: 1, term: 1 };
    node.step(Instant::from_millis(1_002), Input::Persisted { position }, &mut out).unwrap();
    node
}

fn feed(node: &mut PrimaryBackup, at_ms: u64, bytes: Bytes) -> Result<(), StepError> {
    let result = node.step(Instant::from_millis(at_ms), Input::Message { from: 2, bytes }, &mut Effects::new());
    let status = node.status();
    assert!(status.commit_index <= status.last_index, "{status:?}");
    assert!(status.applied_index <= status.commit_index, "{status:?}");
    assert!(status.first_index <= status.last_index + 1, "{status:?}");
    result
}

#[test]
fn random_bytes_are_decode_errors_never_panics() {
    let mut rng = PluginRng::from_seed_u64(0x5eed);
    let (mut b, mut p) = (backup(), primary());
    let mut decode_errors = 0;
    for i in 0..4_000u64 {
        let len = rng.range_inclusive(0, 96) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        let bytes = Bytes::from(bytes);
        for node in [&mut b, &mut p] {
            match feed(node, 2_000 + i, bytes.clone()) {
                Err(StepError::Decode { from: 2, .. }) => decode_errors += 1,
                Ok(()) | Err(StepError::Rejected(_)) => {}
                Err(other) => panic!("{other:?}"),
            }
        }
    }
    assert!(decode_errors > 7_000, "almost all random strings fail to decode ({decode_errors})");
    assert_eq!(b.stats().decode_errors + p.stats().decode_errors, decode_errors);
}

#[test]
fn empty_truncated_and_padded_messages_are_decode_errors() {
    let mut node = backup();
    let good = Message::Stale { generation: 0 }.encode();
    assert!(matches!(feed(&mut node, 2_000, Bytes::new()), Err(StepError::Decode { .. })));
    let mut padded = good.to_vec();
    padded.push(0);
    let err = feed(&mut node, 2_001, Bytes::from(padded)).unwrap_err();
    assert!(matches!(&err, StepError::Decode { reason, .. } if reason.contains("trailing")), "{err:?}");
    let heartbeat = Message::Heartbeat(Heartbeat {
        generation: 1,
        commit: 0,
        read_seq: 0,
        positions: vec![(1, LogPosition::default()); 3],
    })
    .encode();
    for cut in 1..heartbeat.len() {
        assert!(matches!(feed(&mut node, 2_002, heartbeat.slice(..cut)), Err(StepError::Decode { .. })));
    }
}

fn nonsense(rng: &mut PluginRng) -> Message<'static> {
    let mut number = || match rng.range_inclusive(0, 4) {
        0 => u64::MAX,
        1 => 1 << 62,
        2 => rng.next_u64(),
        _ => rng.range_inclusive(0, 6),
    };
    let position = LogPosition { index: number(), term: number() };
    let generation = number();
    match number() % 7 {
        0 => Message::Claim { generation, last: position },
        1 => Message::ClaimAnswer { generation, promised: generation % 2 == 0, last: position },
        2 => {
            let entries: Vec<Entry> = (0..number() % 4)
                .map(|k| Entry {
                    index: position.index.wrapping_add(k + 1),
                    term: number(),
                    kind: EntryKind::Command,
                    data: Bytes::new(),
                })
                .collect();
            Message::Append(Append { generation, prev: position, commit: number(), entries: Cow::Owned(entries) })
        }
        3 => Message::AppendAnswer {
            generation,
            outcome: match number() % 3 {
                0 => AppendOutcome::Accepted { match_index: number() },
                1 => AppendOutcome::Rejected { rejected_index: number(), hint: position, memory_lost: number() == 0 },
                _ => AppendOutcome::Diverged { applied_index: number() },
            },
        },
        4 => Message::Heartbeat(Heartbeat {
            generation,
            commit: number(),
            read_seq: number(),
            positions: vec![(number(), position)],
        }),
        5 => Message::Snapshot {
            generation,
            snapshot: Snapshot { meta: SnapshotMeta { last_included: position }, data: Bytes::from_static(b"s") },
            replace: number() == 0,
        },
        _ => Message::HeartbeatAnswer { generation, read_seq: number() },
    }
}

#[test]
fn well_formed_nonsense_never_panics_a_backup_or_a_primary() {
    let mut rng = PluginRng::from_seed_u64(0xbad);
    for round in 0..500u64 {
        let (mut b, mut p) = (backup(), primary());
        for k in 0..6 {
            let bytes = nonsense(&mut rng).encode();
            let _ = feed(&mut b, 2_000 + round * 10 + k, bytes.clone());
            let _ = feed(&mut p, 2_000 + round * 10 + k, bytes);
        }
    }
}

#[test]
fn inputs_about_strangers_are_refused() {
    let mut node = backup();
    let mut out = Effects::new();
    let bytes = Message::Stale { generation: 1 }.encode();
    let from_stranger = node.step(Instant::from_millis(5), Input::Message { from: 9, bytes }, &mut out);
    assert!(matches!(from_stranger, Err(StepError::Rejected(_))));
    let verdict =
        node.step(Instant::from_millis(5), Input::PeerLiveness { peer: 9, liveness: Liveness::Dead }, &mut out);
    assert!(matches!(verdict, Err(StepError::Rejected(_))));
    let transfer = node.step(Instant::from_millis(5), Input::TransferLeader { to: 2 }, &mut out);
    assert!(matches!(transfer, Err(StepError::Rejected(_))));
}
