//! replab: a replication laboratory.
//!
//! The engine (write-ahead log, TCP transport, node runtime) runs swappable
//! consistency policies written as sans-IO plugins (`replab-api`). See
//! `docs/ARCHITECTURE.md` for the picture and the contracts.

pub mod bench;
pub mod check;
pub mod client;
pub mod cluster;
pub mod config;
pub mod histogram;
pub mod kv;
pub mod net;
pub mod node;
pub mod progress;
pub mod registry;
pub mod report;
pub mod scenario;
pub mod wal;
