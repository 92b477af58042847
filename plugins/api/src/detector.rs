//! The failure-detector contract: the second kind of plugin, beside the
//! replication policy.
//!
//! A failure detector decides, for every peer, whether it is alive,
//! suspect or dead. Like a policy it is a deterministic sans-IO state
//! machine: the engine hands it ticks and its own peers' messages with the
//! current [`Instant`], and carries out the sends it asks for. Its verdicts
//! go to the replication policy as `Input::PeerLiveness`, and its view is
//! part of every node's status.
//!
//! Detectors differ in what they need to hear: a heartbeat detector must
//! hear each peer itself; a gossip detector also believes what other peers
//! relay, so a peer it cannot reach directly can still count as alive.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::ids::NodeId;
use crate::liveness::Liveness;
use crate::policy::StepError;
use crate::time::Instant;

/// What a failure detector is fed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DetectorInput {
    /// Time has passed; the engine steps the detector at its tick interval.
    Tick,
    /// A message from another node's detector, in the detector's own
    /// encoding. The sender is authenticated; the bytes are untrusted.
    Message { from: NodeId, bytes: Bytes },
}

/// What a detector asks for, in order. The engine drains it after every
/// step.
#[derive(Debug, Default)]
pub struct DetectorEffects {
    /// Messages to other nodes' detectors.
    pub sends: Vec<(NodeId, Bytes)>,
    /// Peers whose liveness changed, with the new verdict.
    pub verdicts: Vec<(NodeId, Liveness)>,
}

impl DetectorEffects {
    pub fn send(&mut self, to: NodeId, bytes: Bytes) {
        self.sends.push((to, bytes));
    }

    pub fn verdict(&mut self, peer: NodeId, liveness: Liveness) {
        self.verdicts.push((peer, liveness));
    }
}

/// One peer as a detector sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeerView {
    pub peer: NodeId,
    pub liveness: Liveness,
    /// How much the detector doubts the peer, in the detector's own unit:
    /// phi for phi-accrual, milliseconds of silence for a heartbeat timeout.
    pub suspicion: f64,
    /// Milliseconds since the detector last learned the peer was up
    /// (directly or, for gossip, from anyone); `None` before it ever did.
    pub silent_ms: Option<u64>,
}

/// A failure detector plugin.
pub trait FailureDetector: Send {
    /// Feeds one input. A message that does not decode is refused with
    /// `StepError::Decode`; the detector's state is unchanged.
    fn step(&mut self, now: Instant, input: DetectorInput, out: &mut DetectorEffects) -> Result<(), StepError>;

    /// Every peer's current verdict, ordered by node id.
    fn view(&self, now: Instant) -> Vec<PeerView>;
}
