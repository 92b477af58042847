//! What the primary knows about one backup's log and how it streams to it.
//!
//! * `Probe`: where the logs match is unknown; one append at a time, and
//!   rejections move `next_index` back.
//! * `Replicate`: the backup matched; appends stream ahead of the
//!   acknowledgements (pipelining), bounded by `max_inflight_appends`.
//! * `Snapshot`: the backup needs the primary's state whole (it is behind
//!   the compacted log, or it diverged); nothing else goes until it
//!   answers. `index` 0 means the snapshot is still being taken.

use std::collections::VecDeque;

use replab_api::{Instant, LogIndex, LogPosition};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Probe {
        sent: bool,
    },
    Replicate,
    /// `replace`: sent to repair a divergence (see `Message::Snapshot`).
    Snapshot {
        index: LogIndex,
        sent_at: Instant,
        replace: bool,
    },
}

#[derive(Debug)]
pub struct Progress {
    /// Highest index known durable on the backup and equal to ours.
    pub match_index: LogIndex,
    /// The backup's acknowledged position (`match_index` and its
    /// generation), which heartbeats tell the other members.
    pub acked: LogPosition,
    pub next_index: LogIndex,
    pub flow: Flow,
    /// Last index carried by each unacknowledged append, oldest first.
    inflight: VecDeque<LogIndex>,
    max_inflight: usize,
    /// Highest read round the backup echoed.
    pub read_ack: u64,
}

impl Progress {
    pub fn new(next_index: LogIndex, max_inflight: usize) -> Progress {
        assert!(max_inflight > 0, "an in-flight window needs room");
        Progress {
            match_index: 0,
            acked: LogPosition::default(),
            next_index,
            flow: Flow::Probe { sent: false },
            inflight: VecDeque::with_capacity(max_inflight),
            max_inflight,
            read_ack: 0,
        }
    }

    /// A new generation starts knowing nothing about the backup.
    pub fn reset(&mut self, next_index: LogIndex) {
        *self = Progress::new(next_index, self.max_inflight);
    }

    pub fn inflight(&self) -> usize {
        self.inflight.len()
    }

    pub fn is_paused(&self) -> bool {
        match self.flow {
            Flow::Probe { sent } => sent,
            Flow::Replicate => self.inflight.len() >= self.max_inflight,
            Flow::Snapshot { .. } => true,
        }
    }

    pub fn probe_from(&mut self, next_index: LogIndex) {
        self.next_index = next_index.max(self.match_index + 1);
        self.flow = Flow::Probe { sent: false };
        self.inflight.clear();
    }

    pub fn start_snapshot(&mut self, index: LogIndex, now: Instant, replace: bool) {
        self.flow = Flow::Snapshot { index, sent_at: now, replace };
        self.inflight.clear();
    }

    /// Records an append whose last entry is `last` (`None`: empty).
    pub fn on_sent(&mut self, last: Option<LogIndex>) {
        match (self.flow, last) {
            (Flow::Probe { .. }, _) => self.flow = Flow::Probe { sent: true },
            (Flow::Replicate, Some(last)) => {
                assert!(self.inflight.back().is_none_or(|&b| last > b), "appends carry increasing indexes");
                self.next_index = last + 1;
                self.inflight.push_back(last);
            }
            (Flow::Replicate, None) => {}
            (Flow::Snapshot { .. }, _) => unreachable!("appends wait while a snapshot is on its way"),
        }
    }

    /// An acceptance up to `position`. Returns whether it taught anything.
    pub fn on_accepted(&mut self, position: LogPosition) -> bool {
        while self.inflight.front().is_some_and(|&last| last <= position.index) {
            self.inflight.pop_front();
        }
        if position.index <= self.match_index {
            return false;
        }
        self.match_index = position.index;
        self.acked = position;
        self.next_index = self.next_index.max(position.index + 1);
        let start_streaming = match self.flow {
            Flow::Probe { .. } => true,
            // A late answer to an older append does not mean the snapshot
            // arrived.
            Flow::Snapshot { index, .. } => position.index >= index,
            Flow::Replicate => false,
        };
        if start_streaming {
            self.flow = Flow::Replicate;
            self.next_index = position.index + 1;
        }
        true
    }

    /// A heartbeat answer proves the backup reachable: another probe may
    /// go, and a window whose acknowledgements were lost frees one slot.
    pub fn on_heartbeat_answer(&mut self) {
        match self.flow {
            Flow::Probe { .. } => self.flow = Flow::Probe { sent: false },
            Flow::Replicate if self.inflight.len() >= self.max_inflight => {
                self.inflight.pop_front();
            }
            _ => {}
        }
    }

    /// The backup lost durable state: nothing it acknowledged may be there.
    pub fn forget(&mut self, hint: LogIndex) {
        self.match_index = 0;
        self.acked = LogPosition::default();
        self.probe_from(hint.saturating_add(1).min(self.next_index).max(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(index: LogIndex) -> LogPosition {
        LogPosition { index, term: 1 }
    }

    #[test]
    fn probes_one_at_a_time_then_streams_within_the_window() {
        let mut p = Progress::new(5, 2);
        p.on_sent(Some(6));
        assert!(p.is_paused());
        p.on_heartbeat_answer();
        assert!(!p.is_paused());
        assert!(p.on_accepted(at(4)));
        assert_eq!((p.flow, p.next_index), (Flow::Replicate, 5));
        p.on_sent(Some(6));
        p.on_sent(Some(8));
        assert!(p.is_paused());
        assert!(p.on_accepted(at(6)));
        assert!(!p.is_paused());
        assert!(!p.on_accepted(at(5)), "stale");
        assert_eq!(p.next_index, 9);
    }

    #[test]
    fn a_snapshot_pauses_until_accepted() {
        let mut p = Progress::new(5, 2);
        p.start_snapshot(30, Instant::ZERO, false);
        assert!(p.is_paused());
        assert!(p.on_accepted(at(30)));
        assert_eq!(p.next_index, 31);
        assert!(!p.is_paused());
    }

    #[test]
    fn forgetting_never_moves_next_to_zero() {
        let mut p = Progress::new(5, 2);
        p.on_accepted(at(4));
        p.forget(u64::MAX);
        assert_eq!((p.match_index, p.next_index), (0, 5));
        p.forget(0);
        assert_eq!(p.next_index, 1);
    }
}
