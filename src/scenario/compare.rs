//! `replab compare`: one scenario, several configurations, side by side.
//!
//! Every variant runs the same script with the same seeds, so the workload
//! and the fault schedule are the same random choices; what differs is the
//! configuration. With `--runs R` each variant runs with seeds seed ..
//! seed+R-1: one run on a shared machine proves little, so the table gives
//! each measure's median and range (measures.rs) and how many runs passed
//! each check.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::measures::{self, MEASURES, VariantRuns};
use super::{RunOptions, run};
use crate::check::CheckStatus;
use crate::config::{self, ConfigInput};
use crate::progress::Progress;

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
    /// Runs per variant, with seeds seed, seed+1, ..., seed+runs-1.
    pub runs: u64,
    /// Each variant's outputs go to `out/NAME/` (`out/NAME/seed-S/` with
    /// several runs); the table to compare.json, compare.csv and
    /// report.html.
    pub out: Option<PathBuf>,
    /// For each variant's run.
    pub limits: super::Limits,
}

/// The most runs per variant: a typo like `--runs 1000000` should not
/// start a week of work.
pub const MAX_RUNS: u64 = 1_000;

/// Exit codes as for `replab run`: 0 every check of every variant passed,
/// 1 some check failed (the table says where), 2 a usage, config or Lua
/// error, 3 no check failed but some could not decide.
pub fn compare(options: CompareOptions) -> u8 {
    if options.variants.len() < 2 {
        eprintln!("error: compare needs at least two --variant options, got {}", options.variants.len());
        return 2;
    }
    if !(1..=MAX_RUNS).contains(&options.runs) {
        eprintln!("error: --runs {} must be within 1 ..= {MAX_RUNS}", options.runs);
        return 2;
    }
    for (i, v) in options.variants.iter().enumerate() {
        if options.variants[..i].iter().any(|w| w.name == v.name) {
            eprintln!("error: two variants are named `{}`", v.name);
            return 2;
        }
    }
    // Every configuration is checked before anything runs.
    let mut first_seeds = Vec::new();
    for v in &options.variants {
        match config::load(&v.config(&options.base)) {
            Ok(settings) => first_seeds.push(options.seed.unwrap_or(settings.cluster.seed)),
            Err(e) => {
                eprintln!("error: variant `{}`: {e}", v.name);
                return 2;
            }
        }
    }
    if let Some(out) = &options.out
        && let Err(e) = std::fs::create_dir_all(out)
    {
        eprintln!("error: cannot write results to {}: {e}", out.display());
        return 2;
    }
    let progress = Arc::new(Progress::new("compare", options.variants.len() as u64 * options.runs));
    let mut variants = Vec::new();
    for (v, first_seed) in options.variants.iter().zip(first_seeds) {
        let mut runs = Vec::new();
        for i in 0..options.runs {
            let Some(seed) = first_seed.checked_add(i) else {
                eprintln!("error: seed {first_seed} + {i} overflows");
                return 2;
            };
            let label = format!("variant {}, run {}/{} (seed {seed})", v.name, i + 1, options.runs);
            progress.println(&format!("\n######## {label} ########"));
            progress.start_step(&label);
            let out = options.out.as_ref().map(|out| {
                if options.runs == 1 { out.join(&v.name) } else { out.join(&v.name).join(format!("seed-{seed}")) }
            });
            let run_options = RunOptions {
                script: options.script.clone(),
                config: v.config(&options.base),
                seed: Some(seed),
                out,
                limits: options.limits,
                progress: Some(progress.clone()),
            };
            let outcome = run(run_options);
            progress.finish_step();
            match outcome {
                (2, _) | (_, None) => {
                    progress.finish();
                    eprintln!("error: variant `{}` (seed {seed}) did not run to the end; see above", v.name);
                    return 2;
                }
                (_, Some(report)) => runs.push(report),
            }
        }
        variants.push(VariantRuns { name: v.name.clone(), runs });
    }
    progress.finish();
    print!("{}", table(&variants));
    if let Some(out) = &options.out
        && let Err(e) = write_outputs(out, &variants)
    {
        eprintln!("error: {e}");
        return 2;
    }
    let codes: Vec<u8> = variants.iter().flat_map(|v| &v.runs).map(|r| r.exit_code).collect();
    if codes.contains(&super::exit::FAIL) {
        super::exit::FAIL
    } else if codes.contains(&super::exit::UNDECIDED) {
        super::exit::UNDECIDED
    } else {
        super::exit::PASS
    }
}

/// compare.json, compare.csv and report.html, each naming the file it
/// could not write.
fn write_outputs(out: &Path, variants: &[VariantRuns]) -> Result<(), String> {
    let write = |name: &str, text: String| {
        std::fs::write(out.join(name), text).map_err(|e| format!("cannot write {}: {e}", out.join(name).display()))
    };
    let json = serde_json::to_string_pretty(&measures::json(variants)).map_err(|e| format!("compare.json: {e}"))?;
    write("compare.json", json + "\n")?;
    write("compare.csv", measures::csv(variants))?;
    let html = crate::report::compare_page::compare_report(variants)?;
    write(crate::report::REPORT_FILE, html)
}

/// The variants side by side, as a Markdown table. With several runs a
/// cell is the median and, in brackets, the range.
pub fn table(variants: &[VariantRuns]) -> String {
    let mut s = String::new();
    let Some(first) = variants.first().and_then(|v| v.runs.first()) else { return s };
    let seeds = variants[0].seeds();
    let seeds = match (seeds.first(), seeds.last()) {
        (Some(a), Some(b)) if a != b => format!("seeds {a}..={b}, {} runs per variant: median (range)", seeds.len()),
        _ => format!("seed {}", first.seed),
    };
    let _ = writeln!(s, "\n== compare: {} ({seeds}) ==\n", first.script);
    let header: Vec<&str> = variants.iter().map(|v| v.name.as_str()).collect();
    let _ = writeln!(s, "| | {} |", header.join(" | "));
    let _ = writeln!(s, "|---|{}", "---:|".repeat(variants.len()));
    let row = |s: &mut String, label: &str, cells: Vec<String>| {
        let _ = writeln!(s, "| {label} | {} |", cells.join(" | "));
    };
    row(&mut s, "checks", variants.iter().map(checks_cell).collect());
    for m in MEASURES {
        let cells = variants.iter().map(|v| v.spread(m).map_or("-".to_string(), |sp| sp.show(m.decimals))).collect();
        row(&mut s, &m.title(), cells);
    }
    // What the script measured itself (`report.note`), one row per name:
    // a scenario's own measure belongs next to the standard ones.
    for name in measures::note_names(variants) {
        row(&mut s, name, variants.iter().map(|v| v.note_cell(name)).collect());
    }
    s
}

/// `3/3 pass` for one run; with several, also how many runs passed each
/// check that did not always pass.
pub fn checks_cell(v: &VariantRuns) -> String {
    let checks = v.check_passes();
    let runs = v.runs.len();
    if runs == 1 {
        let r = &v.runs[0];
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
        return cell;
    }
    let mut cell = format!("{}/{runs} runs pass", v.runs_passed());
    let short: Vec<String> =
        checks.iter().filter(|c| c.passed < c.runs).map(|c| format!("{} {}/{}", c.name, c.passed, c.runs)).collect();
    if !short.is_empty() {
        cell.push_str(&format!("; {}", short.join(", ")));
    }
    cell
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
