//! # replab-version-vector: keep concurrent writes as siblings
//!
//! A register is a *dotted version vector set* (Preguiça, Baquero, Almeida
//! et al., "Dotted Version Vectors", 2010/2012; Riak's `dvvset`): each live
//! version carries a *dot*, the single event that wrote it (node, counter),
//! and the register carries one version vector, its causal context: every
//! event it has seen, live or superseded.
//!
//! * A write at node `n` by a client that read context `c` gets the dot
//!   `(n, k)` with `k` past every event of `n` this replica has seen. It
//!   supersedes exactly the versions whose dots `c` covers, and sits
//!   beside the rest. The register's context becomes `c ∪ context ∪ dot`.
//! * A merge keeps a version if both sides hold it, or if the other side
//!   has not seen its dot; a version one side has seen and dropped was
//!   superseded. Commutative, associative, idempotent.
//! * A read returns the live values and the context.
//!
//! Why dots, not a version vector per sibling: with vectors alone, a
//! second blind write coordinated by the same node gets the vector
//! `{n: 2}`, which claims to have seen `{n: 1}`, and silently replaces a
//! write its client never saw (the test
//! `plain_vectors_lose_a_concurrent_write_at_the_same_coordinator` shows
//! it). And per-object vectors with server ids turn every such write into
//! a false sibling: Riak's "sibling explosion". A dot names exactly one
//! event, so siblings are exactly the concurrent writes.
//!
//! Requirement the leaderless policy meets: dots of a node are generated
//! by that node from its own register, in order, and it makes each durable
//! before acknowledging. Then every replica's knowledge of a node's events
//! for a key is a prefix `1..=k`, which is what the context records. A
//! node that lost its state no longer knows its `k`: it writes under a new
//! actor (`LocalWrite::actor`, `replab_api::actor_id`), whose events start
//! at 1 again without meeting the old ones.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use replab_api::{ConflictResolver, HybridClock, LocalWrite, NodeId, VersionVector};

/// The event that wrote a version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dot {
    /// The writer's actor: its node id, or after the node lost state, the
    /// name of its new incarnation (`replab_api::actor_id`).
    pub node: NodeId,
    pub counter: u64,
}

impl Dot {
    fn seen_by(&self, context: &VersionVector) -> bool {
        self.counter <= context.get(self.node)
    }
}

/// One key's versions on one replica.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DvvRegister {
    /// Every event this register has seen.
    context: VersionVector,
    /// The live versions (`None`: a delete), by dot. Every dot is in
    /// `context`.
    versions: BTreeMap<Dot, Option<Bytes>>,
}

impl DvvRegister {
    pub fn context(&self) -> &VersionVector {
        &self.context
    }

    /// Live versions, deletes included.
    pub fn versions(&self) -> impl Iterator<Item = (&Dot, &Option<Bytes>)> {
        self.versions.iter()
    }

    /// The live values (deletes leave none), sorted, and the context.
    pub fn read(&self) -> (Vec<Bytes>, VersionVector) {
        let mut values: Vec<Bytes> = self.versions.values().flatten().cloned().collect();
        values.sort();
        values.dedup();
        (values, self.context.clone())
    }

    /// A write coordinated by `node` for a client that read `context`.
    /// Returns the new version's dot.
    pub fn write(&mut self, node: NodeId, value: Option<Bytes>, context: &VersionVector) -> Dot {
        let counter = self.context.get(node).max(context.get(node)) + 1;
        let dot = Dot { node, counter };
        self.versions.retain(|d, _| !d.seen_by(context));
        self.context.merge(context);
        while self.context.get(node) < counter {
            self.context.increment(node);
        }
        self.versions.insert(dot, value);
        dot
    }

    /// Takes every version `other` holds that this register has not
    /// superseded, drops what `other` superseded; true if changed.
    pub fn merge(&mut self, other: &DvvRegister) -> bool {
        let before = (self.versions.len(), self.context.clone());
        let mine = std::mem::take(&mut self.versions);
        for (dot, value) in mine {
            if other.versions.contains_key(&dot) || !dot.seen_by(&other.context) {
                self.versions.insert(dot, value);
            }
        }
        let mut changed = self.versions.len() != before.0;
        for (dot, value) in &other.versions {
            if !dot.seen_by(&before.1) {
                self.versions.insert(*dot, value.clone());
                changed = true;
            }
        }
        self.context.merge(&other.context);
        changed || self.context != before.1
    }
}

/// The resolver `policy.conflict_resolver = "version-vector"` selects. The
/// context is the register's version vector (postcard-encoded).
pub struct VersionVectors;

fn decode_context(bytes: &[u8]) -> Result<VersionVector, String> {
    if bytes.is_empty() {
        return Ok(VersionVector::new());
    }
    match postcard::take_from_bytes::<VersionVector>(bytes) {
        Ok((context, [])) => Ok(context),
        Ok((_, rest)) => Err(format!("a version-vector context has {} trailing bytes", rest.len())),
        Err(e) => Err(format!("not a version-vector context: {e}")),
    }
}

impl ConflictResolver for VersionVectors {
    const NAME: &'static str = "version-vector";
    type Register = DvvRegister;

    fn write(register: &mut DvvRegister, write: LocalWrite<'_>, _clock: &mut HybridClock) -> Result<(), String> {
        let context = decode_context(write.context)?;
        // A counter at its maximum (a corrupt context or a faulty peer's
        // register) has no next event: refuse rather than wrap, which would
        // let every replica drop the write as already seen.
        // Dots are named by the writer's actor, not its node id: a node that
        // lost its state writes under a new actor (`replab_api::actor_id`).
        if register.context.get(write.actor).max(context.get(write.actor)) == u64::MAX {
            return Err(format!(
                "actor {}'s version counter is at its maximum: the context is not one a read returned",
                write.actor
            ));
        }
        register.write(write.actor, write.value.cloned(), &context);
        Ok(())
    }

    fn merge(register: &mut DvvRegister, other: &DvvRegister) -> bool {
        register.merge(other)
    }

    fn read(register: &DvvRegister) -> (Vec<Bytes>, Bytes) {
        let (values, context) = register.read();
        (values, Bytes::from(postcard::to_allocvec(&context).expect("vectors serialize")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn value(text: &'static str) -> Option<Bytes> {
        Some(Bytes::from_static(text.as_bytes()))
    }

    fn values(r: &DvvRegister) -> Vec<&[u8]> {
        r.versions.values().flatten().map(|b| &b[..]).collect()
    }

    #[test]
    fn concurrent_writes_become_siblings_and_a_write_that_saw_both_resolves_them() {
        let (mut a, mut b) = (DvvRegister::default(), DvvRegister::default());
        let empty = VersionVector::new();
        a.write(1, value("from a"), &empty);
        b.write(2, value("from b"), &empty);
        let (a0, b0) = (a.clone(), b.clone());
        a.merge(&b0);
        b.merge(&a0);
        assert_eq!(a, b, "converged");
        let (read, context) = a.read();
        assert_eq!(read.len(), 2, "neither write is lost: {read:?}");
        a.write(1, value("resolved"), &context);
        b.merge(&a);
        assert_eq!(values(&b), vec![&b"resolved"[..]]);
    }

    #[test]
    fn two_blind_writes_at_the_same_coordinator_are_both_kept() {
        let mut r = DvvRegister::default();
        r.write(1, value("x"), &VersionVector::new());
        r.write(1, value("y"), &VersionVector::new());
        let mut got = values(&r);
        got.sort();
        assert_eq!(got, vec![&b"x"[..], &b"y"[..]], "the second client never saw x");
    }

    /// The bug class dots exist for, shown on plain vectors: the second
    /// write's vector {1: 2} claims to descend from the first's {1: 1}.
    #[test]
    fn plain_vectors_lose_a_concurrent_write_at_the_same_coordinator() {
        let mut first = VersionVector::new();
        first.increment(1);
        let mut second = VersionVector::new();
        while second.get(1) <= first.get(1) {
            second.increment(1);
        }
        assert!(second.descends_from(&first), "a plain vector cannot say 'concurrent' here");
    }

    #[test]
    fn a_write_with_a_stale_context_does_not_overwrite_what_it_did_not_see() {
        let mut r = DvvRegister::default();
        r.write(1, value("v1"), &VersionVector::new());
        let (_, seen_v1) = r.read();
        r.write(1, value("v2"), &seen_v1);
        // Another client still holds the context of v1.
        r.write(2, value("stale"), &seen_v1);
        let mut got = values(&r);
        got.sort();
        assert_eq!(got, vec![&b"stale"[..], &b"v2"[..]]);
    }

    #[test]
    fn a_delete_with_a_context_removes_what_it_saw() {
        let mut r = DvvRegister::default();
        r.write(1, value("v1"), &VersionVector::new());
        let (_, context) = r.read();
        r.write(2, None, &context);
        assert_eq!(r.read().0, Vec::<Bytes>::new());
        let mut other = DvvRegister::default();
        other.write(1, value("v1"), &VersionVector::new());
        other.merge(&r);
        assert_eq!(other.read().0, Vec::<Bytes>::new(), "the delete wins over the version it saw");
    }

    #[test]
    fn a_context_that_does_not_decode_is_an_error() {
        let mut r = DvvRegister::default();
        let mut clock = HybridClock::new(1);
        let write = LocalWrite { node: 1, actor: 1, value: None, context: &[0xff, 0xff, 0xff], wall_ms: 0 };
        assert!(VersionVectors::write(&mut r, write, &mut clock).is_err());
        assert_eq!(r, DvvRegister::default());
    }

    /// Registers built by random writes (with the writer's latest context,
    /// or a blind one) at three replicas, with random merges between.
    fn arb() -> impl Strategy<Value = Vec<DvvRegister>> {
        proptest::collection::vec((0usize..3, 0usize..3, 0u8..3), 0..30).prop_map(|steps| {
            let mut replicas = vec![DvvRegister::default(); 3];
            for (i, (at, from, action)) in steps.into_iter().enumerate() {
                match action {
                    0 => {
                        let context = replicas[at].read().1;
                        replicas[at].write(at as NodeId + 1, Some(Bytes::from(vec![i as u8])), &context);
                    }
                    1 => {
                        replicas[at].write(at as NodeId + 1, Some(Bytes::from(vec![i as u8])), &VersionVector::new());
                    }
                    _ => {
                        let other = replicas[from].clone();
                        replicas[at].merge(&other);
                    }
                }
            }
            replicas
        })
    }

    proptest! {
        #[test]
        fn merge_is_commutative_associative_and_idempotent(r in arb()) {
            let merged = |x: &DvvRegister, y: &DvvRegister| { let mut m = x.clone(); m.merge(y); m };
            let (a, b, c) = (&r[0], &r[1], &r[2]);
            prop_assert_eq!(merged(a, b), merged(b, a));
            prop_assert_eq!(merged(&merged(a, b), c), merged(a, &merged(b, c)));
            prop_assert_eq!(merged(a, a), a.clone());
        }

        #[test]
        fn every_live_dot_is_in_the_context(r in arb()) {
            for reg in &r {
                for dot in reg.versions.keys() {
                    prop_assert!(dot.seen_by(&reg.context));
                }
            }
        }
    }
}
