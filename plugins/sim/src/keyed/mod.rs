//! The keyed world: the harness for per-key policies (`KeyedPolicy`, such
//! as the leaderless policy), beside the log world of [`crate::Sim`].
//!
//! The same principles: virtual time, everything random drawn from the
//! run seed, the seeded [`crate::Network`] (reused as is), a disk per node
//! that keeps records and checkpoints pending until a simulated fsync and
//! loses what was not synced on a crash, and checks after every effect.
//! What differs: a keyed policy owns its data, so the world knows nothing
//! of what a correct run looks like. It enforces the effect contract and
//! offers hooks ([`KeyedInvariants`]) through which each policy's tests
//! plug in their own invariant set. `docs/SIMULATION.md` describes it.
//!
//! * [`KeyedSim`] (`world.rs`, `step.rs`, `detector.rs`): nodes, events,
//!   crash and restart, the failure-detector oracle
//! * [`KeyedDisk`] (`disk.rs`): pending writes, syncs, held sends
//! * [`OpRecord`] (`clients.rs`): every client operation and its outcome
//! * [`KeyedInvariants`] (`checker.rs`): the hooks, and [`KeyedViolation`]
//! * [`chaos`]: one randomized run per seed

pub mod chaos;
pub mod checker;
pub mod clients;
mod detector;
pub mod disk;
mod event;
pub mod options;
mod step;
pub mod world;

pub use chaos::{KeyedChaosOptions, KeyedChaosReport, OpCounts};
pub use checker::{Failure, KeyedInvariants, KeyedViolation, NoInvariants};
pub use clients::{OpRecord, Outcome, Purpose};
pub use disk::{DurableLog, KeyedDisk};
pub use options::{DetectorConfig, KeyedOptions};
pub use world::{Divergence, KeyedBuilder, KeyedSim, WorldStats};

#[cfg(test)]
mod tests;
