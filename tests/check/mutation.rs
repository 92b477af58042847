//! Mutation: take a generated (linearizable) history, change one read to
//! return a value it cannot have seen, and the checker must notice.

use replab::check::simulate::{SimulationParams, inject_stale_read, simulate_history};
use replab::check::{History, OpKind, Outcome, Reply, Verdict};

use crate::check;

fn generated(seed: u64) -> History {
    simulate_history(&SimulationParams {
        seed,
        clients: 8,
        ops: 1_500,
        keys: 5,
        unknown_rate: 0.01,
        ..SimulationParams::default()
    })
}

fn assert_caught(history: &History, read_id: u64) {
    let report = check(history);
    let read = history.iter().find(|op| op.id == read_id).expect("mutated read");
    let Verdict::NotLinearizable { key, witness } = &report.verdict else {
        panic!("mutation of op {read_id} not caught:\n{report}");
    };
    assert_eq!(key, read.key(), "{report}");
    assert!(!witness.stuck.is_empty(), "{witness}");
}

/// A read returns the value of a put that another acknowledged put
/// definitely overwrote before the read began.
#[test]
fn reads_of_definitely_overwritten_values_are_caught() {
    for seed in 1..=10u64 {
        let history = generated(seed);
        for start in [100, 700, 1_300] {
            let mut mutated = history.clone();
            let id = inject_stale_read(&mut mutated, start).expect("a qualifying read");
            assert_caught(&mutated, id);
        }
    }
}

/// A read returns a value that is only written after the read completed.
#[test]
fn reads_of_values_from_the_future_are_caught() {
    let mut caught = 0;
    for seed in 1..=10u64 {
        let history = generated(seed);
        for (index, read) in history.iter().enumerate().skip(200).step_by(97) {
            let (OpKind::Get { key }, Outcome::Ok(Reply::Get(_))) = (&read.kind, &read.outcome) else {
                continue;
            };
            let read_end = read.complete_us.expect("ok ops complete");
            let future = history.iter().find_map(|op| match (&op.kind, &op.outcome) {
                (OpKind::Put { key: k, value }, Outcome::Ok(_) | Outcome::Fail(_))
                    if k == key && op.invoke_us > read_end =>
                {
                    Some(value.clone())
                }
                _ => None,
            });
            let Some(future) = future else {
                continue;
            };
            let mut mutated = history.clone();
            mutated.ops[index].outcome = Outcome::Ok(Reply::Get(Some(future)));
            assert_caught(&mutated, read.id);
            caught += 1;
        }
    }
    assert!(caught >= 20, "only {caught} mutations tried");
}

/// The unmutated histories pass, so the failures above are the
/// mutation's doing.
#[test]
fn the_unmutated_histories_pass() {
    for seed in 1..=10u64 {
        let report = check(&generated(seed));
        assert!(report.verdict.is_linearizable(), "seed {seed}:\n{report}");
    }
}
