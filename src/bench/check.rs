//! `replab bench check`: how long the linearizability checker takes on
//! realistic histories.
//!
//! Histories come from `check::simulate` (seeded, linearizable by
//! construction: overlapping clients, a few Unknown and Fail operations,
//! counters among the keys), so a verdict other than linearizable is a
//! checker bug and makes the benchmark fail. Each case is also checked
//! with one read made stale, which the checker must reject; finding a
//! violation explores more than confirming a correct history.
//!
//! Target (docs/CHECKERS.md): 10 clients, 10,000 operations over 100 keys
//! decided in under 5 s.

use std::time::{Duration, Instant};

use crate::check::linearizability::{LinearizabilityOptions, Verdict, check_linearizable_with};
use crate::check::simulate::{SimulationParams, inject_stale_read, simulate_history};

use super::median;

pub const TARGET_OPS: usize = 10_000;
pub const TARGET_KEYS: usize = 100;
pub const TARGET_CLIENTS: usize = 10;
pub const TARGET_SECONDS: f64 = 5.0;

#[derive(Clone, Debug)]
pub struct CheckBenchArgs {
    pub ops: usize,
    pub clients: usize,
    /// One case per key count.
    pub keys: Vec<usize>,
    pub unknown_rate: f64,
    pub repeats: usize,
    pub seed: u64,
    /// Time budget handed to the checker in each run.
    pub budget_s: f64,
}

impl Default for CheckBenchArgs {
    fn default() -> CheckBenchArgs {
        CheckBenchArgs {
            ops: TARGET_OPS,
            clients: TARGET_CLIENTS,
            keys: vec![TARGET_KEYS, 10],
            unknown_rate: 0.002,
            repeats: 5,
            seed: 1,
            budget_s: 60.0,
        }
    }
}

/// One case's median run.
#[derive(Clone, Debug)]
pub struct CheckBenchRow {
    pub ops: usize,
    pub keys: usize,
    pub clients: usize,
    pub unknown_ops: usize,
    pub mutated: bool,
    pub median_s: f64,
    pub verdict: String,
}

pub fn run(args: &CheckBenchArgs) -> Result<(), String> {
    run_rows(args).map(|_| ())
}

pub fn run_rows(args: &CheckBenchArgs) -> Result<Vec<CheckBenchRow>, String> {
    validate(args)?;
    let options = LinearizabilityOptions::with_time_budget(Duration::from_secs_f64(args.budget_s));
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    // Each key count checks the recorded history and a mutated one.
    let steps = (2 * args.keys.len() * args.repeats) as u64;
    let progress = crate::progress::Progress::new("bench check", steps);
    for &keys in &args.keys {
        let params = SimulationParams {
            seed: args.seed,
            clients: args.clients,
            ops: args.ops,
            keys,
            unknown_rate: args.unknown_rate,
            ..SimulationParams::default()
        };
        let history = simulate_history(&params);
        let mut mutated = history.clone();
        let stale_id = inject_stale_read(&mut mutated, history.len() / 2);
        let unknown_ops = history.count_unknown();
        let cases = [(false, Some(&history)), (true, stale_id.map(|_| &mutated))];
        for (is_mutated, case) in cases {
            let Some(case) = case else {
                continue;
            };
            let mut seconds = Vec::new();
            let mut verdicts = Vec::new();
            for repeat in 0..args.repeats {
                let what = if is_mutated { "one stale read" } else { "as recorded" };
                progress.start_step(&format!("{keys} keys, {what}, run {}/{}", repeat + 1, args.repeats));
                let started = Instant::now();
                let report = check_linearizable_with(case, &options);
                seconds.push(started.elapsed().as_secs_f64());
                progress.finish_step();
                verdicts.push(report.verdict);
            }
            let verdict = describe(&verdicts[0]);
            let expected = if is_mutated {
                verdicts.iter().all(Verdict::is_violation)
            } else {
                verdicts.iter().all(Verdict::is_linearizable)
            };
            if !expected && !verdicts.iter().any(Verdict::is_unknown) {
                failures.push(format!(
                    "{keys} keys{}: the checker said {verdict}",
                    if is_mutated { ", one stale read" } else { "" }
                ));
            }
            rows.push(CheckBenchRow {
                ops: args.ops,
                keys,
                clients: args.clients,
                unknown_ops,
                mutated: is_mutated,
                median_s: median(seconds),
                verdict,
            });
        }
    }
    progress.finish();
    print_rows(args, &rows);
    if failures.is_empty() { Ok(rows) } else { Err(format!("wrong verdicts: {}", failures.join("; "))) }
}

fn validate(args: &CheckBenchArgs) -> Result<(), String> {
    if args.ops == 0 || args.clients == 0 || args.repeats == 0 {
        return Err("--ops, --clients and --repeats must be above 0".to_string());
    }
    if args.keys.is_empty() || args.keys.contains(&0) {
        return Err("--keys needs one or more key counts above 0".to_string());
    }
    if !(0.0..=1.0).contains(&args.unknown_rate) {
        return Err(format!("--unknown-rate {} is outside 0 ..= 1", args.unknown_rate));
    }
    if !(args.budget_s.is_finite() && args.budget_s > 0.0) {
        return Err(format!("--budget-s {} must be a positive number of seconds", args.budget_s));
    }
    Ok(())
}

fn describe(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Linearizable => "linearizable".to_string(),
        Verdict::NotLinearizable { key, .. } => format!("not linearizable (key {key})"),
        Verdict::Unknown { .. } => "unknown (budget spent)".to_string(),
    }
}

fn print_rows(args: &CheckBenchArgs, rows: &[CheckBenchRow]) {
    println!(
        "\nLinearizability checker: simulated histories (seed {}), median of {} runs, budget {}s\n",
        args.seed, args.repeats, args.budget_s
    );
    println!("| ops | keys | clients | unknown ops | history | seconds | verdict |");
    println!("|---:|---:|---:|---:|---|---:|---|");
    for row in rows {
        println!(
            "| {} | {} | {} | {} | {} | {:.3} | {} |",
            row.ops,
            row.keys,
            row.clients,
            row.unknown_ops,
            if row.mutated { "one stale read" } else { "linearizable" },
            row.median_s,
            row.verdict
        );
    }
    let target =
        rows.iter().find(|r| !r.mutated && r.ops == TARGET_OPS && r.keys == TARGET_KEYS && r.clients == TARGET_CLIENTS);
    match target {
        Some(row) => println!(
            "\ntarget: {TARGET_CLIENTS} clients x {TARGET_OPS} ops x {TARGET_KEYS} keys in under {TARGET_SECONDS} s: \
             {:.3} s, {}",
            row.median_s,
            if row.median_s < TARGET_SECONDS { "met" } else { "MISSED" }
        ),
        None => println!(
            "\ntarget: {TARGET_CLIENTS} clients x {TARGET_OPS} ops x {TARGET_KEYS} keys in under {TARGET_SECONDS} s \
             (not among these cases)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_cases_get_the_right_verdicts() {
        let args = CheckBenchArgs { ops: 400, keys: vec![4], repeats: 1, ..CheckBenchArgs::default() };
        let rows = run_rows(&args).expect("right verdicts");
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert!(rows.iter().any(|r| r.mutated));
    }

    /// The full benchmark, for measuring by hand:
    /// `cargo test --release -p replab --lib bench::check::tests::full_benchmark -- --ignored --nocapture`
    #[test]
    #[ignore = "a benchmark, not a test: run by hand"]
    fn full_benchmark() {
        run(&CheckBenchArgs::default()).expect("right verdicts");
    }

    /// The hard case: one hot key.
    #[test]
    #[ignore = "a benchmark, not a test: run by hand"]
    fn hot_key_benchmark() {
        run(&CheckBenchArgs { keys: vec![1], repeats: 1, ..CheckBenchArgs::default() }).expect("right verdicts");
    }

    #[test]
    fn rejects_nonsense_arguments() {
        let args = CheckBenchArgs { keys: vec![0], ..CheckBenchArgs::default() };
        assert!(run(&args).is_err());
    }
}
