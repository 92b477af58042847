//! The node: its state, the single `step` entry point, the generation check
//! every message goes through first, and the role transitions. The
//! protocol handlers live beside it, one concern per module: `takeover`
//! (ranking, claims, promises), `primary` (proposals, streaming, the
//! acknowledgement rule), `backup` (appends, heartbeats, snapshots,
//! divergence), `apply` (commit, apply, durability, snapshots), `reads`,
//! `amnesia`.

use std::collections::BTreeSet;

use bytes::Bytes;
use replab_api::{
    Effect, Effects, Entry, HardState, Input, Instant, LogIndex, Memory, NodeId, PluginRng, PolicyContext,
    PolicyStatus, Recovered, RejectReason, ReplicationPolicy, Role, StepError, Term,
};

use crate::config::{Bug, Mode, PrimaryBackupConfig};
use crate::log::PrimaryBackupLog;
use crate::message::Message;
use crate::peers::Peers;
use crate::reads::PendingReads;
use crate::stats::PrimaryBackupStats;

pub struct PrimaryBackup {
    pub(crate) id: NodeId,
    pub(crate) config: PrimaryBackupConfig,
    pub(crate) rng: PluginRng,
    /// term = the generation, vote = the claimant promised in it.
    pub(crate) hard_state: HardState,
    pub(crate) role: Role,
    pub(crate) primary: Option<NodeId>,
    /// When this node last heard from its primary in its generation.
    pub(crate) primary_heard_at: Option<Instant>,
    pub(crate) log: PrimaryBackupLog,
    pub(crate) peers: Peers,
    pub(crate) reads: PendingReads,
    /// The instant of the input being stepped.
    pub(crate) now: Instant,
    started: bool,
    /// Since when this node has had no live primary (`None` while it has
    /// one). Successor ranks are waited out from here.
    pub(crate) leaderless_since: Option<Instant>,
    /// No claim before this: a node that just started gives a live primary
    /// time to be heard, and a failed claimant waits a random pause.
    pub(crate) claim_not_before: Instant,
    /// A claim in progress is abandoned at this instant.
    pub(crate) claim_deadline: Instant,
    pub(crate) heartbeat_deadline: Instant,
    /// A `TakeSnapshot` is out and unanswered.
    pub(crate) snapshot_requested: Option<LogIndex>,
    /// As backup: a divergence was reported; the primary's snapshot that
    /// answers it is a rollback.
    pub(crate) diverged: bool,
    /// What this node may have forgotten (`amnesia.rs`).
    pub(crate) memory: Memory,
    /// Blank: the peers that answered that they hold no data.
    pub(crate) peers_without_data: BTreeSet<NodeId>,
    /// Blank: when to ask again whether anyone holds data.
    pub(crate) memory_query_deadline: Instant,
    /// The role, generation and primary last reported with `RoleChanged`.
    announced: (Role, Term, Option<NodeId>),
    pub(crate) stats: PrimaryBackupStats,
}

impl PrimaryBackup {
    /// Builds a node, fresh or from recovered durable state; the state
    /// machine was already restored from `recovered.snapshot`.
    pub fn new(ctx: PolicyContext, config: PrimaryBackupConfig, recovered: Recovered) -> PrimaryBackup {
        assert!(ctx.members.contains(&ctx.id), "node {} is not among the members {:?}", ctx.id, ctx.members);
        if let Err(e) = config.validate(ctx.members.len()) {
            panic!("invalid primary_backup config (validate it before building): {e}");
        }
        let log = PrimaryBackupLog::recover(recovered.snapshot, recovered.entries);
        let hard_state = recovered.hard_state;
        assert!(
            log.last_position().term <= hard_state.term,
            "recovered log holds generation {} beyond the recovered generation {}",
            log.last_position().term,
            hard_state.term
        );
        PrimaryBackup {
            id: ctx.id,
            peers: Peers::new(ctx.peers().collect(), config.max_inflight_appends),
            config,
            rng: PluginRng::from_seed_u64(ctx.seed),
            hard_state,
            role: Role::Follower,
            primary: None,
            primary_heard_at: None,
            log,
            reads: PendingReads::default(),
            now: Instant::ZERO,
            started: false,
            leaderless_since: None,
            claim_not_before: Instant::ZERO,
            claim_deadline: Instant::ZERO,
            heartbeat_deadline: Instant::ZERO,
            snapshot_requested: None,
            diverged: false,
            memory: recovered.memory,
            peers_without_data: BTreeSet::new(),
            memory_query_deadline: Instant::ZERO,
            announced: (Role::Follower, hard_state.term, None),
            stats: PrimaryBackupStats::default(),
        }
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn generation(&self) -> Term {
        self.hard_state.term
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn primary(&self) -> Option<NodeId> {
        self.primary
    }

    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    pub fn config(&self) -> &PrimaryBackupConfig {
        &self.config
    }

    pub fn stats(&self) -> PrimaryBackupStats {
        self.stats
    }

    pub fn memory(&self) -> Memory {
        self.memory
    }

    /// The entries held in memory, after the latest snapshot.
    pub fn log_entries(&self) -> &[Entry] {
        self.log.entries()
    }

    /// As primary: how far a backup's log is known to match.
    pub fn match_index(&self, peer: NodeId) -> Option<LogIndex> {
        (self.role == Role::Leader).then(|| self.peers.get(peer).map(|p| p.progress.match_index)).flatten()
    }

    /// How many live nodes this node believes rank before it as successor.
    pub fn successor_rank(&self) -> u64 {
        self.peers.rank_of(self.id, self.log.last_position())
    }

    /// The acknowledgement rule in force: a bug switch can weaken it.
    pub(crate) fn ack_mode(&self) -> Mode {
        if self.config.bug == Bug::AckBeforeQuorum { Mode::Async } else { self.config.mode }
    }

    pub(crate) fn set_hard_state(&mut self, hard_state: HardState, out: &mut Effects) {
        if hard_state == self.hard_state {
            return;
        }
        assert!(hard_state.term >= self.hard_state.term, "the generation never goes back");
        assert!(
            hard_state.term > self.hard_state.term || self.hard_state.vote.is_none(),
            "a promise made in generation {} cannot change",
            hard_state.term
        );
        self.hard_state = hard_state;
        out.push(Effect::SaveHardState(hard_state));
    }

    pub(crate) fn push_send(&mut self, to: NodeId, bytes: Bytes, after_persist: bool, out: &mut Effects) {
        self.stats.messages_sent += 1;
        self.stats.bytes_sent += bytes.len() as u64;
        out.push(Effect::Send { to, bytes, after_persist });
    }

    /// Sends a message. Every answer a node gives states its generation
    /// (and promises, acknowledgements), so answers wait for what was
    /// written before them to be durable; only the primary's own appends
    /// and heartbeats leave at once.
    pub(crate) fn send(&mut self, to: NodeId, message: &Message<'_>, out: &mut Effects) {
        let after_persist = !message.from_primary();
        let bytes = message.encode();
        self.push_send(to, bytes, after_persist, out);
    }

    pub(crate) fn generation_after(&self, to: Term) -> bool {
        to > self.hard_state.term
    }

    /// Becomes (or stays) a backup in generation `generation`, following
    /// `primary` if known. A higher generation is adopted with no promise.
    pub(crate) fn become_backup(&mut self, generation: Term, primary: Option<NodeId>, out: &mut Effects) {
        assert!(generation >= self.hard_state.term, "cannot follow an older generation");
        if self.generation_after(generation) {
            self.set_hard_state(HardState { term: generation, vote: None }, out);
        }
        if self.role == Role::Leader {
            self.stats.stepped_down += 1;
        }
        for id in self.reads.drain_all() {
            out.push(Effect::ReadRejected { id, reason: RejectReason::LeadershipLost });
        }
        self.role = Role::Follower;
        if self.primary != primary {
            self.primary_heard_at = None;
        }
        self.primary = primary;
    }

    /// A primary's message in our generation: whoever we were, we follow.
    fn follow(&mut self, from: NodeId, out: &mut Effects) -> Result<(), StepError> {
        match self.role {
            Role::Leader => Err(StepError::Rejected(format!(
                "node {from} acts as primary of generation {}, which node {} holds",
                self.hard_state.term, self.id
            ))),
            _ => {
                let generation = self.hard_state.term;
                self.become_backup(generation, Some(from), out);
                self.primary_heard_at = Some(self.now);
                Ok(())
            }
        }
    }

    /// The generation check every message goes through first (etcd's
    /// `Step`): a higher generation is adopted and makes this node a
    /// backup; a primary of a lower one is told it was replaced; other
    /// messages of a lower one are dropped. Claims judge generations
    /// themselves (`takeover.rs`).
    fn step_message(&mut self, from: NodeId, bytes: &[u8], out: &mut Effects) -> Result<(), StepError> {
        if self.peers.get(from).is_none() {
            return Err(StepError::Rejected(format!("message from node {from}, which is not a peer of {}", self.id)));
        }
        let message = Message::decode(bytes).map_err(|reason| {
            self.stats.decode_errors += 1;
            StepError::Decode { from, reason }
        })?;
        let generation = message.generation();
        // Claims judge generations themselves (`takeover.rs`); whether a
        // member holds data is a question about its disk, not about
        // generations (`amnesia.rs`).
        match message {
            Message::Claim { generation, last } => {
                self.handle_claim(from, generation, last, out);
                return Ok(());
            }
            Message::MemoryQuery { .. } => {
                self.answer_memory_query(from, out);
                return Ok(());
            }
            Message::MemoryReport { has_data, .. } => {
                self.handle_memory_report(from, has_data, out);
                return Ok(());
            }
            _ => {}
        }
        if self.generation_after(generation) {
            let primary = message.from_primary().then_some(from);
            self.become_backup(generation, primary, out);
        } else if generation < self.hard_state.term {
            return self.answer_older_generation(from, message, out);
        }
        self.dispatch(from, message, out)
    }

    fn answer_older_generation(
        &mut self,
        from: NodeId,
        message: Message<'static>,
        out: &mut Effects,
    ) -> Result<(), StepError> {
        if !message.from_primary() {
            return Ok(());
        }
        if let Message::Append(append) = &message
            && self.config.bug == Bug::AcceptLowerGeneration
        {
            // The bug: take the old primary's write as if it were current,
            // and acknowledge it in its own generation so it counts.
            self.handle_append(from, append, append.generation, out);
            return Ok(());
        }
        if matches!(message, Message::Append(_) | Message::Snapshot { .. }) {
            self.stats.appends_rejected_lower_generation += 1;
        }
        let generation = self.hard_state.term;
        self.send(from, &Message::Stale { generation }, out);
        Ok(())
    }

    fn dispatch(&mut self, from: NodeId, message: Message<'static>, out: &mut Effects) -> Result<(), StepError> {
        match message {
            Message::Claim { .. } | Message::MemoryQuery { .. } | Message::MemoryReport { .. } => {
                unreachable!("claims and memory queries are handled before the generation check")
            }
            Message::ClaimAnswer { promised, last, .. } => self.handle_claim_answer(from, promised, last, out),
            Message::Append(append) => {
                self.follow(from, out)?;
                let generation = self.hard_state.term;
                self.handle_append(from, &append, generation, out);
            }
            Message::Heartbeat(heartbeat) => {
                self.follow(from, out)?;
                self.handle_heartbeat(from, &heartbeat, out);
            }
            Message::Snapshot { snapshot, replace, .. } => {
                self.follow(from, out)?;
                self.handle_snapshot(from, snapshot, replace, out);
            }
            Message::AppendAnswer { outcome, .. } if self.role == Role::Leader => {
                return self.handle_append_answer(from, outcome, out);
            }
            Message::HeartbeatAnswer { read_seq, .. } if self.role == Role::Leader => {
                self.handle_heartbeat_answer(from, read_seq, out);
            }
            // Answers to a role this node no longer has, and `Stale`,
            // whose only news (a higher generation) was taken above.
            Message::AppendAnswer { .. } | Message::HeartbeatAnswer { .. } | Message::Stale { .. } => {}
        }
        Ok(())
    }

    fn tick(&mut self, out: &mut Effects) {
        if self.memory == Memory::Blank && self.now >= self.memory_query_deadline {
            self.memory_query_deadline = self.now.add_millis(self.config.takeover_timeout_ms);
            self.query_memory(out);
        }
        match self.role {
            Role::Leader if self.now >= self.heartbeat_deadline => {
                self.heartbeat_deadline = self.now.add_millis(self.config.heartbeat_interval_ms);
                self.broadcast_heartbeat(out);
            }
            Role::Candidate if self.now >= self.claim_deadline => self.abandon_claim(out),
            _ => {}
        }
    }

    fn announce_role(&mut self, out: &mut Effects) {
        let now = (self.role, self.hard_state.term, self.primary);
        if now != self.announced {
            self.announced = now;
            out.push(Effect::RoleChanged { role: now.0, term: now.1, leader: now.2 });
        }
    }
}

impl ReplicationPolicy for PrimaryBackup {
    fn step(&mut self, now: Instant, input: Input, out: &mut Effects) -> Result<(), StepError> {
        assert!(now >= self.now, "time went backwards: {now:?} < {:?}", self.now);
        self.now = now;
        if !self.started {
            // A primary may well be alive: give its heartbeat a chance
            // before ranking (a restarted node must not depose it).
            self.started = true;
            self.claim_not_before = now.add_millis(self.config.takeover_timeout_ms);
        }
        let result = match input {
            Input::Tick => {
                self.tick(out);
                Ok(())
            }
            Input::Message { from, bytes } => self.step_message(from, &bytes, out),
            Input::Propose { id, commands } => {
                self.propose(id, commands, out);
                Ok(())
            }
            Input::Read { ids } => {
                for id in ids {
                    self.read(id, out);
                }
                Ok(())
            }
            Input::Persisted { position } => {
                self.on_persisted(position, out);
                Ok(())
            }
            Input::SnapshotTaken { snapshot } => self.on_snapshot_taken(snapshot, out),
            Input::PeerLiveness { peer, liveness } => self.on_liveness(peer, liveness),
            Input::TransferLeader { to } => Err(StepError::Rejected(format!(
                "primary-backup hands the primary role over only by failover (asked to transfer to node {to})"
            ))),
        };
        self.maybe_restore_memory(out);
        self.maybe_claim(out);
        self.announce_role(out);
        result
    }

    fn status(&self) -> PolicyStatus {
        PolicyStatus {
            id: self.id,
            role: self.role,
            term: self.hard_state.term,
            leader: self.primary,
            first_index: self.log.first_index(),
            last_index: self.log.last_index(),
            commit_index: self.log.committed,
            applied_index: self.log.applied,
            durable_index: self.log.durable,
        }
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        self.stats.named()
    }

    /// Async answers reads at once (`reads.rs`): a deposed primary does not
    /// know it yet and may answer from a superseded history.
    fn reads_are_linearizable(&self) -> bool {
        self.config.mode != Mode::Async
    }
}
