//! The leader's side of log replication: proposals, appends (batched,
//! pipelined within the in-flight window), heartbeats, acknowledgements,
//! and the commit rule.
//!
//! The leader sends its own appends at once, but counts itself toward the
//! quorum only up to its durable index; followers acknowledge only after
//! persisting. So the commit index never runs ahead of what a quorum can
//! recover after a crash.

use std::borrow::Cow;

use bytes::Bytes;
use replab_api::{
    Effect, Effects, Entry, EntryKind, LogIndex, LogPosition, NodeId, ProposalId, RejectReason, Role, StepError,
};

use crate::config::Bug;
use crate::message::{AppendOutcome, AppendRequest, Heartbeat, InstallSnapshotRequest, Message};
use crate::progress::ProgressState;
use crate::raft::Raft;

impl Raft {
    pub(crate) fn propose(&mut self, id: ProposalId, commands: Vec<Bytes>, out: &mut Effects) {
        let reject = if self.role != Role::Leader {
            Some(RejectReason::NotLeader { leader_hint: self.leader })
        } else if self.transfer.is_some() {
            Some(RejectReason::TransferInProgress)
        } else if self.log.last_index() - self.log.committed + commands.len() as u64
            > self.config.max_uncommitted_entries
        {
            Some(RejectReason::Busy)
        } else {
            None
        };
        if let Some(reason) = reject {
            out.push(Effect::ProposalRejected { id, reason });
            return;
        }
        let term = self.hard_state.term;
        let first_index = self.log.last_index() + 1;
        let count = commands.len() as u64;
        let entries: Vec<Entry> = commands
            .into_iter()
            .enumerate()
            .map(|(i, data)| Entry { index: first_index + i as u64, term, kind: EntryKind::Command, data })
            .collect();
        // Proposed first: the engine learns where the entries sit before
        // anything can apply them (a leader alone, or Bug::CommitWithoutQuorum,
        // commits them in this very step).
        out.push(Effect::Proposed { id, first_index, term, count });
        self.append_local(entries, out);
        self.broadcast_append(out);
    }

    /// Appends entries of the current term to the leader's own log.
    pub(crate) fn append_local(&mut self, entries: Vec<Entry>, out: &mut Effects) {
        assert_eq!(self.role, Role::Leader, "only the leader appends its own entries");
        if entries.is_empty() {
            return;
        }
        self.log.append(&entries);
        out.push(Effect::AppendLog { entries });
        if self.config.bug == Bug::CommitWithoutQuorum {
            self.maybe_commit(out);
        }
    }

    /// The commit rule. The leader's quorum counts durable copies only, and
    /// an index is committed by counting replicas only if its entry is of
    /// the current term (Raft §5.4.2, Figure 8): an older-term entry on a
    /// majority can still be overwritten by a leader that never saw it.
    /// Earlier entries are committed indirectly, with the first entry of
    /// the current term that a quorum stores.
    pub(crate) fn maybe_commit(&mut self, out: &mut Effects) -> bool {
        if self.role != Role::Leader {
            return false;
        }
        let index = if self.config.bug == Bug::CommitWithoutQuorum {
            self.log.last_index()
        } else {
            self.tracker.committed_index(self.log.durable)
        };
        if index <= self.log.committed {
            return false;
        }
        // Only an entry of the current term is committed by counting
        // replicas (Bug::CommitPreviousTerm drops this condition).
        if self.config.bug != Bug::CommitPreviousTerm && self.log.term_at(index) != Some(self.hard_state.term) {
            return false;
        }
        self.commit_to(index, out);
        true
    }

    /// Sends the next append to `to` if its progress allows. An empty
    /// append (a probe, or a commit-index carrier) goes out only when
    /// `send_if_empty`. Returns whether a message was sent.
    pub(crate) fn maybe_send_append(&mut self, to: NodeId, send_if_empty: bool, out: &mut Effects) -> bool {
        let Some(progress) = self.tracker.get(to) else {
            return false;
        };
        if progress.is_paused() {
            return false;
        }
        let next = progress.next_index;
        assert!(next >= 1 && next <= self.log.last_index() + 1, "next index {next} outside the log");
        let prev_index = next - 1;
        let Some(prev_term) = self.log.term_at(prev_index) else {
            // The entries the follower needs were compacted away.
            self.send_snapshot(to, out);
            return true;
        };
        let (entries, batch_bytes) =
            self.log.batch_from(next, self.config.max_entries_per_append, self.config.max_bytes_per_append);
        if entries.is_empty() && !send_if_empty {
            return false;
        }
        let last = entries.last().map(|e| e.index);
        let message = Message::Append(AppendRequest {
            term: self.hard_state.term,
            prev: LogPosition { index: prev_index, term: prev_term },
            commit: self.log.committed,
            entries: Cow::Borrowed(entries),
        });
        let bytes = message.encode();
        self.tracker.get_mut(to).expect("looked up above").on_append_sent(last, batch_bytes);
        self.stats.appends_sent += 1;
        self.push_send(to, bytes, false, out);
        true
    }

    fn send_snapshot(&mut self, to: NodeId, out: &mut Effects) {
        let snapshot = self.log.snapshot().expect("the log was compacted, so a snapshot exists").clone();
        let index = snapshot.meta.last_included.index;
        let message = Message::InstallSnapshot(InstallSnapshotRequest { term: self.hard_state.term, snapshot });
        let bytes = message.encode();
        let now = self.now;
        self.tracker.get_mut(to).expect("a known peer").become_snapshot(index, now);
        self.stats.snapshots_sent += 1;
        self.push_send(to, bytes, false, out);
    }

    /// Sends `to` everything its progress allows: one probe, or appends up
    /// to the in-flight window in the replicate state (pipelining).
    pub(crate) fn send_available(&mut self, to: NodeId, out: &mut Effects) {
        while self.maybe_send_append(to, false, out) {}
    }

    pub(crate) fn broadcast_append(&mut self, out: &mut Effects) {
        for i in 0..self.tracker.peers().len() {
            let peer = self.tracker.peers()[i];
            self.send_available(peer, out);
        }
    }

    pub(crate) fn broadcast_heartbeat(&mut self, out: &mut Effects) {
        let term = self.hard_state.term;
        let read_seq = self.reads.last_seq();
        for i in 0..self.tracker.peers().len() {
            let peer = self.tracker.peers()[i];
            let match_index = self.tracker.get(peer).expect("a known peer").match_index;
            // Only the prefix the follower is known to share may be
            // committed by it.
            let commit = match_index.min(self.log.committed);
            self.stats.heartbeats_sent += 1;
            self.send(peer, &Message::Heartbeat(Heartbeat { term, commit, read_seq }), false, out);
        }
    }

    pub(crate) fn handle_append_response(
        &mut self,
        from: NodeId,
        outcome: &AppendOutcome,
        out: &mut Effects,
    ) -> Result<(), StepError> {
        let last_index = self.log.last_index();
        let progress = self.tracker.get_mut(from).expect("step checked the peer");
        progress.recent_active = true;
        match *outcome {
            AppendOutcome::Rejected { rejected_index, hint, memory_lost } => {
                self.stats.append_rejections += 1;
                if memory_lost {
                    // What it acknowledged before may be gone: the match
                    // index is no longer true, and rejections below it are
                    // not stale. Probe again from its last entry.
                    self.stats.progress_resets_after_memory_loss += 1;
                    self.tracker.get_mut(from).expect("step checked the peer").forget_match(hint.index);
                    self.maybe_send_append(from, true, out);
                    return Ok(());
                }
                // Skip the follower's whole conflicting term in one step.
                let probe = if hint.term > 0 {
                    self.log.find_conflict_by_term(hint.index, hint.term).index
                } else {
                    hint.index
                };
                let progress = self.tracker.get_mut(from).expect("step checked the peer");
                if progress.maybe_decrease_to(rejected_index, probe) {
                    if progress.state() == ProgressState::Replicate {
                        progress.become_probe();
                    }
                    self.maybe_send_append(from, true, out);
                }
            }
            AppendOutcome::Accepted { match_index } => {
                if match_index > last_index {
                    return Err(StepError::Rejected(format!(
                        "node {from} acknowledged index {match_index} beyond the leader's last index {last_index}"
                    )));
                }
                if progress.maybe_update(match_index) {
                    match progress.state() {
                        ProgressState::Probe => progress.become_replicate(),
                        ProgressState::Snapshot if progress.match_index >= progress.pending_snapshot() => {
                            progress.become_replicate();
                        }
                        _ => {}
                    }
                    self.maybe_commit(out);
                    self.maybe_send_timeout_now(from, out);
                }
                self.send_available(from, out);
            }
        }
        Ok(())
    }

    pub(crate) fn handle_heartbeat_response(&mut self, from: NodeId, read_seq: u64, out: &mut Effects) {
        let last_index = self.log.last_index();
        let last_seq = self.reads.last_seq();
        let now = self.now;
        let election_timeout_us = self.election_timeout_min_us();
        let progress = self.tracker.get_mut(from).expect("step checked the peer");
        progress.recent_active = true;
        progress.on_heartbeat_response();
        if read_seq <= last_seq {
            progress.read_ack = progress.read_ack.max(read_seq);
        }
        if progress.state() == ProgressState::Snapshot
            && now.micros_since(progress.snapshot_sent_at) >= election_timeout_us
        {
            // The snapshot or its answer was lost: probe again, which
            // resends it if it is still needed.
            progress.become_probe();
        }
        let behind = progress.match_index < last_index;
        if behind {
            // Sent even if empty: in the replicate state, this detects
            // appends that were lost while the window was not full.
            self.maybe_send_append(from, true, out);
        }
        self.advance_reads(out);
    }

    pub(crate) fn match_index_of(&self, peer: NodeId) -> Option<LogIndex> {
        self.tracker.get(peer).map(|p| p.match_index)
    }
}
