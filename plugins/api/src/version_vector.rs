//! Version vectors: causality between replicas' versions of a value.
//!
//! A version vector maps each node to the number of updates it has made to
//! a value. Comparing two vectors entry by entry says whether one version
//! descends from the other (then the older can be discarded) or whether
//! they are concurrent (then both must be kept as siblings, or resolved by a
//! policy such as last-writer-wins). This is the information a Lamport clock
//! throws away.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::NodeId;

/// How two versions relate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Causality {
    /// `self` happened before `other`: `other` supersedes it.
    Before,
    /// `self` happened after `other`: `self` supersedes it.
    After,
    Equal,
    /// Neither descends from the other: a conflict.
    Concurrent,
}

/// Absent entries count as zero, so vectors of different clusters' sizes
/// compare correctly and the empty vector precedes every update.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VersionVector {
    counters: BTreeMap<NodeId, u64>,
}

impl VersionVector {
    pub fn new() -> VersionVector {
        VersionVector::default()
    }

    pub fn get(&self, node: NodeId) -> u64 {
        self.counters.get(&node).copied().unwrap_or(0)
    }

    /// Records one more update made by `node`.
    pub fn increment(&mut self, node: NodeId) -> u64 {
        let c = self.counters.entry(node).or_insert(0);
        *c += 1;
        *c
    }

    pub fn compare(&self, other: &VersionVector) -> Causality {
        let mut self_ahead = false;
        let mut other_ahead = false;
        for node in self.counters.keys().chain(other.counters.keys()) {
            let (a, b) = (self.get(*node), other.get(*node));
            self_ahead |= a > b;
            other_ahead |= b > a;
        }
        match (self_ahead, other_ahead) {
            (false, false) => Causality::Equal,
            (true, false) => Causality::After,
            (false, true) => Causality::Before,
            (true, true) => Causality::Concurrent,
        }
    }

    /// True if `self` has seen every update `other` has seen.
    pub fn descends_from(&self, other: &VersionVector) -> bool {
        matches!(self.compare(other), Causality::After | Causality::Equal)
    }

    /// The least upper bound: every update either side has seen.
    pub fn merge(&mut self, other: &VersionVector) {
        for (node, count) in &other.counters {
            let c = self.counters.entry(*node).or_insert(0);
            *c = (*c).max(*count);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (NodeId, u64)> + '_ {
        self.counters.iter().map(|(n, c)| (*n, *c))
    }
}

impl FromIterator<(NodeId, u64)> for VersionVector {
    fn from_iter<I: IntoIterator<Item = (NodeId, u64)>>(iter: I) -> VersionVector {
        let counters = iter.into_iter().filter(|(_, c)| *c > 0).collect();
        VersionVector { counters }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn vv(pairs: &[(NodeId, u64)]) -> VersionVector {
        pairs.iter().copied().collect()
    }

    #[test]
    fn an_update_comes_after_the_version_it_was_made_on() {
        let a = vv(&[(1, 2), (2, 1)]);
        let mut b = a.clone();
        b.increment(2);
        assert_eq!(a.compare(&b), Causality::Before);
        assert_eq!(b.compare(&a), Causality::After);
        assert!(b.descends_from(&a));
    }

    #[test]
    fn updates_on_two_replicas_of_one_version_are_concurrent() {
        let base = vv(&[(1, 1)]);
        let mut x = base.clone();
        let mut y = base.clone();
        x.increment(1);
        y.increment(2);
        assert_eq!(x.compare(&y), Causality::Concurrent);
        assert!(!x.descends_from(&y) && !y.descends_from(&x));
    }

    #[test]
    fn merge_descends_from_both_and_resolves_the_conflict() {
        let mut x = vv(&[(1, 2)]);
        let y = vv(&[(2, 3)]);
        x.merge(&y);
        assert_eq!(x, vv(&[(1, 2), (2, 3)]));
        assert!(x.descends_from(&vv(&[(1, 2)])) && x.descends_from(&y));
    }

    #[test]
    fn missing_entries_count_as_zero() {
        assert_eq!(vv(&[]).compare(&vv(&[(3, 0)])), Causality::Equal);
        assert_eq!(vv(&[]).compare(&vv(&[(3, 1)])), Causality::Before);
    }

    fn arb_vv() -> impl Strategy<Value = VersionVector> {
        proptest::collection::btree_map(0u64..5, 0u64..4, 0..5).prop_map(|m| m.into_iter().collect())
    }

    proptest! {
        #[test]
        fn compare_is_antisymmetric(a in arb_vv(), b in arb_vv()) {
            let flipped = match a.compare(&b) {
                Causality::Before => Causality::After,
                Causality::After => Causality::Before,
                other => other,
            };
            prop_assert_eq!(b.compare(&a), flipped);
        }

        #[test]
        fn merge_is_the_least_upper_bound(a in arb_vv(), b in arb_vv()) {
            let mut m = a.clone();
            m.merge(&b);
            prop_assert!(m.descends_from(&a) && m.descends_from(&b));
            let mut m2 = b.clone();
            m2.merge(&a);
            prop_assert_eq!(m.compare(&m2), Causality::Equal, "merge is commutative");
        }
    }
}
