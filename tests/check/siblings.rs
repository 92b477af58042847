//! Siblings: how many concurrent values reads returned, and what other
//! checkers make of such reads.

use replab::check::{CheckStatus, FinalValues, check_lost_writes_among, check_siblings, check_stale_reads};

use crate::{Builder, assert_violation, v};

#[test]
fn the_distribution_and_the_maximum_are_counted_and_only_a_maximum_fails() {
    let mut b = Builder::new();
    b.put(1, "a", "x", 0, 10);
    b.get(2, "a", Some("x"), 20, 30);
    b.siblings(2, "b", &["p", "q"], "c1", (20, 30));
    b.siblings(2, "b", &["p", "q", "r"], "c2", (40, 50));
    b.get(3, "c", None, 0, 1);
    let report = check_siblings(&b.history());
    assert_eq!((report.reads, report.max_siblings, report.keys_with_siblings), (4, 3, 1));
    assert_eq!(report.distribution.get(&2), Some(&1));
    assert_eq!(report.distribution.get(&0), Some(&1));
    assert_eq!(report.reads_with_siblings(), 2);
    assert_eq!(report.to_check_report(None).status, CheckStatus::Pass);
    assert_eq!(report.to_check_report(Some(3)).status, CheckStatus::Pass);
    assert_eq!(report.to_check_report(Some(2)).status, CheckStatus::Fail);
}

#[test]
fn a_read_of_two_siblings_is_not_linearizable_and_the_witness_says_why() {
    let mut b = Builder::new();
    b.put(1, "k", "left", 0, 10);
    b.put(2, "k", "right", 5, 15);
    b.siblings(3, "k", &["left", "right"], "ctx", (20, 30));
    assert_violation(&b.history(), "k", &["2 concurrent values", "a register holds one"]);
}

#[test]
fn a_sibling_read_is_stale_only_if_every_value_was_overwritten_before_it_began() {
    let mut b = Builder::new();
    b.put(1, "k", "old", 0, 10);
    b.put(2, "k", "new", 20, 30);
    b.siblings(3, "k", &["new", "old"], "ctx", (40, 50));
    assert_eq!(check_stale_reads(&b.history()).stale_reads, 0, "new is fresh");
    b.put(1, "k", "newest", 60, 70);
    b.siblings(3, "k", &["new", "old"], "ctx", (80, 90));
    assert_eq!(check_stale_reads(&b.history()).stale_reads, 1, "both were overwritten by newest");
}

#[test]
fn a_write_among_the_final_siblings_is_not_lost() {
    let mut b = Builder::new();
    b.put(1, "k", "left", 0, 10);
    let later = b.put(2, "k", "right", 20, 30);
    let finals: FinalValues = [(v("k"), vec![v("left"), v("right")])].into_iter().collect();
    let report = check_lost_writes_among(&b.history(), &finals);
    assert!(report.lost.is_empty(), "{}", report.witness());
    let finals: FinalValues = [(v("k"), vec![v("left")])].into_iter().collect();
    let report = check_lost_writes_among(&b.history(), &finals);
    assert_eq!(report.lost.iter().map(|l| l.op.id).collect::<Vec<_>>(), vec![later]);
}
