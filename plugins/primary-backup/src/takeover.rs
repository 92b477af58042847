//! Failover: who takes over when the primary is gone, and the claim that
//! makes it primary.
//!
//! The failure detector, not a timer of this policy, says the primary is
//! gone (`Input::PeerLiveness`). A node without a live primary ranks the
//! live nodes by the log position it knows for each (generation, then
//! index, descending; ties to the lower id). The first claims at once; the
//! k-th waits k takeover timeouts, so a successor that is dead but not yet
//! detected, or a stale view of positions, delays failover by a bounded
//! amount instead of blocking it.
//!
//! A claim raises the generation and asks every member for a promise.
//! Promises follow Raft's vote rule: one claimant per generation, and only
//! one whose log is at least as up to date as the promiser's. A claimant
//! needs a majority of promises, itself included, in every mode: two
//! majorities share a member, and that member promised once, so a
//! generation never has two primaries. Async's speed is bought in
//! acknowledgement, never in takeover.

use replab_api::{Effects, Entry, EntryKind, HardState, Liveness, LogPosition, NodeId, Role, StepError, Term};

use crate::config::Bug;
use crate::message::Message;
use crate::node::PrimaryBackup;
use crate::peers::ClaimResult;

impl PrimaryBackup {
    pub(crate) fn on_liveness(&mut self, peer: NodeId, liveness: Liveness) -> Result<(), StepError> {
        let Some(entry) = self.peers.get_mut(peer) else {
            return Err(StepError::Rejected(format!("liveness of node {peer}, which is not a peer of {}", self.id)));
        };
        entry.liveness = liveness;
        if self.primary == Some(peer) && liveness != Liveness::Alive {
            // Only what is heard after this verdict can outweigh it.
            self.primary_heard_at = None;
        }
        Ok(())
    }

    /// The detector's verdict decides, except that a primary heard from
    /// since the verdict (within a takeover timeout) is not replaced: a
    /// one-sided or stale verdict must not make a node that is receiving
    /// the primary's heartbeats depose it over and over.
    fn has_live_primary(&self) -> bool {
        let heard_recently = self
            .primary_heard_at
            .is_some_and(|at| self.now.micros_since(at) < self.config.takeover_timeout_ms.saturating_mul(1_000));
        match self.primary {
            Some(primary) => primary == self.id || self.peers.is_alive(primary) || heard_recently,
            None => false,
        }
    }

    /// Runs after every step: notes when the primary was lost, and claims
    /// once this node's rank has been waited out.
    pub(crate) fn maybe_claim(&mut self, out: &mut Effects) {
        if self.has_live_primary() {
            self.leaderless_since = None;
            return;
        }
        let since = *self.leaderless_since.get_or_insert(self.now);
        // A node that may have forgotten promises never claims (amnesia.rs).
        if self.role != Role::Follower || !self.memory.is_intact() {
            return;
        }
        let rank = self.successor_rank();
        // The rank's wait comes on top of a start-up grace or a back-off.
        let due = since.max(self.claim_not_before).add_millis(rank.saturating_mul(self.config.takeover_timeout_ms));
        if self.now >= due {
            self.claim(out);
        }
    }

    fn claim(&mut self, out: &mut Effects) {
        let generation = self.hard_state.term + 1;
        // Durable before any claim leaves: a claimant that crashes and
        // restarts must not promise someone else in its own generation.
        self.set_hard_state(HardState { term: generation, vote: Some(self.id) }, out);
        self.role = Role::Candidate;
        self.primary = None;
        self.peers.reset_promises();
        self.claim_deadline = self.now.add_millis(self.config.takeover_timeout_ms);
        self.stats.takeovers_started += 1;
        let last = self.log.last_position();
        let bytes = Message::Claim { generation, last }.encode();
        for peer in self.peers.ids() {
            self.push_send(peer, bytes.clone(), true, out);
        }
        if self.config.bug == Bug::ClaimWithoutPromises || self.peers.claim_result() == ClaimResult::Won {
            self.become_primary(out);
        }
    }

    /// A claim that gathered no majority in time (or cannot any more):
    /// back off for a random part of a takeover timeout, so two nodes with
    /// the same view do not keep splitting the promises, then rank again.
    pub(crate) fn abandon_claim(&mut self, out: &mut Effects) {
        let generation = self.hard_state.term;
        self.become_backup(generation, None, out);
        let pause_ms = self.rng.range_inclusive(0, self.config.takeover_timeout_ms);
        self.claim_not_before = self.now.add_millis(pause_ms);
        self.leaderless_since = Some(self.now);
    }

    /// Promise iff the claim's generation is newer than ours (or it is the
    /// one we already promised this claimant), the claimant's log is at
    /// least as up to date as ours, and we remember all we promised.
    pub(crate) fn handle_claim(&mut self, from: NodeId, generation: Term, last: LogPosition, out: &mut Effects) {
        self.peers.set_known(from, last);
        let newer = self.generation_after(generation);
        let again = generation == self.hard_state.term && self.hard_state.vote == Some(from);
        let up_to_date =
            self.config.bug == Bug::IgnoreLongerLogs || last.at_least_as_up_to_date_as(self.log.last_position());
        let promised = (newer || again) && up_to_date && self.memory_allows_promise(last);
        if promised {
            self.set_hard_state(HardState { term: generation, vote: Some(from) }, out);
            self.stats.promises_granted += 1;
        } else {
            self.stats.promises_refused += 1;
        }
        if newer {
            self.become_backup(generation, None, out);
        }
        if promised {
            // Give the claimant a whole takeover timeout to win before
            // ranking again (this node's own rank may well be first).
            self.leaderless_since = Some(self.now);
            self.claim_not_before = self.claim_not_before.max(self.now.add_millis(self.config.takeover_timeout_ms));
        }
        let answer =
            Message::ClaimAnswer { generation: self.hard_state.term, promised, last: self.log.last_position() };
        self.send(from, &answer, out);
    }

    pub(crate) fn handle_claim_answer(&mut self, from: NodeId, promised: bool, last: LogPosition, out: &mut Effects) {
        self.peers.set_known(from, last);
        if self.role != Role::Candidate {
            return;
        }
        self.peers.record_promise(from, promised);
        match self.peers.claim_result() {
            ClaimResult::Won => self.become_primary(out),
            ClaimResult::Lost => self.abandon_claim(out),
            ClaimResult::Pending => {}
        }
    }

    fn become_primary(&mut self, out: &mut Effects) {
        assert_eq!(self.role, Role::Candidate, "only a claimant becomes primary");
        assert!(self.reads.is_empty(), "a claimant holds no reads");
        self.role = Role::Leader;
        self.primary = Some(self.id);
        self.peers.reset_progress(self.log.last_index() + 1);
        self.heartbeat_deadline = self.now.add_millis(self.config.heartbeat_interval_ms);
        self.stats.became_primary += 1;
        // Entries of earlier generations commit only with one of ours
        // (the quorum rule, Raft §5.4.2); an empty no-op of this generation
        // gets there without waiting for a client write.
        let noop = Entry {
            index: self.log.last_index() + 1,
            term: self.hard_state.term,
            kind: EntryKind::Noop,
            data: bytes::Bytes::new(),
        };
        self.append_local(vec![noop], out);
        self.broadcast_append(out);
        // Announce at once (with everyone's positions) so lower-ranked
        // nodes stop counting down.
        self.broadcast_heartbeat(out);
    }
}
