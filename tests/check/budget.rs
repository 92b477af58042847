//! The time and memory budgets give Unknown, never a hang, and say which
//! keys were decided.

use std::time::{Duration, Instant};

use replab::check::simulate::{SimulationParams, inject_stale_read, simulate_history};
use replab::check::{LinearizabilityOptions, Verdict, check_linearizable_with};

use crate::{Builder, put_kind};

/// A single hot key, many concurrent clients, a stale read in the middle:
/// proving the violation means exhausting every order before it, which
/// takes seconds.
fn hard_history() -> replab::check::History {
    let mut history = simulate_history(&SimulationParams {
        seed: 3,
        clients: 10,
        ops: 10_000,
        keys: 1,
        unknown_rate: 0.002,
        ..SimulationParams::default()
    });
    inject_stale_read(&mut history, 5_000).expect("a qualifying read");
    history
}

#[test]
fn tiny_time_budget_gives_unknown_quickly() {
    let history = hard_history();
    let started = Instant::now();
    let report = check_linearizable_with(&history, &LinearizabilityOptions::with_time_budget(Duration::from_millis(5)));
    let elapsed = started.elapsed();
    let Verdict::Unknown { reason } = &report.verdict else {
        panic!("expected Unknown, got:\n{report}");
    };
    assert!(reason.contains("time budget"), "{reason}");
    assert!(reason.contains("k0"), "names the undecided key: {reason}");
    assert_eq!(report.undecided_keys, vec![crate::v("k0")]);
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    assert_eq!(report.to_check_report().status, replab::check::CheckStatus::Unknown);
}

#[test]
fn tiny_memory_budget_gives_unknown() {
    let history = hard_history();
    let options = LinearizabilityOptions { time_budget: Duration::from_secs(60), memory_budget_bytes: 1 << 20 };
    let report = check_linearizable_with(&history, &options);
    let Verdict::Unknown { reason } = &report.verdict else {
        panic!("expected Unknown, got:\n{report}");
    };
    assert!(reason.contains("memory budget"), "{reason}");
}

#[test]
fn spent_budget_reports_which_keys_were_decided() {
    // Many small keys (decided first) and the hard one.
    let mut history = hard_history();
    let mut b = Builder::new();
    for i in 0..5u64 {
        b.op(
            1,
            put_kind(&format!("small{i}"), "a"),
            i,
            Some(i + 1),
            replab::check::Outcome::Ok(replab::check::Reply::Done),
        );
    }
    let next_id = history.ops.iter().map(|op| op.id).max().unwrap_or(0) + 1;
    for (offset, mut op) in b.history().ops.into_iter().enumerate() {
        op.id = next_id + offset as u64;
        history.ops.push(op);
    }
    let report =
        check_linearizable_with(&history, &LinearizabilityOptions::with_time_budget(Duration::from_millis(20)));
    assert!(report.verdict.is_unknown(), "{report}");
    assert_eq!(report.keys_total, 6);
    assert_eq!(report.keys_linearizable, 5, "{report}");
    assert_eq!(report.undecided_keys, vec![crate::v("k0")]);
    assert!(report.summary().contains("5 of 6 keys proven linearizable"), "{}", report.summary());
}

#[test]
fn the_hard_history_is_decided_given_time() {
    let report =
        check_linearizable_with(&hard_history(), &LinearizabilityOptions::with_time_budget(Duration::from_secs(120)));
    assert!(report.verdict.is_violation(), "{report}");
}

#[test]
fn malformed_history_gives_unknown_not_a_panic() {
    let mut b = Builder::new();
    b.put(1, "k", "a", 50, 10);
    let report = crate::check(&b.history());
    let Verdict::Unknown { reason } = &report.verdict else {
        panic!("expected Unknown, got:\n{report}");
    };
    assert!(reason.contains("malformed"), "{reason}");
}
