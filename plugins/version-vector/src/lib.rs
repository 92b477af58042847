//! # replab-version-vector: keep concurrent writes as siblings
//!
//! Every write carries a version vector: the writes it has seen, plus
//! itself. A replica keeps every version that no other version it holds
//! descends from. A write that saw the current values (it passes the
//! *context* it read) supersedes them; two writes that did not see each
//! other are both kept, as siblings, until a later write that has seen
//! both resolves them. Nothing a client was told "ok" about disappears
//! unless a write that knew of it replaced it.
//!
//! The price, next to `replab-lww`: a read may return several values, the
//! client must pass the context back, and the vectors grow with the
//! number of nodes that wrote the key.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use replab_api::{Causality, NodeId, VersionVector};

/// One version of a key: its value (`None`: a delete) and its vector.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sibling {
    pub value: Option<Bytes>,
    pub version: VersionVector,
}

/// One key's versions on one replica, none descending from another.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MvRegister {
    siblings: Vec<Sibling>,
}

impl MvRegister {
    pub fn siblings(&self) -> &[Sibling] {
        &self.siblings
    }

    /// What a client reads: every current value, and the context to pass
    /// to its next write (the merge of their vectors).
    pub fn read(&self) -> (Vec<Option<Bytes>>, VersionVector) {
        let mut context = VersionVector::new();
        for s in &self.siblings {
            context.merge(&s.version);
        }
        (self.siblings.iter().map(|s| s.value.clone()).collect(), context)
    }

    /// A write at `node` by a client that read `context`. Its vector is the
    /// context plus a new event of `node`, numbered past every event of
    /// `node` this replica knows for the key, so it is unique. It replaces
    /// the versions the context covers and sits beside the rest.
    pub fn write(&mut self, node: NodeId, value: Option<Bytes>, context: &VersionVector) -> VersionVector {
        let mut version = context.clone();
        let known = self.siblings.iter().map(|s| s.version.get(node)).max().unwrap_or(0).max(context.get(node));
        while version.get(node) <= known {
            version.increment(node);
        }
        self.siblings.retain(|s| !version.descends_from(&s.version));
        self.siblings.push(Sibling { value, version: version.clone() });
        self.canonicalize();
        version
    }

    /// Takes every version from `other` that nothing here supersedes, and
    /// drops what `other` supersedes; true if this register changed. A
    /// state-based merge: commutative, associative, idempotent.
    pub fn merge(&mut self, other: &MvRegister) -> bool {
        let before = self.siblings.clone();
        for theirs in &other.siblings {
            let covered = self.siblings.iter().any(|ours| ours.version.descends_from(&theirs.version));
            if !covered {
                self.siblings.retain(|ours| !theirs.version.descends_from(&ours.version));
                self.siblings.push(theirs.clone());
            }
        }
        self.canonicalize();
        self.siblings != before
    }

    /// Sorts the siblings by vector, so equal states compare equal, and
    /// checks the invariant: siblings are pairwise concurrent.
    fn canonicalize(&mut self) {
        self.siblings.sort_by(|a, b| {
            let key = |s: &Sibling| s.version.iter().collect::<Vec<_>>();
            key(a).cmp(&key(b))
        });
        for (i, a) in self.siblings.iter().enumerate() {
            for b in &self.siblings[i + 1..] {
                debug_assert_eq!(a.version.compare(&b.version), Causality::Concurrent, "siblings must be concurrent");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn value(text: &'static str) -> Option<Bytes> {
        Some(Bytes::from_static(text.as_bytes()))
    }

    #[test]
    fn concurrent_writes_become_siblings_and_a_write_that_saw_both_resolves_them() {
        let (mut a, mut b) = (MvRegister::default(), MvRegister::default());
        let empty = VersionVector::new();
        a.write(1, value("from a"), &empty);
        b.write(2, value("from b"), &empty);
        let (a0, b0) = (a.clone(), b.clone());
        a.merge(&b0);
        b.merge(&a0);
        assert_eq!(a, b, "converged");
        let (values, context) = a.read();
        assert_eq!(values.len(), 2, "neither write is lost: {values:?}");
        a.write(1, value("resolved"), &context);
        b.merge(&a);
        assert_eq!(b.read().0, vec![value("resolved")]);
    }

    #[test]
    fn a_write_with_a_stale_context_does_not_overwrite_what_it_did_not_see() {
        let mut r = MvRegister::default();
        let v1 = r.write(1, value("v1"), &VersionVector::new());
        r.write(1, value("v2"), &v1);
        // Another client still holds the context of v1.
        r.write(2, value("stale"), &v1);
        let mut values = r.read().0;
        values.sort();
        assert_eq!(values, vec![value("stale"), value("v2")]);
    }

    /// Registers built by random writes at three replicas with random
    /// merges in between: the states a real run produces.
    fn arb() -> impl Strategy<Value = Vec<MvRegister>> {
        proptest::collection::vec((0usize..3, 0usize..3, any::<bool>()), 0..30).prop_map(|steps| {
            let mut replicas = vec![MvRegister::default(); 3];
            for (i, (at, from, write)) in steps.into_iter().enumerate() {
                if write {
                    let context = replicas[at].read().1;
                    replicas[at].write(at as NodeId + 1, Some(Bytes::from(vec![i as u8])), &context);
                } else {
                    let other = replicas[from].clone();
                    replicas[at].merge(&other);
                }
            }
            replicas
        })
    }

    proptest! {
        #[test]
        fn merge_is_commutative_associative_and_idempotent(r in arb()) {
            let merged = |x: &MvRegister, y: &MvRegister| { let mut m = x.clone(); m.merge(y); m };
            let (a, b, c) = (&r[0], &r[1], &r[2]);
            prop_assert_eq!(merged(a, b), merged(b, a));
            prop_assert_eq!(merged(&merged(a, b), c), merged(a, &merged(b, c)));
            prop_assert_eq!(merged(a, a), a.clone());
        }
    }
}
