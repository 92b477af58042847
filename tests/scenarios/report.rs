//! report.html, compare.csv/json and the EDN export, read back the way a
//! browser or Jepsen would: the report is parsed as XML (it must be
//! well-formed) and its structure counted against results.json; the EDN is
//! parsed with an EDN parser.

use std::path::Path;

use roxmltree::{Document, Node, ParsingOptions};

use super::{replab, root};

const SCRIPT: &str = "tests/scenarios/report/crash-and-partition.lua";

fn parse(html: &str) -> Document<'_> {
    // The page starts with <!DOCTYPE html>: a DTD declaration to XML.
    let options = ParsingOptions { allow_dtd: true, ..ParsingOptions::default() };
    Document::parse_with_options(html, options).unwrap_or_else(|e| panic!("report.html is not well-formed: {e}"))
}

fn class_is(node: &Node<'_, '_>, class: &str) -> bool {
    node.attribute("class").is_some_and(|c| c.split_whitespace().any(|c| c == class))
}

/// The figure with this id.
fn figure<'a, 'input>(doc: &'a Document<'input>, id: &str) -> Node<'a, 'input> {
    doc.descendants()
        .find(|n| n.has_tag_name("figure") && n.attribute("id") == Some(id))
        .unwrap_or_else(|| panic!("no figure #{id}"))
}

fn groups<'a, 'input>(within: Node<'a, 'input>, class: &str) -> Vec<Node<'a, 'input>> {
    within.descendants().filter(|n| n.has_tag_name("g") && class_is(n, class)).collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn a_run_report_has_one_series_per_outcome_and_one_band_per_fault_window_and_its_history_exports_as_edn() {
    let out = tempfile::tempdir().unwrap();
    let output = replab("run", &root().join(SCRIPT), out.path(), &[]);
    let explain = format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{explain}");
    let results: serde_json::Value = serde_json::from_str(&read(&out.path().join("results.json"))).unwrap();
    let windows = results["fault_windows"].as_array().expect("fault windows");
    assert_eq!(windows.len(), 2, "a crash and a partition: {explain}");

    let html = read(&out.path().join("report.html"));
    // Nothing fetched: no script, no external reference of any kind.
    assert!(!html.contains("<script"), "no script");
    assert!(!html.contains("src=\""), "nothing loaded from elsewhere");
    assert!(!html.contains("href=\"http"), "no link to the network");
    let doc = parse(&html);

    let latency = figure(&doc, "latency");
    let series = groups(latency, "series");
    let outcomes: Vec<&str> = series.iter().filter_map(|g| g.attribute("data-outcome")).collect();
    assert_eq!(outcomes, ["ok", "failed", "unknown"], "one series per outcome");
    let drawn: usize = series.iter().map(|g| g.attribute("data-drawn").unwrap().parse::<usize>().unwrap()).sum();
    assert!(drawn > 100, "the operations are drawn: {drawn}");
    let ok = series[0].descendants().filter(|n| n.is_element() && n.tag_name().name() != "g").count();
    assert!(ok >= series[0].attribute("data-drawn").unwrap().parse::<usize>().unwrap(), "a mark per ok operation");

    for id in ["latency", "throughput"] {
        let bands = groups(figure(&doc, id), "fault");
        let kinds: Vec<&str> = bands.iter().filter_map(|g| g.attribute("data-kind")).collect();
        assert_eq!(kinds, ["crash", "partition"], "{id}: one shaded region per fault window");
        for (band, window) in bands.iter().zip(windows) {
            let start: f64 = band.attribute("data-start-s").unwrap().parse().unwrap();
            assert!((start - window["start_s"].as_f64().unwrap()).abs() < 0.001);
            let label = window["label"].as_str().unwrap();
            assert!(
                band.descendants().any(|n| n.text().map(str::trim) == Some(label)),
                "{id}: the band is labelled {label}"
            );
        }
        let leaders = groups(figure(&doc, id), "leadership");
        assert_eq!(leaders.len(), 1);
        assert!(
            leaders[0].descendants().filter_map(|n| n.text()).filter(|t| t.trim().ends_with(" leads")).count() >= 2
        );
    }
    let checks: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("table") && class_is(n, "checks"))
        .flat_map(|t| t.descendants().filter_map(|r| r.attribute("data-key")))
        .collect();
    assert_eq!(checks, ["linearizable", "no_lost_writes"], "a row per verdict");

    // The history in Jepsen's EDN: one :invoke and one completion per operation.
    let history = out.path().join("history.jsonl");
    let operations = read(&history).lines().count();
    let export = std::process::Command::new(env!("CARGO_BIN_EXE_replab"))
        .args(["export", "--format", "edn"])
        .arg(&history)
        .output()
        .unwrap();
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    let edn = String::from_utf8(export.stdout).unwrap();
    let options = edn_format::ParserOptions::default();
    let events: Vec<edn_format::Value> =
        edn_format::Parser::from_str(&edn, options).collect::<Result<_, _>>().expect("the export parses as EDN");
    let type_of = |e: &edn_format::Value| {
        let edn_format::Value::Map(map) = e else { panic!("not a map: {e}") };
        match map.get(&edn_format::Value::Keyword(edn_format::Keyword::from_name("type"))) {
            Some(edn_format::Value::Keyword(k)) => k.name().to_string(),
            other => panic!("no :type keyword: {other:?}"),
        }
    };
    let invokes = events.iter().filter(|e| type_of(e) == "invoke").count();
    let completions = events.iter().filter(|e| ["ok", "fail", "info"].contains(&type_of(e).as_str())).count();
    assert_eq!((invokes, completions, events.len()), (operations, operations, 2 * operations));
}

#[test]
fn a_comparison_over_runs_reports_medians_ranges_and_a_row_per_variant() {
    let out = tempfile::tempdir().unwrap();
    let args = ["--variant", "always:wal.fsync=always", "--variant", "never:wal.fsync=never", "--runs", "2"];
    let output = replab("compare", &root().join(SCRIPT), out.path(), &args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let explain = format!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{explain}");
    assert!(stdout.contains("seeds 1..=2, 2 runs per variant"), "{explain}");
    assert!(stdout.contains("| checks | 2/2 runs pass | 2/2 runs pass |"), "{explain}");
    for variant in ["always", "never"] {
        for seed in [1, 2] {
            let run = out.path().join(variant).join(format!("seed-{seed}"));
            assert!(run.join("report.html").exists(), "{variant} seed {seed} has its own report");
        }
    }

    let rows: Vec<serde_json::Value> = serde_json::from_str(&read(&out.path().join("compare.json"))).unwrap();
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert_eq!(row["seeds"], serde_json::json!([1, 2]));
        let p99 = &row["measures"]["latency_p99_ms"];
        let (min, median, max) =
            (p99["min"].as_f64().unwrap(), p99["median"].as_f64().unwrap(), p99["max"].as_f64().unwrap());
        assert!(min <= median && median <= max, "{p99}");
        assert_eq!(p99["runs"], 2);
        let runs = row["runs"].as_array().unwrap();
        let p99s: Vec<f64> = runs.iter().map(|r| r["latency"]["p99_us"].as_f64().unwrap() / 1e3).collect();
        assert_eq!(min, p99s.iter().copied().fold(f64::MAX, f64::min), "the range is the runs' own");
        let linearizable = row["checks"].as_array().unwrap().iter().find(|c| c["name"] == "linearizable").unwrap();
        assert_eq!((linearizable["passed"].as_u64(), linearizable["runs"].as_u64()), (Some(2), Some(2)));
    }

    let csv = read(&out.path().join("compare.csv"));
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("variant,kind,name,unit,median,min,max,passed,failed,undecided,runs"));
    assert!(lines.clone().all(|l| l.split(',').count() == 11), "{csv}");
    assert!(csv.lines().any(|l| l.starts_with("never,check,no_lost_writes,,,,,2,0,0,2")), "{csv}");
    assert!(csv.lines().any(|l| l.starts_with("always,measure,throughput_ops_per_s,")), "{csv}");

    let html = read(&out.path().join("report.html"));
    let doc = parse(&html);
    let variants = doc.descendants().find(|n| n.has_tag_name("table") && class_is(n, "variants")).expect("variants");
    let names: Vec<&str> =
        variants.descendants().filter(|n| class_is(n, "row")).filter_map(|r| r.attribute("data-key")).collect();
    assert_eq!(names, ["always", "never"], "one row per variant");
    let charts: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("g") && class_is(n, "measure"))
        .filter_map(|g| g.attribute("data-measure"))
        .collect();
    for measure in [
        "throughput_ops_per_s",
        "latency_p50_ms",
        "latency_p99_ms",
        "writes_lost",
        "unavailable_s",
        "messages_per_op",
        "bytes_per_op",
    ] {
        assert!(charts.contains(&measure), "a chart of {measure}: {charts:?}");
    }
}
