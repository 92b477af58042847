//! What `replab compare` measures of each run, and how a variant's
//! repeated runs (`--runs R`, seeds seed..seed+R-1) sum up: the median and
//! the range of every measure, and how many runs passed each check.
//!
//! One table of measures serves the text table, compare.csv, compare.json
//! and the report's charts, so they cannot disagree on what was measured.

use serde::Serialize;

use super::results::RunReport;
use crate::check::CheckStatus;

/// One figure taken from every run.
pub struct Measure {
    /// Stable name, for compare.csv and compare.json.
    pub key: &'static str,
    /// What a person reads.
    pub label: &'static str,
    pub unit: &'static str,
    /// Decimals shown in the tables.
    pub decimals: usize,
    /// None where the run does not measure it (the script did not run
    /// that check, or watched no leader).
    pub value: fn(&RunReport) -> Option<f64>,
}

impl Measure {
    /// The row's title: the label, and the unit where it is a unit of
    /// measure rather than the counted thing again.
    pub fn title(&self) -> String {
        match self.unit {
            "ms" | "s" | "acknowledged ops/s" => format!("{} ({})", self.label, self.unit),
            _ => self.label.to_string(),
        }
    }
}

/// What a check counted, where the script ran it.
fn violations(r: &RunReport, check: &str) -> Option<f64> {
    r.checks.iter().find(|c| c.name == check).and_then(|c| c.violations).map(|n| n as f64)
}

/// Every measure `compare` reports, in table order.
pub const MEASURES: &[Measure] = &[
    Measure {
        key: "throughput_ops_per_s",
        label: "throughput",
        unit: "acknowledged ops/s",
        decimals: 0,
        value: |r| Some(r.throughput_ops_per_s),
    },
    Measure {
        key: "latency_p50_ms",
        label: "latency p50",
        unit: "ms",
        decimals: 2,
        value: |r| Some(r.latency.p50_us as f64 / 1e3),
    },
    Measure {
        key: "latency_p99_ms",
        label: "latency p99",
        unit: "ms",
        decimals: 2,
        value: |r| Some(r.latency.p99_us as f64 / 1e3),
    },
    Measure {
        key: "writes_lost",
        label: "acknowledged writes lost",
        unit: "writes",
        decimals: 0,
        value: |r| violations(r, "no_lost_writes"),
    },
    Measure {
        key: "lost_updates",
        label: "lost updates",
        unit: "writes",
        decimals: 0,
        value: |r| violations(r, "lost_updates"),
    },
    Measure {
        key: "stale_reads",
        label: "stale reads",
        unit: "reads",
        decimals: 0,
        value: |r| violations(r, "stale_reads"),
    },
    Measure {
        key: "sibling_reads",
        label: "reads that returned siblings",
        unit: "reads",
        decimals: 0,
        value: |r| violations(r, "siblings"),
    },
    Measure {
        key: "unavailable_s",
        label: "time without a leader or quorum",
        unit: "s",
        decimals: 3,
        value: |r| (r.availability.watched_s > 0.0).then_some(r.availability.unavailable_s),
    },
    Measure {
        key: "elections",
        label: "elections won",
        unit: "elections",
        decimals: 0,
        value: |r| Some(r.cluster.elections as f64),
    },
    Measure {
        key: "messages_per_op",
        label: "messages per operation",
        unit: "messages",
        decimals: 1,
        value: |r| Some(r.cluster.messages_per_op),
    },
    Measure {
        key: "bytes_per_op",
        label: "bytes per operation",
        unit: "bytes",
        decimals: 0,
        value: |r| Some(r.cluster.bytes_per_op),
    },
    Measure {
        key: "operations_failed",
        label: "operations failed",
        unit: "operations",
        decimals: 0,
        value: |r| Some(r.operations.fail as f64),
    },
    Measure {
        key: "operations_unknown",
        label: "operations of unknown outcome",
        unit: "operations",
        decimals: 0,
        value: |r| Some(r.operations.unknown as f64),
    },
];

/// A measure over a variant's runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// Runs that measured it.
    pub runs: usize,
}

impl Spread {
    /// None when no run measured it. With an even count the median is the
    /// mean of the middle two.
    pub fn of(values: &[f64]) -> Option<Spread> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
        Some(Spread { median, min: v[0], max: v[n - 1], runs: n })
    }

    /// `12.5` for one run or no spread, `12.5 (11.0–14.2)` otherwise.
    pub fn show(&self, decimals: usize) -> String {
        let f = |x: f64| format!("{x:.decimals$}");
        if self.runs == 1 || f(self.min) == f(self.max) {
            f(self.median)
        } else {
            format!("{} ({}–{})", f(self.median), f(self.min), f(self.max))
        }
    }
}

/// How many of a variant's runs passed one check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckPasses {
    pub name: String,
    pub passed: usize,
    pub failed: usize,
    pub undecided: usize,
    /// Runs that ran this check.
    pub runs: usize,
}

/// One variant's runs, in seed order.
#[derive(Clone, Debug)]
pub struct VariantRuns {
    pub name: String,
    pub runs: Vec<RunReport>,
}

impl VariantRuns {
    pub fn spread(&self, measure: &Measure) -> Option<Spread> {
        let values: Vec<f64> = self.runs.iter().filter_map(|r| (measure.value)(r)).collect();
        Spread::of(&values)
    }

    /// Every check any run ran, in the order they first appear.
    pub fn check_passes(&self) -> Vec<CheckPasses> {
        let mut out: Vec<CheckPasses> = Vec::new();
        for check in self.runs.iter().flat_map(|r| &r.checks) {
            let at = match out.iter().position(|c| c.name == check.name) {
                Some(at) => at,
                None => {
                    out.push(CheckPasses { name: check.name.clone(), passed: 0, failed: 0, undecided: 0, runs: 0 });
                    out.len() - 1
                }
            };
            let c = &mut out[at];
            c.runs += 1;
            match check.status {
                CheckStatus::Pass => c.passed += 1,
                CheckStatus::Fail => c.failed += 1,
                CheckStatus::Unknown => c.undecided += 1,
            }
        }
        out
    }

    /// Runs whose every check passed and that ran to the end.
    pub fn runs_passed(&self) -> usize {
        self.runs.iter().filter(|r| r.exit_code == super::exit::PASS).count()
    }

    pub fn seeds(&self) -> Vec<u64> {
        self.runs.iter().map(|r| r.seed).collect()
    }

    /// A script's `report.note` over the runs: numbers as a spread (whole
    /// numbers stay whole), anything else as the distinct values; `-`
    /// where no run noted it.
    pub fn note_cell(&self, name: &str) -> String {
        let values: Vec<&serde_json::Value> = self.runs.iter().filter_map(|r| r.notes.get(name)).collect();
        if values.is_empty() {
            return "-".to_string();
        }
        let numbers: Vec<f64> = values.iter().filter_map(|v| v.as_f64()).collect();
        if numbers.len() == values.len() {
            let whole = values.iter().all(|v| v.is_i64() || v.is_u64());
            return Spread::of(&numbers).map_or("-".to_string(), |s| s.show(if whole { 0 } else { 2 }));
        }
        let mut shown: Vec<String> = Vec::new();
        for v in values {
            let text = match v {
                serde_json::Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            if !shown.contains(&text) {
                shown.push(text);
            }
        }
        shown.join(" / ")
    }
}

/// Every note name any run of any variant recorded, sorted.
pub fn note_names(variants: &[VariantRuns]) -> Vec<&str> {
    let names: std::collections::BTreeSet<&str> =
        variants.iter().flat_map(|v| &v.runs).flat_map(|r| r.notes.keys().map(String::as_str)).collect();
    names.into_iter().collect()
}

/// compare.csv: one line per (variant, measure) and per (variant, check).
/// Measure lines fill median/min/max, check lines passed/failed/undecided;
/// `runs` is how many runs measured it (or ran the check).
pub fn csv(variants: &[VariantRuns]) -> String {
    let mut s = String::from("variant,kind,name,unit,median,min,max,passed,failed,undecided,runs\n");
    for v in variants {
        for m in MEASURES {
            match v.spread(m) {
                Some(sp) => s.push_str(&format!(
                    "{},measure,{},{},{},{},{},,,,{}\n",
                    v.name, m.key, m.unit, sp.median, sp.min, sp.max, sp.runs
                )),
                None => s.push_str(&format!("{},measure,{},{},,,,,,,0\n", v.name, m.key, m.unit)),
            }
        }
        for c in v.check_passes() {
            s.push_str(&format!(
                "{},check,{},,,,,{},{},{},{}\n",
                v.name,
                csv_field(&c.name),
                c.passed,
                c.failed,
                c.undecided,
                c.runs
            ));
        }
    }
    s
}

/// Check names come from scripts: quoted when they hold a comma or quote.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_string() }
}

/// compare.json: one entry per variant, with every run's results.
pub fn json(variants: &[VariantRuns]) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = variants
        .iter()
        .map(|v| {
            let measures: serde_json::Map<String, serde_json::Value> = MEASURES
                .iter()
                .map(|m| (m.key.to_string(), serde_json::to_value(v.spread(m)).unwrap_or_default()))
                .collect();
            serde_json::json!({
                "variant": v.name,
                "seeds": v.seeds(),
                "runs_passed": v.runs_passed(),
                "measures": measures,
                "checks": v.check_passes(),
                "runs": v.runs,
            })
        })
        .collect();
    serde_json::Value::Array(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_take_the_median_and_range_and_skip_what_was_not_measured() {
        assert_eq!(Spread::of(&[]), None);
        assert_eq!(Spread::of(&[f64::NAN]), None);
        let s = Spread::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.runs), (2.0, 1.0, 3.0, 3));
        assert_eq!(Spread::of(&[4.0, 1.0]).unwrap().median, 2.5);
        assert_eq!(s.show(1), "2.0 (1.0–3.0)");
        assert_eq!(Spread::of(&[7.0]).unwrap().show(0), "7");
        assert_eq!(Spread::of(&[7.01, 7.02]).unwrap().show(1), "7.0");
    }

    #[test]
    fn csv_fields_with_commas_are_quoted() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,\"b\""), "\"a,\"\"b\"\"\"");
    }
}
