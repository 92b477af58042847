//! # replab-leaderless: Dynamo-style N/R/W quorum replication
//!
//! A keyed policy ([`replab_api::KeyedPolicy`]): each key is replicated on
//! N members picked by consistent hashing; any node takes a request; a put
//! is coordinated by an owner and is `Written` once W owners hold it
//! durably; a get merges the registers of the first R owners to answer.
//! Concurrent versions are resolved by the conflict resolver `R` the
//! engine picks ([`replab_api::ConflictResolver`]: last-writer-wins or
//! dotted version vectors). Read repair and anti-entropy spread versions
//! to replicas that missed them. The protocol, its messages, what
//! ok/failed/unknown mean and the test-only [`Bug`] switches are explained
//! in `docs/LEADERLESS.md`.
//!
//! Module map, one concept each:
//! * [`leaderless`]: the node's state, `step`, what the handlers share
//! * `writes`: coordinating a put (W acknowledgements, durability first)
//! * `forward`: a put at a node that owns none of the key
//! * `idempotence`: the coordinator's memory of forwarded puts
//! * `reads`: gets, R replies, read repair
//! * `replica`: an owner's answers to `Store` and `Fetch`
//! * `anti_entropy`: bucketed digests and the registers of differing buckets
//! * [`records`]: persistence, checkpoints, recovery
//! * [`ring`], [`hash`]: consistent hashing and FNV-1a
//! * [`store`]: the registers this node holds
//! * [`message`]: the wire messages
//! * [`config`], [`factory`], [`stats`]: `[leaderless]`, the factory, counters

mod anti_entropy;
pub mod config;
pub mod factory;
mod forward;
pub mod hash;
mod idempotence;
pub mod leaderless;
pub mod message;
mod reads;
pub mod records;
mod replica;
pub mod ring;
pub mod stats;
pub mod store;
mod writes;

pub use config::{Bug, LeaderlessConfig};
pub use factory::LeaderlessFactory;
pub use leaderless::Leaderless;
pub use message::Message;
pub use stats::LeaderlessStats;
