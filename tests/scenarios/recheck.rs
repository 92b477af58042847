//! `replab check`: a saved history checked again offline gives the run's
//! verdicts and exit code.

use std::path::Path;
use std::process::Command;

use crate::*;

fn recheck(history: &Path, args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_replab"))
        .arg("check")
        .arg(history)
        .args(args)
        .current_dir(root())
        .output()
        .expect("run replab check");
    (output.status.code(), String::from_utf8_lossy(&output.stdout).into_owned())
}

fn statuses(results: &serde_json::Value) -> Vec<(String, String)> {
    results["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_string(), c["status"].as_str().unwrap().to_string()))
        .collect()
}

/// Runs `script`, then checks its history again; both must agree.
fn same_verdicts(script: &Path, args: &[&str]) -> (i32, String) {
    let out = tempfile::tempdir().unwrap();
    let output = replab("run", script, out.path(), args);
    let run_code = output.status.code().unwrap();
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("results.json")).unwrap()).unwrap();
    let (code, stdout) = recheck(&out.path().join("history.jsonl"), &[]);
    assert_eq!(code, Some(run_code), "replab check exits as the run did:\n{stdout}");
    for (name, status) in statuses(&results) {
        assert!(stdout.contains(&format!("check {name}: {status} ")), "{name} is {status} again:\n{stdout}");
    }
    (run_code, stdout)
}

#[test]
fn a_passing_run_passes_again() {
    let (code, _) = same_verdicts(&root().join("scripts/quickstart.lua"), &[]);
    assert_eq!(code, 0);
}

#[test]
fn a_failing_run_fails_again_with_its_witness() {
    let (code, stdout) = same_verdicts(
        &root().join("tests/scenarios/broken/minority-leader-acks.lua"),
        &["--set", "raft.bug=commit_without_quorum"],
    );
    assert_eq!(code, 1);
    assert!(stdout.contains("acknowledged writes lost"), "{stdout}");
}

#[test]
fn a_checked_workload_history_is_saved_and_checked_on_its_own() {
    // The zombie-leader scenario checks the cluster's history and a
    // workload's: the smaller one is saved beside the run's.
    let out = tempfile::tempdir().unwrap();
    let output = replab("run", &root().join("scripts/zombie-leader.lua"), out.path(), &[]);
    assert_eq!(output.status.code(), Some(0));
    let saved = std::fs::read_to_string(out.path().join("checks.json")).unwrap();
    assert!(saved.contains("check-"), "a check judged a history of its own: {saved}");
    let (code, stdout) = recheck(&out.path().join("history.jsonl"), &[]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("a script assertion: as the run recorded it"), "{stdout}");
}

#[test]
fn a_history_without_checks_json_is_checked_for_linearizability() {
    let out = tempfile::tempdir().unwrap();
    let output = replab("run", &root().join("scripts/quickstart.lua"), out.path(), &[]);
    assert_eq!(output.status.code(), Some(0));
    let elsewhere = tempfile::tempdir().unwrap();
    let copy = elsewhere.path().join("history.jsonl");
    std::fs::copy(out.path().join("history.jsonl"), &copy).unwrap();
    let (code, stdout) = recheck(&copy, &[]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("linearizability only") && stdout.contains("check linearizable: pass"), "{stdout}");
}

#[test]
fn a_malformed_history_exits_2_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    std::fs::write(&path, "{\"id\": 1}\nnot json\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_replab")).arg("check").arg(&path).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("history.jsonl") && stderr.contains("line 1"), "{stderr}");
}
