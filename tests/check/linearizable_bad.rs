//! Known-bad histories: each fails, and the witness names the key and
//! the operations at fault.

use crate::{Builder, assert_violation, incr_kind};

#[test]
fn stale_read_is_caught_with_the_overwriting_put() {
    let mut b = Builder::new();
    b.put(1, "k3", "v17", 0, 100);
    let newer = b.put(2, "k3", "v21", 200, 1_100);
    let read = b.get(4, "k3", Some("v17"), 1_203, 1_300);
    let w = assert_violation(
        &b.history(),
        "k3",
        &[
            &format!("get k3 -> v17 (op {read}, client 4"),
            &format!("overwritten by put k3=v21 (op {newer}, client 2"),
            "completed 0.001100s",
            "before this get began",
        ],
    );
    assert_eq!(w.stuck[0].op.id, read);
    assert_eq!(w.value_after_prefix, Some(crate::v("v21")));
}

#[test]
fn lost_write_is_caught() {
    // The second put was acknowledged, yet every later read sees the
    // first: the store lost it.
    let mut b = Builder::new();
    b.put(1, "k", "a", 0, 10);
    let lost = b.put(2, "k", "b", 20, 30);
    b.get(3, "k", Some("a"), 40, 50);
    b.get(3, "k", Some("a"), 60, 70);
    let w = assert_violation(&b.history(), "k", &["get k -> a", "overwritten by put k=b"]);
    assert_eq!(w.last_writer.as_ref().map(|op| op.id), Some(lost));
}

#[test]
fn read_of_a_never_written_value_is_caught() {
    let mut b = Builder::new();
    b.put(1, "k", "a", 0, 10);
    let read = b.get(2, "k", Some("ghost"), 20, 30);
    assert_violation(&b.history(), "k", &[&format!("op {read}"), "no operation ever wrote ghost to this key"]);
}

#[test]
fn non_monotonic_reads_across_clients_are_caught() {
    // A put is in flight; client 3 sees the new value, then client 4,
    // starting after client 3 finished, sees the old one.
    let mut b = Builder::new();
    b.put(1, "k", "old", 0, 10);
    b.put(2, "k", "new", 20, 1_000);
    b.get(3, "k", Some("new"), 30, 40);
    let late = b.get(4, "k", Some("old"), 50, 60);
    assert_violation(&b.history(), "k", &[&format!("get k -> old (op {late}, client 4")]);
}

#[test]
fn cas_that_swapped_on_a_wrong_expected_value_is_caught() {
    let mut b = Builder::new();
    b.put(1, "k", "a", 0, 10);
    let cas = b.cas(2, "k", Some("b"), "c", true, 20, 30);
    assert_violation(
        &b.history(),
        "k",
        &[&format!("cas k b->c swapped (op {cas}"), "swapped although the key held a, not the expected b"],
    );
}

#[test]
fn cas_refused_although_the_value_matched_is_caught() {
    let mut b = Builder::new();
    b.put(1, "k", "a", 0, 10);
    let cas = b.cas(2, "k", Some("a"), "c", false, 20, 30);
    assert_violation(&b.history(), "k", &[&format!("op {cas}"), "refused although the key held exactly"]);
}

#[test]
fn increment_applied_twice_is_caught() {
    // One acknowledged increment by 1, yet the counter reads 2: the retry
    // was applied again (the idempotency failure).
    let mut b = Builder::new();
    b.incr(1, "n", 1, 1, 0, 10);
    let read = b.get(2, "n", Some("2"), 20, 30);
    assert_violation(&b.history(), "n", &[&format!("get n -> 2 (op {read}"), "an increment applied twice"]);
}

#[test]
fn increment_returning_a_wrong_sum_is_caught() {
    let mut b = Builder::new();
    b.incr(1, "n", 1, 1, 0, 10);
    let second = b.incr(2, "n", 1, 3, 20, 30);
    assert_violation(
        &b.history(),
        "n",
        &[&format!("op {second}"), "returned 3 while the key held 1", "would have returned 2"],
    );
}

#[test]
fn retried_increment_that_may_have_applied_once_is_fine() {
    // The first attempt's outcome is unknown; the counter reading 2 after
    // a second acknowledged increment is explained by both applying.
    let mut b = Builder::new();
    b.unknown(1, incr_kind("n", 1), 0, Some(50));
    b.incr(1, "n", 1, 2, 60, 70);
    crate::assert_linearizable(&b.history());
}

#[test]
fn reordered_writes_are_caught() {
    // Two sequential puts, then reads that see them in the wrong order.
    let mut b = Builder::new();
    b.put(1, "k", "first", 0, 10);
    b.put(1, "k", "second", 20, 30);
    b.get(2, "k", Some("second"), 40, 50);
    let back = b.get(2, "k", Some("first"), 60, 70);
    assert_violation(&b.history(), "k", &[&format!("get k -> first (op {back}")]);
}

#[test]
fn deleted_value_reappearing_is_caught() {
    let mut b = Builder::new();
    b.put(1, "k", "a", 0, 10);
    let delete = b.delete(2, "k", 20, 30);
    b.get(3, "k", Some("a"), 40, 50);
    let w = assert_violation(&b.history(), "k", &["get k -> a", "overwritten by delete k"]);
    assert_eq!(w.last_writer.as_ref().map(|op| op.id), Some(delete));
}

#[test]
fn only_the_bad_key_is_blamed() {
    let mut b = Builder::new();
    for i in 0..20u64 {
        let key = format!("good{i}");
        b.put(1, &key, "a", i * 100, i * 100 + 10);
        b.get(2, &key, Some("a"), i * 100 + 20, i * 100 + 30);
    }
    b.put(1, "bad", "a", 0, 10);
    b.get(2, "bad", Some("b"), 20, 30);
    assert_violation(&b.history(), "bad", &["get bad -> b"]);
}
