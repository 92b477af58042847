//! `replab check DIR/history.jsonl`: the checks of a finished run, decided
//! again offline (`check::replay`), with the same verdicts and exit codes.

use std::collections::BTreeMap;
use std::path::Path;

use super::{exit, exit_code};
use crate::check::replay::{self, Checker, DEFAULT_TIMEOUT_S, SavedCheck};
use crate::check::{CheckReport, CheckStatus, History, LinearizabilityOptions, check_linearizable_with};

/// Runs the checks and prints each verdict; returns the exit code.
/// `timeout_s` overrides the linearizability budget the run used.
pub fn recheck(history_path: &Path, timeout_s: Option<f64>) -> u8 {
    if let Some(secs) = timeout_s
        && !(secs.is_finite() && secs > 0.0 && secs <= 86_400.0)
    {
        eprintln!("error: --timeout {secs} must be a number of seconds within 0 .. 86400");
        return exit::ERROR;
    }
    let history = match History::load_jsonl(history_path) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {}: {e}", history_path.display());
            return exit::ERROR;
        }
    };
    let dir = history_path.parent().unwrap_or(Path::new("."));
    let saved = match replay::load_saved(dir) {
        Ok(saved) => saved,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::ERROR;
        }
    };
    let mut reports = Vec::new();
    match saved {
        Some(saved) => {
            println!("{} checks recorded by the run in {}", saved.len(), dir.join(replay::CHECKS_FILE).display());
            let mut histories = BTreeMap::new();
            histories.insert(history_path.to_path_buf(), history);
            for check in &saved {
                match replay_one(check, dir, &mut histories, timeout_s) {
                    Ok(report) => reports.push(report),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return exit::ERROR;
                    }
                }
            }
        }
        None => {
            println!("no {} beside the history: checking linearizability only", replay::CHECKS_FILE);
            let secs = timeout_s.unwrap_or(DEFAULT_TIMEOUT_S);
            let options = LinearizabilityOptions::with_time_budget(std::time::Duration::from_secs_f64(secs));
            let report = check_linearizable_with(&history, &options).to_check_report();
            print_verdict(&report, "");
            reports.push(report);
        }
    }
    let code = exit_code(false, &reports);
    let undecided: Vec<&str> =
        reports.iter().filter(|r| r.status == CheckStatus::Unknown).map(|r| r.name.as_str()).collect();
    let verdict = match code {
        exit::PASS => "every check passed".to_string(),
        exit::FAIL => "a check FAILED (witness above)".to_string(),
        _ => format!("no check failed, but {} could not decide: {}", undecided.len(), undecided.join(", ")),
    };
    println!("result       {verdict} (exit code {code})");
    code
}

fn replay_one(
    check: &SavedCheck,
    dir: &Path,
    histories: &mut BTreeMap<std::path::PathBuf, History>,
    timeout_s: Option<f64>,
) -> Result<CheckReport, String> {
    let replayed = replay::replay(check, dir, histories, timeout_s)?;
    let note = if replayed.as_recorded {
        match check.checker {
            Checker::That => " (a script assertion: as the run recorded it)",
            _ => " (the run could not gather this check's input: as the run recorded it)",
        }
    } else if replayed.report.status != check.recorded.status {
        // Same inputs, another verdict: only a different time budget (or a
        // changed checker) does that, and the user should know.
        " (the run recorded a different verdict)"
    } else {
        ""
    };
    print_verdict(&replayed.report, note);
    Ok(replayed.report)
}

fn print_verdict(report: &CheckReport, note: &str) {
    println!("check {}: {} — {}{note}", report.name, report.status, report.summary);
    if report.status != CheckStatus::Pass && !report.witness.is_empty() {
        for line in report.witness.lines() {
            println!("    {line}");
        }
    }
}
