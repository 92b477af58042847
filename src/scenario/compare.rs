//! `replab compare`: one scenario, several configurations, side by side.
//!
//! Every variant runs the same script with the same seed, so the workload
//! and the fault schedule are the same random choices; what differs is the
//! configuration. The summary table puts the variants in columns: checks,
//! operations, throughput, latency, elections, messages.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::results::RunReport;
use super::{RunOptions, run};
use crate::check::CheckStatus;
use crate::config::{self, ConfigInput};

/// One configuration to compare.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variant {
    pub name: String,
    /// Replaces the base `--config` file.
    pub file: Option<PathBuf>,
    /// Layered over the base `--set`s, so they win.
    pub sets: Vec<String>,
}

impl Variant {
    /// Parses `NAME:KEY=VALUE[,KEY=VALUE...]` (`NAME:` alone is the base
    /// configuration) or `NAME@FILE`.
    pub fn parse(text: &str) -> Result<Variant, String> {
        let split = text
            .find([':', '@'])
            .ok_or_else(|| format!("variant `{text}`: expected NAME:KEY=VALUE[,KEY=VALUE...] or NAME@FILE"))?;
        let (name, rest) = (&text[..split], &text[split + 1..]);
        let named = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !named {
            return Err(format!(
                "variant `{text}`: the name `{name}` must be letters, digits, '-', '_' or '.' (it names a directory)"
            ));
        }
        if text.as_bytes()[split] == b'@' {
            if rest.is_empty() {
                return Err(format!("variant `{text}`: no file after '@'"));
            }
            return Ok(Variant { name: name.to_string(), file: Some(PathBuf::from(rest)), sets: Vec::new() });
        }
        let mut sets = Vec::new();
        for set in rest.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if !set.contains('=') {
                return Err(format!("variant `{name}`: `{set}` is not KEY=VALUE"));
            }
            sets.push(set.to_string());
        }
        Ok(Variant { name: name.to_string(), file: None, sets })
    }

    fn config(&self, base: &ConfigInput) -> ConfigInput {
        let mut input = base.clone();
        if let Some(file) = &self.file {
            input.file = Some(file.clone());
        }
        input.sets.extend(self.sets.iter().cloned());
        input
    }
}

pub struct CompareOptions {
    pub script: PathBuf,
    pub base: ConfigInput,
    pub variants: Vec<Variant>,
    pub seed: Option<u64>,
    /// Each variant's outputs go to `out/NAME/`, the table to
    /// `out/compare.json`.
    pub out: Option<PathBuf>,
    /// For each variant's run.
    pub limits: super::Limits,
}

/// Exit codes as for `replab run`: 0 every check of every variant passed,
/// 1 some check failed (the table says where), 2 a usage, config or Lua
/// error, 3 no check failed but some could not decide.
pub fn compare(options: CompareOptions) -> u8 {
    if options.variants.len() < 2 {
        eprintln!("error: compare needs at least two --variant options, got {}", options.variants.len());
        return 2;
    }
    for (i, v) in options.variants.iter().enumerate() {
        if options.variants[..i].iter().any(|w| w.name == v.name) {
            eprintln!("error: two variants are named `{}`", v.name);
            return 2;
        }
    }
    // Every configuration is checked before anything runs.
    for v in &options.variants {
        if let Err(e) = config::load(&v.config(&options.base)) {
            eprintln!("error: variant `{}`: {e}", v.name);
            return 2;
        }
    }
    let mut reports = Vec::new();
    for v in &options.variants {
        println!("\n######## variant {} ########", v.name);
        let run_options = RunOptions {
            script: options.script.clone(),
            config: v.config(&options.base),
            seed: options.seed,
            out: options.out.as_ref().map(|out| out.join(&v.name)),
            limits: options.limits,
        };
        match run(run_options) {
            (2, _) | (_, None) => {
                eprintln!("error: variant `{}` did not run to the end; see above", v.name);
                return 2;
            }
            (_, Some(report)) => reports.push((v.name.clone(), report)),
        }
    }
    print!("{}", table(&reports));
    if let Some(out) = &options.out {
        let rows: Vec<_> =
            reports.iter().map(|(name, r)| serde_json::json!({ "variant": name, "results": r })).collect();
        let json = serde_json::to_string_pretty(&rows).expect("reports serialize");
        if let Err(e) = std::fs::write(out.join("compare.json"), json + "\n") {
            eprintln!("error: cannot write {}: {e}", out.join("compare.json").display());
            return 2;
        }
    }
    let codes: Vec<u8> = reports.iter().map(|(_, r)| r.exit_code).collect();
    if codes.contains(&super::exit::FAIL) {
        super::exit::FAIL
    } else if codes.contains(&super::exit::UNDECIDED) {
        super::exit::UNDECIDED
    } else {
        super::exit::PASS
    }
}

/// The variants side by side, as a Markdown table.
pub fn table(reports: &[(String, RunReport)]) -> String {
    let mut s = String::new();
    let Some((_, first)) = reports.first() else { return s };
    let _ = writeln!(s, "\n== compare: {} (seed {}) ==\n", first.script, first.seed);
    let header: Vec<&str> = reports.iter().map(|(name, _)| name.as_str()).collect();
    let _ = writeln!(s, "| | {} |", header.join(" | "));
    let _ = writeln!(s, "|---|{}", "---:|".repeat(reports.len()));
    let row = |s: &mut String, label: &str, cell: &dyn Fn(&RunReport) -> String| {
        let cells: Vec<String> = reports.iter().map(|(_, r)| cell(r)).collect();
        let _ = writeln!(s, "| {label} | {} |", cells.join(" | "));
    };
    row(&mut s, "checks", &|r| {
        let named = |status: CheckStatus| -> Vec<&str> {
            r.checks.iter().filter(|c| c.status == status).map(|c| c.name.as_str()).collect()
        };
        let (failed, undecided) = (named(CheckStatus::Fail), named(CheckStatus::Unknown));
        let passed = r.checks.len() - failed.len() - undecided.len();
        let mut cell = format!("{passed}/{} pass", r.checks.len());
        if !failed.is_empty() {
            cell.push_str(&format!("; failed: {}", failed.join(", ")));
        }
        if !undecided.is_empty() {
            cell.push_str(&format!("; undecided: {}", undecided.join(", ")));
        }
        cell
    });
    // What a check counted, or `-` where the script did not run it.
    let counted = |r: &RunReport, check: &str| {
        r.checks.iter().find(|c| c.name == check).and_then(|c| c.violations).map_or("-".to_string(), |n| n.to_string())
    };
    row(&mut s, "acknowledged writes lost", &|r| counted(r, "no_lost_writes"));
    row(&mut s, "lost updates (acknowledged, silently dropped)", &|r| counted(r, "lost_updates"));
    row(&mut s, "stale reads", &|r| counted(r, "stale_reads"));
    row(&mut s, "reads that returned siblings", &|r| counted(r, "siblings"));
    row(&mut s, "operations ok / failed / unknown", &|r| {
        format!("{} / {} / {}", r.operations.ok, r.operations.fail, r.operations.unknown)
    });
    row(&mut s, "throughput (acknowledged ops/s)", &|r| format!("{:.0}", r.throughput_ops_per_s));
    row(&mut s, "latency p50 / p99 (ms)", &|r| {
        format!("{:.2} / {:.2}", r.latency.p50_us as f64 / 1000.0, r.latency.p99_us as f64 / 1000.0)
    });
    row(&mut s, "elections won (candidacies)", &|r| format!("{} ({})", r.cluster.elections, r.cluster.candidacies));
    row(&mut s, "messages per operation", &|r| format!("{:.1}", r.cluster.messages_per_op));
    row(&mut s, "bytes per operation", &|r| format!("{:.0}", r.cluster.bytes_per_op));
    row(&mut s, "duration (s)", &|r| format!("{:.1}", r.duration_s));
    // What the script measured itself (`report.note`), one row per name:
    // a scenario's own measure belongs next to the standard ones.
    let names: std::collections::BTreeSet<&String> = reports.iter().flat_map(|(_, r)| r.notes.keys()).collect();
    for name in names {
        row(&mut s, name, &|r| r.notes.get(name).map_or("-".to_string(), note_cell));
    }
    s
}

fn note_cell(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Number(n) if n.is_f64() => format!("{:.2}", n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_parse_sets_and_files_and_refuse_the_rest() {
        let v = Variant::parse("never:wal.fsync=never, raft.pre_vote=false").unwrap();
        assert_eq!(v.name, "never");
        assert_eq!(v.sets, vec!["wal.fsync=never", "raft.pre_vote=false"]);
        let v = Variant::parse("hb@config/heartbeat.toml").unwrap();
        assert_eq!(v.file, Some(PathBuf::from("config/heartbeat.toml")));
        assert_eq!(Variant::parse("base:").unwrap().sets, Vec::<String>::new());
        assert!(Variant::parse("nameonly").unwrap_err().contains("NAME:KEY=VALUE"));
        assert!(Variant::parse("a b:x=1").unwrap_err().contains("must be letters"));
        assert!(Variant::parse(":x=1").unwrap_err().contains("must be letters"));
        assert!(Variant::parse("a:wal.fsync").unwrap_err().contains("not KEY=VALUE"));
        assert!(Variant::parse("a@").unwrap_err().contains("no file"));
    }
}
