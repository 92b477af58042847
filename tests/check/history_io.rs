//! history.jsonl: round trips, binary values, and errors that name the
//! line.

use replab::check::{History, HistoryError, OpKind, Operation, Outcome, Reply, Value};

use crate::{Builder, cas_kind, incr_kind, put_kind};

fn sample() -> History {
    let mut b = Builder::new();
    b.put(1, "k", "a", 0, 10);
    b.get(2, "k", Some("a"), 5, 15);
    b.get(2, "k", None, 20, 25);
    b.delete(1, "k", 30, 40);
    b.cas(3, "k", None, "b", true, 50, 60);
    b.incr(3, "n", 7, 7, 70, 80);
    b.unknown(4, put_kind("k", "c"), 90, Some(95));
    b.unknown(4, incr_kind("n", 1), 96, None);
    b.fail(5, cas_kind("k", Some("b"), "d"), 100, 101);
    let mut history = b.history();
    history.ops[0].node = Some(2);
    // Binary key and value, and a value with a newline.
    history.ops.push(Operation {
        id: 100,
        client: 6,
        kind: OpKind::Put {
            key: Value::from(vec![0xff, 0x00, 0x80]),
            value: Value::from(vec![0xde, 0xad, 0xbe, 0xef]),
        },
        invoke_us: 110,
        complete_us: Some(120),
        outcome: Outcome::Ok(Reply::Done),
        node: None,
        context: Some(Value::from(vec![1, 2, 3])),
    });
    history.ops.push(Operation {
        id: 101,
        client: 6,
        kind: OpKind::Get { key: Value::from(vec![0xff, 0x00, 0x80]) },
        invoke_us: 130,
        complete_us: Some(140),
        outcome: Outcome::Ok(Reply::Get(Some(Value::from("line\nbreak")))),
        node: None,
        context: None,
    });
    // A read that found siblings, with the context it returned.
    history.ops.push(Operation {
        id: 102,
        client: 6,
        kind: OpKind::Get { key: Value::from("k") },
        invoke_us: 150,
        complete_us: Some(160),
        outcome: Outcome::Ok(Reply::Siblings(vec![Value::from("a"), Value::from("b")])),
        node: Some(1),
        context: Some(Value::from(vec![9, 9])),
    });
    history
}

fn to_text(history: &History) -> String {
    let mut out = Vec::new();
    history.write_jsonl(&mut out).expect("writes to memory");
    String::from_utf8(out).expect("JSON is UTF-8")
}

fn parse(text: &str) -> Result<History, HistoryError> {
    History::read_jsonl(text.as_bytes())
}

#[test]
fn json_lines_round_trip_every_kind_and_outcome() {
    let history = sample();
    let text = to_text(&history);
    assert_eq!(text.lines().count(), history.len());
    assert_eq!(parse(&text).expect("parses"), history);
}

#[test]
fn binary_values_are_hex_objects_and_text_is_plain() {
    let text = to_text(&sample());
    assert!(text.contains(r#""key":{"hex":"ff0080"}"#), "{text}");
    assert!(text.contains(r#""value":{"hex":"deadbeef"}"#), "{text}");
    assert!(text.contains(r#""op":"put","key":"k","value":"a""#), "{text}");
    assert!(text.contains(r#""outcome":{"ok":{"get":"line\nbreak"}}"#), "{text}");
    assert_eq!(Value::from(vec![0xff, 0x00]).to_string(), "0xff00");
    assert_eq!(Value::from("line\nbreak").to_string(), "0x6c696e650a627265616b");
}

#[test]
fn files_round_trip() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("history.jsonl");
    let history = sample();
    history.save_jsonl(&path).expect("saves");
    assert_eq!(History::load_jsonl(&path).expect("loads"), history);
}

#[test]
fn blank_lines_are_skipped() {
    let text = to_text(&sample()).replace('\n', "\n\n");
    assert_eq!(parse(&text).expect("parses").len(), sample().len());
}

fn error_line(text: &str) -> (usize, String) {
    match parse(text) {
        Err(HistoryError::Parse { line, message }) => (line, message),
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn malformed_json_names_its_line() {
    let mut lines: Vec<String> = to_text(&sample()).lines().map(str::to_string).collect();
    lines[2] = r#"{"id":2,"client":2,"op":"get""#.to_string();
    let (line, _) = error_line(&lines.join("\n"));
    assert_eq!(line, 3);
    let error = parse(&lines.join("\n")).unwrap_err().to_string();
    assert!(error.starts_with("history line 3:"), "{error}");
}

#[test]
fn bad_fields_name_their_line() {
    let good = r#"{"id":0,"client":1,"op":"put","key":"k","value":"a","invoke_us":0,"complete_us":10,"outcome":{"ok":"done"}}"#;
    let cases = [
        // Unknown operation.
        r#"{"id":1,"client":1,"op":"append","key":"k","invoke_us":0,"complete_us":10,"outcome":{"ok":"done"}}"#,
        // Bad hex.
        r#"{"id":1,"client":1,"op":"get","key":{"hex":"zz"},"invoke_us":0,"complete_us":10,"outcome":{"ok":{"get":null}}}"#,
        // Odd hex.
        r#"{"id":1,"client":1,"op":"get","key":{"hex":"abc"},"invoke_us":0,"complete_us":10,"outcome":{"ok":{"get":null}}}"#,
        // Negative time.
        r#"{"id":1,"client":1,"op":"get","key":"k","invoke_us":-5,"complete_us":10,"outcome":{"ok":{"get":null}}}"#,
        // Completes before it starts.
        r#"{"id":1,"client":1,"op":"get","key":"k","invoke_us":50,"complete_us":10,"outcome":{"ok":{"get":null}}}"#,
        // A get answered like a cas.
        r#"{"id":1,"client":1,"op":"get","key":"k","invoke_us":0,"complete_us":10,"outcome":{"ok":{"cas":true}}}"#,
        // Ok without a completion time.
        r#"{"id":1,"client":1,"op":"get","key":"k","invoke_us":0,"outcome":{"ok":{"get":null}}}"#,
        // Duplicate id.
        good,
        // Not JSON at all.
        "\u{0}\u{1}garbage",
        // Wrong type.
        r#"[1,2,3]"#,
    ];
    for case in cases {
        let text = format!("{good}\n{case}\n");
        let (line, message) = error_line(&text);
        assert_eq!(line, 2, "{case}: {message}");
    }
}

#[test]
fn validate_catches_what_a_hand_built_history_gets_wrong() {
    let mut history = sample();
    assert!(history.validate().is_ok());
    history.ops[1].id = history.ops[0].id;
    assert!(matches!(history.validate(), Err(HistoryError::Invalid { .. })));
}

#[test]
fn operations_display_readably() {
    let history = sample();
    assert_eq!(history.ops[1].to_string(), "get k -> a (op 1, client 2, invoked 0.000005s, completed 0.000015s)");
    assert_eq!(
        history.ops[0].to_string(),
        "put k=a (op 0, client 1, invoked 0.000000s, completed 0.000010s) via node 2"
    );
    assert!(history.ops[6].to_string().contains("[unknown: timeout]"));
    assert!(history.ops[6].to_string().contains("gave up 0.000095s"));
    assert!(history.ops[7].to_string().contains("never completed"));
    assert_eq!(history.ops[4].action(), "cas k absent->b swapped");
}

#[test]
fn invalid_utf8_names_its_line() {
    let mut bytes = to_text(&sample()).into_bytes();
    let second_line = bytes.iter().position(|&b| b == b'\n').expect("two lines") + 1;
    bytes.insert(second_line, 0xff);
    match History::read_jsonl(bytes.as_slice()) {
        Err(HistoryError::Parse { line, .. }) => assert_eq!(line, 2),
        other => panic!("expected a parse error, got {other:?}"),
    }
}

proptest::proptest! {
    /// Whatever a file holds, reading it returns an error, never panics.
    #[test]
    fn arbitrary_input_never_panics(lines in proptest::collection::vec(".{0,80}", 0..5)) {
        let _ = parse(&lines.join("\n"));
    }

    /// Valid-looking lines with random field values: parsed or rejected,
    /// and a parsed one is valid.
    #[test]
    fn parsed_histories_are_valid(invoke in 0..100u64, complete in proptest::option::of(0..100u64), ok in proptest::bool::ANY) {
        let outcome = if ok { r#"{"ok":{"get":null}}"# } else { r#"{"unknown":"t"}"# };
        let complete = complete.map_or("null".to_string(), |c| c.to_string());
        let line = format!(
            r#"{{"id":1,"client":1,"op":"get","key":"k","invoke_us":{invoke},"complete_us":{complete},"outcome":{outcome}}}"#
        );
        if let Ok(history) = parse(&line) {
            proptest::prop_assert!(history.validate().is_ok());
            let _ = crate::check(&history);
        }
    }
}
