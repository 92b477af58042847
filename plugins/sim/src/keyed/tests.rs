//! The keyed world on a toy policy: every node keeps the last value put
//! to each key, persists it, answers a put once its record is durable and
//! copies it to every peer after that (`after_persist`).

use std::collections::BTreeMap;

use bytes::Bytes;
use replab_api::{
    Clocks, KeyState, KeyedEffect, KeyedEffects, KeyedInput, KeyedOp, KeyedPolicy, KeyedRecovered, KeyedReply,
    Liveness, NodeId, PolicyContext, PolicyStatus, RequestId, Role, StepError,
};

use super::*;

struct Toy {
    id: NodeId,
    members: Vec<NodeId>,
    values: BTreeMap<Bytes, Bytes>,
    last_seq: u64,
    /// Puts waiting for their record: (seq, request).
    waiting: Vec<(u64, RequestId)>,
    dead: u64,
}

fn encode(key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = vec![key.len() as u8];
    out.extend_from_slice(key);
    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    out.extend_from_slice(value);
    out
}

fn decode_all(mut bytes: &[u8], into: &mut BTreeMap<Bytes, Bytes>) {
    while !bytes.is_empty() {
        let k = bytes[0] as usize;
        let v = u16::from_le_bytes([bytes[1 + k], bytes[2 + k]]) as usize;
        into.insert(Bytes::copy_from_slice(&bytes[1..1 + k]), Bytes::copy_from_slice(&bytes[3 + k..3 + k + v]));
        bytes = &bytes[3 + k + v..];
    }
}

impl Toy {
    fn recover(ctx: PolicyContext, recovered: KeyedRecovered) -> Toy {
        let mut values = BTreeMap::new();
        for part in recovered.checkpoint.iter().chain(recovered.records.iter()) {
            decode_all(part, &mut values);
        }
        Toy { id: ctx.id, members: ctx.members, values, last_seq: recovered.last_seq, waiting: Vec::new(), dead: 0 }
    }

    fn store(&mut self, key: Bytes, value: Bytes, out: &mut KeyedEffects) -> u64 {
        out.push(KeyedEffect::Persist { record: Bytes::from(encode(&key, &value)) });
        self.values.insert(key, value);
        self.last_seq += 1;
        if self.last_seq.is_multiple_of(3) {
            let state: Vec<u8> = self.values.iter().flat_map(|(k, v)| encode(k, v)).collect();
            out.push(KeyedEffect::Checkpoint { state: Bytes::from(state) });
        }
        self.last_seq
    }
}

impl KeyedPolicy for Toy {
    fn step(&mut self, _clocks: Clocks, input: KeyedInput, out: &mut KeyedEffects) -> Result<(), StepError> {
        match input {
            KeyedInput::Client { id, op: KeyedOp::Get { key } } => {
                let values = self.values.get(&key).cloned().into_iter().collect();
                out.push(KeyedEffect::Reply { id, reply: KeyedReply::Values { values, context: Bytes::new() } });
            }
            KeyedInput::Client { id, op: KeyedOp::Put { key, value, .. } } => {
                let value = value.unwrap_or_default();
                let seq = self.store(key.clone(), value.clone(), out);
                self.waiting.push((seq, id));
                for &to in self.members.iter().filter(|m| **m != self.id) {
                    out.push(KeyedEffect::Send { to, bytes: Bytes::from(encode(&key, &value)), after_persist: true });
                }
                if key == "twice" {
                    out.push(KeyedEffect::Reply { id, reply: KeyedReply::Unknown { reason: "twice".into() } });
                }
            }
            KeyedInput::Message { bytes, .. } => {
                let mut got = BTreeMap::new();
                decode_all(&bytes, &mut got);
                for (k, v) in got {
                    self.store(k, v, out);
                }
            }
            KeyedInput::Persisted { up_to } => {
                for (_, id) in self.waiting.iter().filter(|(seq, _)| *seq <= up_to) {
                    out.push(KeyedEffect::Reply { id: *id, reply: KeyedReply::Written { context: Bytes::new() } });
                }
                self.waiting.retain(|(seq, _)| *seq > up_to);
            }
            KeyedInput::PeerLiveness { liveness, .. } => self.dead += u64::from(liveness == Liveness::Dead),
            KeyedInput::Tick => {}
        }
        Ok(())
    }

    fn status(&self) -> PolicyStatus {
        PolicyStatus {
            id: self.id,
            role: Role::Peer,
            term: 0,
            leader: None,
            first_index: 0,
            last_index: self.last_seq,
            commit_index: 0,
            applied_index: 0,
            durable_index: 0,
        }
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![("told_dead", self.dead)]
    }

    fn replica_state(&self) -> Vec<KeyState> {
        let owners = self.members.clone();
        let state = |(k, v): (&Bytes, &Bytes)| KeyState {
            key: k.clone(),
            values: vec![v.clone()],
            register: v.clone(),
            owners: owners.clone(),
        };
        self.values.iter().map(state).collect()
    }
}

fn toy() -> KeyedBuilder {
    Box::new(|ctx, recovered| Ok(Box::new(Toy::recover(ctx, recovered)) as Box<dyn KeyedPolicy>))
}

fn world(seed: u64) -> KeyedSim {
    KeyedSim::new(KeyedOptions::new(seed, 3), toy(), Box::new(NoInvariants)).expect("boots")
}

fn put(key: &'static str, value: &'static str) -> KeyedOp {
    KeyedOp::Put { key: Bytes::from(key), value: Some(Bytes::from(value)), context: Bytes::new() }
}

fn values_at(world: &KeyedSim, node: NodeId) -> Vec<Bytes> {
    world.replica_state(node).unwrap_or_default().into_iter().flat_map(|s| s.values).collect()
}

#[test]
fn a_put_is_answered_once_durable_and_its_copies_leave_only_then() {
    let mut w = world(1);
    let op = w.submit(1, put("k", "v"), Purpose::Blind).unwrap();
    assert_eq!(w.disk(1).held_sends(), 2, "both copies wait for the record");
    assert_eq!(w.ops()[op].outcome, Outcome::Pending);
    w.run_for(20_000).unwrap();
    assert!(w.ops()[op].is_written());
    assert_eq!(values_at(&w, 2), vec![Bytes::from("v")]);
    assert!(w.divergent_keys().is_empty());
}

#[test]
fn a_crash_loses_unsynced_records_and_a_restart_recovers_from_checkpoint_and_records() {
    let mut w = world(2);
    w.set_disk_stalled(1, true);
    let lost = w.submit(1, put("a", "1"), Purpose::Blind).unwrap();
    w.run_for(20_000).unwrap();
    w.crash(1).unwrap();
    assert_eq!(w.ops()[lost].outcome, Outcome::Unanswered);
    assert!(values_at(&w, 2).is_empty(), "the copy never left");
    w.restart(1).unwrap();
    assert!(values_at(&w, 1).is_empty(), "the record was never synced");
    w.set_disk_stalled(1, false);
    for (k, v) in [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")] {
        w.submit(1, put(k, v), Purpose::Blind).unwrap();
        w.run_for(20_000).unwrap();
    }
    assert!(w.durable(1).checkpoint.is_some() && w.durable(1).records.len() == 1, "{:?}", w.durable(1));
    w.crash(1).unwrap();
    w.restart(1).unwrap();
    assert_eq!(values_at(&w, 1).len(), 4);
    assert_eq!(w.stats().restarts_from_checkpoint, 1);
}

#[test]
fn the_detector_reports_an_isolated_peer_dead_then_alive() {
    let mut w = world(3);
    w.network_mut().isolate(3);
    w.run_for(DetectorConfig::default().dead_after_us + 50_000).unwrap();
    assert_eq!(w.verdict(1, 3), Liveness::Dead);
    assert_eq!(w.verdict(1, 2), Liveness::Alive);
    w.network_mut().heal();
    w.run_for(50_000).unwrap();
    assert_eq!(w.verdict(1, 3), Liveness::Alive);
    assert_eq!(w.counters()["told_dead"], 4, "1 and 2 about 3, 3 about 1 and 2");
}

#[test]
fn a_reply_to_a_request_that_is_not_waiting_is_a_violation() {
    let mut w = world(4);
    w.submit(1, put("twice", "x"), Purpose::Blind).unwrap();
    let v = w.run_for(20_000).unwrap_err();
    assert_eq!(v.invariant, "ReplyContract");
    assert!(v.replay.contains("REPLAB_SIM_SEED=4 "), "{v}");
    assert!(w.run_for(1).is_err(), "the world refuses to go on");
}

#[test]
fn a_chaos_run_is_a_pure_function_of_its_seed() {
    let run = |seed| {
        let options = KeyedChaosOptions {
            nodes: 3,
            duration_us: 1_000_000,
            max_wiped: 1,
            settle_bound_us: 1_000_000,
            ..Default::default()
        };
        format!("{:?}", chaos::run(seed, &options, toy(), Box::new(NoInvariants)).expect("the toy keeps its contract"))
    };
    assert_eq!(run(9), run(9));
    assert_ne!(run(9), run(10));
}
