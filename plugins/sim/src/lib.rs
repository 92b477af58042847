//! # replab-sim: the deterministic simulation harness
//!
//! Runs replab policies (any [`replab_api::ReplicationPolicy`]) and a
//! [`StateMachine`] on virtual time, a seeded network and a crashable
//! simulated disk, checking safety invariants after every step. The same
//! seed replays the same run. The model and the invariants are described
//! in `docs/SIMULATION.md`.
//!
//! * [`Sim`]: the world (nodes, time, events, faults, clients)
//! * [`chaos`]: randomized fault runs over one seed, with a liveness phase
//! * [`detectors`]: real failure detectors on the simulated network,
//!   opt-in ([`Sim::attach_detectors`])
//! * [`Checker`]: the invariants; violations come back as [`Violation`]s
//! * [`keyed`]: the keyed world, for per-key policies (`KeyedPolicy`), whose
//!   invariants each policy's tests supply

pub mod chaos;
pub mod checker;
pub mod clients;
pub mod detectors;
mod effects;
pub mod event;
mod faults;
pub mod keyed;
pub mod ledger;
pub mod liveness;
pub mod network;
mod observe;
pub mod options;
pub mod sim;
pub mod state_machine;
pub mod step_check;
pub mod storage;
pub mod violation;

pub use checker::Checker;
pub use clients::{ProposalRecord, ProposalStatus, ReadRecord, ReadStatus};
pub use detectors::{Channel, DetectorContext, DetectorStats, VerdictRecord};
pub use ledger::LedgerStateMachine;
pub use liveness::LivenessReport;
pub use network::{Network, NetworkStats};
pub use options::{DiskConfig, LinkConfig, SimOptions};
pub use sim::{EffectCounts, EffectRecord, Sim, mix_seed};
pub use state_machine::{DigestStateMachine, StateMachine};
pub use step_check::{PolicyFailure, StepView};
pub use storage::LogStore;
pub use violation::{Invariant, Violation};
