//! The second policy shape: per-key replication, where the policy owns the
//! data.
//!
//! A log-based policy (`ReplicationPolicy`: Raft, primary-backup) orders
//! opaque commands; the engine batches client requests into proposals,
//! stores the entries, applies them to its key-value state machine and
//! answers the clients. None of that fits a leaderless store, where any
//! node coordinates a request, each replica keeps versions per key, and a
//! read merges what R replicas answered. A [`KeyedPolicy`] therefore gets
//! client operations typed and with their key, decides where each goes,
//! keeps the data itself, persists its own records through the node's log,
//! and answers with every sibling and a causal context. The engine still
//! does all the I/O: sockets, files, clocks, timers. (Why two traits rather
//! than one vocabulary: docs/ARCHITECTURE.md.)
//!
//! The rules of `ReplicationPolicy` hold here too: one entry point, ordered
//! effects, persist before you promise (a `Send` with `after_persist` leaves
//! only once every earlier `Persist` is durable), determinism, untrusted
//! bytes. Wall time reaches the policy only through [`Clocks`].

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::factory::{ConfigError, PolicyContext};
use crate::ids::NodeId;
use crate::liveness::Liveness;
use crate::policy::{PolicyStatus, StepError};
use crate::resolver::ConflictResolver;
use crate::time::Instant;

/// Names one client request on one node, chosen by the engine.
pub type RequestId = u64;

/// A client operation, typed, with its key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyedOp {
    Get {
        key: Bytes,
    },
    /// `value: None` is a delete. `context` is what the client read
    /// (empty: a blind write).
    Put {
        key: Bytes,
        value: Option<Bytes>,
        context: Bytes,
    },
}

impl KeyedOp {
    pub fn key(&self) -> &Bytes {
        match self {
            KeyedOp::Get { key } | KeyedOp::Put { key, .. } => key,
        }
    }
}

/// How a keyed request ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyedReply {
    /// A read: every live value (siblings, sorted; none: absent) and the
    /// context to pass to the next write.
    Values { values: Vec<Bytes>, context: Bytes },
    /// A write stored durably on enough replicas. `context` covers it.
    Written { context: Bytes },
    /// Certainly not applied anywhere.
    Failed { reason: String },
    /// May have been applied on some replicas (a write that did not hear
    /// from enough of them in time): it may surface later.
    Unknown { reason: String },
}

#[derive(Clone, Debug)]
pub enum KeyedInput {
    Tick,
    /// A peer's message, in the policy's own encoding; untrusted bytes.
    Message {
        from: NodeId,
        bytes: Bytes,
    },
    /// A client request arrived at this node. The policy answers it with
    /// exactly one `Reply` (in time: the engine also gives up on it).
    Client {
        id: RequestId,
        op: KeyedOp,
    },
    /// Every record the policy asked to persist, up to sequence number
    /// `up_to`, is durable.
    Persisted {
        up_to: u64,
    },
    /// The failure detector's verdict on a peer changed.
    PeerLiveness {
        peer: NodeId,
        liveness: Liveness,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyedEffect {
    Send {
        to: NodeId,
        bytes: Bytes,
        after_persist: bool,
    },
    /// Appends a record to the node's log. Records are numbered in order,
    /// starting after `KeyedRecovered::last_seq`; `Persisted` reports them.
    Persist {
        record: Bytes,
    },
    Reply {
        id: RequestId,
        reply: KeyedReply,
    },
    /// The policy's whole state, which covers every record persisted so
    /// far: the engine stores it and may delete older records.
    Checkpoint {
        state: Bytes,
    },
}

/// A reusable, ordered buffer of effects (as `Effects`).
#[derive(Debug, Default)]
pub struct KeyedEffects {
    list: Vec<KeyedEffect>,
}

impl KeyedEffects {
    pub fn new() -> KeyedEffects {
        KeyedEffects { list: Vec::with_capacity(16) }
    }

    pub fn push(&mut self, effect: KeyedEffect) {
        self.list.push(effect);
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn as_slice(&self) -> &[KeyedEffect] {
        &self.list
    }

    pub fn drain(&mut self) -> std::vec::Drain<'_, KeyedEffect> {
        self.list.drain(..)
    }
}

/// The two clocks a keyed policy is given, both read by the engine: the
/// monotonic instant for timeouts, and the node's wall clock for
/// timestamps (skewed when a scenario skews it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clocks {
    pub now: Instant,
    pub wall_ms: u64,
}

/// One key as one replica holds it, for checks and dumps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyState {
    pub key: Bytes,
    /// The live values, sorted (empty: deleted).
    pub values: Vec<Bytes>,
    /// The register's canonical encoding: equal registers, equal bytes.
    pub register: Bytes,
    /// The members that replicate this key (its preference list).
    pub owners: Vec<NodeId>,
}

pub trait KeyedPolicy: Send {
    fn step(&mut self, clocks: Clocks, input: KeyedInput, out: &mut KeyedEffects) -> Result<(), StepError>;

    fn status(&self) -> PolicyStatus;

    /// What the policy counts about itself, by name (read repairs,
    /// anti-entropy rounds, ...).
    fn counters(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }

    /// Every key this node holds as a replica.
    fn replica_state(&self) -> Vec<KeyState>;
}

/// What a keyed policy finds on disk at start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyedRecovered {
    /// The latest `Checkpoint`, if any.
    pub checkpoint: Option<Bytes>,
    /// The records persisted after it, in order.
    pub records: Vec<Bytes>,
    /// The sequence number of the last record (0: none ever).
    pub last_seq: u64,
    /// Which life of the node's durable state this is. 0 for a node that
    /// has had all its state since its cluster was created. The engine
    /// gives a node a new incarnation, one it never had before, whenever it
    /// starts and finds state missing (an empty directory it did not create
    /// for a new cluster: a first start cannot be told from a wiped disk; a
    /// log cut by `--repair-wal`), and keeps it durably in the node's
    /// directory, so a restart with its state intact keeps it. A policy that
    /// names versions by their writer names them by node and incarnation
    /// (`actor_id`): what the node lost may include names its peers hold.
    pub incarnation: u64,
}

/// How the engine builds a keyed policy, with the resolver chosen in
/// config (the registry picks `R`).
pub trait KeyedFactory {
    const NAME: &'static str;

    /// The config section the plugin's settings live in: its name unless
    /// that is not a TOML-friendly key (`primary-backup` reads
    /// `[primary_backup]`).
    const SECTION: &'static str = Self::NAME;

    type Config: DeserializeOwned + Default + Clone + Send + 'static;

    fn validate(config: &Self::Config, members: usize) -> Result<(), ConfigError>;

    /// One line for the user about what this configuration means (shown by
    /// `replab config` and at the start of a run).
    fn describe(_config: &Self::Config, members: usize) -> String {
        format!("{} on {members} members", Self::NAME)
    }

    /// Builds a node from what it recovered. Records or a checkpoint that
    /// do not decode are an error naming what is wrong: the node must not
    /// start on state it cannot read.
    fn build<R: ConflictResolver>(
        ctx: PolicyContext,
        config: Self::Config,
        recovered: KeyedRecovered,
    ) -> Result<Box<dyn KeyedPolicy>, String>;
}
