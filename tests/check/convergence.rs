//! Convergence: do the replicas hold the same map?

use std::collections::BTreeMap;

use replab::check::convergence::digest;
use replab::check::{CheckStatus, ReplicaState, check_convergence};

use crate::v;

fn state(pairs: &[(&str, &str)]) -> ReplicaState {
    pairs.iter().map(|(k, val)| (v(k), v(val))).collect()
}

#[test]
fn identical_replicas_converge() {
    let s = state(&[("a", "1"), ("b", "2")]);
    let replicas: BTreeMap<u64, ReplicaState> = (1..=3).map(|n| (n, s.clone())).collect();
    let report = check_convergence(&replicas);
    assert!(report.converged);
    assert_eq!(report.keys_total, 2);
    assert_eq!(report.to_check_report().status, CheckStatus::Pass);
    assert!(report.summary().contains("3 nodes agree on 2 keys"), "{}", report.summary());
}

#[test]
fn no_or_one_replica_trivially_converges() {
    assert!(check_convergence(&BTreeMap::new()).converged);
    let one: BTreeMap<u64, ReplicaState> = [(1, state(&[("a", "1")]))].into();
    assert!(check_convergence(&one).converged);
}

#[test]
fn differing_values_and_missing_keys_are_listed_per_node() {
    let replicas: BTreeMap<u64, ReplicaState> = [
        (1, state(&[("a", "1"), ("b", "2"), ("c", "3")])),
        (2, state(&[("a", "1"), ("b", "2"), ("c", "3")])),
        (3, state(&[("a", "1"), ("b", "X")])),
    ]
    .into();
    let report = check_convergence(&replicas);
    assert!(!report.converged);
    assert_eq!(report.differing_keys_total, 2);
    let keys: Vec<String> = report.differing.iter().map(|d| d.key.to_string()).collect();
    assert_eq!(keys, ["b", "c"]);
    assert_eq!(report.differing[1].values[&3], None);
    let witness = report.witness();
    assert!(witness.contains("b: node 1 = 2, node 2 = 2, node 3 = X"), "{witness}");
    assert!(witness.contains("c: node 1 = 3, node 2 = 3, node 3 = absent"), "{witness}");
    let summary = report.summary();
    assert!(summary.contains("diverge on 2 of 3 keys"), "{summary}");
    assert!(summary.contains("{1, 2}") && summary.contains("{3}"), "{summary}");
    assert_eq!(report.to_check_report().status, CheckStatus::Fail);
}

#[test]
fn output_is_bounded() {
    let big: ReplicaState = (0..500).map(|i| (v(&format!("k{i:03}")), v("x"))).collect();
    let replicas: BTreeMap<u64, ReplicaState> = [(1, big), (2, ReplicaState::new())].into();
    let report = check_convergence(&replicas);
    assert_eq!(report.differing_keys_total, 500);
    assert_eq!(report.differing.len(), 20);
    assert!(report.witness().contains("... and 480 more differing keys"));
    assert!(report.witness().lines().count() <= 21);
}

#[test]
fn digest_tells_maps_apart_and_ignores_nothing() {
    let a = state(&[("a", "1"), ("b", "2")]);
    assert_eq!(digest(&a), digest(&a.clone()));
    assert_ne!(digest(&a), digest(&state(&[("a", "1"), ("b", "3")])));
    // Length prefixes keep "ab"+"c" apart from "a"+"bc".
    assert_ne!(digest(&state(&[("ab", "c")])), digest(&state(&[("a", "bc")])));
}
