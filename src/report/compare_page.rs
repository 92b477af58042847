//! The page `replab compare --out DIR` writes: which variants passed
//! their checks (in how many runs), one chart per measure, then the
//! measures table with medians and ranges, and links to every run's own
//! report.

use super::compare_charts::measure_chart;
use super::html::{Cell, Page, Table, escape};
use crate::scenario::measures::{MEASURES, VariantRuns, note_names};

/// The whole page of a comparison.
pub fn compare_report(variants: &[VariantRuns]) -> Result<String, String> {
    let Some(first) = variants.first().and_then(|v| v.runs.first()) else {
        return Err("no variant ran: nothing to report".to_string());
    };
    let seeds = variants[0].seeds();
    let runs = seeds.len();
    let seed_text = match (seeds.first(), seeds.last()) {
        (Some(a), Some(b)) if a != b => format!("seeds {a}..={b}, {runs} runs per variant"),
        _ => format!("seed {}", first.seed),
    };
    let mut page = Page::new(&format!("replab compare: {} ({seed_text})", first.script));
    page.raw(&format!("<h1>compare: {} <small>{}</small></h1>\n", escape(&first.script), escape(&seed_text)));
    page.paragraph(
        "",
        "Every variant ran the same script with the same seeds: the workload and the fault schedule are the \
         same random choices, only the configuration differs. With several runs each figure is the median, \
         the range (min to max over the runs) in brackets and as a whisker on the charts.",
    );

    page.heading(2, "Variants");
    page.table(&variants_table(variants));

    page.heading(2, "Measures");
    page.raw("<div class=\"charts\">\n");
    for m in MEASURES {
        if let Some(svg) = measure_chart(m, variants)? {
            let caption = format!("{} ({}): bar at the median, whisker over the range", m.label, m.unit);
            page.figure(&format!("measure-{}", m.key), &svg, &caption);
        }
    }
    page.raw("</div>\n");
    page.heading(3, "The measures, median (range)");
    page.table(&measures_table(variants));
    Ok(page.finish())
}

/// One row per variant: its runs, which passed, each check's count, and
/// links to the runs' own reports.
fn variants_table(variants: &[VariantRuns]) -> Table {
    let mut t = Table::new("variants", &["variant", "runs passed", "checks (runs passed / runs)", "run reports"]);
    for v in variants {
        let runs = v.runs.len();
        let passed = v.runs_passed();
        let class = if passed == runs { "pass" } else { "fail" };
        let checks: Vec<String> =
            v.check_passes().iter().map(|c| format!("{} {}/{}", c.name, c.passed, c.runs)).collect();
        let links: Vec<String> = v
            .runs
            .iter()
            .map(|r| {
                // Where compare put the run (relative, so the folder can move).
                let dir = if runs == 1 { v.name.clone() } else { format!("{}/seed-{}", v.name, r.seed) };
                format!("<a href=\"{}/report.html\">seed {}</a>", escape(&dir), r.seed)
            })
            .collect();
        t.row(
            &v.name,
            vec![
                Cell::text(&v.name),
                Cell::class(format!("{passed}/{runs}"), class),
                Cell::text(if checks.is_empty() { "no checks".to_string() } else { checks.join(", ") }),
                Cell::markup(links.join(" ")),
            ],
        );
    }
    t
}

/// Measures down, variants across, as in the text table.
fn measures_table(variants: &[VariantRuns]) -> Table {
    let mut header = vec!["measure"];
    header.extend(variants.iter().map(|v| v.name.as_str()));
    let mut t = Table::new("measures", &header);
    for m in MEASURES {
        let mut cells = vec![Cell::text(m.title())];
        cells.extend(variants.iter().map(|v| Cell::num(v.spread(m).map_or("-".to_string(), |s| s.show(m.decimals)))));
        t.row(m.key, cells);
    }
    for name in note_names(variants) {
        let mut cells = vec![Cell::text(format!("{name} (noted by the script)"))];
        cells.extend(variants.iter().map(|v| Cell::num(v.note_cell(name))));
        t.row(name, cells);
    }
    t
}
