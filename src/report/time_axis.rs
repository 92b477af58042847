//! The time axis the run's plots share: the same geometry for every plot
//! over the run (so latency and throughput line up one above the other),
//! the fault windows shaded on it, and the leader changes marked.

use plotters::coord::ranged1d::AsRangedCoord;
use plotters::coord::types::RangedCoordf64;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use super::svg_layers::{Area, Layer, err};
use crate::scenario::fault_windows::{FaultKind, FaultWindow};
use crate::scenario::leader_watch::{LeaderState, Leadership};

/// Width of every plot over the run, in pixels.
pub const PLOT_WIDTH_PX: u32 = 1100;
const MARGIN_PX: u32 = 12;
/// Room for the top labels (fault names, leader marks).
const TOP_MARGIN_PX: u32 = 34;
const X_LABEL_AREA_PX: u32 = 40;
const Y_LABEL_AREA_PX: u32 = 70;
pub const FONT: &str = "sans-serif";

/// The run's time axis: seconds since the run started.
#[derive(Clone, Copy, Debug)]
pub struct TimeAxis {
    pub duration_s: f64,
}

pub type TimeChart<'a, 'b, Y> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, Y>>;

impl TimeAxis {
    /// A chart over the run with the shared geometry; `y` is the plot's
    /// own vertical range (linear or log).
    pub fn chart<'a, 'b, Y: AsRangedCoord>(
        &self,
        area: &'a Area<'b>,
        y: Y,
    ) -> Result<TimeChart<'a, 'b, Y::CoordDescType>, String> {
        ChartBuilder::on(area)
            .margin(MARGIN_PX)
            .margin_top(TOP_MARGIN_PX)
            .x_label_area_size(X_LABEL_AREA_PX)
            .y_label_area_size(Y_LABEL_AREA_PX)
            .build_cartesian_2d(0f64..self.duration_s.max(0.001), y)
            .map_err(err)
    }

    /// One shaded, labelled band per fault window, each its own group.
    /// `row` staggers the labels of overlapping windows.
    pub fn fault_layers(&self, size: (u32, u32), windows: &[FaultWindow]) -> Result<Vec<Layer>, String> {
        windows
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let attributes = Layer::attributes(&[
                    ("class", "fault"),
                    ("data-kind", w.kind.name()),
                    ("data-start-s", &format!("{:.3}", w.start_s)),
                    ("data-end-s", &format!("{:.3}", w.end_s)),
                ]);
                Layer::draw(size, attributes, |area| {
                    let mut chart = self.chart(area, 0f64..1f64)?;
                    let color = fault_color(w.kind);
                    let band = Rectangle::new([(w.start_s, 0.0), (w.end_s, 1.0)], color.mix(0.16).filled());
                    chart.draw_series(std::iter::once(band)).map_err(err)?;
                    let edge = [(w.start_s, 0.0), (w.start_s, 1.0)];
                    chart.draw_series(std::iter::once(PathElement::new(edge, color.mix(0.6)))).map_err(err)?;
                    let row = (i % 2) as i32;
                    let label = if w.open_at_end { format!("{} (to the end)", w.label) } else { w.label.clone() };
                    let text = EmptyElement::at((w.start_s, 1.0))
                        + Text::new(label, (3, -30 + 13 * row), (FONT, 13).into_font().color(&color));
                    chart.draw_series(std::iter::once(text)).map_err(err)?;
                    Ok(())
                })
            })
            .collect()
    }

    /// Leader changes as dashed lines, and the spans without a leader (or
    /// quorum) as a red strip along the top.
    pub fn leadership_layer(&self, size: (u32, u32), clusters: &[Vec<Leadership>]) -> Result<Layer, String> {
        Layer::draw(size, Layer::attributes(&[("class", "leadership")]), |area| {
            let mut chart = self.chart(area, 0f64..1f64)?;
            let strip = RGBColor(200, 30, 30);
            for samples in clusters {
                let first_up = samples.iter().position(|s| s.state.available()).unwrap_or(samples.len());
                let mut leader = None;
                for (i, s) in samples.iter().enumerate() {
                    let until = samples.get(i + 1).map_or(self.duration_s, |n| n.at_s);
                    if i >= first_up && !s.state.available() && s.state != LeaderState::Stopped {
                        let bar = Rectangle::new([(s.at_s, 0.985), (until, 1.0)], strip.mix(0.8).filled());
                        chart.draw_series(std::iter::once(bar)).map_err(err)?;
                    }
                    if let LeaderState::Leader { leader: id, term } = s.state {
                        if leader == Some((id, term)) {
                            continue;
                        }
                        leader = Some((id, term));
                        let line = DashedPathElement::new(vec![(s.at_s, 0.0), (s.at_s, 1.0)], 4, 3, BLACK.mix(0.5));
                        chart.draw_series(std::iter::once(line)).map_err(err)?;
                        let text = EmptyElement::at((s.at_s, 0.0))
                            + Text::new(format!("n{id} leads"), (3, -14), (FONT, 12).into_font().color(&BLACK));
                        chart.draw_series(std::iter::once(text)).map_err(err)?;
                    }
                }
            }
            Ok(())
        })
    }
}

pub fn fault_color(kind: FaultKind) -> RGBColor {
    match kind {
        FaultKind::Crash => RGBColor(214, 39, 40),
        FaultKind::Partition => RGBColor(148, 103, 189),
        FaultKind::Pause => RGBColor(140, 86, 75),
        FaultKind::Skew => RGBColor(227, 119, 194),
        FaultKind::Link => RGBColor(23, 150, 170),
    }
}
