//! Lost writes: acknowledged, gone at the end, and nothing could have
//! replaced them.

use std::collections::BTreeMap;

use replab::check::simulate::{SimulationParams, simulate};
use replab::check::{CheckStatus, Value, check_lost_writes};

use crate::{Builder, incr_kind, put_kind, v};

fn finals(pairs: &[(&str, &str)]) -> BTreeMap<Value, Value> {
    pairs.iter().map(|(k, val)| (v(k), v(val))).collect()
}

#[test]
fn simulated_runs_lose_nothing() {
    for seed in 1..=5 {
        let sim = simulate(&SimulationParams {
            seed,
            ops: 3_000,
            keys: 20,
            unknown_rate: 0.02,
            ..SimulationParams::default()
        });
        let report = check_lost_writes(&sim.history, &sim.final_values);
        assert!(report.lost.is_empty(), "seed {seed}: {}", report.witness());
        assert!(report.acknowledged_writes > 500);
        assert_eq!(report.to_check_report().status, CheckStatus::Pass);
    }
}

#[test]
fn last_acknowledged_write_missing_at_the_end_is_lost() {
    let mut b = Builder::new();
    b.put(1, "k", "a", 0, 10);
    let lost = b.put(2, "k", "b", 20, 30);
    b.put(3, "other", "x", 0, 10);
    let report = check_lost_writes(&b.history(), &finals(&[("k", "a"), ("other", "x")]));
    assert_eq!(report.lost.len(), 1, "{}", report.witness());
    assert_eq!(report.lost[0].op.id, lost);
    assert_eq!(report.lost[0].final_value, Some(v("a")));
    let witness = report.witness();
    assert!(witness.contains(&format!("put k=b (op {lost}")), "{witness}");
    assert!(witness.contains("k ends as a"), "{witness}");
    assert!(witness.contains("written by put k=a (op 0"), "names the final value's writer: {witness}");
    let check = report.to_check_report();
    assert_eq!(check.status, CheckStatus::Fail);
    assert!(check.summary.contains("1 of 3 acknowledged writes lost"), "{}", check.summary);
}

#[test]
fn write_missing_entirely_is_lost() {
    let mut b = Builder::new();
    let lost = b.put(1, "k", "a", 0, 10);
    let report = check_lost_writes(&b.history(), &BTreeMap::new());
    assert_eq!(report.lost.iter().map(|l| l.op.id).collect::<Vec<_>>(), vec![lost]);
    assert!(report.witness().contains("k ends as absent"));
}

#[test]
fn acknowledged_delete_undone_is_lost() {
    let mut b = Builder::new();
    b.put(1, "k", "a", 0, 10);
    let delete = b.delete(1, "k", 20, 30);
    let report = check_lost_writes(&b.history(), &finals(&[("k", "a")]));
    assert_eq!(report.lost.iter().map(|l| l.op.id).collect::<Vec<_>>(), vec![delete]);
}

#[test]
fn concurrent_writes_may_overwrite_each_other() {
    let mut b = Builder::new();
    b.put(1, "k", "a", 0, 100);
    b.put(2, "k", "b", 50, 150);
    for end in ["a", "b"] {
        let report = check_lost_writes(&b.history(), &finals(&[("k", end)]));
        assert!(report.lost.is_empty(), "{end}: {}", report.witness());
    }
    // But a value neither wrote loses both: nothing explains it.
    let report = check_lost_writes(&b.history(), &finals(&[("k", "z")]));
    assert_eq!(report.lost.len(), 2, "{}", report.witness());
    assert!(report.witness().contains("which no write in the history could have produced"), "{}", report.witness());
}

/// Issue 10, defect 4: an unknown write of another value elsewhere in the
/// key's history used to blind the check.
#[test]
fn an_unknown_write_of_another_value_does_not_excuse_a_loss() {
    let mut b = Builder::new();
    b.put(1, "k", "a", 0, 10);
    let lost = b.put(2, "k", "b", 20, 30);
    b.unknown(3, put_kind("k", "d"), 5, None);
    let report = check_lost_writes(&b.history(), &finals(&[("k", "a")]));
    assert_eq!(report.lost.iter().map(|l| l.op.id).collect::<Vec<_>>(), vec![lost], "{}", report.witness());
    // An unknown write of the final value itself, which may have taken
    // effect after b, does excuse it.
    b.unknown(4, put_kind("k", "a"), 25, None);
    let report = check_lost_writes(&b.history(), &finals(&[("k", "a")]));
    assert!(report.lost.is_empty(), "{}", report.witness());
}

/// Every acknowledged write after the final value's writer completed is
/// lost, not only the last one.
#[test]
fn every_write_after_the_final_values_writer_is_lost() {
    let mut b = Builder::new();
    b.put(1, "k", "a", 0, 5);
    let second = b.put(1, "k", "b", 10, 15);
    let third = b.put(2, "k", "c", 20, 25);
    let report = check_lost_writes(&b.history(), &finals(&[("k", "a")]));
    assert_eq!(report.lost.iter().map(|l| l.op.id).collect::<Vec<_>>(), vec![second, third]);
}

#[test]
fn unknown_write_may_have_overwritten_it() {
    let mut b = Builder::new();
    b.put(1, "k", "a", 0, 10);
    b.unknown(2, put_kind("k", "b"), 20, Some(30));
    let report = check_lost_writes(&b.history(), &finals(&[("k", "b")]));
    assert!(report.lost.is_empty(), "{}", report.witness());
    // Even one invoked before the write completed and never heard from.
    let mut b = Builder::new();
    b.unknown(2, incr_kind("k", 1), 0, None);
    b.put(1, "k", "a", 10, 20);
    let report = check_lost_writes(&b.history(), &finals(&[("k", "1")]));
    assert!(report.lost.is_empty(), "{}", report.witness());
}

#[test]
fn failed_write_cannot_excuse_a_loss() {
    let mut b = Builder::new();
    let lost = b.put(1, "k", "a", 0, 10);
    b.fail(2, put_kind("k", "b"), 20, 30);
    let report = check_lost_writes(&b.history(), &finals(&[("k", "b")]));
    assert_eq!(report.lost.iter().map(|l| l.op.id).collect::<Vec<_>>(), vec![lost]);
}

#[test]
fn swapped_cas_and_increments_count_as_writes() {
    let mut b = Builder::new();
    b.put(1, "k", "a", 0, 10);
    let cas = b.cas(1, "k", Some("a"), "b", true, 20, 30);
    b.cas(1, "k", Some("a"), "c", false, 40, 50);
    let incr = b.incr(2, "n", 5, 5, 0, 10);
    let report = check_lost_writes(&b.history(), &finals(&[("k", "a"), ("n", "0")]));
    let mut lost: Vec<u64> = report.lost.iter().map(|l| l.op.id).collect();
    lost.sort();
    assert_eq!(lost, vec![cas, incr]);
    assert_eq!(report.acknowledged_writes, 3);
    let report = check_lost_writes(&b.history(), &finals(&[("k", "b"), ("n", "5")]));
    assert!(report.lost.is_empty(), "{}", report.witness());
}
