//! # replab-leaderless: Dynamo-style N/R/W quorum replication
//!
//! Foundations: the `[leaderless]` section, the hash ring and the wire
//! messages. The node itself follows.

pub mod config;
pub mod hash;
pub mod message;
pub mod ring;

pub use config::{Bug, LeaderlessConfig};
pub use message::Message;
