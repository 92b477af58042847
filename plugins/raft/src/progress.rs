//! What the leader knows about one follower's log, and how it replicates
//! to it (etcd's `tracker.Progress`).
//!
//! * **Probe**: the leader does not know where the follower's log matches
//!   its own. It sends one append at a time and waits for the answer (or
//!   the next heartbeat response) before sending another; rejections move
//!   `next_index` back.
//! * **Replicate**: the follower matched; the leader streams appends,
//!   advancing `next_index` optimistically, bounded by the in-flight
//!   window. A rejection drops back to probe.
//! * **Snapshot**: the follower needs entries that were compacted away; a
//!   snapshot is on its way and nothing else is sent until it is answered.

use replab_api::{Instant, LogIndex};

use crate::inflights::Inflights;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressState {
    Probe,
    Replicate,
    Snapshot,
}

#[derive(Debug)]
pub struct Progress {
    /// Highest index known to be durably replicated on the follower.
    pub match_index: LogIndex,
    /// Next index to send.
    pub next_index: LogIndex,
    state: ProgressState,
    /// Probe state: an append is out and unanswered.
    probe_sent: bool,
    /// Snapshot state: the index of the snapshot sent.
    pending_snapshot: LogIndex,
    pub snapshot_sent_at: Instant,
    /// Heard from in the current CheckQuorum period.
    pub recent_active: bool,
    /// Highest ReadIndex round (heartbeat sequence) the follower confirmed.
    pub read_ack: u64,
    pub inflights: Inflights,
}

/// A read-only view of one follower's progress, for tests and status pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgressView {
    pub state: ProgressState,
    pub match_index: LogIndex,
    pub next_index: LogIndex,
    pub inflight_messages: usize,
    pub inflight_bytes: usize,
}

impl Progress {
    pub fn new(next_index: LogIndex, max_inflight_messages: usize, max_inflight_bytes: usize) -> Progress {
        Progress {
            match_index: 0,
            next_index,
            state: ProgressState::Probe,
            probe_sent: false,
            pending_snapshot: 0,
            snapshot_sent_at: Instant::ZERO,
            recent_active: false,
            read_ack: 0,
            inflights: Inflights::new(max_inflight_messages, max_inflight_bytes),
        }
    }

    pub fn state(&self) -> ProgressState {
        self.state
    }

    pub fn view(&self) -> ProgressView {
        ProgressView {
            state: self.state,
            match_index: self.match_index,
            next_index: self.next_index,
            inflight_messages: self.inflights.count(),
            inflight_bytes: self.inflights.bytes(),
        }
    }

    /// Starts a new leadership term for this follower: nothing is known.
    pub fn reset(&mut self, next_index: LogIndex) {
        self.match_index = 0;
        self.next_index = next_index;
        self.state = ProgressState::Probe;
        self.probe_sent = false;
        self.pending_snapshot = 0;
        self.recent_active = false;
        self.read_ack = 0;
        self.inflights.reset();
    }

    /// The follower lost durable state: nothing it acknowledged is known
    /// to be there. Probe again from just after its last entry (`hint`).
    pub fn forget_match(&mut self, hint: LogIndex) {
        self.match_index = 0;
        self.next_index = hint.saturating_add(1).min(self.next_index).max(1);
        self.state = ProgressState::Probe;
        self.probe_sent = false;
        self.pending_snapshot = 0;
        self.inflights.reset();
    }

    pub fn become_probe(&mut self) {
        // After a snapshot the follower most likely holds it, so probe right
        // after it rather than from the old match.
        self.next_index = if self.state == ProgressState::Snapshot {
            (self.match_index + 1).max(self.pending_snapshot + 1)
        } else {
            self.match_index + 1
        };
        self.state = ProgressState::Probe;
        self.probe_sent = false;
        self.pending_snapshot = 0;
        self.inflights.reset();
    }

    pub fn become_replicate(&mut self) {
        self.state = ProgressState::Replicate;
        self.next_index = self.match_index + 1;
        self.probe_sent = false;
        self.inflights.reset();
    }

    pub fn become_snapshot(&mut self, snapshot_index: LogIndex, now: Instant) {
        self.state = ProgressState::Snapshot;
        self.pending_snapshot = snapshot_index;
        self.snapshot_sent_at = now;
        self.probe_sent = false;
        self.inflights.reset();
    }

    pub fn pending_snapshot(&self) -> LogIndex {
        self.pending_snapshot
    }

    /// Whether the leader must hold back appends to this follower.
    pub fn is_paused(&self) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => self.inflights.full(),
            ProgressState::Snapshot => true,
        }
    }

    /// A heartbeat response proves the follower reachable: allow another
    /// probe, and in a window that stayed full (its acks were lost) free a
    /// slot so a resynchronising append can go out.
    pub fn on_heartbeat_response(&mut self) {
        self.probe_sent = false;
        if self.state == ProgressState::Replicate && self.inflights.full() {
            self.inflights.free_first_one();
        }
    }

    /// Records an append of entries up to `last_index` (`bytes` long) sent
    /// from `next_index`. An empty append only marks a probe as sent.
    pub fn on_append_sent(&mut self, last_index: Option<LogIndex>, bytes: usize) {
        match self.state {
            ProgressState::Replicate => {
                if let Some(last) = last_index {
                    assert!(last >= self.next_index, "replicate must send from next_index");
                    self.next_index = last + 1;
                    self.inflights.add(last, bytes);
                }
            }
            ProgressState::Probe => self.probe_sent = true,
            ProgressState::Snapshot => unreachable!("appends are paused while a snapshot is in flight"),
        }
    }

    /// An acknowledgement that the follower matches up to `index`. Returns
    /// false for a stale acknowledgement that teaches nothing new.
    pub fn maybe_update(&mut self, index: LogIndex) -> bool {
        let updated = index > self.match_index;
        if updated {
            self.match_index = index;
            self.probe_sent = false;
        }
        self.next_index = self.next_index.max(index + 1);
        if self.state == ProgressState::Replicate {
            self.inflights.free_up_to(index);
        }
        updated
    }

    /// A rejection of the append whose previous entry was `rejected`.
    /// `probe_hint` is the leader's best guess of the last matching index.
    /// Returns false for a stale rejection (of an append answered since).
    pub fn maybe_decrease_to(&mut self, rejected: LogIndex, probe_hint: LogIndex) -> bool {
        if self.state == ProgressState::Replicate {
            if rejected <= self.match_index {
                return false;
            }
            // Everything after the match is in doubt; the caller moves the
            // follower to probe, which restarts from match + 1.
            self.next_index = self.match_index + 1;
            return true;
        }
        if self.next_index.checked_sub(1) != Some(rejected) {
            return false;
        }
        self.next_index = rejected.min(probe_hint.saturating_add(1)).max(self.match_index + 1);
        self.probe_sent = false;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_sends_one_at_a_time() {
        let mut p = Progress::new(10, 4, 1000);
        assert!(!p.is_paused());
        p.on_append_sent(Some(12), 10);
        assert!(p.is_paused());
        p.on_heartbeat_response();
        assert!(!p.is_paused());
    }

    #[test]
    fn replicate_pipelines_until_the_window_is_full() {
        let mut p = Progress::new(1, 2, 1000);
        assert!(p.maybe_update(3));
        p.become_replicate();
        assert_eq!(p.next_index, 4);
        p.on_append_sent(Some(5), 10);
        assert!(!p.is_paused());
        p.on_append_sent(Some(7), 10);
        assert!(p.is_paused());
        assert_eq!(p.next_index, 8);
        // The first ack frees the first message.
        assert!(p.maybe_update(5));
        assert!(!p.is_paused());
        assert_eq!(p.inflights.count(), 1);
    }

    #[test]
    fn heartbeat_frees_a_window_whose_acks_were_lost() {
        let mut p = Progress::new(1, 1, 1000);
        p.become_replicate();
        p.on_append_sent(Some(3), 10);
        assert!(p.is_paused());
        p.on_heartbeat_response();
        assert!(!p.is_paused());
    }

    #[test]
    fn rejection_in_probe_moves_next_back_using_the_hint() {
        let mut p = Progress::new(11, 4, 1000);
        // Stale: this append was not the one from next - 1.
        assert!(!p.maybe_decrease_to(5, 2));
        assert!(p.maybe_decrease_to(10, 3));
        assert_eq!(p.next_index, 4);
        // Never below match + 1.
        p.match_index = 5;
        p.next_index = 9;
        assert!(p.maybe_decrease_to(8, 0));
        assert_eq!(p.next_index, 6);
    }

    #[test]
    fn rejection_in_replicate_restarts_from_the_match() {
        let mut p = Progress::new(1, 4, 1000);
        p.maybe_update(5);
        p.become_replicate();
        p.on_append_sent(Some(9), 10);
        assert!(!p.maybe_decrease_to(4, 0), "a rejection below the match is stale");
        assert!(p.maybe_decrease_to(7, 0));
        assert_eq!(p.next_index, 6);
    }

    #[test]
    fn nonsense_rejection_indexes_do_not_overflow() {
        let mut p = Progress::new(1, 4, 1000);
        assert!(!p.maybe_decrease_to(u64::MAX, u64::MAX));
        assert!(p.maybe_decrease_to(0, u64::MAX));
        assert_eq!(p.next_index, 1);
    }

    #[test]
    fn snapshot_pauses_until_answered() {
        let mut p = Progress::new(3, 4, 1000);
        p.become_snapshot(50, Instant::ZERO);
        assert!(p.is_paused());
        p.maybe_update(50);
        p.become_probe();
        assert_eq!(p.next_index, 51);
        assert!(!p.is_paused());
    }
}
