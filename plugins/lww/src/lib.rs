//! # replab-lww: last-writer-wins conflict resolution
//!
//! Every write carries a hybrid-clock timestamp (wall time, logical
//! counter, node id; `replab_api::HybridClock`). Two replicas that hold
//! different versions of a key keep the one with the larger timestamp, so
//! they converge whatever order updates arrive in, and a replica needs to
//! keep a single value.
//!
//! The price: of two *concurrent* writes (neither writer had seen the
//! other), one is silently discarded. The writer was told "ok", and its
//! value is gone. `replab-version-vector` keeps both instead; the test in
//! `tests/conflicts.rs` counts what each loses on the same schedule.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use replab_api::{ConflictResolver, HybridClock, HybridTimestamp, LocalWrite};

/// The resolver `policy.conflict_resolver = "lww"` selects.
///
/// The context a read returns is the version's timestamp; a write ignores
/// the context it is given: the later timestamp wins whatever the writer
/// saw. That is the point of comparing it with `version-vector`.
pub struct Lww;

impl ConflictResolver for Lww {
    const NAME: &'static str = "lww";
    type Register = LwwRegister;

    fn write(register: &mut LwwRegister, write: LocalWrite<'_>, clock: &mut HybridClock) -> Result<(), String> {
        register.write(write.value.cloned(), clock, write.wall_ms);
        Ok(())
    }

    fn merge(register: &mut LwwRegister, other: &LwwRegister) -> bool {
        register.merge(other)
    }

    fn read(register: &LwwRegister) -> (Vec<Bytes>, Bytes) {
        let context = postcard::to_allocvec(&register.stamp).expect("timestamps serialize");
        (register.value.iter().cloned().collect(), Bytes::from(context))
    }

    fn newest_stamp(register: &LwwRegister) -> Option<HybridTimestamp> {
        Some(register.stamp)
    }
}

/// One key's state on one replica: the value (`None`: deleted, kept as a
/// tombstone so an older write cannot resurrect it) and its timestamp.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LwwRegister {
    pub value: Option<Bytes>,
    /// `HybridTimestamp::default()` for a key never written.
    pub stamp: HybridTimestamp,
}

impl LwwRegister {
    /// A local write. The timestamp is taken past this register's, so the
    /// write wins locally even if this node's wall clock is behind the one
    /// that wrote the current value.
    pub fn write(&mut self, value: Option<Bytes>, clock: &mut HybridClock, wall_ms: u64) -> HybridTimestamp {
        let stamp = clock.observe(self.stamp, wall_ms);
        debug_assert!(stamp > self.stamp, "a hybrid clock moves past what it observes");
        self.value = value;
        self.stamp = stamp;
        stamp
    }

    /// Takes `other`'s version if it is newer; true if this register
    /// changed. Commutative, associative and idempotent, so replicas that
    /// exchanged the same updates in any order hold the same value.
    pub fn merge(&mut self, other: &LwwRegister) -> bool {
        if other.stamp > self.stamp {
            *self = other.clone();
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(wall_ms: u64, logical: u32, node: u64, value: u8) -> LwwRegister {
        LwwRegister { value: Some(Bytes::from(vec![value])), stamp: HybridTimestamp { wall_ms, logical, node } }
    }

    #[test]
    fn of_two_concurrent_writes_the_later_timestamp_wins_everywhere() {
        let (mut a, mut b) = (LwwRegister::default(), LwwRegister::default());
        let (mut clock_a, mut clock_b) = (HybridClock::new(1), HybridClock::new(2));
        a.write(Some(Bytes::from_static(b"from a")), &mut clock_a, 1_000);
        b.write(Some(Bytes::from_static(b"from b")), &mut clock_b, 1_005);
        let (a0, b0) = (a.clone(), b.clone());
        a.merge(&b0);
        b.merge(&a0);
        assert_eq!(a, b, "converged");
        assert_eq!(a.value.as_deref(), Some(&b"from b"[..]), "the write from a is gone, though a was told ok");
    }

    #[test]
    fn a_write_after_seeing_a_newer_value_wins_even_with_a_slow_clock() {
        let mut r = at(5_000, 0, 2, 1);
        let mut slow = HybridClock::new(1);
        r.write(None, &mut slow, 100);
        assert_eq!(r.value, None, "the delete took effect");
        assert!(r.stamp > at(5_000, 0, 2, 1).stamp);
        assert!(!r.merge(&at(4_000, 9, 3, 7)), "an older write does not resurrect the key");
    }

    fn arb() -> impl Strategy<Value = LwwRegister> {
        (0u64..4, 0u32..3, 1u64..4, any::<u8>()).prop_map(|(w, l, n, v)| at(w, l, n, v))
    }

    proptest! {
        #[test]
        fn merge_is_commutative_associative_and_idempotent(a in arb(), b in arb(), c in arb()) {
            let merged = |x: &LwwRegister, y: &LwwRegister| { let mut m = x.clone(); m.merge(y); m };
            prop_assert_eq!(merged(&a, &b).stamp, merged(&b, &a).stamp);
            prop_assert_eq!(merged(&merged(&a, &b), &c).stamp, merged(&a, &merged(&b, &c)).stamp);
            prop_assert_eq!(merged(&a, &a), a.clone());
        }
    }
}
