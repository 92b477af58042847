//! What a failed check found, drawn and listed: the operations a
//! linearizability witness cannot order as a small timeline (one row per
//! client, one bar per operation from invocation to answer, as Knossos
//! draws its counterexamples), and the lost writes and stale reads with
//! their keys and times.

use plotters::prelude::*;

use super::html::{Cell, Table};
use super::svg_layers::{Layer, compose, err, legend};
use super::time_axis::FONT;
use crate::check::{Operation, Outcome, StaleRead, Witness, fmt_us};

const WIDTH_PX: u32 = 1100;
const ROW_PX: u32 = 46;
const LABEL_AREA_PX: u32 = 90;

/// The role an operation plays in the witness, each its own colour.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    /// In the longest order that worked (its last few operations).
    Prefix,
    /// Had to come next and cannot.
    Stuck,
    /// Of unknown outcome, could have taken effect there.
    Pending,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Prefix => "linearized prefix",
            Part::Stuck => "cannot be ordered",
            Part::Pending => "unknown outcome",
        }
    }

    fn color(self) -> RGBColor {
        match self {
            Part::Prefix => RGBColor(120, 170, 120),
            Part::Stuck => RGBColor(214, 39, 40),
            Part::Pending => RGBColor(255, 140, 0),
        }
    }
}

/// The witness's operations on a timeline, one row per client.
pub fn witness_timeline(witness: &Witness) -> Result<String, String> {
    // Stuck first: an operation listed twice shows as what went wrong.
    let stuck = witness.stuck.iter().map(|s| (&s.op, Part::Stuck));
    let prefix = witness.prefix_tail.iter().chain(witness.last_writer.as_ref()).map(|op| (op, Part::Prefix));
    let pending = witness.pending_unknown.iter().map(|op| (op, Part::Pending));
    let mut ops: Vec<(&Operation, Part)> = Vec::new();
    for (op, part) in stuck.chain(prefix).chain(pending) {
        if !ops.iter().any(|(o, _)| o.id == op.id) {
            ops.push((op, part));
        }
    }
    let mut clients: Vec<u64> = ops.iter().map(|(op, _)| op.client).collect();
    clients.sort_unstable();
    clients.dedup();
    let start_us = ops.iter().map(|(op, _)| op.invoke_us).min().unwrap_or(0);
    let end_of = |op: &Operation| op.complete_us.unwrap_or(op.invoke_us);
    let last_us = ops.iter().map(|(op, _)| end_of(op)).max().unwrap_or(start_us).max(start_us + 1);
    // Past the last answer, for bars that never ended.
    let span_ms = (last_us - start_us) as f64 / 1000.0;
    // The right third stays empty for the legend and the last bar's label:
    // the operation that cannot be ordered is often the last one.
    let right_ms = span_ms * 1.5;
    // An operation of a few microseconds beside one of seconds would be
    // invisible: every bar gets at least a few pixels.
    let min_bar_ms = right_ms * 0.005;
    let height = LABEL_AREA_PX + 40 + ROW_PX * clients.len() as u32;
    let size = (WIDTH_PX, height);
    let rows = clients.len() as f64;
    let layer = Layer::draw(
        size,
        Layer::attributes(&[("class", "witness"), ("data-key", &witness.key.to_string())]),
        |area| {
            area.fill(&WHITE).map_err(err)?;
            let mut chart = ChartBuilder::on(area)
                .margin(12)
                .margin_top(28)
                .x_label_area_size(36)
                .y_label_area_size(LABEL_AREA_PX)
                .build_cartesian_2d(0f64..right_ms, 0f64..rows)
                .map_err(err)?;
            chart
                .configure_mesh()
                .disable_y_mesh()
                .y_labels(0)
                .x_desc(format!("ms after {}", fmt_us(start_us)))
                .label_style((FONT, 12))
                .light_line_style(WHITE.mix(0.0))
                .draw()
                .map_err(err)?;
            for (row, client) in clients.iter().enumerate() {
                let y = rows - row as f64 - 0.5;
                let name = EmptyElement::at((0.0, y)) + Text::new(format!("client {client}"), (-84, -6), (FONT, 12));
                chart.draw_series(std::iter::once(name)).map_err(err)?;
            }
            for part in [Part::Prefix, Part::Stuck, Part::Pending] {
                chart
                    .draw_series(std::iter::empty::<Circle<(f64, f64), u32>>())
                    .map_err(err)?
                    .label(part.name())
                    .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], part.color().filled()));
            }
            legend(&mut chart)?;
            for (op, part) in &ops {
                let row = clients.iter().position(|c| *c == op.client).unwrap_or(0);
                let top = rows - row as f64 - 0.2;
                let x0 = (op.invoke_us - start_us) as f64 / 1000.0;
                let x1 = match op.complete_us {
                    Some(done) => (done - start_us) as f64 / 1000.0,
                    None => span_ms * 1.08,
                };
                let bar =
                    Rectangle::new([(x0, top), (x1.max(x0 + min_bar_ms), top - 0.45)], part.color().mix(0.75).filled());
                chart.draw_series(std::iter::once(bar)).map_err(err)?;
                let label = EmptyElement::at((x0, top - 0.45))
                    + Text::new(format!("{} (op {})", op.action(), op.id), (0, 3), (FONT, 11));
                chart.draw_series(std::iter::once(label)).map_err(err)?;
            }
            Ok(())
        },
    )?;
    Ok(compose(size, &format!("key {} cannot be linearized", witness.key), &[layer]))
}

fn outcome(op: &Operation) -> &'static str {
    match op.outcome {
        Outcome::Ok(_) => "ok",
        Outcome::Fail(_) => "failed",
        Outcome::Unknown(_) => "unknown",
    }
}

fn completed(op: &Operation) -> String {
    op.complete_us.map_or("never".to_string(), fmt_us)
}

/// The cells both write tables start with: key, write, invoked, answered.
fn write_cells(op: &Operation) -> [Cell; 4] {
    [
        Cell::text(op.key().to_string()),
        Cell::text(format!("{} (op {}, client {})", op.action(), op.id, op.client)),
        Cell::num(fmt_us(op.invoke_us)),
        Cell::num(completed(op)),
    ]
}

/// Lost writes, one row each: the key, the write, its times, what the key
/// ended as and the write that left it so.
pub fn lost_writes_table(lost: &[crate::check::LostWrite]) -> Table {
    let mut t = Table::new("lost-writes", &["key", "write", "invoked", "acknowledged", "key ends as", "left by"]);
    for l in lost {
        let ends = l.final_value.as_ref().map_or("absent".to_string(), |v| v.to_string());
        let by = l.final_writer.as_ref().map_or("no write in the history".to_string(), |w| w.to_string());
        t.row(
            &l.op.key().to_string(),
            write_cells(&l.op).into_iter().chain([Cell::text(ends), Cell::text(by)]).collect(),
        );
    }
    t
}

/// Lost updates (last-writer-wins dropping a concurrent write).
pub fn lost_updates_table(lost: &[crate::check::LostUpdate]) -> Table {
    let mut t = Table::new("lost-updates", &["key", "write", "invoked", "acknowledged", "key ends as"]);
    for l in lost {
        let ends: Vec<String> = l.final_values.iter().map(|v| v.to_string()).collect();
        t.row(
            &l.op.key().to_string(),
            write_cells(&l.op)
                .into_iter()
                .chain([Cell::text(if ends.is_empty() { "absent".to_string() } else { ends.join(", ") })])
                .collect(),
        );
    }
    t
}

/// Stale reads (the checker keeps the first few), with the write the read
/// saw and the newer one it missed.
pub fn stale_reads_table(examples: &[StaleRead]) -> Table {
    let mut t = Table::new("stale-reads", &["key", "read", "invoked", "answered", "value from", "missed"]);
    for s in examples {
        let from = s.source.as_ref().map_or("the initial state".to_string(), |w| w.to_string());
        t.row(
            &s.read.key().to_string(),
            vec![
                Cell::text(s.read.key().to_string()),
                Cell::text(format!(
                    "{} (op {}, client {}, {})",
                    s.read.action(),
                    s.read.id,
                    s.read.client,
                    outcome(&s.read)
                )),
                Cell::num(fmt_us(s.read.invoke_us)),
                Cell::num(completed(&s.read)),
                Cell::text(from),
                Cell::text(s.newer.to_string()),
            ],
        );
    }
    t
}
