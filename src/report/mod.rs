//! `report.html`: what a run (or a comparison) looks like, in one
//! self-contained file a person opens in a browser. docs/REPORTS.md says
//! what each part shows.
//!
//! - `svg_layers`: plotters drawings stacked into one SVG, one group per
//!   series or fault window.
//! - `time_axis`: the run's shared time axis, fault bands, leader marks.
//! - `latency_plot`, `throughput_plot`: the two plots over the run.
//! - `sample`: which operations the latency plot draws past its budget.
//! - `witness`: failed checks drawn (Knossos-style timeline) and listed.
//! - `compare_charts`: one chart per measure across variants.
//! - `compare_page`: the page of `replab compare`.
//! - `html`: the page, escaping, tables.

pub mod compare_charts;
pub mod compare_page;
pub mod html;
pub mod latency_plot;
pub mod sample;
pub mod svg_layers;
pub mod throughput_plot;
pub mod time_axis;
pub mod witness;

use std::path::Path;

use html::{Cell, Page, Table};
use latency_plot::{LatencyInput, latency_plot};
use time_axis::TimeAxis;

use crate::check::{CheckStatus, History};
use crate::scenario::results::RunReport;
use crate::scenario::run_state::Evidence;

/// The file's name in `--out DIR`.
pub const REPORT_FILE: &str = "report.html";

/// What a run's report is drawn from.
pub struct RunInput<'a> {
    pub report: &'a RunReport,
    pub history: &'a History,
    /// What failed checks found (the report lists and draws it).
    pub evidence: &'a [Evidence],
}

pub fn write_run_report(dir: &Path, input: &RunInput<'_>) -> std::io::Result<()> {
    let html = run_report(input).map_err(std::io::Error::other)?;
    std::fs::write(dir.join(REPORT_FILE), html)
}

pub fn status_class(status: CheckStatus) -> &'static str {
    match status {
        CheckStatus::Pass => "pass",
        CheckStatus::Fail => "fail",
        CheckStatus::Unknown => "unknown",
    }
}

/// The whole page of one run.
pub fn run_report(input: &RunInput<'_>) -> Result<String, String> {
    let r = input.report;
    let mut page = Page::new(&format!("replab: {} (seed {})", r.script, r.seed));
    page.raw(&format!("<h1>{} <small>seed {}</small></h1>\n", html::escape(&r.script), r.seed));
    let (class, verdict) = verdict(r);
    page.paragraph(class, &format!("{verdict} (exit code {})", r.exit_code));
    if let Some(e) = &r.error {
        page.paragraph("fail", &format!("error: {e}"));
    }
    page.table(&summary_table(r));

    // The last operation's answer can come after the run's clock was read
    // for the duration: the axis covers both.
    let last_s = input.history.iter().filter_map(|op| op.complete_us).max().unwrap_or(0) as f64 / 1e6;
    let axis = TimeAxis { duration_s: r.duration_s.max(last_s) };
    page.heading(2, "Latency over time");
    let latency = LatencyInput { history: input.history, axis, windows: &r.fault_windows, leadership: &r.leadership };
    let (svg, caption) = latency_plot(&latency)?;
    page.figure("latency", &svg, &caption);
    page.heading(2, "Throughput over time");
    let (svg, caption) = throughput_plot::throughput_plot(input.history, axis, &r.fault_windows, &r.leadership)?;
    page.figure("throughput", &svg, &caption);

    page.heading(2, "Checks");
    page.table(&checks_table(r));
    for check in r.checks.iter().filter(|c| c.status != CheckStatus::Pass && !c.witness.is_empty()) {
        page.heading(3, &format!("{}: {}", check.name, check.status));
        page.preformatted(&check.witness);
    }
    for evidence in input.evidence {
        evidence_section(&mut page, evidence)?;
    }

    page.heading(2, "Timeline");
    let mut timeline = Table::new("timeline", &["at (s)", "event"]);
    for e in &r.timeline {
        timeline.row("", vec![Cell::num(format!("{:.3}", e.at_s)), Cell::text(&e.event)]);
    }
    page.table(&timeline);
    if !r.notes.is_empty() {
        page.heading(2, "Notes");
        let mut notes = Table::new("notes", &["name", "value"]);
        for (name, value) in &r.notes {
            notes.row(name, vec![Cell::text(name), Cell::text(value.to_string())]);
        }
        page.table(&notes);
    }
    Ok(page.finish())
}

fn verdict(r: &RunReport) -> (&'static str, &'static str) {
    match r.exit_code {
        crate::scenario::exit::PASS => ("verdict pass", "every check passed"),
        crate::scenario::exit::FAIL => ("verdict fail", "a check failed"),
        crate::scenario::exit::UNDECIDED => ("verdict unknown", "no check failed, but one could not decide"),
        _ => ("verdict fail", "the script did not run to completion"),
    }
}

fn summary_table(r: &RunReport) -> Table {
    let mut t = Table::new("summary", &["measure", "value"]);
    let o = &r.operations;
    let rows = [
        ("operations", format!("{} total: {} ok, {} failed, {} unknown", o.total, o.ok, o.fail, o.unknown)),
        ("throughput", format!("{:.0} acknowledged ops/s", r.throughput_ops_per_s)),
        (
            "latency (acknowledged)",
            format!(
                "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                r.latency.p50_us as f64 / 1e3,
                r.latency.p99_us as f64 / 1e3,
                r.latency.max_us as f64 / 1e3
            ),
        ),
        (
            "without a leader or quorum",
            format!(
                "{:.3} s of {:.1} s watched; {} leader change(s)",
                r.availability.unavailable_s, r.availability.watched_s, r.availability.leader_changes
            ),
        ),
        (
            "cluster",
            format!(
                "{} elections won ({} candidacies); {:.1} messages and {:.0} bytes per operation",
                r.cluster.elections, r.cluster.candidacies, r.cluster.messages_per_op, r.cluster.bytes_per_op
            ),
        ),
        ("duration", format!("{:.2} s", r.duration_s)),
    ];
    for (name, value) in rows {
        t.row(name, vec![Cell::text(name), Cell::text(value)]);
    }
    t
}

fn checks_table(r: &RunReport) -> Table {
    let mut t = Table::new("checks", &["check", "verdict", "summary", "seconds"]);
    for c in &r.checks {
        t.row(
            &c.name,
            vec![
                Cell::text(&c.name),
                Cell::class(c.status.to_string(), status_class(c.status)),
                Cell::text(&c.summary),
                Cell::num(format!("{:.3}", c.elapsed.as_secs_f64())),
            ],
        );
    }
    t
}

fn evidence_section(page: &mut Page, evidence: &Evidence) -> Result<(), String> {
    match evidence {
        Evidence::NotLinearizable(witness) => {
            page.heading(3, &format!("Not linearizable: key {}", witness.key));
            let svg = witness::witness_timeline(witness)?;
            page.figure(
                "witness",
                &svg,
                "The operations the search could not order, one row per client, each bar from invocation to \
                 answer. Green: the end of the longest order that worked; red: operations that had to come \
                 next and cannot; orange: operations of unknown outcome that could have taken effect there.",
            );
        }
        Evidence::LostWrites(lost) => {
            page.heading(3, &format!("Lost writes ({})", lost.len()));
            page.table(&witness::lost_writes_table(lost));
        }
        Evidence::LostUpdates(lost) => {
            page.heading(3, &format!("Lost updates ({})", lost.len()));
            page.table(&witness::lost_updates_table(lost));
        }
        Evidence::StaleReads { count, examples } => {
            page.heading(3, &format!("Stale reads ({count}; the first {} listed)", examples.len()));
            page.table(&witness::stale_reads_table(examples));
        }
    }
    Ok(())
}
