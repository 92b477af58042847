//! # replab-raft: leader-quorum Raft as a deterministic sans-IO plugin
//!
//! The engine (or the simulator) feeds [`Raft`] inputs through
//! [`replab_api::ReplicationPolicy::step`] and carries out the effects it
//! returns. The protocol rationale (roles, the persist-before-send rule,
//! the Figure 8 commit rule, flow control, ReadIndex, snapshots, leader
//! transfer, the test-only [`Bug`] switches) is in `docs/RAFT.md`.
//!
//! Module map, one concept each:
//! * [`raft`]: the node's state, `step`, the term check and role changes
//! * `amnesia`: a member that lost durable state (wiped, repaired) and its way back
//! * `election`: PreVote, votes, campaigns
//! * `replication`: the leader's side (proposals, appends, heartbeats, commit rule)
//! * `follower`: accepting appends, heartbeats and snapshots
//! * `commit`: commit, apply, durability reports, snapshot and compaction
//! * [`read_index`]: linearizable reads
//! * `transfer`: leader transfer
//! * [`progress`], [`inflights`], [`tracker`], [`quorum`]: flow control and majorities
//! * [`log`]: the in-memory log and its index arithmetic
//! * [`message`]: the wire messages

mod amnesia;
mod commit;
pub mod config;
mod election;
pub mod factory;
mod follower;
pub mod inflights;
pub mod log;
pub mod message;
pub mod progress;
pub mod quorum;
pub mod raft;
pub mod read_index;
mod replication;
pub mod stats;
pub mod tracker;
mod transfer;

pub use config::{Bug, RaftConfig};
pub use factory::RaftFactory;
pub use message::Message;
pub use progress::{ProgressState, ProgressView};
pub use raft::Raft;
pub use stats::RaftStats;
