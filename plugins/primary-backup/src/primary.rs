//! The primary's side: proposals, streaming the log (batched, pipelined
//! within the in-flight window), heartbeats, acknowledgements, and the
//! acknowledgement rule of the configured mode.
//!
//! As in Raft, the primary sends new entries the moment they are proposed,
//! before its own write is durable, and counts itself only up to its
//! durable index; backups acknowledge only after persisting.

use std::borrow::Cow;

use bytes::Bytes;
use replab_api::{Effect, Effects, Entry, EntryKind, LogPosition, NodeId, ProposalId, RejectReason, Role, StepError};

use crate::message::{Append, AppendOutcome, Heartbeat, Message};
use crate::node::PrimaryBackup;
use crate::progress::Flow;

impl PrimaryBackup {
    pub(crate) fn propose(&mut self, id: ProposalId, commands: Vec<Bytes>, out: &mut Effects) {
        let uncommitted = self.log.last_index() - self.log.committed;
        let reject = if self.role != Role::Leader {
            Some(RejectReason::NotLeader { leader_hint: self.primary })
        } else if uncommitted + commands.len() as u64 > self.config.max_uncommitted_entries {
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
        let entries: Vec<Entry> = (first_index..)
            .zip(commands)
            .map(|(index, data)| Entry { index, term, kind: EntryKind::Command, data })
            .collect();
        // Proposed first: a lone primary (or async with a fast disk report)
        // may commit these entries before this step ends.
        out.push(Effect::Proposed { id, first_index, term, count });
        self.append_local(entries, out);
        self.broadcast_append(out);
    }

    /// Appends entries of this generation to the primary's own log.
    pub(crate) fn append_local(&mut self, entries: Vec<Entry>, out: &mut Effects) {
        assert_eq!(self.role, Role::Leader, "only the primary writes its own entries");
        if entries.is_empty() {
            return;
        }
        self.log.append(&entries);
        out.push(Effect::AppendLog { entries });
    }

    /// The acknowledgement rule: the highest index the mode's copies hold
    /// durably, and only if its entry is of this generation. An entry of an
    /// earlier generation stored on a majority can still be overwritten by
    /// a primary that never had it (Raft's Figure 8), so earlier entries
    /// commit only along with one of ours (the no-op at the latest).
    pub(crate) fn maybe_commit(&mut self, out: &mut Effects) {
        if self.role != Role::Leader {
            return;
        }
        let mode = self.ack_mode();
        let index = self.peers.ack_index(mode, self.log.durable);
        if index > self.log.committed && self.log.term_at(index) == Some(self.hard_state.term) {
            self.commit_to(index, out);
        }
    }

    /// Sends `to` the next append its progress allows; an empty one (a
    /// probe) only when `send_if_empty`. Returns whether anything went.
    pub(crate) fn send_append(&mut self, to: NodeId, send_if_empty: bool, out: &mut Effects) -> bool {
        let progress = &self.peers.get(to).unwrap_or_else(|| panic!("node {to} is not a peer")).progress;
        if progress.is_paused() {
            return false;
        }
        let next = progress.next_index;
        assert!(next >= 1 && next <= self.log.last_index() + 1, "next index {next} outside the log");
        let Some(prev) = self.log.position_at(next - 1) else {
            // What the backup needs was compacted away.
            self.send_snapshot(to, false, out);
            return true;
        };
        let (entries, _) =
            self.log.batch_from(next, self.config.max_entries_per_append, self.config.max_bytes_per_append);
        if entries.is_empty() && !send_if_empty {
            return false;
        }
        let last = entries.last().map(|e| e.index);
        let append = Append {
            generation: self.hard_state.term,
            prev,
            commit: self.log.committed,
            entries: Cow::Borrowed(entries),
        };
        let bytes = Message::Append(append).encode();
        self.peers.progress_mut(to).on_sent(last);
        self.stats.appends_sent += 1;
        self.push_send(to, bytes, false, out);
        true
    }

    /// Sends the primary's latest snapshot, or asks for one and sends it
    /// when it is taken (`apply.rs`). `replace`: to repair a divergence,
    /// not to catch up.
    pub(crate) fn send_snapshot(&mut self, to: NodeId, replace: bool, out: &mut Effects) {
        let now = self.now;
        let Some(snapshot) = self.log.snapshot().cloned() else {
            self.peers.progress_mut(to).start_snapshot(0, now, replace);
            self.maybe_take_snapshot_for_backups(out);
            return;
        };
        self.peers.progress_mut(to).start_snapshot(snapshot.meta.last_included.index, now, replace);
        self.stats.snapshots_sent += 1;
        let generation = self.hard_state.term;
        self.send(to, &Message::Snapshot { generation, snapshot, replace }, out);
    }

    /// Everything the window allows: one probe, or appends up to the
    /// in-flight bound while replicating.
    pub(crate) fn send_available(&mut self, to: NodeId, out: &mut Effects) {
        while self.send_append(to, false, out) {}
    }

    pub(crate) fn broadcast_append(&mut self, out: &mut Effects) {
        for peer in self.peers.ids() {
            self.send_available(peer, out);
        }
    }

    pub(crate) fn broadcast_heartbeat(&mut self, out: &mut Effects) {
        let generation = self.hard_state.term;
        let read_seq = self.reads.last_seq();
        let mut positions = vec![(self.id, self.log.last_position())];
        positions.extend(self.peers.iter().map(|p| (p.id, p.progress.acked)));
        for peer in self.peers.ids() {
            let match_index = self.peers.progress_mut(peer).match_index;
            // A backup may commit only the prefix it is known to share.
            let commit = match_index.min(self.log.committed);
            let heartbeat = Heartbeat { generation, commit, read_seq, positions: positions.clone() };
            self.stats.heartbeats_sent += 1;
            self.send(peer, &Message::Heartbeat(heartbeat), out);
        }
    }

    pub(crate) fn handle_append_answer(
        &mut self,
        from: NodeId,
        outcome: AppendOutcome,
        out: &mut Effects,
    ) -> Result<(), StepError> {
        match outcome {
            AppendOutcome::Accepted { match_index } => {
                let Some(position) = self.log.position_at(match_index).or_else(|| {
                    // Below our snapshot: the generation is gone, the index
                    // is what counts.
                    (match_index < self.log.first_index()).then_some(LogPosition { index: match_index, term: 0 })
                }) else {
                    let last = self.log.last_index();
                    return Err(StepError::Rejected(format!(
                        "node {from} acknowledged index {match_index} beyond the primary's last index {last}"
                    )));
                };
                if self.peers.progress_mut(from).on_accepted(position) {
                    self.maybe_commit(out);
                }
                self.send_available(from, out);
            }
            AppendOutcome::Rejected { rejected_index, hint, memory_lost } => {
                self.on_rejected(from, rejected_index, hint, memory_lost, out);
            }
            AppendOutcome::Diverged { .. } => {
                if !matches!(self.peers.progress_mut(from).flow, Flow::Snapshot { .. }) {
                    // Nothing it acknowledged can be trusted until it holds
                    // our snapshot.
                    self.peers.progress_mut(from).forget(0);
                    self.send_snapshot(from, true, out);
                }
            }
        }
        Ok(())
    }

    fn on_rejected(&mut self, from: NodeId, rejected: u64, hint: LogPosition, memory_lost: bool, out: &mut Effects) {
        let progress = self.peers.progress_mut(from);
        if memory_lost {
            // What it acknowledged may be gone: start over from its log.
            progress.forget(hint.index);
            self.send_append(from, true, out);
            return;
        }
        if hint.index > rejected {
            // Its snapshot lies above the probe: compare there.
            if hint.index <= progress.match_index {
                return;
            }
            if self.log.matches(hint) {
                self.peers.progress_mut(from).on_accepted(hint);
                self.maybe_commit(out);
                self.send_available(from, out);
            } else {
                // Its snapshot holds an entry we do not: its applied state
                // is another history.
                self.send_snapshot(from, true, out);
            }
            return;
        }
        let stale = match progress.flow {
            Flow::Replicate => rejected <= progress.match_index,
            Flow::Probe { .. } => progress.next_index != rejected + 1,
            Flow::Snapshot { .. } => true,
        };
        if stale {
            return;
        }
        // Skip the backup's whole conflicting generation in one round trip.
        let target = if hint.index < self.log.base().index {
            hint.index + 1
        } else {
            self.log.hint_below(hint).map_or(self.log.base().index, |p| p.index + 1)
        };
        self.peers.progress_mut(from).probe_from(target.min(rejected));
        self.send_append(from, true, out);
    }

    pub(crate) fn handle_heartbeat_answer(&mut self, from: NodeId, read_seq: u64, out: &mut Effects) {
        let last_seq = self.reads.last_seq();
        let resend_after_us = self.config.takeover_timeout_ms * 1_000;
        let now = self.now;
        let progress = self.peers.progress_mut(from);
        progress.on_heartbeat_answer();
        if read_seq <= last_seq {
            progress.read_ack = progress.read_ack.max(read_seq);
        }
        if let Flow::Snapshot { index, sent_at, .. } = progress.flow
            && index > 0
            && now.micros_since(sent_at) >= resend_after_us
        {
            // The snapshot or its answer was lost: probe, which resends it
            // if it is still needed.
            let next = progress.match_index + 1;
            progress.probe_from(next);
        }
        if progress.match_index < self.log.last_index() {
            self.send_append(from, true, out);
        }
        self.advance_reads(out);
    }
}
