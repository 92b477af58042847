//! The history model and the checkers: what the clients saw, and what
//! went wrong, with evidence.
//!
//! - `history`, `value`, `recorder`: operations, their outcomes and times;
//!   JSON lines on disk (`history.jsonl`).
//! - `linearizability`: Wing & Gong / Lowe search, per key, time-bounded.
//! - `lost_writes`: acknowledged writes absent at the end and never
//!   overwritable.
//! - `convergence`: do the replicas agree after heal and quiesce.
//! - `stale_reads`: reads of values definitely overwritten before they
//!   began.
//! - `lost_updates`: acknowledged puts gone without a write that saw them
//!   (last-writer-wins under concurrency).
//! - `siblings`: how many concurrent values reads returned.
//! - `report`: `CheckReport`, the common shape for Lua and results.json.
//! - `replay`: a run's checks decided again from what it saved (`replab check`).
//! - `simulate`: linearizable-by-construction histories for tests and
//!   `replab bench check`.
//!
//! Exact definitions, algorithms and limits: docs/CHECKERS.md.

pub mod convergence;
pub mod edn;
pub mod history;
pub mod linearizability;
pub mod lost_updates;
pub mod lost_writes;
pub mod recorder;
pub mod replay;
pub mod report;
pub mod siblings;
pub mod simulate;
pub mod stale_reads;
pub mod value;

pub use convergence::{ConvergenceReport, KeyDivergence, ReplicaState, check_convergence};
pub use history::{History, HistoryError, OpKind, Operation, Outcome, Reply, fmt_us};
pub use linearizability::{
    LinearizabilityOptions, LinearizabilityReport, StuckOp, Verdict, Witness, check_linearizable,
    check_linearizable_with,
};
pub use lost_updates::{LostUpdate, LostUpdatesReport, check_lost_updates};
pub use lost_writes::{FinalValues, LostWrite, LostWritesReport, check_lost_writes, check_lost_writes_among};
pub use recorder::{OpHandle, Recorder};
pub use report::{CheckReport, CheckStatus};
pub use siblings::{SiblingsReport, check_siblings};
pub use stale_reads::{StaleRead, StaleReadsReport, check_stale_reads};
pub use value::Value;
