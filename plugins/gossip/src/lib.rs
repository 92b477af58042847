//! # replab-gossip: gossip membership with phi-accrual failure detection
//!
//! Every member keeps a heartbeat counter for every member. Each round
//! (`interval_ms`) a node bumps its own counter and sends its whole table
//! to `fanout` members chosen at random (from the engine's seeded RNG). A
//! receiver keeps the larger counter for each member; whenever a member's
//! counter grows, that is a heartbeat from it, whoever relayed it. The gap
//! between such heartbeats feeds a phi-accrual estimator (`phi.rs`), and
//! phi against `suspect_phi` and `dead_phi` gives the verdict.
//!
//! A counter lives in memory, so a restarted member counts from zero
//! again. Each counter therefore carries the member's *generation*, which
//! the engine raises on every start (a generation clock, as Cassandra's
//! gossip does): (generation, counter) pairs compare in that order, and a
//! restarted member is news at once instead of after it has counted past
//! its old self.
//!
//! What gossip buys over direct heartbeats: news travels by any path. If
//! the link a -> c is cut but c still reaches b and b reaches a, then a
//! keeps hearing c's counter grow through b and keeps c alive, where a
//! heartbeat detector would suspect it. The cost: a table of every member
//! in every message, and suspicion that depends on the spread of rumours
//! rather than on one link.

pub mod phi;

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use replab_api::{
    ConfigError, DetectorEffects, DetectorInput, FailureDetector, Instant, Liveness, NodeId, PeerView, PluginRng,
    StepError,
};

use phi::ArrivalWindow;

/// The `[gossip]` config section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GossipConfig {
    pub interval_ms: u64,
    pub fanout: usize,
    pub suspect_phi: f64,
    pub dead_phi: f64,
    pub window: usize,
    pub min_std_dev_ms: f64,
}

impl Default for GossipConfig {
    fn default() -> GossipConfig {
        GossipConfig {
            interval_ms: 100,
            fanout: 2,
            suspect_phi: 5.0,
            dead_phi: 16.0,
            window: 200,
            min_std_dev_ms: 100.0,
        }
    }
}

impl GossipConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |key: &str, message: String| Err(ConfigError { key: key.into(), message });
        if !(1..=60_000).contains(&self.interval_ms) {
            return err("interval_ms", format!("{} is outside 1 ..= 60000", self.interval_ms));
        }
        if !(1..=64).contains(&self.fanout) {
            return err("fanout", format!("{} is outside 1 ..= 64", self.fanout));
        }
        let max = phi::PHI_MAX;
        if !(self.suspect_phi > 0.0 && self.suspect_phi <= max) {
            return err("suspect_phi", format!("{} is outside (0, {max}], the range phi can reach", self.suspect_phi));
        }
        if !(self.dead_phi >= self.suspect_phi && self.dead_phi <= max) {
            return err(
                "dead_phi",
                format!("{} must be at least suspect_phi ({}) and at most {max}", self.dead_phi, self.suspect_phi),
            );
        }
        if !(2..=100_000).contains(&self.window) {
            return err("window", format!("{} is outside 2 ..= 100000", self.window));
        }
        if !(self.min_std_dev_ms.is_finite() && self.min_std_dev_ms > 0.0) {
            return err("min_std_dev_ms", format!("{} must be a positive number", self.min_std_dev_ms));
        }
        Ok(())
    }
}

/// A member's heartbeat: its generation, then its counter within it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Heartbeat {
    pub generation: u64,
    pub counter: u64,
}

/// One round's rumour: the sender's latest heartbeat of every member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Gossip {
    heartbeats: Vec<(NodeId, Heartbeat)>,
}

#[derive(Clone, Debug)]
struct Member {
    heartbeat: Heartbeat,
    /// When the counter last grew; `None` before it ever did.
    grew_at: Option<Instant>,
    arrivals: ArrivalWindow,
    liveness: Liveness,
}

pub struct GossipDetector {
    me: NodeId,
    config: GossipConfig,
    heartbeat: Heartbeat,
    members: BTreeMap<NodeId, Member>,
    /// Silence is measured from here for members never heard.
    started: Option<Instant>,
    next_round: Instant,
    rng: PluginRng,
}

impl GossipDetector {
    pub const NAME: &'static str = "gossip";

    /// `generation` must be larger at every start of node `me` (the engine
    /// hands in its start time in microseconds since the Unix epoch).
    pub fn new(me: NodeId, members: &[NodeId], config: GossipConfig, seed: u64, generation: u64) -> GossipDetector {
        let expected_ms = config.interval_ms as f64;
        let member = Member {
            heartbeat: Heartbeat::default(),
            grew_at: None,
            arrivals: ArrivalWindow::primed(config.window, expected_ms),
            liveness: Liveness::Alive,
        };
        let members = members.iter().filter(|id| **id != me).map(|id| (*id, member.clone())).collect();
        GossipDetector {
            me,
            config,
            heartbeat: Heartbeat { generation, counter: 0 },
            members,
            started: None,
            next_round: Instant::ZERO,
            rng: PluginRng::from_seed_u64(seed),
        }
    }

    fn silence_ms(&self, member: &Member, now: Instant) -> f64 {
        let since = member.grew_at.or(self.started).unwrap_or(now);
        now.as_micros().saturating_sub(since.as_micros()) as f64 / 1_000.0
    }

    fn phi(&self, member: &Member, now: Instant) -> f64 {
        member.arrivals.phi(self.silence_ms(member, now), self.config.min_std_dev_ms)
    }

    fn judge(&self, phi: f64) -> Liveness {
        if phi >= self.config.dead_phi {
            Liveness::Dead
        } else if phi >= self.config.suspect_phi {
            Liveness::Suspect
        } else {
            Liveness::Alive
        }
    }

    fn round(&mut self, now: Instant, out: &mut DetectorEffects) {
        self.heartbeat.counter += 1;
        let mut heartbeats = vec![(self.me, self.heartbeat)];
        heartbeats.extend(self.members.iter().map(|(id, m)| (*id, m.heartbeat)));
        let bytes = Bytes::from(postcard::to_allocvec(&Gossip { heartbeats }).expect("a table encodes"));
        // A partial Fisher-Yates shuffle picks `fanout` distinct members.
        let mut peers: Vec<NodeId> = self.members.keys().copied().collect();
        let picks = self.config.fanout.min(peers.len());
        for i in 0..picks {
            let j = self.rng.range_inclusive(i as u64, peers.len() as u64 - 1) as usize;
            peers.swap(i, j);
            out.send(peers[i], bytes.clone());
        }
        self.next_round = now.add_millis(self.config.interval_ms);
    }

    fn merge(&mut self, now: Instant, gossip: Gossip) {
        for (id, heartbeat) in gossip.heartbeats {
            // Our own counter, and members we do not have, are not news.
            let Some(member) = self.members.get_mut(&id) else { continue };
            if heartbeat <= member.heartbeat {
                continue;
            }
            if heartbeat.generation != member.heartbeat.generation {
                // A new incarnation: the silence while it was down says
                // nothing about how often it beats.
                member.arrivals = ArrivalWindow::primed(self.config.window, self.config.interval_ms as f64);
            } else if let Some(previous) = member.grew_at {
                member.arrivals.push(now.as_micros().saturating_sub(previous.as_micros()) as f64 / 1_000.0);
            }
            member.heartbeat = heartbeat;
            member.grew_at = Some(now);
        }
    }

    fn rejudge(&mut self, now: Instant, out: &mut DetectorEffects) {
        let verdicts: Vec<(NodeId, Liveness)> =
            self.members.iter().map(|(id, m)| (*id, self.judge(self.phi(m, now)))).collect();
        for (id, verdict) in verdicts {
            let member = self.members.get_mut(&id).expect("listed");
            if member.liveness != verdict {
                member.liveness = verdict;
                out.verdict(id, verdict);
            }
        }
    }
}

impl FailureDetector for GossipDetector {
    fn step(&mut self, now: Instant, input: DetectorInput, out: &mut DetectorEffects) -> Result<(), StepError> {
        self.started.get_or_insert(now);
        match input {
            DetectorInput::Tick => {
                if now >= self.next_round {
                    self.round(now, out);
                }
            }
            DetectorInput::Message { from, bytes } => {
                if !self.members.contains_key(&from) {
                    return Err(StepError::Rejected(format!("node {from} is not a member")));
                }
                let gossip = postcard::from_bytes::<Gossip>(&bytes)
                    .map_err(|e| StepError::Decode { from, reason: e.to_string() })?;
                self.merge(now, gossip);
            }
        }
        self.rejudge(now, out);
        Ok(())
    }

    fn view(&self, now: Instant) -> Vec<PeerView> {
        self.members
            .iter()
            .map(|(id, m)| PeerView {
                peer: *id,
                liveness: m.liveness,
                suspicion: self.phi(m, now),
                silent_ms: m.grew_at.map(|at| now.as_millis().saturating_sub(at.as_millis())),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
