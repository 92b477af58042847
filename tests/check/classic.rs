//! Small classic histories, after the Knossos and Porcupine test suites,
//! rewritten against this register (which starts absent, where those
//! suites' registers start at 0).

use crate::{Builder, assert_linearizable, assert_violation};

#[test]
fn sequential_history_passes() {
    let mut b = Builder::new();
    b.get(1, "x", None, 0, 10);
    b.put(1, "x", "a", 20, 30);
    b.get(2, "x", Some("a"), 40, 50);
    b.cas(1, "x", Some("a"), "b", true, 60, 70);
    b.cas(2, "x", Some("a"), "c", false, 80, 90);
    b.delete(1, "x", 100, 110);
    b.get(2, "x", None, 120, 130);
    b.incr(1, "n", 5, 5, 140, 150);
    b.incr(2, "n", -2, 3, 160, 170);
    b.get(1, "n", Some("3"), 180, 190);
    assert_linearizable(&b.history());
}

#[test]
fn empty_history_passes() {
    assert_linearizable(&Builder::new().history());
}

/// Porcupine's first register example: a put overlapping two gets, one
/// of which sees the old value and one the new.
#[test]
fn porcupine_register_good() {
    let mut b = Builder::new();
    b.put(0, "x", "100", 0, 100);
    b.get(1, "x", Some("100"), 25, 75);
    b.get(2, "x", None, 30, 60);
    assert_linearizable(&b.history());
}

/// Porcupine's second: the get that sees the old value starts after the
/// get that saw the new one finished.
#[test]
fn porcupine_register_bad() {
    let mut b = Builder::new();
    b.put(0, "x", "200", 0, 100);
    b.get(1, "x", Some("200"), 10, 30);
    let late = b.get(2, "x", None, 40, 90);
    assert_violation(&b.history(), "x", &[&format!("op {late}"), "get x -> absent"]);
}

/// Knossos's cas-register shape: concurrent writers and a cas that can
/// only have gone in one place.
#[test]
fn knossos_cas_register_good() {
    let mut b = Builder::new();
    b.put(0, "r", "1", 0, 10);
    b.put(1, "r", "2", 5, 30);
    b.cas(2, "r", Some("1"), "3", true, 6, 25);
    b.get(3, "r", Some("2"), 35, 40);
    assert_linearizable(&b.history());
}

#[test]
fn knossos_cas_register_bad() {
    let mut b = Builder::new();
    b.put(0, "r", "1", 0, 10);
    b.put(1, "r", "2", 15, 20);
    let cas = b.cas(2, "r", Some("1"), "3", true, 25, 30);
    assert_violation(&b.history(), "r", &[&format!("op {cas}"), "swapped although the key held 2"]);
}

#[test]
fn concurrent_increments_return_distinct_sums_in_either_order() {
    let mut b = Builder::new();
    b.incr(0, "n", 1, 2, 0, 100);
    b.incr(1, "n", 1, 1, 10, 90);
    b.get(2, "n", Some("2"), 110, 120);
    assert_linearizable(&b.history());
}

#[test]
fn touching_intervals_count_as_concurrent() {
    // The put completes in the very microsecond the get starts: the clock
    // cannot order them, so either order is allowed.
    let mut b = Builder::new();
    b.put(0, "x", "a", 0, 10);
    b.get(1, "x", None, 10, 20);
    assert_linearizable(&b.history());
}

#[test]
fn keys_are_independent_registers() {
    let mut b = Builder::new();
    b.put(0, "x", "a", 0, 10);
    b.put(1, "y", "b", 0, 10);
    b.get(0, "x", Some("a"), 20, 30);
    b.get(1, "y", Some("b"), 20, 30);
    b.get(2, "z", None, 20, 30);
    assert_linearizable(&b.history());
}

#[test]
fn non_canonical_numbers_stay_distinct_values() {
    let mut b = Builder::new();
    b.put(0, "n", "007", 0, 10);
    b.incr(0, "n", 1, 8, 20, 30);
    b.get(1, "n", Some("8"), 40, 50);
    assert_linearizable(&b.history());

    let mut b = Builder::new();
    b.put(0, "n", "007", 0, 10);
    b.get(1, "n", Some("7"), 20, 30);
    assert_violation(&b.history(), "n", &["get n -> 7"]);
}
