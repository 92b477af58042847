//! One chart per measure across the variants of `replab compare`: a bar
//! at each variant's median and a whisker over its range (min to max of
//! its runs), so a difference smaller than the runs' own spread shows as
//! such.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::svg_layers::{Layer, compose, err};
use super::time_axis::FONT;
use crate::scenario::measures::{Measure, Spread, VariantRuns};

const WIDTH_PX: u32 = 370;
const HEIGHT_PX: u32 = 250;

/// Bar colours, one per variant, in order (repeating past ten).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The chart of one measure, or None when no variant measured it (the
/// script ran no check that counts it).
pub fn measure_chart(measure: &Measure, variants: &[VariantRuns]) -> Result<Option<String>, String> {
    let spreads: Vec<Option<Spread>> = variants.iter().map(|v| v.spread(measure)).collect();
    if spreads.iter().all(Option::is_none) {
        return Ok(None);
    }
    let top = spreads.iter().flatten().map(|s| s.max).fold(0f64, f64::max);
    // Room above the tallest whisker for its value label; a measure that
    // is zero everywhere still gets a visible axis.
    let top = if top > 0.0 { top * 1.2 } else { 1.0 };
    let n = variants.len();
    let size = (WIDTH_PX, HEIGHT_PX);
    let layer = Layer::draw(size, Layer::attributes(&[("class", "measure"), ("data-measure", measure.key)]), |area| {
        area.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(area)
            .caption(measure.label, (FONT, 15))
            .margin(10)
            .x_label_area_size(28)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..n as f64, 0f64..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_desc(measure.unit)
            .y_labels(5)
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 12))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(err)?;
        let below = TextStyle::from((FONT, 12).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
        let above = TextStyle::from((FONT, 11).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
        for (i, (v, spread)) in variants.iter().zip(&spreads).enumerate() {
            let x = i as f64;
            let name = EmptyElement::at((x + 0.5, 0.0)) + Text::new(v.name.clone(), (0, 6), below.clone());
            chart.draw_series(std::iter::once(name)).map_err(err)?;
            let Some(s) = spread else {
                let none = EmptyElement::at((x + 0.5, 0.0)) + Text::new("not measured", (0, -4), above.clone());
                chart.draw_series(std::iter::once(none)).map_err(err)?;
                continue;
            };
            let color = PALETTE[i % PALETTE.len()];
            let bar = Rectangle::new([(x + 0.2, 0.0), (x + 0.8, s.median)], color.mix(0.8).filled());
            chart.draw_series(std::iter::once(bar)).map_err(err)?;
            if s.max > s.min {
                let whisker = [(x + 0.5, s.min), (x + 0.5, s.max)];
                let caps = [[(x + 0.4, s.min), (x + 0.6, s.min)], [(x + 0.4, s.max), (x + 0.6, s.max)]];
                let style = BLACK.stroke_width(1);
                chart.draw_series(std::iter::once(PathElement::new(whisker, style))).map_err(err)?;
                chart.draw_series(caps.into_iter().map(|c| PathElement::new(c, style))).map_err(err)?;
            }
            let label = EmptyElement::at((x + 0.5, s.max.max(s.median)))
                + Text::new(s.show(measure.decimals), (0, -3), above.clone());
            chart.draw_series(std::iter::once(label)).map_err(err)?;
        }
        Ok(())
    })?;
    Ok(Some(compose(size, measure.label, &[layer])))
}
