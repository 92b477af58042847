//! Real failure detectors in the simulated world, wired to the policies
//! the way the engine's node loop wires them (`src/node/event_loop.rs`,
//! `detect`).
//!
//! Opt-in: a world runs no detector until [`Sim::attach_detectors`] is
//! called, and then every live node gets one, and every restarted node a
//! fresh one. Without detectors nothing here draws randomness or schedules
//! an event, so worlds that never attach them (the Raft simulations) replay
//! the same runs, seed for seed, as before detectors existed.
//!
//! With them, as in the engine:
//! * each tick steps the policy with `Input::Tick`, then the detector with
//!   `DetectorInput::Tick`;
//! * the detector's messages are their own channel on the same links, so
//!   they meet the same delays, loss, duplication, reordering, cuts,
//!   partitions and crashes as the policy's (the engine gives them their
//!   own envelope kind on the same connection);
//! * every changed verdict steps the node's policy with
//!   `Input::PeerLiveness` at once, in the detector's order;
//! * a crash drops the detector with the rest of the node's memory; a
//!   restart builds a new one with a higher generation (the engine hands
//!   in its start time; here the node's incarnation, which grows at every
//!   boot and crash), so a gossip member's fresh counter outranks its old
//!   one.
//!
//! Every verdict is kept in [`Sim::verdicts`], so tests can measure
//! detection times and count suspicions.

use bytes::Bytes;
use replab_api::{
    DetectorEffects, DetectorInput, FailureDetector, Input, Instant, Liveness, NodeId, PeerView, ReplicationPolicy,
    StepError,
};

use crate::sim::{Sim, mix_seed};
use crate::state_machine::StateMachine;
use crate::violation::Violation;

/// What a detector is built from, like `PolicyContext` for a policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetectorContext {
    pub id: NodeId,
    pub members: Vec<NodeId>,
    /// Derived from the run seed, the node and its incarnation.
    pub seed: u64,
    /// Larger at every start of this node.
    pub generation: u64,
}

pub(crate) type DetectorBuilder = Box<dyn FnMut(DetectorContext) -> Box<dyn FailureDetector>>;

/// Which traffic a message on a link belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Policy,
    Detector,
}

/// One verdict a node's detector gave about a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerdictRecord {
    pub time_us: u64,
    pub observer: NodeId,
    pub peer: NodeId,
    pub liveness: Liveness,
}

/// What the detectors did in a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DetectorStats {
    pub messages_sent: u64,
    pub messages_delivered: u64,
    pub bytes_sent: u64,
    /// Verdicts handed to policies (every changed verdict).
    pub verdicts: u64,
    /// Inputs a detector refused (a correct run has none).
    pub refused: u64,
}

/// The world's detector state: how to build one, and what they did.
#[derive(Default)]
pub(crate) struct Detectors {
    pub(crate) build: Option<DetectorBuilder>,
    pub(crate) verdicts: Vec<VerdictRecord>,
    pub(crate) stats: DetectorStats,
    pub(crate) refusals: Vec<(u64, NodeId, StepError)>,
    /// Reused between steps, as the engine reuses its own.
    out: DetectorEffects,
}

impl<P: ReplicationPolicy, M: StateMachine> Sim<P, M> {
    /// Gives every live node a failure detector built by `build`, now, and
    /// every node that boots later a fresh one. Call it before running the
    /// world, so detectors start with their nodes.
    pub fn attach_detectors(&mut self, build: impl FnMut(DetectorContext) -> Box<dyn FailureDetector> + 'static) {
        self.detectors.build = Some(Box::new(build));
        for id in self.members() {
            if self.is_alive(id) {
                self.build_detector(id);
            }
        }
    }

    /// Builds node `id`'s detector for its current incarnation, if the
    /// world runs detectors.
    pub(crate) fn build_detector(&mut self, id: NodeId) {
        let members = self.members();
        let i = self.index(id);
        let incarnation = self.nodes[i].incarnation;
        let Some(build) = self.detectors.build.as_mut() else { return };
        // The engine derives the detector's seed from the node's by a
        // rotation; here a separate salt keeps the two streams apart.
        let seed = mix_seed(self.options.seed, (id << 32) ^ incarnation ^ 0xde7e_c700_0000_0000);
        let detector = build(DetectorContext { id, members, seed, generation: incarnation });
        self.nodes[i].detector = Some(detector);
    }

    pub fn has_detectors(&self) -> bool {
        self.detectors.build.is_some()
    }

    /// Steps node `id`'s detector, sends what it asks, and steps the
    /// node's policy with every changed verdict.
    pub(crate) fn step_detector(&mut self, id: NodeId, input: DetectorInput) -> Result<(), Violation> {
        let i = self.index(id);
        let now = Instant::from_micros(self.now_us);
        let Some(detector) = self.nodes[i].detector.as_mut() else { return Ok(()) };
        let mut out = std::mem::take(&mut self.detectors.out);
        if let Err(e) = detector.step(now, input, &mut out) {
            self.detectors.stats.refused += 1;
            self.detectors.refusals.push((self.now_us, id, e));
        }
        for (to, bytes) in out.sends.drain(..) {
            self.detectors.stats.messages_sent += 1;
            self.detectors.stats.bytes_sent += bytes.len() as u64;
            self.send_on(Channel::Detector, id, to, bytes);
        }
        let verdicts: Vec<(NodeId, Liveness)> = out.verdicts.drain(..).collect();
        self.detectors.out = out;
        for (peer, liveness) in verdicts {
            self.detectors.stats.verdicts += 1;
            self.detectors.verdicts.push(VerdictRecord { time_us: self.now_us, observer: id, peer, liveness });
            self.step_node(id, Input::PeerLiveness { peer, liveness })?;
        }
        Ok(())
    }

    /// A detector message arrived at a live node over an uncut link.
    pub(crate) fn deliver_to_detector(&mut self, from: NodeId, to: NodeId, bytes: Bytes) -> Result<(), Violation> {
        self.detectors.stats.messages_delivered += 1;
        self.step_detector(to, DetectorInput::Message { from, bytes })
    }

    /// Every verdict given so far, in the order given.
    pub fn verdicts(&self) -> &[VerdictRecord] {
        &self.detectors.verdicts
    }

    pub fn detector_stats(&self) -> DetectorStats {
        self.detectors.stats
    }

    /// Inputs the detectors refused: (time, node, why).
    pub fn detector_refusals(&self) -> &[(u64, NodeId, StepError)] {
        &self.detectors.refusals
    }

    /// Node `id`'s detector's view of its peers, if it is up and runs one.
    pub fn detector_view(&self, id: NodeId) -> Option<Vec<PeerView>> {
        let node = &self.nodes[self.index(id)];
        node.detector.as_ref().map(|d| d.view(Instant::from_micros(self.now_us)))
    }
}
