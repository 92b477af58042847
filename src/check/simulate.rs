//! Histories that are linearizable by construction, for tests and the
//! checker benchmark.
//!
//! Clients issue operations back to back with random latencies and think
//! times, so their intervals overlap as in a real run. Each operation that
//! takes effect does so at a point chosen inside its interval (for an
//! Unknown one: possibly after the client gave up, or never); applying the
//! operations to a plain map in the order of those points gives the
//! replies. Every history this produces is therefore linearizable, with
//! the chosen points as the witness order.

use std::collections::{BTreeMap, HashMap};

use super::history::{History, OpKind, Operation, Outcome, Reply};
use super::value::Value;

#[derive(Clone, Debug)]
pub struct SimulationParams {
    pub seed: u64,
    pub clients: usize,
    pub ops: usize,
    pub keys: usize,
    /// Probability that an operation's outcome is Unknown; half of those
    /// take effect.
    pub unknown_rate: f64,
    /// Probability that an operation is rejected (Fail, no effect).
    pub fail_rate: f64,
    pub mean_latency_us: u64,
    pub mean_think_us: u64,
    /// Every this-many-th key is a counter (incr, get, delete); 0: none.
    pub counter_every: usize,
}

impl Default for SimulationParams {
    fn default() -> SimulationParams {
        SimulationParams {
            seed: 1,
            clients: 10,
            ops: 10_000,
            keys: 100,
            unknown_rate: 0.002,
            fail_rate: 0.005,
            mean_latency_us: 1_000,
            mean_think_us: 200,
            counter_every: 10,
        }
    }
}

/// SplitMix64: tiny, seedable, good enough to shape workloads.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (0 when n is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability p.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// An operation as planned, before its reply is known.
struct Planned {
    client: u64,
    kind: OpKind,
    invoke_us: u64,
    complete_us: u64,
    class: Class,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Ok { effect_us: u64 },
    Fail,
    Unknown { effect_us: Option<u64> },
}

/// A simulated run: its history and the store's final contents (every
/// effect applied, Unknown ones included).
#[derive(Clone, Debug)]
pub struct Simulation {
    pub history: History,
    pub final_values: BTreeMap<Value, Value>,
}

pub fn simulate_history(params: &SimulationParams) -> History {
    simulate(params).history
}

pub fn simulate(params: &SimulationParams) -> Simulation {
    let mut rng = SplitMix64::new(params.seed);
    let clients = params.clients.max(1);
    let keys = params.keys.max(1) as u64;
    let mut next_free_us: Vec<u64> = (0..clients).map(|_| rng.below(params.mean_think_us + 1)).collect();
    let mut last_value: HashMap<u64, Value> = HashMap::new();
    let mut planned: Vec<Planned> = Vec::with_capacity(params.ops);

    for id in 0..params.ops as u64 {
        // The least busy client goes next, so ids follow invocation times.
        let client = (0..clients).min_by_key(|&c| (next_free_us[c], c)).unwrap_or(0);
        let invoke_us = next_free_us[client];
        let latency_us = 1 + rng.below(2 * params.mean_latency_us);
        let complete_us = invoke_us + latency_us;
        next_free_us[client] = complete_us + rng.below(2 * params.mean_think_us + 1);

        let key_index = rng.below(keys);
        let key = Value::from(format!("k{key_index}"));
        let is_counter = params.counter_every > 0 && (key_index + 1).is_multiple_of(params.counter_every as u64);
        let roll = rng.below(100);
        let kind = if is_counter {
            match roll {
                0..60 => OpKind::Incr { key, by: 1 + rng.below(3) as i64 },
                60..95 => OpKind::Get { key },
                _ => OpKind::Delete { key },
            }
        } else {
            match roll {
                0..35 => {
                    let value = Value::from(format!("v{id}"));
                    last_value.insert(key_index, value.clone());
                    OpKind::Put { key, value }
                }
                35..80 => OpKind::Get { key },
                80..92 => {
                    let new = Value::from(format!("v{id}"));
                    let expected = if rng.chance(0.2) { None } else { last_value.get(&key_index).cloned() };
                    last_value.insert(key_index, new.clone());
                    OpKind::Cas { key, expected, new }
                }
                _ => OpKind::Delete { key },
            }
        };
        let class = if rng.chance(params.fail_rate) {
            Class::Fail
        } else if rng.chance(params.unknown_rate) {
            let effect_us = rng.chance(0.5).then(|| invoke_us + rng.below(3 * latency_us + 1));
            Class::Unknown { effect_us }
        } else {
            Class::Ok { effect_us: invoke_us + rng.below(latency_us + 1) }
        };
        planned.push(Planned { client: client as u64, kind, invoke_us, complete_us, class });
    }

    // Apply in effect order to get the replies.
    let mut effects: Vec<(u64, usize)> = planned
        .iter()
        .enumerate()
        .filter_map(|(index, p)| match p.class {
            Class::Ok { effect_us } | Class::Unknown { effect_us: Some(effect_us) } => Some((effect_us, index)),
            _ => None,
        })
        .collect();
    effects.sort_unstable();
    let mut store: HashMap<Value, Value> = HashMap::new();
    let mut replies: Vec<Option<Reply>> = vec![None; planned.len()];
    for (_, index) in effects {
        replies[index] = apply(&mut store, &planned[index].kind);
    }

    let history = planned
        .into_iter()
        .zip(replies)
        .enumerate()
        .map(|(id, (p, reply))| {
            let outcome = match (p.class, reply) {
                (Class::Ok { .. }, Some(reply)) => Outcome::Ok(reply),
                // An increment of a non-number is rejected: no effect.
                (Class::Ok { .. }, None) => Outcome::Fail("not a number".to_string()),
                (Class::Fail, _) => Outcome::Fail("rejected".to_string()),
                (Class::Unknown { .. }, _) => Outcome::Unknown("timeout".to_string()),
            };
            Operation {
                id: id as u64,
                client: p.client,
                kind: p.kind,
                invoke_us: p.invoke_us,
                complete_us: Some(p.complete_us),
                outcome,
                node: None,
                context: None,
            }
        })
        .collect();
    Simulation { history, final_values: store.into_iter().collect() }
}

/// The sequential semantics; None when the operation fails (an increment
/// of a non-number or an overflow) and so changes nothing.
fn apply(store: &mut HashMap<Value, Value>, kind: &OpKind) -> Option<Reply> {
    match kind {
        OpKind::Put { key, value } => {
            store.insert(key.clone(), value.clone());
            Some(Reply::Done)
        }
        OpKind::Get { key } => Some(Reply::Get(store.get(key).cloned())),
        OpKind::Delete { key } => {
            store.remove(key);
            Some(Reply::Done)
        }
        OpKind::Cas { key, expected, new } => {
            let swapped = store.get(key) == expected.as_ref();
            if swapped {
                store.insert(key.clone(), new.clone());
            }
            Some(Reply::Cas(swapped))
        }
        OpKind::Incr { key, by } => {
            let current = store.get(key).map_or(Some(0), Value::parse_i64)?;
            let sum = current.checked_add(*by)?;
            store.insert(key.clone(), Value::from_i64(sum));
            Some(Reply::Incr(sum))
        }
    }
}

/// Makes one Ok get (the first eligible at or after `start`, in history
/// order) return a value that was definitely overwritten before it began:
/// the value of an Ok put w to the same key such that another Ok put w'
/// was invoked after w completed and completed before the get was
/// invoked. With unique values that is never linearizable. Returns the
/// mutated get's id, or None if no get qualifies.
pub fn inject_stale_read(history: &mut History, start: usize) -> Option<u64> {
    let ops = &history.ops;
    let count = ops.len();
    for offset in 0..count {
        let read_index = (start + offset) % count.max(1);
        let read = &ops[read_index];
        if !matches!((&read.kind, &read.outcome), (OpKind::Get { .. }, Outcome::Ok(Reply::Get(_)))) {
            continue;
        }
        let is_ok_put =
            |op: &Operation| op.key() == read.key() && op.outcome.is_ok() && matches!(op.kind, OpKind::Put { .. });
        let completed_before = |op: &Operation, t: u64| op.complete_us.is_some_and(|c| c < t);
        let newer =
            ops.iter().filter(|op| is_ok_put(op) && completed_before(op, read.invoke_us)).max_by_key(|op| op.invoke_us);
        let Some(newer) = newer else {
            continue;
        };
        let stale = ops.iter().find(|op| is_ok_put(op) && completed_before(op, newer.invoke_us));
        let Some(OpKind::Put { value, .. }) = stale.map(|op| &op.kind) else {
            continue;
        };
        let value = value.clone();
        let id = read.id;
        history.ops[read_index].outcome = Outcome::Ok(Reply::Get(Some(value)));
        return Some(id);
    }
    None
}
