//! Do the replicas agree once the cluster is healed and quiet?
//!
//! Definition: the replicas have converged iff every node holds the same
//! set of keys with the same value for each. A key missing on one node and
//! present on another is a difference. Each node's map is also summarised
//! by a 64-bit digest, so the report can say at a glance which nodes agree
//! with which.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::report::{CheckReport, CheckStatus};
use super::value::{Value, show};

/// Differing keys listed in full (the rest are counted).
const KEYS_SHOWN: usize = 20;

/// One node's final state: key -> value.
pub type ReplicaState = BTreeMap<Value, Value>;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyDivergence {
    pub key: Value,
    /// Every node's value for the key (None: absent there).
    pub values: BTreeMap<u64, Option<Value>>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ConvergenceReport {
    pub nodes: Vec<u64>,
    pub converged: bool,
    /// Each node's digest (FNV-1a over its sorted entries).
    pub digests: BTreeMap<u64, u64>,
    pub keys_total: usize,
    pub differing_keys_total: usize,
    /// The first differing keys in key order (bounded).
    pub differing: Vec<KeyDivergence>,
    #[serde(rename = "elapsed_s", serialize_with = "super::report::serialize_secs")]
    pub elapsed: Duration,
}

impl ConvergenceReport {
    pub fn summary(&self) -> String {
        if self.converged {
            return format!("{} nodes agree on {} keys", self.nodes.len(), self.keys_total);
        }
        let mut groups: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for (node, digest) in &self.digests {
            groups.entry(*digest).or_default().push(*node);
        }
        let groups: Vec<String> = groups
            .values()
            .map(|nodes| {
                let names: Vec<String> = nodes.iter().map(u64::to_string).collect();
                format!("{{{}}}", names.join(", "))
            })
            .collect();
        format!(
            "replicas diverge on {} of {} keys; nodes agreeing with each other: {}",
            self.differing_keys_total,
            self.keys_total,
            groups.join(" ")
        )
    }

    pub fn witness(&self) -> String {
        let mut text = String::new();
        for divergence in &self.differing {
            let values: Vec<String> = divergence
                .values
                .iter()
                .map(|(node, value)| format!("node {node} = {}", show(value.as_ref())))
                .collect();
            let _ = writeln!(text, "{}: {}", divergence.key, values.join(", "));
        }
        if self.differing_keys_total > self.differing.len() {
            let _ = writeln!(text, "... and {} more differing keys", self.differing_keys_total - self.differing.len());
        }
        text
    }

    pub fn to_check_report(&self) -> CheckReport {
        CheckReport {
            name: "convergence".to_string(),
            status: if self.converged { CheckStatus::Pass } else { CheckStatus::Fail },
            summary: self.summary(),
            witness: self.witness(),
            violations: Some(self.differing_keys_total as u64),
            elapsed: self.elapsed,
        }
    }
}

pub fn check_convergence(replicas: &BTreeMap<u64, ReplicaState>) -> ConvergenceReport {
    let started = Instant::now();
    let keys: BTreeSet<&Value> = replicas.values().flat_map(|state| state.keys()).collect();
    let mut differing_keys_total = 0;
    let mut differing = Vec::new();
    for key in &keys {
        let mut values = replicas.values().map(|state| state.get(*key));
        let first = values.next().flatten();
        if values.all(|value| value == first) {
            continue;
        }
        differing_keys_total += 1;
        if differing.len() < KEYS_SHOWN {
            differing.push(KeyDivergence {
                key: (*key).clone(),
                values: replicas.iter().map(|(node, state)| (*node, state.get(*key).cloned())).collect(),
            });
        }
    }
    ConvergenceReport {
        nodes: replicas.keys().copied().collect(),
        converged: differing_keys_total == 0,
        digests: replicas.iter().map(|(node, state)| (*node, digest(state))).collect(),
        keys_total: keys.len(),
        differing_keys_total,
        differing,
        elapsed: started.elapsed(),
    }
}

/// FNV-1a over length-prefixed keys and values in key order: equal maps
/// give equal digests on any machine (no per-process hash seed).
pub fn digest(state: &ReplicaState) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    let mut feed = |bytes: &[u8]| {
        for &b in (bytes.len() as u64).to_le_bytes().iter().chain(bytes) {
            hash = (hash ^ u64::from(b)).wrapping_mul(PRIME);
        }
    };
    for (key, value) in state {
        feed(key.as_bytes());
        feed(value.as_bytes());
    }
    hash
}

/// Convergence under a policy where each key lives on some members only
/// (leaderless with N below the cluster's size): every owner of every key
/// must hold the same register (a missing key is a difference), and
/// non-owners do not count. `states` maps each running node to the keys it
/// holds, each naming its owners.
pub fn check_owner_convergence(states: &BTreeMap<u64, Vec<replab_api::KeyState>>) -> ConvergenceReport {
    let started = Instant::now();
    let mut by_key: BTreeMap<&bytes::Bytes, (BTreeSet<u64>, BTreeMap<u64, &replab_api::KeyState>)> = BTreeMap::new();
    for (node, keys) in states {
        for state in keys {
            let entry = by_key.entry(&state.key).or_default();
            entry.0.extend(state.owners.iter().copied());
            entry.1.insert(*node, state);
        }
    }
    let mut differing_keys_total = 0;
    let mut differing = Vec::new();
    for (key, (owners, held)) in &by_key {
        // Owners that are down say nothing either way.
        let running: Vec<u64> = owners.iter().copied().filter(|o| states.contains_key(o)).collect();
        let Some(first_owner) = running.first() else { continue };
        let first = held.get(first_owner).map(|s| &s.register);
        if running.iter().all(|o| held.get(o).map(|s| &s.register) == first) {
            continue;
        }
        differing_keys_total += 1;
        if differing.len() < KEYS_SHOWN {
            let shown = |state: &&replab_api::KeyState| {
                let values: Vec<Value> = state.values.iter().cloned().map(Value::new).collect();
                Value::new(match values.as_slice() {
                    [one] => one.to_string(),
                    several => super::history::show_siblings(several),
                })
            };
            differing.push(KeyDivergence {
                key: Value::new((*key).clone()),
                values: running.iter().map(|o| (*o, held.get(o).map(shown))).collect(),
            });
        }
    }
    let digests = states
        .iter()
        .map(|(node, keys)| {
            let map: ReplicaState =
                keys.iter().map(|s| (Value::new(s.key.clone()), Value::new(s.register.clone()))).collect();
            (*node, digest(&map))
        })
        .collect();
    ConvergenceReport {
        nodes: states.keys().copied().collect(),
        converged: differing_keys_total == 0,
        digests,
        keys_total: by_key.len(),
        differing_keys_total,
        differing,
        elapsed: started.elapsed(),
    }
}
