use std::path::PathBuf;

use crate::*;

fn script(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_lua_syntax_error_exits_2_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(&dir, "syntax.lua", "local c = 1\nlocal x = = 2\n");
    let r = run(&path, &[]);
    assert_eq!(r.code, Some(2), "{}", r.explain());
    assert!(r.stdout.contains("syntax.lua:2:"), "{}", r.explain());
    assert!(r.results.is_some(), "results.json is written for a failed run too");
}

#[test]
fn a_lua_runtime_error_exits_2_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(&dir, "runtime.lua", "local c = cluster.start { nodes = 3 }\nc:await_leader()\n\nc:crash(42)\n");
    let r = run(&path, &[]);
    assert_eq!(r.code, Some(2), "{}", r.explain());
    assert!(r.stdout.contains("runtime.lua:4:"), "{}", r.explain());
    assert!(r.stdout.contains("node 42 is not a member"), "{}", r.explain());
    let results = r.results.expect("results.json written");
    assert!(results["error"].as_str().unwrap().contains("runtime.lua:4:"));
}

#[test]
fn a_bad_config_key_in_cluster_start_is_a_lua_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(&dir, "badkey.lua", "cluster.start { nodes = 3, raft = { pre_vot = true } }\n");
    let r = run(&path, &[]);
    assert_eq!(r.code, Some(2), "{}", r.explain());
    assert!(r.stdout.contains("badkey.lua:1:") && r.stdout.contains("raft.pre_vot"), "{}", r.explain());
}

#[test]
fn a_failing_check_exits_1_with_its_witness_and_writes_results() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(&dir, "fails.lua", "check.that('one is two', 1 == 2, 'arithmetic still works')\n");
    let r = run(&path, &[]);
    assert_eq!(r.code, Some(1), "{}", r.explain());
    assert!(r.stdout.contains("FAIL") && r.stdout.contains("one is two"), "{}", r.explain());
    assert_eq!(r.check_status("one is two").as_deref(), Some("fail"));
}

#[test]
fn a_missing_script_or_bad_option_exits_2() {
    let r = run(&root().join("scripts/no-such-script.lua"), &[]);
    assert_eq!(r.code, Some(2), "{}", r.explain());
    assert!(r.stderr.contains("no-such-script.lua"), "{}", r.explain());
    let r = run(&root().join("scripts/quickstart.lua"), &["--set", "wal.fsync=sometimes"]);
    assert_eq!(r.code, Some(2), "{}", r.explain());
    assert!(r.stderr.contains("wal.fsync"), "{}", r.explain());
}

#[test]
fn the_same_seed_replays_the_same_fault_schedule() {
    let events = |seed: &str| {
        let r = run(&root().join("scripts/flapping-partitions.lua"), &["--seed", seed]);
        assert_eq!(r.code, Some(0), "{}", r.explain());
        let timeline = r.results.unwrap()["timeline"].as_array().unwrap().clone();
        timeline
            .iter()
            .map(|e| e["event"].as_str().unwrap().to_string())
            .filter(|e| e.starts_with("partition"))
            .collect::<Vec<_>>()
    };
    let (a, b, other) = (events("11"), events("11"), events("12"));
    assert!(!a.is_empty());
    assert_eq!(a, b, "same seed, same partitions");
    assert_ne!(a, other, "another seed, other partitions");
}

/// Issue 10, defect 3: a check that cannot decide is not a pass.
const UNDECIDED: &str = "local c = cluster.start { nodes = 3 }\n\
    local leader = c:await_leader { timeout = 5 }\n\
    c:client():put('k', 'v')\n\
    for _, id in ipairs(c:others(leader)) do c:crash(id) end\n\
    -- the majority is down: the final values cannot be read\n\
    check.no_lost_writes(history(), c)\n\
    check.that('arithmetic', 1 + 1 == 2, '')\n";

#[test]
fn an_undecided_check_exits_3_and_names_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(&dir, "undecided.lua", UNDECIDED);
    let r = run(&path, &[]);
    assert_eq!(r.code, Some(3), "{}", r.explain());
    assert_eq!(r.check_status("no_lost_writes").as_deref(), Some("unknown"));
    assert!(r.stdout.contains("could not decide: no_lost_writes"), "{}", r.explain());
    assert!(!r.stdout.contains("every check passed"), "{}", r.explain());
    assert_eq!(r.results.unwrap()["exit_code"], 3);
}

#[test]
fn a_failed_check_outranks_an_undecided_one() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{UNDECIDED}check.that('one is two', 1 == 2, '')\n");
    let path = script(&dir, "undecided-and-failed.lua", &text);
    let r = run(&path, &[]);
    assert_eq!(r.code, Some(1), "{}", r.explain());
}

#[test]
fn replab_check_of_an_undecided_run_is_undecided_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(&dir, "undecided.lua", UNDECIDED);
    let out = tempfile::tempdir().unwrap();
    let output = replab("run", &path, out.path(), &[]);
    assert_eq!(output.status.code(), Some(3));
    let recheck = std::process::Command::new(env!("CARGO_BIN_EXE_replab"))
        .arg("check")
        .arg(out.path().join("history.jsonl"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&recheck.stdout);
    assert_eq!(recheck.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("could not gather this check's input"), "{stdout}");
}

#[test]
fn compare_counts_an_undecided_check_as_undecided() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(&dir, "undecided.lua", UNDECIDED);
    let out = tempfile::tempdir().unwrap();
    let output = replab("compare", &path, out.path(), &["--variant", "a:", "--variant", "b:raft.pre_vote=false"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("undecided: no_lost_writes"), "{stdout}");
}
