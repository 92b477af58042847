//! # replab-heartbeat: a fixed-timeout heartbeat failure detector
//!
//! Every `interval_ms` each node sends a heartbeat to every peer. A peer
//! not heard from for `suspect_after_ms` is suspect; for `dead_after_ms`,
//! dead; any heartbeat from it makes it alive again.
//!
//! It believes only what it hears itself: a peer it cannot reach is
//! suspected even when every other node hears it well. That is the
//! difference the gossip detector (`replab-gossip`) exists to show.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use replab_api::{
    ConfigError, DetectorEffects, DetectorInput, FailureDetector, Instant, Liveness, NodeId, PeerView, StepError,
};

/// The `[heartbeat]` config section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatConfig {
    pub interval_ms: u64,
    pub suspect_after_ms: u64,
    pub dead_after_ms: u64,
}

impl Default for HeartbeatConfig {
    fn default() -> HeartbeatConfig {
        HeartbeatConfig { interval_ms: 100, suspect_after_ms: 500, dead_after_ms: 2_000 }
    }
}

impl HeartbeatConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |key: &str, message: String| Err(ConfigError { key: key.into(), message });
        if !(1..=60_000).contains(&self.interval_ms) {
            return err("interval_ms", format!("{} is outside 1 ..= 60000", self.interval_ms));
        }
        if self.suspect_after_ms <= self.interval_ms {
            return err(
                "suspect_after_ms",
                format!(
                    "{} must exceed interval_ms ({}), or every peer flaps",
                    self.suspect_after_ms, self.interval_ms
                ),
            );
        }
        if self.dead_after_ms < self.suspect_after_ms {
            return err(
                "dead_after_ms",
                format!("{} is below suspect_after_ms ({})", self.dead_after_ms, self.suspect_after_ms),
            );
        }
        Ok(())
    }
}

/// The one message: "I am up". The sequence number lets a reader of a
/// capture see gaps; the detector itself needs only the arrival.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Heartbeat {
    seq: u64,
}

#[derive(Clone, Copy, Debug)]
struct Peer {
    /// Last heartbeat, or the detector's start before any.
    heard: Option<Instant>,
    liveness: Liveness,
}

pub struct HeartbeatDetector {
    config: HeartbeatConfig,
    peers: BTreeMap<NodeId, Peer>,
    /// Silence is counted from here until a peer is first heard.
    started: Option<Instant>,
    next_send: Instant,
    seq: u64,
}

impl HeartbeatDetector {
    pub const NAME: &'static str = "heartbeat";

    pub fn new(me: NodeId, members: &[NodeId], config: HeartbeatConfig) -> HeartbeatDetector {
        let peers = members
            .iter()
            .filter(|id| **id != me)
            .map(|id| (*id, Peer { heard: None, liveness: Liveness::Alive }))
            .collect();
        HeartbeatDetector { config, peers, started: None, next_send: Instant::ZERO, seq: 0 }
    }

    fn silence_ms(&self, peer: &Peer, now: Instant) -> u64 {
        let since = peer.heard.or(self.started).unwrap_or(now);
        now.as_millis().saturating_sub(since.as_millis())
    }

    fn judge(&self, peer: &Peer, now: Instant) -> Liveness {
        let silent = self.silence_ms(peer, now);
        if silent >= self.config.dead_after_ms {
            Liveness::Dead
        } else if silent >= self.config.suspect_after_ms {
            Liveness::Suspect
        } else {
            Liveness::Alive
        }
    }

    fn rejudge(&mut self, now: Instant, out: &mut DetectorEffects) {
        let ids: Vec<NodeId> = self.peers.keys().copied().collect();
        for id in ids {
            let peer = self.peers[&id];
            let verdict = self.judge(&peer, now);
            if verdict != peer.liveness {
                self.peers.get_mut(&id).expect("listed").liveness = verdict;
                out.verdict(id, verdict);
            }
        }
    }
}

impl FailureDetector for HeartbeatDetector {
    fn step(&mut self, now: Instant, input: DetectorInput, out: &mut DetectorEffects) -> Result<(), StepError> {
        self.started.get_or_insert(now);
        match input {
            DetectorInput::Tick => {
                if now >= self.next_send {
                    self.seq += 1;
                    let bytes = Bytes::from(postcard::to_allocvec(&Heartbeat { seq: self.seq }).expect("encodes"));
                    for id in self.peers.keys() {
                        out.send(*id, bytes.clone());
                    }
                    self.next_send = now.add_millis(self.config.interval_ms);
                }
            }
            DetectorInput::Message { from, bytes } => {
                postcard::from_bytes::<Heartbeat>(&bytes)
                    .map_err(|e| StepError::Decode { from, reason: e.to_string() })?;
                let peer = self
                    .peers
                    .get_mut(&from)
                    .ok_or_else(|| StepError::Rejected(format!("node {from} is not a peer")))?;
                peer.heard = Some(now);
            }
        }
        self.rejudge(now, out);
        Ok(())
    }

    fn view(&self, now: Instant) -> Vec<PeerView> {
        self.peers
            .iter()
            .map(|(id, peer)| PeerView {
                peer: *id,
                liveness: peer.liveness,
                suspicion: self.silence_ms(peer, now) as f64,
                silent_ms: peer.heard.map(|at| now.as_millis().saturating_sub(at.as_millis())),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
