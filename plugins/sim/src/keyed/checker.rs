//! The hooks through which a policy's own invariants watch a keyed run,
//! and the violation they report.
//!
//! The world checks only the effect contract (a reply per request, no
//! reply twice, nodes that recover from their own disk, requests answered
//! once everything is healed). What a correct run must never show is the
//! policy's business: its tests implement [`KeyedInvariants`] (the
//! leaderless policy's provenance, convergence and lost-write checks live
//! in `plugins/leaderless/tests`), so each policy owns its invariant set.

use bytes::Bytes;
use replab_api::NodeId;

use crate::keyed::clients::OpRecord;
use crate::keyed::world::KeyedSim;

/// What a check found wrong; the world adds the seed, the time and the
/// replay command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The invariant's name, chosen by whoever checks it.
    pub invariant: &'static str,
    pub node: Option<NodeId>,
    pub detail: String,
}

impl Failure {
    pub fn new(invariant: &'static str, node: Option<NodeId>, detail: impl Into<String>) -> Failure {
        Failure { invariant, node, detail: detail.into() }
    }
}

/// A broken invariant, where and when, and how to replay the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyedViolation {
    pub invariant: &'static str,
    pub seed: u64,
    pub time_us: u64,
    pub node: Option<NodeId>,
    pub detail: String,
    /// A one-line command that replays the run.
    pub replay: String,
}

impl std::fmt::Display for KeyedViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let node = self.node.map(|n| format!(" on node {n}")).unwrap_or_default();
        write!(
            f,
            "{} violated at t={}us{node} (seed {}): {}\nreplay: {}",
            self.invariant, self.time_us, self.seed, self.detail, self.replay
        )
    }
}

impl std::error::Error for KeyedViolation {}

/// Invariants of one keyed policy. Every hook runs right after the event
/// it describes, with the world readable (replica states, durable logs,
/// every operation so far); an `Err` stops the run with a violation.
pub trait KeyedInvariants {
    /// A client operation was handed to a node (or found it down).
    fn on_submit(&mut self, _world: &KeyedSim, _op: &OpRecord) -> Result<(), Failure> {
        Ok(())
    }

    /// `node` asked to persist record `seq`.
    fn on_record(&mut self, _world: &KeyedSim, _node: NodeId, _seq: u64, _record: &Bytes) -> Result<(), Failure> {
        Ok(())
    }

    /// `node`'s records up to `up_to` are durable now (a sync completed, or
    /// a crash kept some unsynced ones).
    fn on_durable(&mut self, _world: &KeyedSim, _node: NodeId, _up_to: u64) -> Result<(), Failure> {
        Ok(())
    }

    /// `node` emitted a checkpoint.
    fn on_checkpoint(&mut self, _world: &KeyedSim, _node: NodeId, _state: &Bytes) -> Result<(), Failure> {
        Ok(())
    }

    /// A step of `node` persisted something; its `replica_state()` is
    /// current.
    fn after_persisting_step(&mut self, _world: &KeyedSim, _node: NodeId) -> Result<(), Failure> {
        Ok(())
    }

    /// A request was answered.
    fn on_reply(&mut self, _world: &KeyedSim, _op: &OpRecord) -> Result<(), Failure> {
        Ok(())
    }

    /// Called now and then by a schedule (at every fault action of
    /// [`crate::keyed::chaos`]), for checks too dear for every step.
    fn audit(&mut self, _world: &KeyedSim) -> Result<(), Failure> {
        Ok(())
    }

    /// The run is over: everything was healed and given time to converge,
    /// and the final reads were answered.
    fn at_end(&mut self, _world: &KeyedSim) -> Result<(), Failure> {
        Ok(())
    }

    /// What the checker counted (checks made, things seen but allowed),
    /// for the run's report.
    fn counts(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }
}

/// Checks nothing (for benchmarks and world tests).
pub struct NoInvariants;

impl KeyedInvariants for NoInvariants {}
