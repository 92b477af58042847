//! Operations of unknown outcome may take effect at any time after their
//! invocation, or never; failed ones never do.

use crate::{Builder, assert_linearizable, assert_violation, cas_kind, delete_kind, get_kind, incr_kind, put_kind};

#[test]
fn unknown_put_that_later_reads_observe_is_fine() {
    let mut b = Builder::new();
    b.put(1, "k", "a", 0, 10);
    b.unknown(2, put_kind("k", "b"), 20, Some(30));
    b.get(3, "k", Some("a"), 40, 50);
    // Takes effect long after the client gave up.
    b.get(3, "k", Some("b"), 5_000, 5_010);
    assert_linearizable(&b.history());
}

#[test]
fn unknown_put_never_observed_is_fine() {
    let mut b = Builder::new();
    b.put(1, "k", "a", 0, 10);
    b.unknown(2, put_kind("k", "b"), 20, Some(30));
    b.get(3, "k", Some("a"), 40, 50);
    b.get(3, "k", Some("a"), 5_000, 5_010);
    assert_linearizable(&b.history());
}

#[test]
fn never_completed_operation_is_unknown() {
    let mut b = Builder::new();
    b.unknown(2, put_kind("k", "b"), 20, None);
    b.get(3, "k", Some("b"), 40, 50);
    assert_linearizable(&b.history());
}

#[test]
fn failed_put_that_reads_observe_is_a_violation() {
    let mut b = Builder::new();
    b.put(1, "k", "a", 0, 10);
    let failed = b.fail(2, put_kind("k", "b"), 20, 30);
    let read = b.get(3, "k", Some("b"), 40, 50);
    assert_violation(
        &b.history(),
        "k",
        &[
            &format!("get k -> b (op {read}"),
            &format!("written only by put k=b [failed: not leader] (op {failed}"),
            "never took effect",
        ],
    );
}

#[test]
fn unknown_put_cannot_act_before_its_invocation() {
    let mut b = Builder::new();
    b.get(3, "k", Some("b"), 0, 10);
    b.unknown(2, put_kind("k", "b"), 20, Some(30));
    assert_violation(&b.history(), "k", &["written only later", "after this get completed"]);
}

#[test]
fn unknown_put_takes_effect_at_most_once() {
    // After b is overwritten by c, b cannot come back from the same
    // unknown put.
    let mut b = Builder::new();
    b.unknown(2, put_kind("k", "b"), 0, Some(10));
    b.get(3, "k", Some("b"), 20, 30);
    b.put(1, "k", "c", 40, 50);
    b.get(3, "k", Some("b"), 60, 70);
    assert_violation(&b.history(), "k", &["get k -> b"]);
}

#[test]
fn unknown_get_constrains_nothing() {
    let mut b = Builder::new();
    b.put(1, "k", "a", 0, 10);
    b.unknown(2, get_kind("k"), 20, Some(30));
    b.get(3, "k", Some("a"), 40, 50);
    assert_linearizable(&b.history());
}

#[test]
fn unknown_increment_may_or_may_not_have_applied() {
    for seen in ["1", "2"] {
        let mut b = Builder::new();
        b.incr(1, "n", 1, 1, 0, 10);
        b.unknown(2, incr_kind("n", 1), 20, Some(30));
        b.get(3, "n", Some(seen), 40, 50);
        assert_linearizable(&b.history());
    }
    let mut b = Builder::new();
    b.incr(1, "n", 1, 1, 0, 10);
    b.unknown(2, incr_kind("n", 1), 20, Some(30));
    b.get(3, "n", Some("3"), 40, 50);
    assert_violation(&b.history(), "n", &["get n -> 3"]);
}

#[test]
fn unknown_cas_swaps_only_from_its_expected_value() {
    let mut b = Builder::new();
    b.put(1, "k", "a", 0, 10);
    b.unknown(2, cas_kind("k", Some("a"), "b"), 20, Some(30));
    b.get(3, "k", Some("b"), 40, 50);
    assert_linearizable(&b.history());

    let mut b = Builder::new();
    b.put(1, "k", "x", 0, 10);
    b.unknown(2, cas_kind("k", Some("a"), "b"), 20, Some(30));
    b.get(3, "k", Some("b"), 40, 50);
    assert_violation(&b.history(), "k", &["get k -> b"]);
}

#[test]
fn unknown_delete_may_explain_an_absent_read() {
    let mut b = Builder::new();
    b.put(1, "k", "a", 0, 10);
    b.unknown(2, delete_kind("k"), 20, Some(30));
    b.get(3, "k", None, 40, 50);
    assert_linearizable(&b.history());
}

/// An unobserved unknown put may still matter: here only it explains why
/// the cas was refused. (Guards the search's skipping of unobservable
/// unknown writes.)
#[test]
fn unobserved_unknown_put_can_explain_a_refused_cas() {
    let mut b = Builder::new();
    b.put(1, "k", "a", 0, 10);
    b.unknown(2, put_kind("k", "u"), 20, Some(25));
    b.cas(3, "k", Some("a"), "b", false, 30, 40);
    b.put(1, "k", "c", 50, 60);
    b.get(3, "k", Some("c"), 70, 80);
    assert_linearizable(&b.history());

    // Without the unknown put, the refusal is impossible.
    let mut b = Builder::new();
    b.put(1, "k", "a", 0, 10);
    let cas = b.cas(3, "k", Some("a"), "b", false, 30, 40);
    b.put(1, "k", "c", 50, 60);
    assert_violation(&b.history(), "k", &[&format!("op {cas}")]);
}

/// Numeric unknown writes may feed an increment.
#[test]
fn unobserved_numeric_unknown_put_can_feed_an_increment() {
    let mut b = Builder::new();
    b.unknown(2, put_kind("n", "10"), 0, Some(5));
    b.incr(1, "n", 1, 11, 10, 20);
    assert_linearizable(&b.history());
}

#[test]
fn many_pending_unknown_writes_stay_cheap() {
    // 40 unknown puts that no one reads, on one key, amid a sequential
    // history.
    let mut b = Builder::new();
    for i in 0..40u64 {
        b.unknown(9, put_kind("k", &format!("lost{i}")), i * 100, Some(i * 100 + 50));
        b.put(1, "k", &format!("v{i}"), i * 100 + 10, i * 100 + 20);
        b.get(2, "k", Some(&format!("v{i}")), i * 100 + 30, i * 100 + 40);
    }
    let started = std::time::Instant::now();
    assert_linearizable(&b.history());
    assert!(started.elapsed().as_secs() < 10);
}
