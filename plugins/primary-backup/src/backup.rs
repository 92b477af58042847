//! The backup's side: accepting appends (the prev check, conflict
//! truncation), heartbeats, snapshots, and noticing divergence.
//!
//! A backup does not take its committed prefix for the primary's, as a
//! Raft follower may: under `async` a node can have committed and applied
//! entries that the current primary never had (it was the old primary, or
//! followed one). A mismatch at or below its commit index is reported as
//! `Diverged`, and only the primary's snapshot repairs it (a rollback).
//!
//! Every answer leaves after persisting (`PrimaryBackup::send`): an
//! acceptance tells the primary the entries survive a crash.

use replab_api::{Effect, Effects, LogPosition, NodeId, Snapshot, Term};

use crate::message::{Append, AppendOutcome, Heartbeat, Message};
use crate::node::PrimaryBackup;

impl PrimaryBackup {
    /// `answer_generation` is ours, except under the
    /// `accept_lower_generation` bug, where the old primary's is echoed.
    pub(crate) fn handle_append(
        &mut self,
        from: NodeId,
        append: &Append<'_>,
        answer_generation: Term,
        out: &mut Effects,
    ) {
        let prev = append.prev;
        let base = self.log.base();
        let outcome = if prev.index < base.index {
            // Below our snapshot the generations are gone: the primary
            // compares at the snapshot's position instead.
            self.rejection(prev.index, base)
        } else if !self.log.matches(prev) {
            match self.log.hint_below(prev) {
                Some(_) if prev.index <= self.log.committed => self.diverge(),
                Some(hint) => self.rejection(prev.index, hint),
                None => self.diverge(),
            }
        } else {
            self.accept_entries(prev, append.commit, &append.entries, out)
        };
        let answer = Message::AppendAnswer { generation: answer_generation, outcome };
        self.send(from, &answer, out);
    }

    fn rejection(&self, rejected_index: u64, hint: LogPosition) -> AppendOutcome {
        AppendOutcome::Rejected { rejected_index, hint, memory_lost: !self.memory.is_intact() }
    }

    fn diverge(&mut self) -> AppendOutcome {
        self.stats.divergences_reported += 1;
        self.diverged = true;
        AppendOutcome::Diverged { applied_index: self.log.applied }
    }

    /// `prev` matched: keep what we share, truncate a conflicting suffix,
    /// append the rest, and commit what the primary says is committed, as
    /// far as this append proved our log equal to its own.
    fn accept_entries(
        &mut self,
        prev: LogPosition,
        primary_commit: u64,
        entries: &[replab_api::Entry],
        out: &mut Effects,
    ) -> AppendOutcome {
        let last_new = prev.index + entries.len() as u64;
        if let Some(first_new) = self.log.first_new(entries) {
            if first_new <= self.log.committed {
                // A committed (and applied) entry of ours is not the
                // primary's: it cannot be truncated.
                return self.diverge();
            }
            if first_new <= self.log.last_index() {
                self.log.truncate_from(first_new);
                self.stats.truncations += 1;
                out.push(Effect::TruncateLog { from: first_new });
            }
            let fresh = entries[(first_new - prev.index - 1) as usize..].to_vec();
            self.log.append(&fresh);
            out.push(Effect::AppendLog { entries: fresh });
        }
        let commit = primary_commit.min(last_new);
        if commit > self.log.committed {
            self.commit_to(commit, out);
        }
        AppendOutcome::Accepted { match_index: last_new }
    }

    pub(crate) fn handle_heartbeat(&mut self, from: NodeId, heartbeat: &Heartbeat, out: &mut Effects) {
        for &(member, position) in &heartbeat.positions {
            if member != self.id {
                self.peers.set_known(member, position);
            }
        }
        if self.committed_beyond(from, heartbeat) && !self.diverged {
            // No append would show it: the primary has nothing at those
            // indexes yet to clash with.
            let outcome = self.diverge();
            self.send(from, &Message::AppendAnswer { generation: self.hard_state.term, outcome }, out);
        }
        // The primary sent min(our match, its commit): we hold that prefix.
        let commit = heartbeat.commit.min(self.log.last_index());
        if commit > self.log.committed {
            self.commit_to(commit, out);
        }
        let answer = Message::HeartbeatAnswer { generation: self.hard_state.term, read_seq: heartbeat.read_seq };
        self.send(from, &answer, out);
    }

    /// Whether we committed past the end of the primary's log with an
    /// entry of an older generation. The primary's log only grows in its
    /// generation, so whatever it writes at our committed index will be of
    /// its generation, not ours: we hold committed entries it never had
    /// (left by an async primary). A late heartbeat cannot fool this: an
    /// entry we got from this primary is of its generation.
    fn committed_beyond(&self, primary: NodeId, heartbeat: &Heartbeat) -> bool {
        let Some(&(_, primary_last)) = heartbeat.positions.iter().find(|(member, _)| *member == primary) else {
            return false;
        };
        let committed = self.log.committed;
        committed > primary_last.index && self.log.term_at(committed).is_some_and(|t| t < heartbeat.generation)
    }

    pub(crate) fn handle_snapshot(&mut self, from: NodeId, snapshot: Snapshot, replace: bool, out: &mut Effects) {
        let covered = snapshot.meta.last_included;
        let base = self.log.base();
        let outcome = if !self.diverged && self.log.matches(covered) {
            // We hold its last entry, hence everything it covers.
            if covered.index > self.log.committed {
                self.commit_to(covered.index, out);
            }
            AppendOutcome::Accepted { match_index: covered.index }
        } else if !self.diverged && !replace && covered.index < base.index {
            // Older than our own snapshot (a late duplicate, say): compare
            // at ours rather than go back.
            self.rejection(covered.index, base)
        } else {
            self.install(snapshot, replace, out);
            AppendOutcome::Accepted { match_index: covered.index }
        };
        let answer = Message::AppendAnswer { generation: self.hard_state.term, outcome };
        self.send(from, &answer, out);
    }

    /// Replaces the state machine and the log with the primary's snapshot.
    /// Over a diverged state (reported by us, or found by the primary:
    /// `replace`), or at or below what we applied, it throws
    /// away applied entries the primary never had: a rollback.
    fn install(&mut self, snapshot: Snapshot, replace: bool, out: &mut Effects) {
        let covered = snapshot.meta.last_included;
        if self.diverged || replace || covered.index <= self.log.applied {
            self.stats.rollbacks += 1;
        }
        let later_entries = self.log.last_index() > covered.index;
        let old_commit = self.log.committed;
        out.push(Effect::InstallSnapshot { snapshot: snapshot.clone() });
        if later_entries {
            // The engine keeps log entries after a snapshot's index; ours
            // belong to another history.
            out.push(Effect::TruncateLog { from: covered.index + 1 });
            self.stats.truncations += 1;
        }
        self.log.restore(snapshot);
        self.diverged = false;
        self.stats.snapshots_installed += 1;
        if covered.index > old_commit {
            out.push(Effect::Committed { index: covered.index });
        }
    }
}
