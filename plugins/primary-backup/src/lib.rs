//! # replab-primary-backup: leader-follower replication as a sans-IO plugin
//!
//! The textbook primary-backup scheme: one primary orders writes into a log
//! and streams it to the backups, without a consensus round per write. The
//! acknowledgement rule is a [`Mode`]: `async` (the primary's own disk),
//! `sync` (every member's) or `quorum` (a majority's). Failover is driven by
//! the failure detector's verdicts (`Input::PeerLiveness`): the live node
//! with the most up-to-date log claims the next generation and needs
//! promises from a majority, whatever the mode. The rationale (modes and
//! their costs, the successor rule, generations, rollback, reads, the
//! [`Bug`] switches, counters) is in `docs/PRIMARY_BACKUP.md`.
//!
//! Module map, one concept each:
//! * [`node`]: the node's state, `step`, the generation check, role changes
//! * `takeover`: ranking successors, claims and promises
//! * `primary`: proposals, streaming, heartbeats, the acknowledgement rule
//! * `backup`: accepting appends, heartbeats and snapshots; divergence
//! * `apply`: commit, apply, durability reports, snapshots
//! * `reads`: ReadIndex (quorum, sync) and local reads (async)
//! * `amnesia`: a member that lost durable state
//! * [`peers`], [`progress`]: per-peer liveness, positions, flow control
//! * [`log`]: the in-memory log; [`message`]: the wire messages

mod amnesia;
mod apply;
mod backup;
pub mod config;
pub mod factory;
pub mod log;
pub mod message;
pub mod node;
pub mod peers;
mod primary;
pub mod progress;
pub mod reads;
pub mod stats;
mod takeover;

pub use config::{Bug, Mode, PrimaryBackupConfig};
pub use factory::{PrimaryBackupFactory, SECTION};
pub use message::Message;
pub use node::PrimaryBackup;
pub use stats::PrimaryBackupStats;
