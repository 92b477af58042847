//! The follower's side of replication: accepting appends (the prev-entry
//! check, conflict truncation), heartbeats and snapshots.
//!
//! Every answer is sent `after_persist`: an acceptance tells the leader
//! that the entries survive a crash, so it may count them toward commit.

use replab_api::{Effect, Effects, Entry, LogPosition, NodeId, Snapshot};

use crate::message::{AppendOutcome, Heartbeat, HeartbeatResponse, Message};
use crate::raft::Raft;

impl Raft {
    pub(crate) fn handle_append(
        &mut self,
        from: NodeId,
        prev: LogPosition,
        leader_commit: u64,
        mut entries: Vec<Entry>,
        out: &mut Effects,
    ) {
        if prev.index < self.log.committed {
            // A stale or duplicated append: the committed prefix is known to
            // match the leader's, so say how far that goes.
            let match_index = self.log.committed;
            self.respond_append(from, AppendOutcome::Accepted { match_index }, out);
            return;
        }
        if !self.log.matches(prev) {
            let hint = self.log.find_conflict_by_term(prev.index.min(self.log.last_index()), prev.term);
            let memory_lost = !self.memory.is_intact();
            self.respond_append(from, AppendOutcome::Rejected { rejected_index: prev.index, hint, memory_lost }, out);
            return;
        }
        // Decoding checked that the indexes continue `prev` and stay far
        // from overflow.
        let last_new = prev.index + entries.len() as u64;
        if let Some(conflict) = self.log.find_conflict(&entries) {
            assert!(conflict > self.log.committed, "entries after prev ({}) are past the commit index", prev.index);
            if conflict <= self.log.last_index() {
                // Log matching: everything from the first conflict on came
                // from a leader whose entries did not commit.
                self.log.truncate_from(conflict);
                self.stats.truncations += 1;
                out.push(Effect::TruncateLog { from: conflict });
            }
            // The message's own vector goes on to the engine: no copy.
            entries.drain(..(conflict - prev.index - 1) as usize);
            self.log.append(&entries);
            out.push(Effect::AppendLog { entries });
        }
        // Only the prefix this append proved to match may be committed; our
        // log may hold an unverified tail beyond `last_new`.
        let commit = leader_commit.min(last_new);
        if commit > self.log.committed {
            self.commit_to(commit, out);
        }
        self.respond_append(from, AppendOutcome::Accepted { match_index: last_new }, out);
    }

    pub(crate) fn handle_heartbeat(&mut self, from: NodeId, heartbeat: &Heartbeat, out: &mut Effects) {
        // The leader sent min(our match, its commit): we hold that prefix.
        let commit = heartbeat.commit.min(self.log.last_index());
        if commit > self.log.committed {
            self.commit_to(commit, out);
        }
        let term = self.hard_state.term;
        // Not after_persist: it promises no durable state, and a read waits
        // on it.
        let answer = Message::HeartbeatResponse(HeartbeatResponse { term, read_seq: heartbeat.read_seq });
        self.send(from, &answer, false, out);
    }

    pub(crate) fn handle_install_snapshot(&mut self, from: NodeId, snapshot: Snapshot, out: &mut Effects) {
        let covered = snapshot.meta.last_included;
        if covered.index <= self.log.committed {
            let match_index = self.log.committed;
            self.respond_append(from, AppendOutcome::Accepted { match_index }, out);
            return;
        }
        if self.log.matches(covered) {
            // We already hold the snapshot's last entry, hence (log
            // matching) everything it covers: just commit up to it.
            self.commit_to(covered.index, out);
        } else {
            if self.log.last_index() > covered.index {
                // Our entry at the snapshot's index differs, so every later
                // entry belongs to another history.
                self.log.truncate_from(covered.index + 1);
                self.stats.truncations += 1;
                out.push(Effect::TruncateLog { from: covered.index + 1 });
            }
            out.push(Effect::InstallSnapshot { snapshot: snapshot.clone() });
            self.log.restore(snapshot);
            self.stats.snapshots_installed += 1;
            out.push(Effect::Committed { index: covered.index });
        }
        self.respond_append(from, AppendOutcome::Accepted { match_index: covered.index }, out);
    }
}
