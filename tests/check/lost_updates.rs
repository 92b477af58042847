//! Lost updates: acknowledged puts gone without a write that had seen
//! them (how last-writer-wins loses concurrent writes).

use std::collections::BTreeMap;

use replab::check::{CheckStatus, FinalValues, check_lost_updates};

use crate::{Builder, put_kind, v};

fn finals(pairs: &[(&str, &[&str])]) -> FinalValues {
    pairs.iter().map(|(k, vals)| (v(k), vals.iter().map(|s| v(s)).collect())).collect()
}

#[test]
fn a_concurrent_write_dropped_by_last_writer_wins_is_a_lost_update() {
    let mut b = Builder::new();
    let left = b.put(1, "k", "left", 0, 10);
    b.put(2, "k", "right", 5, 15);
    let report = check_lost_updates(&b.history(), &finals(&[("k", &["right"])]));
    assert_eq!(report.lost.iter().map(|l| l.op.id).collect::<Vec<_>>(), vec![left]);
    let check = report.to_check_report();
    assert_eq!(check.status, CheckStatus::Fail);
    assert_eq!(check.violations, Some(1));
    assert!(report.witness().contains("no write that saw it replaced it"), "{}", report.witness());
}

#[test]
fn siblings_keep_both_and_lose_nothing() {
    let mut b = Builder::new();
    b.put(1, "k", "left", 0, 10);
    b.put(2, "k", "right", 5, 15);
    let report = check_lost_updates(&b.history(), &finals(&[("k", &["left", "right"])]));
    assert!(report.lost.is_empty(), "{}", report.witness());
    assert_eq!(report.acknowledged_puts, 2);
}

#[test]
fn a_write_with_the_context_of_a_read_that_saw_a_value_supersedes_it() {
    let mut b = Builder::new();
    b.put(1, "k", "left", 0, 10);
    b.put(2, "k", "right", 5, 15);
    b.siblings(3, "k", &["left", "right"], "ctx-both", (20, 25));
    let resolve = b.put(3, "k", "resolved", 30, 40);
    b.with_context(resolve, "ctx-both");
    let report = check_lost_updates(&b.history(), &finals(&[("k", &["resolved"])]));
    assert!(report.lost.is_empty(), "{}", report.witness());
    assert_eq!(report.superseded, 2);
}

#[test]
fn a_context_another_client_read_covers_too_but_not_a_value_it_did_not_return() {
    let mut b = Builder::new();
    let lost = b.put(1, "k", "v1", 0, 10);
    let read = b.get(2, "k", Some("v0"), 12, 14);
    b.with_context(read, "ctx-v0");
    // Client 4 writes with client 2's context: it covers v0, not v1.
    let w = b.put(4, "k", "v2", 20, 30);
    b.with_context(w, "ctx-v0");
    let report = check_lost_updates(&b.history(), &finals(&[("k", &["v2"])]));
    assert_eq!(report.lost.iter().map(|l| l.op.id).collect::<Vec<_>>(), vec![lost]);
}

#[test]
fn without_contexts_a_client_that_read_the_value_then_overwrote_it_superseded_it() {
    // Raft: reads carry no context, but the client read `a` before it
    // wrote `b`: an overwrite on purpose, not a lost update.
    let mut b = Builder::new();
    b.put(1, "k", "a", 0, 10);
    b.get(2, "k", Some("a"), 20, 30);
    b.put(2, "k", "b", 40, 50);
    let report = check_lost_updates(&b.history(), &finals(&[("k", &["b"])]));
    assert!(report.lost.is_empty(), "{}", report.witness());
    // A read that completed after the write was invoked does not count.
    let mut b = Builder::new();
    let lost = b.put(1, "k", "a", 0, 10);
    b.get(2, "k", Some("a"), 20, 45);
    b.put(2, "k", "b", 40, 50);
    let report = check_lost_updates(&b.history(), &finals(&[("k", &["b"])]));
    assert_eq!(report.lost.iter().map(|l| l.op.id).collect::<Vec<_>>(), vec![lost]);
}

#[test]
fn unknown_and_failed_puts_are_not_counted_but_an_unknown_put_can_supersede() {
    let mut b = Builder::new();
    b.unknown(1, put_kind("k", "maybe"), 0, None);
    b.fail(2, put_kind("k", "no"), 0, 5);
    b.put(3, "k", "yes", 10, 20);
    let read = b.get(4, "k", Some("yes"), 25, 30);
    b.with_context(read, "ctx");
    let u = b.unknown(4, put_kind("k", "later"), 35, Some(60));
    b.with_context(u, "ctx");
    let report = check_lost_updates(&b.history(), &finals(&[("k", &["later"])]));
    assert_eq!(report.acknowledged_puts, 1);
    assert!(report.lost.is_empty(), "{}", report.witness());
    let report = check_lost_updates(&b.history(), &BTreeMap::new());
    assert!(report.lost.is_empty(), "the unknown put may have replaced it, then something deleted it");
}
