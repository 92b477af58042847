//! One SVG built from several plotters drawings of the same size, each in
//! its own `<g>`: the frame (axes, grid, legend), one group per series,
//! one per shaded fault window.
//!
//! plotters draws a chart into one flat SVG; a reader (and the report's
//! structural test) could not tell which dot belongs to which series.
//! Drawing each part on its own canvas with the same geometry and stacking
//! the canvases keeps the plotting to plotters and the structure
//! explicit: `<g class="series" data-outcome="ok">`, `<g class="fault"
//! data-kind="crash">`. Same size, same margins and label areas, same
//! ranges: the layers' coordinates line up exactly.

use std::fmt::Display;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::html::escape;

pub type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// plotters' errors, as text for the report's caller.
pub fn err(e: impl Display) -> String {
    format!("drawing failed: {e}")
}

/// The legend every chart of the report draws the same way: top right,
/// over a translucent box so the dots beneath still show.
pub fn legend<'a, 'b: 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, CT>,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font((super::time_axis::FONT, 12))
        .draw()
        .map_err(err)
}

/// One part of a layered SVG: its group's attributes and its drawing.
pub struct Layer {
    /// `class="series" data-outcome="ok"`, already escaped.
    pub attributes: String,
    pub content: String,
}

impl Layer {
    /// Draws one layer on a fresh canvas of `size` (width, height px).
    pub fn draw(
        size: (u32, u32),
        attributes: String,
        draw: impl FnOnce(&Area<'_>) -> Result<(), String>,
    ) -> Result<Layer, String> {
        let mut svg = String::new();
        {
            let area = SVGBackend::with_string(&mut svg, size).into_drawing_area();
            draw(&area)?;
            area.present().map_err(err)?;
        }
        Ok(Layer { attributes, content: inner(&svg).to_string() })
    }

    /// `key="value"` pairs as group attributes, values escaped.
    pub fn attributes(pairs: &[(&str, &str)]) -> String {
        pairs.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect::<Vec<_>>().join(" ")
    }
}

/// The layers stacked in one `<svg>`, first at the bottom.
pub fn compose(size: (u32, u32), label: &str, layers: &[Layer]) -> String {
    let (w, h) = size;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
         role=\"img\" aria-label=\"{}\">\n",
        escape(label)
    );
    for layer in layers {
        svg.push_str(&format!("<g {}>\n", layer.attributes));
        svg.push_str(&layer.content);
        svg.push_str("</g>\n");
    }
    svg.push_str("</svg>\n");
    svg
}

/// What is inside plotters' `<svg ...>` element.
fn inner(svg: &str) -> &str {
    let start = svg.find("<svg").and_then(|at| svg[at..].find('>').map(|end| at + end + 1)).unwrap_or(0);
    let end = svg.rfind("</svg>").unwrap_or(svg.len()).max(start);
    &svg[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_keep_their_drawings_inside_their_own_groups_of_one_svg() {
        let size = (120, 80);
        let dot = |color: RGBColor| {
            move |area: &Area<'_>| {
                area.draw(&Circle::new((10, 10), 3, color.filled())).map_err(err)?;
                Ok(())
            }
        };
        let a = Layer::draw(size, Layer::attributes(&[("class", "series"), ("data-outcome", "ok")]), dot(BLUE));
        let b = Layer::draw(size, Layer::attributes(&[("class", "series"), ("data-outcome", "a<b")]), dot(RED));
        let svg = compose(size, "two dots", &[a.unwrap(), b.unwrap()]);
        assert_eq!(svg.matches("<svg").count(), 1, "{svg}");
        assert_eq!(svg.matches("<circle").count(), 2, "{svg}");
        assert!(svg.contains("data-outcome=\"a&lt;b\""), "{svg}");
        let doc = roxmltree::Document::parse(&svg).expect("well-formed");
        let groups: Vec<_> = doc.root_element().children().filter(|n| n.has_tag_name("g")).collect();
        assert_eq!(groups.len(), 2);
        assert!(groups.iter().all(|g| g.descendants().filter(|n| n.has_tag_name("circle")).count() == 1));
    }
}
