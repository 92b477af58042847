//! Which operations the latency plot draws when there are too many.
//!
//! A dot costs about 100 bytes of SVG and the browser's time to lay it
//! out; a 100,000-operation run drawn whole would be a 10 MB page that
//! scrolls badly and shows nothing a tenth of the dots would not. Beyond
//! [`MAX_DOTS`] the plot keeps every failed and unknown operation (the
//! rare ones that matter, up to half the budget) and an even stride of the
//! acknowledged ones, and says so on the plot.

use crate::check::{Operation, Outcome};

/// Dots on the latency plot at most.
pub const MAX_DOTS: usize = 10_000;

/// The operations kept, and how, for the plot's note.
pub struct Sample<'h> {
    pub kept: Vec<&'h Operation>,
    /// Plottable operations (those with a completion time).
    pub total: usize,
    /// Every `ok_stride`-th acknowledged operation is kept (1: all).
    pub ok_stride: usize,
    /// Every `other_stride`-th failed or unknown operation is kept.
    pub other_stride: usize,
}

impl Sample<'_> {
    pub fn is_sampled(&self) -> bool {
        self.kept.len() < self.total
    }

    /// The sentence the plot shows when it is a sample.
    pub fn note(&self) -> String {
        let others = if self.other_stride == 1 { "all".to_string() } else { format!("every {}th", self.other_stride) };
        format!(
            "sampled: {} of {} operations drawn (every {}th acknowledged one, {others} failed and unknown ones)",
            self.kept.len(),
            self.total,
            self.ok_stride
        )
    }
}

/// Keeps at most `max` of the operations that have a completion time.
pub fn sample<'h>(ops: impl Iterator<Item = &'h Operation>, max: usize) -> Sample<'h> {
    let plottable: Vec<&Operation> = ops.filter(|op| op.complete_us.is_some()).collect();
    let total = plottable.len();
    if total <= max {
        return Sample { kept: plottable, total, ok_stride: 1, other_stride: 1 };
    }
    let is_ok = |op: &Operation| matches!(op.outcome, Outcome::Ok(_));
    let others = plottable.iter().filter(|op| !is_ok(op)).count();
    let other_budget = (max / 2).max(1);
    let other_stride = others.div_ceil(other_budget).max(1);
    let others_kept = others.div_ceil(other_stride);
    let ok_budget = (max - others_kept.min(max)).max(1);
    let ok_stride = (total - others).div_ceil(ok_budget).max(1);
    let (mut seen_ok, mut seen_other) = (0usize, 0usize);
    let kept = plottable
        .into_iter()
        .filter(|op| {
            let (seen, stride) = if is_ok(op) { (&mut seen_ok, ok_stride) } else { (&mut seen_other, other_stride) };
            *seen += 1;
            (*seen - 1) % stride == 0
        })
        .collect();
    Sample { kept, total, ok_stride, other_stride }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::simulate::{SimulationParams, simulate_history};

    #[test]
    fn a_large_history_is_cut_to_the_budget_keeping_every_unknown_operation() {
        let params = SimulationParams { ops: 20_000, unknown_rate: 0.01, ..SimulationParams::default() };
        let history = simulate_history(&params);
        let s = sample(history.iter(), 2_000);
        assert!(s.is_sampled());
        assert!(s.kept.len() <= 2_000, "{}", s.kept.len());
        assert!(s.kept.len() > 1_800, "{}", s.kept.len());
        let unknown_with_completion =
            history.iter().filter(|op| op.outcome.is_unknown() && op.complete_us.is_some()).count();
        assert_eq!(s.kept.iter().filter(|op| op.outcome.is_unknown()).count(), unknown_with_completion);
        assert!(s.note().contains(&format!("of {} operations", s.total)), "{}", s.note());
        let small = sample(history.iter().take(100), 2_000);
        assert!(!small.is_sampled());
    }
}
