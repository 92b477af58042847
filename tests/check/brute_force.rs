//! The search against brute force: on small random histories (most of
//! them not linearizable, many with unknown and failed operations), the
//! checker's verdict must equal that of trying every order.

use proptest::prelude::*;

use replab::check::{History, OpKind, Operation, Outcome, Reply, Value};

use crate::{check, v};

const VALUES: [&str; 4] = ["a", "b", "1", "2"];

fn value() -> impl Strategy<Value = Value> {
    prop::sample::select(VALUES.to_vec()).prop_map(v)
}

fn maybe_value() -> impl Strategy<Value = Option<Value>> {
    prop::option::of(value())
}

fn kind_and_reply() -> impl Strategy<Value = (OpKind, Reply)> {
    let key = Just(v("k"));
    prop_oneof![
        (key.clone(), value()).prop_map(|(key, value)| (OpKind::Put { key, value }, Reply::Done)),
        (key.clone(), maybe_value()).prop_map(|(key, seen)| (OpKind::Get { key }, Reply::Get(seen))),
        key.clone().prop_map(|key| (OpKind::Delete { key }, Reply::Done)),
        (key.clone(), maybe_value(), value(), any::<bool>())
            .prop_map(|(key, expected, new, swapped)| (OpKind::Cas { key, expected, new }, Reply::Cas(swapped))),
        (key, 1..3i64, 0..5i64).prop_map(|(key, by, result)| (OpKind::Incr { key, by }, Reply::Incr(result))),
    ]
}

fn operation() -> impl Strategy<Value = (OpKind, Reply, u64, u64, u8)> {
    (kind_and_reply(), 0..30u64, 0..12u64, 0..10u8)
        .prop_map(|((kind, reply), invoke, length, outcome)| (kind, reply, invoke, length, outcome))
}

fn history(max_ops: usize) -> impl Strategy<Value = History> {
    prop::collection::vec(operation(), 0..=max_ops).prop_map(|ops| {
        ops.into_iter()
            .enumerate()
            .map(|(id, (kind, reply, invoke_us, length, outcome))| {
                let (outcome, complete_us) = match outcome {
                    0..=5 => (Outcome::Ok(reply), Some(invoke_us + length)),
                    6 => (Outcome::Fail("no".to_string()), Some(invoke_us + length)),
                    7 | 8 => (Outcome::Unknown("timeout".to_string()), Some(invoke_us + length)),
                    _ => (Outcome::Unknown("crash".to_string()), None),
                };
                Operation {
                    id: id as u64,
                    client: id as u64,
                    kind,
                    invoke_us,
                    complete_us,
                    outcome,
                    node: None,
                    context: None,
                }
            })
            .collect()
    })
}

/// The register, written as plainly as possible: None if the reply is
/// impossible from `state`.
fn step(state: &Option<Value>, op: &Operation) -> Option<Option<Value>> {
    let as_int = |s: &Option<Value>| match s {
        None => Some(0i64),
        Some(value) => value.as_str()?.parse::<i64>().ok(),
    };
    match (&op.kind, &op.outcome) {
        (OpKind::Put { value, .. }, _) => Some(Some(value.clone())),
        (OpKind::Delete { .. }, _) => Some(None),
        (OpKind::Get { .. }, Outcome::Ok(Reply::Get(seen))) => (seen == state).then(|| state.clone()),
        (OpKind::Get { .. }, _) => Some(state.clone()),
        (OpKind::Cas { expected, new, .. }, Outcome::Ok(Reply::Cas(true))) => {
            (expected == state).then(|| Some(new.clone()))
        }
        (OpKind::Cas { expected, .. }, Outcome::Ok(Reply::Cas(false))) => (expected != state).then(|| state.clone()),
        (OpKind::Cas { expected, new, .. }, _) => {
            Some(if expected == state { Some(new.clone()) } else { state.clone() })
        }
        (OpKind::Incr { by, .. }, Outcome::Ok(Reply::Incr(result))) => {
            let sum = as_int(state)?.checked_add(*by)?;
            (sum == *result).then(|| Some(Value::from_i64(sum)))
        }
        (OpKind::Incr { by, .. }, _) => Some(match as_int(state).and_then(|n| n.checked_add(*by)) {
            Some(sum) => Some(Value::from_i64(sum)),
            None => state.clone(),
        }),
    }
}

/// Tries every order of every subset of the unknown operations.
fn brute_force(history: &History) -> bool {
    let ops: Vec<&Operation> = history.iter().filter(|op| !op.outcome.is_fail()).collect();
    let required = |op: &Operation| op.outcome.is_ok();
    fn go(
        ops: &[&Operation],
        placed: &mut Vec<bool>,
        state: Option<Value>,
        required: &dyn Fn(&Operation) -> bool,
    ) -> bool {
        if ops.iter().zip(placed.iter()).all(|(op, &p)| p || !required(op)) {
            return true;
        }
        for i in 0..ops.len() {
            if placed[i] {
                continue;
            }
            // Real time: nothing still unplaced and required may have
            // completed strictly before this one was invoked.
            let blocked = ops
                .iter()
                .zip(placed.iter())
                .any(|(other, &p)| !p && required(other) && other.complete_us.is_some_and(|c| c < ops[i].invoke_us));
            if blocked {
                continue;
            }
            if let Some(next) = step(&state, ops[i]) {
                placed[i] = true;
                let found = go(ops, placed, next, required);
                placed[i] = false;
                if found {
                    return true;
                }
            }
        }
        false
    }
    let mut placed = vec![false; ops.len()];
    go(&ops, &mut placed, None, &required)
}

/// Both verdicts must be common in what the property test draws, or it
/// would prove little.
#[test]
fn random_histories_cover_both_verdicts() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = history(7);
    let (mut good, mut bad) = (0, 0);
    for _ in 0..2_000 {
        let history = strategy.new_tree(&mut runner).expect("a history").current();
        if brute_force(&history) {
            good += 1;
        } else {
            bad += 1;
        }
    }
    assert!(good > 200 && bad > 200, "{good} linearizable, {bad} not");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5_000))]

    #[test]
    fn search_agrees_with_brute_force(history in history(8)) {
        let expected = brute_force(&history);
        let report = check(&history);
        prop_assert!(!report.verdict.is_unknown(), "{report}");
        prop_assert_eq!(report.verdict.is_linearizable(), expected, "{}\n{:#?}", report, history.ops);
    }
}
