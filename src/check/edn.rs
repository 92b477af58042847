//! A history in Jepsen's EDN operation format, so Knossos or Elle can
//! check a verdict again (`replab export --format edn`). docs/CHECKERS.md
//! gives the mapping with an example.
//!
//! Each operation becomes two events, one map per line, in time order:
//! an `:invoke` and its completion (`:ok`, `:fail` or `:info`). Keys are
//! independent registers, so values are `[key value]` tuples as
//! `jepsen.independent` writes them.
//!
//! Jepsen's checkers assume a process whose operation ended `:info` (may
//! or may not have happened) never invokes again: it is treated as still
//! running forever. replab's clients go on after an unknown outcome, so,
//! like Jepsen's own clients, such a client continues as a fresh process:
//! its process number grows by the number of clients.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::history::{History, OpKind, Operation, Outcome, Reply};
use super::value::Value;

/// The history as EDN, one event map per line.
pub fn to_edn(history: &History) -> String {
    let clients = history.iter().map(|op| op.client).max().map_or(1, |c| c + 1);
    let end_us = history.iter().map(|op| op.complete_us.unwrap_or(op.invoke_us)).max().unwrap_or(0);
    // Each op's process: its client's, moved on past every earlier :info.
    let mut crashes: BTreeMap<u64, u64> = BTreeMap::new();
    let mut events: Vec<(u64, u8, u64, String)> = Vec::with_capacity(history.len() * 2);
    for op in history.iter() {
        let crashed = crashes.entry(op.client).or_insert(0);
        let process = op.client + *crashed * clients;
        if op.outcome.is_unknown() {
            *crashed += 1;
        }
        // An operation never answered completes, :info, when the history ends.
        let done_us = op.complete_us.unwrap_or(end_us).max(op.invoke_us);
        // At equal times invocations go first: claiming that one operation
        // ended before another began, when the clock cannot tell, would
        // add an order the checker must respect.
        events.push((op.invoke_us, 0, op.id, invoke(op, process)));
        events.push((done_us, 1, op.id, completion(op, process, done_us)));
    }
    events.sort_by_key(|(at, phase, id, _)| (*at, *phase, *id));
    let mut out = String::with_capacity(events.len() * 96);
    for (index, (_, _, _, event)) in events.into_iter().enumerate() {
        let _ = writeln!(out, "{{:index {index}, {event}}}");
    }
    out
}

/// `:f` of an operation: Knossos's register vocabulary where it has one.
pub fn function(kind: &OpKind) -> &'static str {
    match kind {
        OpKind::Get { .. } => "read",
        OpKind::Put { .. } | OpKind::Delete { .. } => "write",
        OpKind::Cas { .. } => "cas",
        OpKind::Incr { .. } => "add",
    }
}

/// What the client asked with: the invocation's `:value` (reads ask
/// with nil), and a failed or unknown completion's.
fn request(op: &Operation) -> String {
    match &op.kind {
        OpKind::Get { .. } | OpKind::Delete { .. } => "nil".to_string(),
        OpKind::Put { value, .. } => string(value),
        OpKind::Cas { expected, new, .. } => format!("[{} {}]", optional(expected.as_ref()), string(new)),
        OpKind::Incr { by, .. } => by.to_string(),
    }
}

fn invoke(op: &Operation, process: u64) -> String {
    event("invoke", op, process, op.invoke_us, &request(op), None)
}

fn completion(op: &Operation, process: u64, at_us: u64) -> String {
    let invoked = request(op);
    match &op.outcome {
        Outcome::Ok(reply) => {
            let value = match reply {
                Reply::Get(v) => optional(v.as_ref()),
                Reply::Siblings(values) => format!("#{{{}}}", values.iter().map(string).collect::<Vec<_>>().join(" ")),
                Reply::Incr(sum) => sum.to_string(),
                Reply::Done => invoked,
                // A compare-and-set that did not match did not happen:
                // Jepsen's register clients record it as :fail.
                Reply::Cas(false) => return event("fail", op, process, at_us, &invoked, Some("cas did not match")),
                Reply::Cas(true) => invoked,
            };
            event("ok", op, process, at_us, &value, None)
        }
        Outcome::Fail(reason) => event("fail", op, process, at_us, &invoked, Some(reason)),
        Outcome::Unknown(reason) => event("info", op, process, at_us, &invoked, Some(reason)),
    }
}

fn event(kind: &str, op: &Operation, process: u64, at_us: u64, value: &str, error: Option<&str>) -> String {
    let mut s = format!(
        ":type :{kind}, :f :{}, :value [{} {value}], :process {process}, :time {}",
        function(&op.kind),
        string(op.key()),
        at_us.saturating_mul(1_000)
    );
    if let Some(error) = error {
        let _ = write!(s, ", :error {}", quoted(error));
    }
    let _ = write!(s, ", :replab/op {}", op.id);
    s
}

fn optional(value: Option<&Value>) -> String {
    value.map_or("nil".to_string(), string)
}

/// A value as an EDN string, or, for bytes that are not UTF-8, as a tagged
/// hex string (`#replab/hex "00ff"`: EDN allows tags; a reader that does not
/// know this one can still be given a handler for it).
fn string(value: &Value) -> String {
    match value.as_str() {
        Some(text) => quoted(text),
        None => {
            let hex: String = value.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
            format!("#replab/hex \"{hex}\"")
        }
    }
}

/// An EDN string literal: quotes, backslashes and control characters
/// escaped.
fn quoted(text: &str) -> String {
    let mut s = String::with_capacity(text.len() + 2);
    s.push('"');
    for c in text.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use edn_format::{Keyword, Parser, ParserOptions, Value as Edn};

    use super::*;

    fn op(id: u64, client: u64, kind: OpKind, times: (u64, Option<u64>), outcome: Outcome) -> Operation {
        Operation { id, client, kind, invoke_us: times.0, complete_us: times.1, outcome, node: None, context: None }
    }

    fn v(text: &str) -> Value {
        Value::new(text.as_bytes().to_vec())
    }

    /// One of each kind and outcome, a value that needs escaping, bytes
    /// that are not UTF-8, and an operation never answered.
    fn known() -> History {
        History::new(vec![
            op(0, 0, OpKind::Put { key: v("k1"), value: v("a") }, (10, Some(20)), Outcome::Ok(Reply::Done)),
            op(1, 1, OpKind::Get { key: v("k1") }, (15, Some(25)), Outcome::Ok(Reply::Get(Some(v("a"))))),
            op(
                2,
                0,
                OpKind::Cas { key: v("k1"), expected: Some(v("a")), new: v("b") },
                (30, Some(40)),
                Outcome::Ok(Reply::Cas(false)),
            ),
            op(3, 1, OpKind::Put { key: v("k2"), value: v("x\"y\n") }, (30, None), Outcome::Unknown("timeout".into())),
            op(4, 1, OpKind::Incr { key: v("k3"), by: 2 }, (50, Some(60)), Outcome::Ok(Reply::Incr(2))),
            op(
                5,
                0,
                OpKind::Delete { key: Value::new(vec![0xff, 0]) },
                (55, Some(58)),
                Outcome::Fail("no leader".into()),
            ),
        ])
    }

    fn field<'a>(event: &'a Edn, name: &str) -> &'a Edn {
        let Edn::Map(map) = event else { panic!("not a map: {event}") };
        let key = match name.split_once('/') {
            Some((ns, name)) => Keyword::from_namespace_and_name(ns, name),
            None => Keyword::from_name(name),
        };
        map.get(&Edn::Keyword(key)).unwrap_or_else(|| panic!("no :{name} in {event}"))
    }

    fn keyword(event: &Edn, name: &str) -> String {
        match field(event, name) {
            Edn::Keyword(k) => k.name().to_string(),
            other => panic!(":{name} is {other}, not a keyword"),
        }
    }

    fn int(event: &Edn, name: &str) -> i64 {
        match field(event, name) {
            Edn::Integer(n) => *n,
            other => panic!(":{name} is {other}, not an integer"),
        }
    }

    fn parse(edn: &str) -> Vec<Edn> {
        Parser::from_str(edn, ParserOptions::default()).collect::<Result<_, _>>().expect("the export parses as EDN")
    }

    #[test]
    fn a_known_history_round_trips_through_an_edn_parser() {
        let history = known();
        let edn = to_edn(&history);
        let events = parse(&edn);
        assert_eq!(events.len(), 2 * history.len(), "{edn}");
        assert_eq!(edn.lines().count(), events.len(), "one event a line:\n{edn}");
        // Time order, indexes in order, and each operation invoked once and
        // completed once, after its invocation, by the same process.
        let times: Vec<i64> = events.iter().map(|e| int(e, "time")).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
        for (i, e) in events.iter().enumerate() {
            assert_eq!(int(e, "index"), i as i64);
        }
        for o in history.iter() {
            let mine: Vec<&Edn> = events.iter().filter(|e| int(e, "replab/op") == o.id as i64).collect();
            assert_eq!(mine.len(), 2, "op {}: {mine:?}", o.id);
            assert_eq!(keyword(mine[0], "type"), "invoke");
            assert_ne!(keyword(mine[1], "type"), "invoke");
            assert_eq!(int(mine[0], "process"), int(mine[1], "process"));
            assert_eq!(keyword(mine[0], "f"), function(&o.kind));
            assert_eq!(int(mine[0], "time"), o.invoke_us as i64 * 1000);
        }
        let completion =
            |id: i64| events.iter().filter(|e| int(e, "replab/op") == id).nth(1).expect("a completion").clone();
        let s = |t: &str| Edn::String(t.to_string());
        // A read's answer, as an independent [key value] tuple.
        assert_eq!(field(&completion(1), "value"), &Edn::Vector(vec![s("k1"), s("a")]));
        assert_eq!(keyword(&completion(1), "type"), "ok");
        // A compare-and-set that did not match is a :fail, as Jepsen records it.
        assert_eq!(keyword(&completion(2), "type"), "fail");
        // Never answered: :info at the end of the history, the value kept
        // through the escaping.
        let unknown = completion(3);
        assert_eq!(keyword(&unknown, "type"), "info");
        assert_eq!(int(&unknown, "time"), 60_000);
        assert_eq!(field(&unknown, "value"), &Edn::Vector(vec![s("k2"), s("x\"y\n")]));
        // After an :info the client goes on as a fresh process.
        assert_eq!(int(&completion(3), "process"), 1);
        assert_eq!(int(&completion(4), "process"), 3);
        assert_eq!(field(&completion(4), "value"), &Edn::Vector(vec![s("k3"), Edn::Integer(2)]));
        // A key that is not UTF-8 is a tagged hex string.
        let deleted = completion(5);
        let Edn::Vector(tuple) = field(&deleted, "value") else { panic!("a tuple") };
        assert_eq!(tuple[0].to_string(), "#replab/hex \"ff00\"");
        assert_eq!(keyword(&completion(5), "type"), "fail");
        assert_eq!(field(&completion(5), "error"), &s("no leader"));
    }

    #[test]
    fn a_simulated_history_exports_one_invoke_and_one_completion_per_operation() {
        let params = crate::check::simulate::SimulationParams { ops: 2_000, unknown_rate: 0.01, ..Default::default() };
        let history = crate::check::simulate::simulate_history(&params);
        let events = parse(&to_edn(&history));
        let invokes = events.iter().filter(|e| keyword(e, "type") == "invoke").count();
        let infos = events.iter().filter(|e| keyword(e, "type") == "info").count();
        assert_eq!(invokes, history.len());
        assert_eq!(events.len() - invokes, history.len());
        assert_eq!(infos, history.count_unknown());
    }
}
