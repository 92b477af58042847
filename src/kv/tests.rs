use super::*;

fn entry(index: LogIndex, at_ms: u64, command: Command) -> Entry {
    Entry { index, term: 1, kind: EntryKind::Command, data: encode(at_ms, command) }
}

fn put(client: u64, seq: u64, key: &str, value: &str) -> Command {
    Command::Request {
        client,
        seq,
        ack_below: seq,
        op: WriteOp::Put { key: Bytes::from(key.to_string()), value: Bytes::from(value.to_string()) },
    }
}

fn incr(client: u64, seq: u64, ack_below: u64) -> Command {
    Command::Request { client, seq, ack_below, op: WriteOp::Incr { key: Bytes::from_static(b"n"), by: 1 } }
}

/// A store with one registered session (id 1) at time `at_ms`.
fn with_session(config: KvConfig, at_ms: u64) -> Kv {
    let mut kv = Kv::new(config);
    assert_eq!(kv.apply(&entry(1, at_ms, Command::Register)), Some(Applied::Registered { client: 1 }));
    kv
}

fn value(kv: &Kv, key: &str) -> Option<String> {
    kv.get(key.as_bytes()).map(|v| String::from_utf8(v.value.to_vec()).unwrap())
}

#[test]
fn writes_carry_the_index_that_wrote_them_as_version() {
    let mut kv = with_session(KvConfig::default(), 0);
    kv.apply(&entry(2, 0, put(1, 1, "a", "x")));
    kv.apply(&Entry { index: 3, term: 1, kind: EntryKind::Noop, data: Bytes::new() });
    kv.apply(&entry(4, 0, put(1, 2, "a", "y")));
    assert_eq!(kv.get(b"a").unwrap().version, 4);
    assert_eq!(value(&kv, "a").as_deref(), Some("y"));
    assert_eq!(kv.applied().index, 4);
}

#[test]
fn a_retried_increment_applies_once_and_returns_the_first_answer() {
    let mut kv = with_session(KvConfig::default(), 0);
    let first = kv.apply(&entry(2, 0, incr(1, 1, 1)));
    // The same (client, seq) again, e.g. re-proposed by a new leader.
    let retry = kv.apply(&entry(3, 0, incr(1, 1, 1)));
    let Some(Applied::Write { result: r1, duplicate: false, .. }) = first else { panic!("{first:?}") };
    let Some(Applied::Write { result: r2, duplicate: true, .. }) = retry else { panic!("{retry:?}") };
    assert_eq!(r1, r2);
    assert_eq!(value(&kv, "n").as_deref(), Some("1"), "applied exactly once");
    kv.apply(&entry(4, 0, incr(1, 2, 2)));
    assert_eq!(value(&kv, "n").as_deref(), Some("2"));
}

#[test]
fn acknowledged_responses_are_forgotten_and_their_retries_refused() {
    let mut kv = with_session(KvConfig::default(), 0);
    kv.apply(&entry(2, 0, incr(1, 1, 1)));
    kv.apply(&entry(3, 0, incr(1, 2, 2))); // the client got 1's answer
    let late = kv.apply(&entry(4, 0, incr(1, 1, 2)));
    assert!(
        matches!(late, Some(Applied::Write { result: WriteResult::Failed(KvError::AlreadyAcknowledged { .. }), .. })),
        "{late:?}"
    );
    assert_eq!(value(&kv, "n").as_deref(), Some("2"));
}

#[test]
fn saved_responses_are_bounded() {
    let config = KvConfig { max_saved_responses: 3, ..KvConfig::default() };
    let mut kv = with_session(config, 0);
    for seq in 1..=3 {
        kv.apply(&entry(1 + seq, 0, incr(1, seq, 1))); // never acknowledges
    }
    let refused = kv.apply(&entry(5, 0, incr(1, 4, 1)));
    assert!(
        matches!(
            refused,
            Some(Applied::Write { result: WriteResult::Failed(KvError::TooManyUnacknowledged { .. }), .. })
        ),
        "{refused:?}"
    );
}

#[test]
fn an_idle_session_expires_on_the_replicated_clock_with_a_clear_error() {
    let config = KvConfig { session_expiry_ms: 1_000, ..KvConfig::default() };
    let mut kv = with_session(config, 10_000);
    kv.apply(&entry(2, 10_500, incr(1, 1, 1)));
    // Another client's activity moves the clock past the expiry.
    kv.apply(&entry(3, 12_000, Command::Register));
    let late = kv.apply(&entry(4, 12_001, incr(1, 2, 2)));
    let Some(Applied::Write { result: WriteResult::Failed(e), .. }) = late else { panic!("{late:?}") };
    assert!(matches!(e, KvError::SessionExpired { client: 1, .. }), "{e:?}");
    assert!(e.to_string().contains("expired") && e.to_string().contains("register"), "{e}");
    let unknown = kv.apply(&entry(5, 12_001, incr(77, 1, 1)));
    let Some(Applied::Write { result: WriteResult::Failed(e), .. }) = unknown else { panic!("{unknown:?}") };
    assert!(matches!(e, KvError::UnknownSession { client: 77 }), "{e:?}");
}

#[test]
fn cas_writes_only_when_the_expected_value_matches() {
    let mut kv = with_session(KvConfig::default(), 0);
    let cas = |expected: Option<&str>, new: &str, seq| Command::Request {
        client: 1,
        seq,
        ack_below: seq,
        op: WriteOp::Cas {
            key: Bytes::from_static(b"k"),
            expected: expected.map(|e| Bytes::from(e.to_string())),
            new: Bytes::from(new.to_string()),
        },
    };
    let created = kv.apply(&entry(2, 0, cas(None, "v1", 1)));
    assert!(matches!(created, Some(Applied::Write { result: WriteResult::Cas { succeeded: true, .. }, .. })));
    let wrong = kv.apply(&entry(3, 0, cas(Some("nope"), "v2", 2)));
    let Some(Applied::Write { result: WriteResult::Cas { succeeded: false, current, .. }, .. }) = wrong else {
        panic!("{wrong:?}")
    };
    assert_eq!(current, Some(Bytes::from_static(b"v1")));
    kv.apply(&entry(4, 0, cas(Some("v1"), "v2", 3)));
    assert_eq!(value(&kv, "k").as_deref(), Some("v2"));
}

#[test]
fn incr_of_a_non_number_is_refused_without_changing_it() {
    let mut kv = with_session(KvConfig::default(), 0);
    kv.apply(&entry(2, 0, put(1, 1, "n", "abc")));
    let r = kv.apply(&entry(3, 0, incr(1, 2, 2)));
    assert!(matches!(r, Some(Applied::Write { result: WriteResult::Failed(KvError::NotANumber { .. }), .. })));
    assert_eq!(value(&kv, "n").as_deref(), Some("abc"));
}

#[test]
fn snapshot_restores_data_sessions_and_position() {
    let mut kv = with_session(KvConfig::default(), 0);
    kv.apply(&entry(2, 0, put(1, 1, "a", "x")));
    kv.apply(&entry(3, 0, incr(1, 2, 1)));
    let snap = kv.snapshot();
    let mut back = Kv::restore(&snap, KvConfig::default()).unwrap();
    assert_eq!(back, kv);
    assert_eq!(back.digest(), kv.digest());
    // The restored session still deduplicates.
    let retry = back.apply(&entry(4, 0, incr(1, 2, 1)));
    assert!(matches!(retry, Some(Applied::Write { duplicate: true, .. })));
}

#[test]
fn garbage_snapshots_and_commands_are_errors_not_panics() {
    let bad = Snapshot { meta: SnapshotMeta::default(), data: Bytes::from_static(b"\xff\xff\xff garbage") };
    assert!(Kv::restore(&bad, KvConfig::default()).is_err());
    let mut kv = Kv::new(KvConfig::default());
    let junk = Entry { index: 1, term: 1, kind: EntryKind::Command, data: Bytes::from_static(b"\xff\x01") };
    assert!(matches!(kv.apply(&junk), Some(Applied::Invalid(KvError::BadCommand(_)))));
    assert_eq!(kv.applied().index, 1, "an undecodable entry still advances, identically on every replica");
}

#[test]
fn replicas_applying_the_same_entries_agree() {
    let entries: Vec<Entry> = std::iter::once(entry(1, 5, Command::Register))
        .chain((2..200).map(|i| entry(i, 5 + i, put(1, i - 1, &format!("k{}", i % 17), &format!("v{i}")))))
        .collect();
    let mut a = Kv::new(KvConfig::default());
    let mut b = Kv::new(KvConfig::default());
    for e in &entries {
        assert_eq!(a.apply(e), b.apply(e));
    }
    assert_eq!(a.digest(), b.digest());
    assert_eq!(a.dump(), b.dump());
}

#[test]
fn decoding_a_logged_command_shares_the_entry_buffer_and_equals_the_owned_decoding() {
    let ops = [
        WriteOp::Put { key: Bytes::from_static(b"k"), value: Bytes::from(vec![7u8; 300]) },
        WriteOp::Delete { key: Bytes::from_static(b"gone") },
        WriteOp::Cas { key: Bytes::from_static(b"c"), expected: None, new: Bytes::from_static(b"n") },
        WriteOp::Cas { key: Bytes::from_static(b"c"), expected: Some(Bytes::from_static(b"o")), new: Bytes::new() },
        WriteOp::Incr { key: Bytes::from_static(b"n"), by: -3 },
    ];
    let mut commands: Vec<Command> =
        ops.into_iter().map(|op| Command::Request { client: 4, seq: 9, ack_below: 2, op }).collect();
    commands.push(Command::Register);
    for command in commands {
        let data = encode(77, command.clone());
        let owned: LoggedCommand = postcard::from_bytes(&data).unwrap();
        let shared = LoggedCommand::decode(&data).unwrap();
        assert_eq!(shared, owned);
        assert_eq!(shared, LoggedCommand { at_ms: 77, command });
        if let Command::Request { op: WriteOp::Put { value, .. }, .. } = &shared.command {
            let inside = data.as_ptr_range().contains(&value.as_ptr());
            assert!(inside, "the value is a slice of the entry's buffer, not a copy");
        }
    }
    assert!(LoggedCommand::decode(&Bytes::from_static(&[1, 9, 9])).is_err(), "garbage is an error, not a panic");
}

#[test]
fn a_stored_key_is_its_own_allocation_and_does_not_pin_the_entry_that_wrote_it() {
    let mut kv = with_session(KvConfig::default(), 0);
    let first = entry(2, 0, put(1, 1, "key", "first value"));
    kv.apply(&first);
    let (key, _) = kv.state.data.get_key_value(&b"key"[..]).unwrap();
    assert!(!first.data.as_ptr_range().contains(&key.as_ptr()), "the key was copied out of the entry");
    let second = entry(3, 0, put(1, 2, "key", "second value"));
    kv.apply(&second);
    let stored = kv.get(b"key").unwrap();
    assert!(second.data.as_ptr_range().contains(&stored.value.as_ptr()), "values are shared, not copied");
    assert_eq!(value(&kv, "key").as_deref(), Some("second value"));
}
