//! The faults a script injected, as windows with a start and an end: what
//! the report shades on its time axis.
//!
//! The timeline keeps every event as a sentence for people; this keeps
//! the same faults structured, so nothing has to parse those sentences. A
//! fault opens a window (crash, partition, pause, skew, link faults) and
//! the call that undoes it closes it: restart closes the node's crash,
//! resume its pause, a skew of 0 its skew, heal every partition and link
//! fault. Setting a fault again on the same target (another skew, other
//! link faults) closes the old window and opens a new one. A window still
//! open when the run ends reaches the end of the run and says so.

use serde::Serialize;

use replab_api::NodeId;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// A node down (crash or power loss) until its restart.
    Crash,
    /// Links cut: a partition, an isolated node or a one-way cut, until heal.
    Partition,
    /// A node frozen until resume.
    Pause,
    /// A node's wall clock shifted, until set back to 0.
    Skew,
    /// Lossy, slow, duplicating or reordering links, until heal.
    Link,
}

impl FaultKind {
    pub const ALL: [FaultKind; 5] =
        [FaultKind::Crash, FaultKind::Partition, FaultKind::Pause, FaultKind::Skew, FaultKind::Link];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Crash => "crash",
            FaultKind::Partition => "partition",
            FaultKind::Pause => "pause",
            FaultKind::Skew => "skew",
            FaultKind::Link => "link faults",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FaultWindow {
    pub kind: FaultKind,
    /// What the script did, for the plot's label: "crash node 1".
    pub label: String,
    /// The nodes it struck.
    pub nodes: Vec<NodeId>,
    /// Seconds since the run started.
    pub start_s: f64,
    /// When it was undone, or the run's end.
    pub end_s: f64,
    /// The fault was never undone: `end_s` is where the run ended.
    pub open_at_end: bool,
    /// Which fault of its kind this is: a node ("node 1") or a link
    /// ("1 -> 2"); windows with the same target replace each other.
    #[serde(skip)]
    target: String,
}

/// Every window of a run, in the order the faults began.
#[derive(Debug, Default)]
pub struct FaultLog {
    windows: Vec<FaultWindow>,
    /// Indexes of the windows not yet closed.
    open: Vec<usize>,
}

impl FaultLog {
    /// A fault begins. An open window of the same kind on the same target
    /// ends here first.
    pub fn open(&mut self, at_s: f64, kind: FaultKind, target: String, label: String, nodes: Vec<NodeId>) {
        self.close(at_s, kind, &target);
        self.open.push(self.windows.len());
        self.windows.push(FaultWindow { kind, label, nodes, start_s: at_s, end_s: at_s, open_at_end: true, target });
    }

    /// The fault on `target` is undone.
    pub fn close(&mut self, at_s: f64, kind: FaultKind, target: &str) {
        self.close_where(at_s, |w| w.kind == kind && w.target == target);
    }

    /// Every open fault of these kinds is undone (heal).
    pub fn close_kinds(&mut self, at_s: f64, kinds: &[FaultKind]) {
        self.close_where(at_s, |w| kinds.contains(&w.kind));
    }

    fn close_where(&mut self, at_s: f64, matches: impl Fn(&FaultWindow) -> bool) {
        let windows = &mut self.windows;
        self.open.retain(|&i| {
            let w = &mut windows[i];
            if matches(w) {
                w.end_s = at_s;
                w.open_at_end = false;
                false
            } else {
                true
            }
        });
    }

    /// Every window; the open ones reach `end_s`.
    pub fn windows(&self, end_s: f64) -> Vec<FaultWindow> {
        let mut windows = self.windows.clone();
        for &i in &self.open {
            windows[i].end_s = end_s.max(windows[i].start_s);
        }
        windows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undoing_a_fault_closes_its_window_and_what_is_never_undone_reaches_the_end() {
        let mut log = FaultLog::default();
        log.open(1.0, FaultKind::Crash, "node 1".into(), "crash node 1".into(), vec![1]);
        log.open(1.5, FaultKind::Partition, "[1] | [2, 3]".into(), "partition".into(), vec![1, 2, 3]);
        log.open(1.6, FaultKind::Link, "1 -> 2".into(), "link 1 -> 2".into(), vec![1, 2]);
        log.open(2.0, FaultKind::Skew, "node 2".into(), "skew +5 s".into(), vec![2]);
        log.open(2.5, FaultKind::Skew, "node 2".into(), "skew -5 s".into(), vec![2]);
        log.close(3.0, FaultKind::Crash, "node 1");
        log.close(3.0, FaultKind::Crash, "node 1");
        log.close_kinds(4.0, &[FaultKind::Partition, FaultKind::Link]);
        let w = log.windows(9.0);
        let spans: Vec<(FaultKind, f64, f64, bool)> =
            w.iter().map(|w| (w.kind, w.start_s, w.end_s, w.open_at_end)).collect();
        assert_eq!(
            spans,
            vec![
                (FaultKind::Crash, 1.0, 3.0, false),
                (FaultKind::Partition, 1.5, 4.0, false),
                (FaultKind::Link, 1.6, 4.0, false),
                (FaultKind::Skew, 2.0, 2.5, false),
                (FaultKind::Skew, 2.5, 9.0, true),
            ]
        );
    }
}
