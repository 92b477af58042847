//! Throughput over time: acknowledged operations per second in fixed
//! buckets, and the failed or unknown ones beside them, on the latency
//! plot's time axis (same width, same margins: they line up).

use plotters::prelude::*;

use super::svg_layers::{Layer, compose, err, legend};
use super::time_axis::{FONT, PLOT_WIDTH_PX, TimeAxis};
use crate::check::{History, Outcome};
use crate::scenario::fault_windows::FaultWindow;
use crate::scenario::leader_watch::Leadership;

const HEIGHT_PX: u32 = 280;
/// About this many buckets over the run.
const BUCKETS: f64 = 120.0;
/// Bucket widths to choose from, in seconds: round numbers.
const WIDTHS_S: [f64; 10] = [0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0];

/// The bucket width for a run of `duration_s`.
pub fn bucket_width_s(duration_s: f64) -> f64 {
    let wanted = duration_s / BUCKETS;
    WIDTHS_S.iter().copied().find(|w| *w >= wanted).unwrap_or(WIDTHS_S[WIDTHS_S.len() - 1])
}

/// Per bucket: (acknowledged, failed or unknown) operations per second,
/// each counted in the bucket where its answer (or give-up) came.
pub fn buckets(history: &History, duration_s: f64, width_s: f64) -> Vec<(f64, f64)> {
    let n = ((duration_s / width_s).ceil() as usize).max(1);
    let mut counts = vec![(0u64, 0u64); n];
    for op in history.iter() {
        let Some(done_us) = op.complete_us else { continue };
        let i = ((done_us as f64 / 1e6 / width_s) as usize).min(n - 1);
        match op.outcome {
            Outcome::Ok(_) => counts[i].0 += 1,
            _ => counts[i].1 += 1,
        }
    }
    counts.into_iter().map(|(ok, other)| (ok as f64 / width_s, other as f64 / width_s)).collect()
}

pub fn throughput_plot(
    history: &History,
    axis: TimeAxis,
    windows: &[FaultWindow],
    leadership: &[Vec<Leadership>],
) -> Result<(String, String), String> {
    let size = (PLOT_WIDTH_PX, HEIGHT_PX);
    let width_s = bucket_width_s(axis.duration_s);
    let rates = buckets(history, axis.duration_s, width_s);
    // Headroom above the highest bucket, where the legend sits.
    let top = rates.iter().map(|(ok, other)| ok.max(*other)).fold(1.0f64, f64::max) * 1.4;
    let series = [
        ("acknowledged", RGBColor(31, 119, 180), rates.iter().map(|r| r.0).collect::<Vec<_>>()),
        ("failed or unknown", RGBColor(214, 39, 40), rates.iter().map(|r| r.1).collect::<Vec<_>>()),
    ];
    let frame = Layer::draw(size, Layer::attributes(&[("class", "frame")]), |area| {
        area.fill(&WHITE).map_err(err)?;
        let mut chart = axis.chart(area, 0f64..top)?;
        chart
            .configure_mesh()
            .x_desc("seconds since the run started")
            .y_desc(format!("operations/s ({width_s} s buckets)"))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 14))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(err)?;
        for (name, color, _) in &series {
            let c = *color;
            chart
                .draw_series(std::iter::empty::<Circle<(f64, f64), u32>>())
                .map_err(err)?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2)));
        }
        legend(&mut chart)?;
        Ok(())
    })?;
    let mut layers = vec![frame];
    layers.extend(axis.fault_layers(size, windows)?);
    layers.push(axis.leadership_layer(size, leadership)?);
    for (name, color, values) in &series {
        let attributes = Layer::attributes(&[("class", "series"), ("data-series", name)]);
        layers.push(Layer::draw(size, attributes, |area| {
            let mut chart = axis.chart(area, 0f64..top)?;
            // A step line: each bucket's rate held across its width.
            let steps = values.iter().enumerate().flat_map(|(i, v)| {
                let start = i as f64 * width_s;
                [(start, *v), ((start + width_s).min(axis.duration_s), *v)]
            });
            chart.draw_series(LineSeries::new(steps, color.stroke_width(2))).map_err(err)?;
            Ok(())
        })?);
    }
    let caption = format!(
        "Operations per second in {width_s} s buckets, counted when their answer came: acknowledged in blue, \
         failed or unknown in red. Same time axis, fault bands and leader marks as the latency plot."
    );
    Ok((compose(size, "throughput over time", &layers), caption))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_round_widths_and_count_answers_where_they_came() {
        assert_eq!(bucket_width_s(5.0), 0.1);
        assert_eq!(bucket_width_s(60.0), 0.5);
        assert_eq!(bucket_width_s(1e9), 300.0);
        let params = crate::check::simulate::SimulationParams { ops: 1000, ..Default::default() };
        let history = crate::check::simulate::simulate_history(&params);
        let end_s = history.iter().filter_map(|op| op.complete_us).max().unwrap() as f64 / 1e6;
        let rates = buckets(&history, end_s, 0.1);
        let answered = history.iter().filter(|op| op.complete_us.is_some()).count() as f64;
        let counted: f64 = rates.iter().map(|(ok, other)| (ok + other) * 0.1).sum();
        assert!((counted - answered).abs() < 1e-6, "{counted} vs {answered}");
    }
}
