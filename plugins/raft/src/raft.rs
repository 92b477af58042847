//! The Raft node: its state, the single `step` entry point, and the role
//! transitions (etcd's `Step` and `becomeFollower/PreCandidate/Candidate/
//! Leader`). The protocol handlers live beside it, one concern per module:
//! `election`, `replication` (leader side), `follower` (append receipt),
//! `commit`, `read_index`, `transfer`.

use std::collections::BTreeSet;

use bytes::Bytes;
use replab_api::{
    Effect, Effects, Entry, EntryKind, HardState, Input, Instant, LogIndex, Memory, NodeId, PluginRng, PolicyContext,
    PolicyStatus, Recovered, RejectReason, ReplicationPolicy, Role, StepError, Term,
};

use crate::config::{Bug, RaftConfig};
use crate::election::CampaignKind;
use crate::log::RaftLog;
use crate::message::{AppendOutcome, AppendResponse, HeartbeatResponse, Message, VoteResponse};
use crate::progress::ProgressView;
use crate::read_index::ReadIndexQueue;
use crate::stats::RaftStats;
use crate::tracker::ProgressTracker;
use crate::transfer::Transfer;

pub struct Raft {
    pub(crate) id: NodeId,
    pub(crate) config: RaftConfig,
    pub(crate) rng: PluginRng,
    pub(crate) hard_state: HardState,
    pub(crate) role: Role,
    pub(crate) leader: Option<NodeId>,
    pub(crate) log: RaftLog,
    pub(crate) tracker: ProgressTracker,
    pub(crate) reads: ReadIndexQueue,
    pub(crate) transfer: Option<Transfer>,
    /// The instant of the input being stepped.
    pub(crate) now: Instant,
    /// `None` until the first input brings a clock reading.
    pub(crate) election_deadline: Option<Instant>,
    pub(crate) heartbeat_deadline: Instant,
    pub(crate) check_quorum_deadline: Instant,
    /// When a leader was last heard from; drives the leader lease.
    pub(crate) leader_contact: Option<Instant>,
    /// A `TakeSnapshot` is out and unanswered.
    pub(crate) snapshot_requested: Option<LogIndex>,
    /// The role, term and leader last reported with `RoleChanged`.
    announced: (Role, Term, Option<NodeId>),
    /// What this node may have forgotten (`amnesia.rs`).
    pub(crate) memory: Memory,
    /// Blank: the peers that answered that they hold no data.
    pub(crate) peers_without_data: BTreeSet<NodeId>,
    pub(crate) stats: RaftStats,
}

impl Raft {
    /// Builds a node, fresh or from recovered durable state. The caller
    /// validated `config`; the state machine was already restored from
    /// `recovered.snapshot`, so the applied index starts there.
    pub fn new(ctx: PolicyContext, config: RaftConfig, recovered: Recovered) -> Raft {
        assert!(ctx.members.contains(&ctx.id), "node {} is not among the members {:?}", ctx.id, ctx.members);
        if let Err(e) = config.validate(ctx.members.len()) {
            panic!("invalid raft config (validate it before building): {e}");
        }
        let mut peers: Vec<NodeId> = ctx.peers().collect();
        peers.sort_unstable();
        peers.dedup();
        let tracker = ProgressTracker::new(ctx.id, peers, config.max_inflight_appends, config.max_inflight_bytes);
        let log = RaftLog::recover(recovered.snapshot, recovered.entries);
        let hard_state = recovered.hard_state;
        assert!(
            log.last_position().term <= hard_state.term,
            "recovered log holds term {} beyond the recovered term {}",
            log.last_position().term,
            hard_state.term
        );
        Raft {
            id: ctx.id,
            config,
            rng: PluginRng::from_seed_u64(ctx.seed),
            hard_state,
            role: Role::Follower,
            leader: None,
            log,
            tracker,
            reads: ReadIndexQueue::default(),
            transfer: None,
            now: Instant::ZERO,
            election_deadline: None,
            heartbeat_deadline: Instant::ZERO,
            check_quorum_deadline: Instant::ZERO,
            leader_contact: None,
            snapshot_requested: None,
            announced: (Role::Follower, hard_state.term, None),
            memory: recovered.memory,
            peers_without_data: BTreeSet::new(),
            stats: RaftStats::default(),
        }
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn term(&self) -> Term {
        self.hard_state.term
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }

    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    pub fn config(&self) -> &RaftConfig {
        &self.config
    }

    /// The entries held in memory, after the latest snapshot.
    pub fn log_entries(&self) -> &[Entry] {
        self.log.entries()
    }

    pub fn stats(&self) -> RaftStats {
        self.stats
    }

    /// What this node may have forgotten and not yet caught up with.
    pub fn memory(&self) -> Memory {
        self.memory
    }

    /// The leader's view of a follower's replication, `None` for unknown
    /// peers and on non-leaders (where it would be stale).
    pub fn progress(&self, peer: NodeId) -> Option<ProgressView> {
        if self.role != Role::Leader {
            return None;
        }
        self.tracker.get(peer).map(|p| p.view())
    }

    /// The node the leader is handing leadership to, if a transfer runs.
    pub fn transfer_target(&self) -> Option<NodeId> {
        self.transfer.as_ref().map(|t| t.target)
    }

    pub(crate) fn election_timeout_min_us(&self) -> u64 {
        self.config.election_timeout_min_ms * 1_000
    }

    pub(crate) fn reset_election_timer(&mut self) {
        let timeout_ms =
            self.rng.range_inclusive(self.config.election_timeout_min_ms, self.config.election_timeout_max_ms);
        self.election_deadline = Some(self.now.add_millis(timeout_ms));
    }

    /// Leader stickiness (CheckQuorum): while a leader is known to be alive
    /// this node ignores vote requests, so a node that was partitioned away
    /// cannot depose a healthy leader.
    pub(crate) fn in_lease(&self) -> bool {
        if !self.config.check_quorum || self.leader.is_none() {
            return false;
        }
        if self.role == Role::Leader {
            return true;
        }
        self.leader_contact.is_some_and(|t| self.now.micros_since(t) < self.election_timeout_min_us())
    }

    /// True once the commit index reached an entry of the current term.
    pub(crate) fn committed_in_term(&self) -> bool {
        self.log.term_at(self.log.committed) == Some(self.hard_state.term)
    }

    pub(crate) fn set_hard_state(&mut self, hard_state: HardState, out: &mut Effects) {
        if hard_state == self.hard_state {
            return;
        }
        assert!(hard_state.term >= self.hard_state.term, "the term never goes back");
        assert!(
            hard_state.term > self.hard_state.term
                || self.hard_state.vote.is_none()
                || self.config.bug == Bug::VoteWithoutTermCheck,
            "a vote cast in term {} cannot change",
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

    pub(crate) fn send(&mut self, to: NodeId, message: &Message<'_>, after_persist: bool, out: &mut Effects) {
        let bytes = message.encode();
        self.push_send(to, bytes, after_persist, out);
    }

    fn announce_role(&mut self, out: &mut Effects) {
        let now = (self.role, self.hard_state.term, self.leader);
        if now == self.announced {
            return;
        }
        if self.leader.is_some() && self.leader != self.announced.2 {
            self.stats.leader_changes += 1;
        }
        self.announced = now;
        out.push(Effect::RoleChanged { role: now.0, term: now.1, leader: now.2 });
    }

    pub(crate) fn become_follower(&mut self, term: Term, leader: Option<NodeId>, out: &mut Effects) {
        assert!(term >= self.hard_state.term, "cannot follow an older term");
        if term > self.hard_state.term {
            self.set_hard_state(HardState { term, vote: None }, out);
        }
        for id in self.reads.drain_all() {
            out.push(Effect::ReadRejected { id, reason: RejectReason::LeadershipLost });
        }
        self.transfer = None;
        self.role = Role::Follower;
        self.leader = leader;
        if leader.is_some() {
            self.leader_contact = Some(self.now);
        }
        self.reset_election_timer();
    }

    pub(crate) fn become_pre_candidate(&mut self) {
        assert_ne!(self.role, Role::Leader, "a leader does not campaign");
        // PreVote changes neither the term nor the vote: nothing to persist.
        self.role = Role::PreCandidate;
        self.leader = None;
        self.tracker.reset_votes();
        self.tracker.record_vote(self.id, true);
        self.reset_election_timer();
        self.stats.pre_votes_started += 1;
    }

    pub(crate) fn become_candidate(&mut self, out: &mut Effects) {
        assert_ne!(self.role, Role::Leader, "a leader does not campaign");
        let term = self.hard_state.term + 1;
        self.set_hard_state(HardState { term, vote: Some(self.id) }, out);
        self.role = Role::Candidate;
        self.leader = None;
        self.tracker.reset_votes();
        self.tracker.record_vote(self.id, true);
        self.reset_election_timer();
        self.stats.elections_started += 1;
    }

    pub(crate) fn become_leader(&mut self, out: &mut Effects) {
        assert_eq!(self.role, Role::Candidate, "only a candidate becomes leader");
        assert!(self.reads.is_empty(), "a candidate holds no reads");
        self.role = Role::Leader;
        self.leader = Some(self.id);
        self.transfer = None;
        self.tracker.reset_for_leader(self.log.last_index() + 1);
        self.heartbeat_deadline = self.now.add_millis(self.config.heartbeat_interval_ms);
        self.check_quorum_deadline = self.now.add_millis(self.config.election_timeout_min_ms);
        self.stats.times_elected += 1;
        // Raft §8: the no-op lets the leader commit, and thereby learn the
        // commit index of earlier terms (Figure 8 forbids counting replicas
        // of their entries directly).
        let noop = Entry {
            index: self.log.last_index() + 1,
            term: self.hard_state.term,
            kind: EntryKind::Noop,
            data: Bytes::new(),
        };
        self.append_local(vec![noop], out);
        self.broadcast_append(out);
    }

    fn tick(&mut self, out: &mut Effects) {
        if self.role == Role::Leader {
            self.tick_leader(out);
            return;
        }
        let deadline = self.election_deadline.expect("set on the first step");
        if self.now >= deadline && !self.memory.is_intact() {
            // A node that may have forgotten promises does not campaign;
            // a blank one asks again whether anyone holds data.
            if self.memory == Memory::Blank {
                self.query_memory(out);
            }
            self.reset_election_timer();
            return;
        }
        if self.now >= deadline {
            let kind = if self.config.pre_vote { CampaignKind::PreVote } else { CampaignKind::Election };
            self.campaign(kind, out);
        }
    }

    fn tick_leader(&mut self, out: &mut Effects) {
        if self.now >= self.heartbeat_deadline {
            self.heartbeat_deadline = self.now.add_millis(self.config.heartbeat_interval_ms);
            self.broadcast_heartbeat(out);
        }
        if self.config.check_quorum && self.now >= self.check_quorum_deadline {
            if !self.tracker.quorum_active() {
                self.stats.check_quorum_step_downs += 1;
                let term = self.hard_state.term;
                self.become_follower(term, None, out);
                return;
            }
            self.tracker.reset_recent_active();
            self.check_quorum_deadline = self.now.add_millis(self.config.election_timeout_min_ms);
        }
        self.tick_transfer();
    }

    /// The term check every message goes through first (etcd's `Step`).
    fn step_message(&mut self, from: NodeId, bytes: &[u8], out: &mut Effects) -> Result<(), StepError> {
        if !self.tracker.is_peer(from) {
            return Err(StepError::Rejected(format!("message from node {from}, which is not a peer of {}", self.id)));
        }
        let message = Message::decode(bytes).map_err(|reason| {
            self.stats.decode_errors += 1;
            StepError::Decode { from, reason }
        })?;
        let term = message.term();
        if term > self.hard_state.term {
            match &message {
                Message::PreVote(request) | Message::Vote(request) if !request.forced && self.in_lease() => {
                    // Leader stickiness: a live leader is known, so this
                    // candidate is the disruptive one. Do not even adopt
                    // its term.
                    return Ok(());
                }
                // A PreVote does not raise anyone's term, and a granted
                // PreVote answer carries the term the candidate *would*
                // campaign in.
                Message::PreVote(_) => {}
                Message::PreVoteResponse(response) if response.granted => {}
                Message::Append(_)
                | Message::Heartbeat(_)
                | Message::InstallSnapshot(_)
                | Message::TimeoutNow { .. } => {
                    self.become_follower(term, Some(from), out);
                }
                _ => self.become_follower(term, None, out),
            }
        } else if term < self.hard_state.term {
            let bug_vote = self.config.bug == Bug::VoteWithoutTermCheck && matches!(message, Message::Vote(_));
            if !bug_vote {
                self.answer_stale(from, &message, out);
                return Ok(());
            }
        }
        self.dispatch(from, message, out)
    }

    /// A message from an older term. Most are dropped, but a stale leader
    /// must learn that it was replaced, and a node stuck at a higher term
    /// (say, after campaigning alone in a partition) must be able to pull
    /// the cluster up to its term, or it could never rejoin: with
    /// CheckQuorum its votes are ignored (etcd does the same).
    fn answer_stale(&mut self, from: NodeId, message: &Message<'_>, out: &mut Effects) {
        let term = self.hard_state.term;
        match message {
            Message::Append(_) | Message::Heartbeat(_) if self.config.check_quorum || self.config.pre_vote => {
                let answer = Message::HeartbeatResponse(HeartbeatResponse { term, read_seq: 0 });
                self.send(from, &answer, false, out);
            }
            Message::PreVote(_) => {
                let answer = Message::PreVoteResponse(VoteResponse { term, granted: false });
                self.send(from, &answer, true, out);
            }
            // A blank node asks at term 0; it needs the answer, and the
            // answer's term brings it up to date.
            Message::MemoryQuery { .. } => self.answer_memory_query(from, out),
            _ => {}
        }
    }

    fn dispatch(&mut self, from: NodeId, message: Message<'static>, out: &mut Effects) -> Result<(), StepError> {
        match message {
            Message::PreVote(request) => self.handle_vote_request(from, &request, true, out),
            Message::Vote(request) => self.handle_vote_request(from, &request, false, out),
            Message::PreVoteResponse(response) => self.handle_vote_response(from, &response, true, out),
            Message::VoteResponse(response) => self.handle_vote_response(from, &response, false, out),
            Message::Append(request) => {
                self.follow(from, request.term, out)?;
                self.handle_append(from, request.prev, request.commit, request.entries.into_owned(), out);
            }
            Message::Heartbeat(heartbeat) => {
                self.follow(from, heartbeat.term, out)?;
                self.handle_heartbeat(from, &heartbeat, out);
            }
            Message::InstallSnapshot(request) => {
                self.follow(from, request.term, out)?;
                self.handle_install_snapshot(from, request.snapshot, out);
            }
            Message::AppendResponse(response) => {
                if self.role == Role::Leader {
                    return self.handle_append_response(from, &response.outcome, out);
                }
            }
            Message::HeartbeatResponse(response) => {
                if self.role == Role::Leader {
                    self.handle_heartbeat_response(from, response.read_seq, out);
                }
            }
            Message::TimeoutNow { .. } => self.handle_timeout_now(from, out),
            Message::MemoryQuery { .. } => self.answer_memory_query(from, out),
            Message::MemoryReport { has_data, .. } => self.handle_memory_report(from, has_data, out),
        }
        Ok(())
    }

    /// A leader's message in our term: whoever we were, we now follow it.
    fn follow(&mut self, from: NodeId, term: Term, out: &mut Effects) -> Result<(), StepError> {
        assert_eq!(term, self.hard_state.term, "the term check ran first");
        match self.role {
            Role::Leader => {
                return Err(StepError::Rejected(format!(
                    "node {from} claims leadership of term {term}, which node {} leads",
                    self.id
                )));
            }
            Role::PreCandidate | Role::Candidate => self.become_follower(term, Some(from), out),
            Role::Follower | Role::Peer => {}
        }
        if self.leader != Some(from) {
            self.leader = Some(from);
        }
        self.leader_contact = Some(self.now);
        self.reset_election_timer();
        Ok(())
    }

    /// Answers an append or a snapshot. Sent only once everything written
    /// before it is durable: an acceptance promises the entries survive.
    pub(crate) fn respond_append(&mut self, to: NodeId, outcome: AppendOutcome, out: &mut Effects) {
        let term = self.hard_state.term;
        self.send(to, &Message::AppendResponse(AppendResponse { term, outcome }), true, out);
    }
}

impl ReplicationPolicy for Raft {
    fn step(&mut self, now: Instant, input: Input, out: &mut Effects) -> Result<(), StepError> {
        assert!(now >= self.now, "time went backwards: {now:?} < {:?}", self.now);
        self.now = now;
        if self.election_deadline.is_none() {
            self.reset_election_timer();
            if self.memory == Memory::Blank {
                self.query_memory(out);
            }
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
                self.read(ids, out);
                Ok(())
            }
            Input::Persisted { position } => {
                self.on_persisted(position, out);
                Ok(())
            }
            Input::SnapshotTaken { snapshot } => self.on_snapshot_taken(snapshot, out),
            // Raft detects failures with its own election and CheckQuorum
            // timers; an external detector's verdict adds nothing safe.
            Input::PeerLiveness { .. } => Ok(()),
            Input::TransferLeader { to } => self.transfer_leader(to, out),
        };
        self.maybe_restore_memory(out);
        self.announce_role(out);
        result
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        self.stats.named()
    }

    fn status(&self) -> PolicyStatus {
        PolicyStatus {
            id: self.id,
            role: self.role,
            term: self.hard_state.term,
            leader: self.leader,
            first_index: self.log.first_index(),
            last_index: self.log.last_index(),
            commit_index: self.log.committed,
            applied_index: self.log.applied,
            durable_index: self.log.durable,
        }
    }
}
