//! Latency over time, as Jepsen draws it: one dot per operation at its
//! invocation time, its latency on a log scale, coloured by outcome and
//! shaped by kind, over the shaded fault windows and the leader changes.

use plotters::prelude::*;

use super::sample::{MAX_DOTS, sample};
use super::svg_layers::{Layer, compose, err, legend};
use super::time_axis::{FONT, PLOT_WIDTH_PX, TimeAxis, TimeChart};
use crate::check::{History, Operation, Outcome};
use crate::scenario::fault_windows::FaultWindow;
use crate::scenario::leader_watch::Leadership;

const HEIGHT_PX: u32 = 440;
const DOT_PX: u32 = 3;

/// The three outcomes, each one series: (name, what it means, colour).
pub const OUTCOMES: [(&str, &str, RGBColor); 3] = [
    ("ok", "acknowledged", RGBColor(31, 119, 180)),
    ("failed", "certainly not applied", RGBColor(214, 39, 40)),
    ("unknown", "may have been applied", RGBColor(255, 140, 0)),
];

/// Operation kinds, each drawn with its own marker.
const KINDS: [&str; 5] = ["get", "put", "delete", "cas", "incr"];

fn outcome_name(op: &Operation) -> &'static str {
    match op.outcome {
        Outcome::Ok(_) => "ok",
        Outcome::Fail(_) => "failed",
        Outcome::Unknown(_) => "unknown",
    }
}

/// What the plot needs from the run.
pub struct LatencyInput<'a> {
    pub history: &'a History,
    pub axis: TimeAxis,
    pub windows: &'a [FaultWindow],
    pub leadership: &'a [Vec<Leadership>],
}

/// The plot as one SVG, and its caption.
pub fn latency_plot(input: &LatencyInput<'_>) -> Result<(String, String), String> {
    let size = (PLOT_WIDTH_PX, HEIGHT_PX);
    let picked = sample(input.history.iter(), MAX_DOTS);
    let point = |op: &Operation| {
        let latency_ms = op.complete_us.unwrap_or(op.invoke_us).saturating_sub(op.invoke_us) as f64 / 1000.0;
        (op.invoke_us as f64 / 1e6, latency_ms)
    };
    let (lo_ms, hi_ms) =
        picked.kept.iter().map(|op| point(op).1).fold((f64::MAX, 0f64), |(lo, hi), ms| (lo.min(ms), hi.max(ms)));
    // Whole decades, so the log axis labels read 0.1, 1, 10 ms.
    let y_lo = 10f64.powf(lo_ms.max(0.001).log10().floor()).min(0.1);
    let y_hi = 10f64.powf(hi_ms.max(1.0).log10().ceil());
    let y = || (y_lo..y_hi).log_scale();
    let axis = input.axis;
    let counts: Vec<usize> = OUTCOMES
        .iter()
        .map(|(name, _, _)| input.history.iter().filter(|op| outcome_name(op) == *name).count())
        .collect();

    let frame = Layer::draw(size, Layer::attributes(&[("class", "frame")]), |area| {
        area.fill(&WHITE).map_err(err)?;
        let mut chart = axis.chart(area, y())?;
        chart
            .configure_mesh()
            .x_desc("seconds since the run started (operation invoked)")
            .y_desc("latency (ms, log scale)")
            .y_label_formatter(&|ms| format!("{ms}"))
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 14))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(err)?;
        Ok(())
    })?;
    // The key goes on top of the dots, or a dense run would hide it.
    let key = Layer::draw(size, Layer::attributes(&[("class", "key")]), |area| {
        let mut chart = axis.chart(area, y())?;
        // The legend: outcome colours (with counts) and kind markers.
        for ((name, meaning, color), count) in OUTCOMES.iter().zip(&counts) {
            let c = *color;
            chart
                .draw_series(std::iter::empty::<Circle<(f64, f64), u32>>())
                .map_err(err)?
                .label(format!("{name} ({count}): {meaning}"))
                .legend(move |(x, y)| Circle::new((x + 8, y), 4, c.filled()));
        }
        for kind in KINDS {
            chart
                .draw_series(std::iter::empty::<Circle<(f64, f64), u32>>())
                .map_err(err)?
                .label(kind)
                .legend(move |(x, y)| marker(kind, (x + 8, y), BLACK.mix(0.7).filled()));
        }
        legend(&mut chart)?;
        if picked.is_sampled() {
            // Top left, on a white box: the legend holds the top right, the
            // leader marks the bottom.
            let note = picked.note();
            let width = (note.chars().count() as f64 * 6.4) as i32 + 10;
            let boxed = EmptyElement::at((0.0, y_hi))
                + Rectangle::new([(4, 4), (4 + width, 22)], WHITE.mix(0.85).filled())
                + Text::new(note, (9, 7), (FONT, 12).into_font());
            chart.draw_series(std::iter::once(boxed)).map_err(err)?;
        }
        Ok(())
    })?;
    let mut layers = vec![frame];
    layers.extend(axis.fault_layers(size, input.windows)?);
    layers.push(axis.leadership_layer(size, input.leadership)?);
    for (name, _, color) in OUTCOMES {
        let ops: Vec<&Operation> = picked.kept.iter().copied().filter(|op| outcome_name(op) == name).collect();
        let attributes = Layer::attributes(&[
            ("class", "series"),
            ("data-outcome", name),
            ("data-operations", &counts[OUTCOMES.iter().position(|o| o.0 == name).unwrap_or(0)].to_string()),
            ("data-drawn", &ops.len().to_string()),
        ]);
        layers.push(Layer::draw(size, attributes, |area| {
            let mut chart = axis.chart(area, y())?;
            let style = color.mix(if name == "ok" { 0.55 } else { 0.9 }).filled();
            for kind in KINDS {
                let dots = ops.iter().filter(|op| op.kind.name() == kind).map(|op| {
                    let (x, ms) = point(op);
                    EmptyElement::at((x, ms.max(y_lo))) + marker(kind, (0, 0), style)
                });
                draw_markers(&mut chart, dots)?;
            }
            Ok(())
        })?);
    }
    layers.push(key);
    let skipped = input.history.len() - picked.total;
    let mut caption = format!(
        "Each dot is one client operation: x when it was invoked, y how long until its answer (log scale). \
         Colour: outcome; shape: kind. Shaded bands are the injected faults, dashed lines leader changes, \
         the red strip along the top the time without a leader or quorum. {} operations drawn.",
        picked.kept.len()
    );
    if picked.is_sampled() {
        let note = picked.note();
        caption.push_str(&format!(" The plot is a sample: {}.", note.trim_start_matches("sampled: ")));
    }
    if skipped > 0 {
        caption.push_str(&format!(" {skipped} operation(s) never completed and have no latency to draw."));
    }
    Ok((compose(size, "latency over time", &layers), caption))
}

fn draw_markers<'a, 'b, E>(
    chart: &mut TimeChart<'a, 'b, plotters::coord::combinators::LogCoord<f64>>,
    dots: impl Iterator<Item = E>,
) -> Result<(), String>
where
    E: plotters::element::Drawable<SVGBackend<'b>>,
    for<'c> &'c E: plotters::element::PointCollection<'c, (f64, f64)>,
{
    chart.draw_series(dots).map_err(err)?;
    Ok(())
}

/// The marker of a kind, centred on `at` (pixels relative to its anchor).
fn marker<DB: DrawingBackend>(kind: &str, at: (i32, i32), style: ShapeStyle) -> DynElement<'static, DB, (i32, i32)> {
    let (x, y) = at;
    let r = DOT_PX as i32;
    match kind {
        "put" => TriangleMarker::new((x, y), r + 1, style).into_dyn(),
        "delete" => Cross::new((x, y), r, style.stroke_width(2)).into_dyn(),
        "cas" => Rectangle::new([(x - r, y - r), (x + r, y + r)], style).into_dyn(),
        "incr" => Polygon::new(vec![(x, y - r - 1), (x + r + 1, y), (x, y + r + 1), (x - r - 1, y)], style).into_dyn(),
        _ => Circle::new((x, y), DOT_PX, style).into_dyn(),
    }
}
