//! The failure detectors side by side on virtual time: the same faults,
//! the same seeds, no I/O. Each test prints what it measured; a failing
//! one prints its seed (`REPLAB_DETECTOR_SEED=... cargo test --release
//! --test detectors` replays it).

use std::collections::BTreeSet;

use bytes::Bytes;
use replab_api::{DetectorEffects, DetectorInput, FailureDetector, Instant, Liveness, NodeId, PluginRng};
use replab_gossip::{GossipConfig, GossipDetector};
use replab_heartbeat::{HeartbeatConfig, HeartbeatDetector};

const TICK_MS: u64 = 10;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Gossip,
    Heartbeat,
}

/// N detectors, a network with per-link cuts and random loss, and a log of
/// every verdict.
struct World {
    now_ms: u64,
    detectors: Vec<Box<dyn FailureDetector>>,
    up: Vec<bool>,
    cut: BTreeSet<(NodeId, NodeId)>,
    drop: f64,
    rng: PluginRng,
    /// (deliver at, from, to, bytes)
    in_flight: Vec<(u64, NodeId, NodeId, Bytes)>,
    /// (time, observer, peer, verdict)
    verdicts: Vec<(u64, NodeId, NodeId, Liveness)>,
}

impl World {
    fn new(kind: Kind, nodes: u64, seed: u64) -> World {
        let members: Vec<NodeId> = (1..=nodes).collect();
        let detectors = members
            .iter()
            .map(|&id| -> Box<dyn FailureDetector> {
                match kind {
                    Kind::Gossip => Box::new(GossipDetector::new(id, &members, GossipConfig::default(), seed ^ id, 1)),
                    Kind::Heartbeat => Box::new(HeartbeatDetector::new(id, &members, HeartbeatConfig::default())),
                }
            })
            .collect();
        World {
            now_ms: 0,
            detectors,
            up: vec![true; nodes as usize],
            cut: BTreeSet::new(),
            drop: 0.0,
            rng: PluginRng::from_seed_u64(seed),
            in_flight: Vec::new(),
            verdicts: Vec::new(),
        }
    }

    fn step(&mut self, id: NodeId, input: DetectorInput) {
        let mut out = DetectorEffects::default();
        let now = Instant::from_millis(self.now_ms);
        self.detectors[id as usize - 1].step(now, input, &mut out).expect("detectors accept each other's messages");
        for (to, bytes) in out.sends {
            let lost = self.cut.contains(&(id, to)) || self.rng.chance(self.drop);
            if !lost {
                // 1 to 5 ms of latency, so messages interleave.
                let at = self.now_ms + self.rng.range_inclusive(1, 5);
                self.in_flight.push((at, id, to, bytes));
            }
        }
        for (peer, liveness) in out.verdicts {
            self.verdicts.push((self.now_ms, id, peer, liveness));
        }
    }

    fn run_for(&mut self, ms: u64) {
        let end = self.now_ms + ms;
        while self.now_ms < end {
            self.now_ms += 1;
            let (due, later): (Vec<_>, Vec<_>) = self.in_flight.drain(..).partition(|m| m.0 <= self.now_ms);
            self.in_flight = later;
            for (_, from, to, bytes) in due {
                if self.up[to as usize - 1] {
                    self.step(to, DetectorInput::Message { from, bytes });
                }
            }
            if self.now_ms.is_multiple_of(TICK_MS) {
                for id in 1..=self.detectors.len() as NodeId {
                    if self.up[id as usize - 1] {
                        self.step(id, DetectorInput::Tick);
                    }
                }
            }
        }
    }

    fn sees(&self, observer: NodeId, peer: NodeId) -> Liveness {
        let view = self.detectors[observer as usize - 1].view(Instant::from_millis(self.now_ms));
        view.iter().find(|v| v.peer == peer).expect("a member").liveness
    }

    /// When `observer` first gave `peer` the verdict `want`, at or after `since`.
    fn first(&self, observer: NodeId, peer: NodeId, want: Liveness, since: u64) -> Option<u64> {
        self.verdicts.iter().find(|v| v.0 >= since && v.1 == observer && v.2 == peer && v.3 == want).map(|v| v.0)
    }
}

/// Seeds 1 to 20, or the one in `REPLAB_DETECTOR_SEED`.
fn seeds() -> Vec<u64> {
    match std::env::var("REPLAB_DETECTOR_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(seed) => vec![seed],
        None => (1..=20).collect(),
    }
}

#[test]
fn gossip_keeps_a_node_it_cannot_hear_alive_through_a_relay_and_heartbeats_do_not() {
    for seed in seeds() {
        for kind in [Kind::Gossip, Kind::Heartbeat] {
            let mut w = World::new(kind, 3, seed);
            w.run_for(2_000);
            w.cut.insert((1, 3));
            w.cut.insert((3, 1));
            w.run_for(10_000);
            let verdicts_1_on_3: Vec<_> = w.verdicts.iter().filter(|v| v.1 == 1 && v.2 == 3).collect();
            println!("{kind:?}: node 1's verdicts on node 3 during a 10 s cut: {verdicts_1_on_3:?}");
            match kind {
                Kind::Gossip => assert!(verdicts_1_on_3.is_empty(), "seed {seed}: gossip relays node 3's heartbeats"),
                Kind::Heartbeat => {
                    assert_eq!(w.sees(1, 3), Liveness::Dead, "seed {seed}: heartbeats need a direct link")
                }
            }
            assert_eq!(w.sees(2, 3), Liveness::Alive, "seed {seed}: node 2 hears node 3 directly");
        }
    }
}

#[test]
fn both_detectors_declare_a_crashed_node_dead_and_revive_it() {
    for seed in seeds() {
        for kind in [Kind::Gossip, Kind::Heartbeat] {
            let mut w = World::new(kind, 5, seed);
            w.run_for(3_000);
            let crash_at = w.now_ms;
            w.up[4] = false;
            w.run_for(5_000);
            for observer in 1..=4 {
                let dead_at = w.first(observer, 5, Liveness::Dead, crash_at).unwrap_or_else(|| {
                    panic!("seed {seed}: {kind:?} on node {observer} never declared the crashed node 5 dead")
                });
                let after_ms = dead_at - crash_at;
                println!("{kind:?}: node {observer} declared node 5 dead {after_ms} ms after its crash");
                // Heartbeat: dead_after_ms (2000) plus a tick; gossip: phi 16 at
                // about 0.8 s of silence, plus the rumour's age.
                let bound_ms = if kind == Kind::Heartbeat { 2_100 } else { 1_500 };
                assert!(after_ms <= bound_ms, "seed {seed}: {kind:?} took {after_ms} ms");
            }
            // The restarted node starts a fresh detector: a new counter from
            // zero, in a higher generation.
            let members: Vec<NodeId> = (1..=5).collect();
            w.detectors[4] = match kind {
                Kind::Gossip => Box::new(GossipDetector::new(5, &members, GossipConfig::default(), seed ^ 55, 2)),
                Kind::Heartbeat => Box::new(HeartbeatDetector::new(5, &members, HeartbeatConfig::default())),
            };
            w.up[4] = true;
            let restart_at = w.now_ms;
            w.run_for(2_000);
            for observer in 1..=4 {
                let alive_at = w.first(observer, 5, Liveness::Alive, restart_at).unwrap_or_else(|| {
                    panic!("seed {seed}: {kind:?} on node {observer} never took the restarted node 5 back")
                });
                println!("{kind:?}: node {observer} took node 5 back {} ms after its restart", alive_at - restart_at);
                assert!(alive_at - restart_at <= 500, "seed {seed}: {kind:?}");
            }
        }
    }
}

#[test]
fn without_a_new_generation_a_restarted_gossip_member_is_not_taken_back() {
    // The broken variant: the restarted node reuses its old generation, so
    // its counter, from zero again, is older than what everyone remembers.
    let mut w = World::new(Kind::Gossip, 5, 1);
    w.run_for(3_000);
    w.up[4] = false;
    w.run_for(5_000);
    let members: Vec<NodeId> = (1..=5).collect();
    w.detectors[4] = Box::new(GossipDetector::new(5, &members, GossipConfig::default(), 55, 1));
    w.up[4] = true;
    let restart_at = w.now_ms;
    w.run_for(2_000);
    assert_eq!(w.first(1, 5, Liveness::Alive, restart_at), None, "an old generation's counter must not count");
    assert_eq!(w.sees(1, 5), Liveness::Dead);
}

#[test]
fn under_heavy_loss_gossip_raises_fewer_false_suspicions_than_heartbeats() {
    for seed in seeds() {
        let mut suspicions = Vec::new();
        for kind in [Kind::Gossip, Kind::Heartbeat] {
            let mut w = World::new(kind, 5, seed);
            w.drop = 0.4;
            w.run_for(60_000);
            // Every node is up the whole time: every verdict other than alive
            // is false.
            let false_verdicts = w.verdicts.iter().filter(|v| v.3 != Liveness::Alive).count();
            println!(
                "seed {seed}: {kind:?}: {false_verdicts} false suspect/dead verdicts in 60 s at 40% loss, 5 nodes"
            );
            suspicions.push(false_verdicts);
        }
        assert!(suspicions[0] < suspicions[1], "seed {seed}: gossip {} vs heartbeat {}", suspicions[0], suspicions[1]);
    }
}
