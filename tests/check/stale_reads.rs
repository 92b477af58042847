//! Stale reads: a value returned after a newer acknowledged write
//! definitely came in between.

use replab::check::simulate::{SimulationParams, simulate_history};
use replab::check::{CheckStatus, check_stale_reads};

use crate::{Builder, put_kind};

#[test]
fn linearizable_runs_have_no_stale_reads() {
    for seed in 1..=5 {
        let history = simulate_history(&SimulationParams {
            seed,
            ops: 3_000,
            keys: 10,
            counter_every: 0,
            ..SimulationParams::default()
        });
        let report = check_stale_reads(&history);
        assert_eq!(report.stale_reads, 0, "seed {seed}: {}", report.witness());
        assert_eq!(report.unexplained_reads, 0);
        assert!(report.reads_checked > 1_000);
        assert_eq!(report.to_check_report().status, CheckStatus::Pass);
    }
}

#[test]
fn read_of_an_overwritten_value_is_stale() {
    let mut b = Builder::new();
    let old = b.put(1, "k", "a", 0, 10);
    let newer = b.put(2, "k", "b", 20, 30);
    let read = b.get(3, "k", Some("a"), 40, 50);
    b.get(3, "k", Some("b"), 60, 70);
    let report = check_stale_reads(&b.history());
    assert_eq!(report.stale_reads, 1);
    assert_eq!(report.reads_checked, 2);
    let example = &report.examples[0];
    assert_eq!((example.read.id, example.source.as_ref().map(|op| op.id), example.newer.id), (read, Some(old), newer));
    let witness = report.witness();
    assert!(witness.contains("get k -> a (op 2"), "{witness}");
    assert!(witness.contains("put k=b (op 1"), "{witness}");
    assert_eq!(report.to_check_report().status, CheckStatus::Fail);
}

#[test]
fn absent_after_an_acknowledged_put_is_stale() {
    let mut b = Builder::new();
    b.put(1, "k", "a", 0, 10);
    b.get(2, "k", None, 20, 30);
    let report = check_stale_reads(&b.history());
    assert_eq!(report.stale_reads, 1);
    assert!(report.witness().contains("absent is the initial state"), "{}", report.witness());
}

#[test]
fn absent_after_a_delete_is_not_stale() {
    let mut b = Builder::new();
    b.put(1, "k", "a", 0, 10);
    b.delete(1, "k", 20, 30);
    b.get(2, "k", None, 40, 50);
    assert_eq!(check_stale_reads(&b.history()).stale_reads, 0);
}

#[test]
fn concurrent_write_does_not_make_a_read_stale() {
    let mut b = Builder::new();
    b.put(1, "k", "a", 0, 10);
    b.put(2, "k", "b", 20, 45);
    b.get(3, "k", Some("a"), 40, 50);
    assert_eq!(check_stale_reads(&b.history()).stale_reads, 0);
}

#[test]
fn write_overlapping_the_source_is_not_definitely_after_it() {
    let mut b = Builder::new();
    b.put(1, "k", "a", 0, 25);
    b.put(2, "k", "b", 20, 30);
    b.get(3, "k", Some("a"), 40, 50);
    assert_eq!(check_stale_reads(&b.history()).stale_reads, 0);
}

#[test]
fn value_from_an_unknown_write_is_never_stale() {
    let mut b = Builder::new();
    b.unknown(1, put_kind("k", "a"), 0, Some(10));
    b.put(2, "k", "b", 20, 30);
    b.get(3, "k", Some("a"), 40, 50);
    assert_eq!(check_stale_reads(&b.history()).stale_reads, 0);
}

#[test]
fn read_of_a_value_nobody_wrote_is_counted_apart() {
    let mut b = Builder::new();
    b.put(1, "k", "a", 0, 10);
    b.get(2, "k", Some("ghost"), 20, 30);
    let report = check_stale_reads(&b.history());
    assert_eq!((report.stale_reads, report.unexplained_reads), (0, 1));
    assert!(report.summary().contains("1 reads returned a value no write produced"));
}

#[test]
fn examples_are_bounded_and_in_time_order() {
    let mut b = Builder::new();
    for i in 0..20u64 {
        let key = format!("k{}", 19 - i);
        let t = i * 1_000;
        b.put(1, &key, "a", t, t + 10);
        b.put(1, &key, "b", t + 20, t + 30);
        b.get(2, &key, Some("a"), t + 40, t + 50);
    }
    let report = check_stale_reads(&b.history());
    assert_eq!(report.stale_reads, 20);
    assert_eq!(report.examples.len(), 5);
    assert!(report.examples.windows(2).all(|w| w[0].read.invoke_us < w[1].read.invoke_us));
}
