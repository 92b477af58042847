//! The scenario API's contract (issue 11): each promise checked by a Lua
//! script, and the run's limits and outputs checked from outside.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::*;

fn script(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn every_promise_of_the_scenario_api_holds() {
    let r = run(&root().join("tests/scenarios/api/contract.lua"), &[]);
    assert_eq!(r.code, Some(0), "{}", r.explain());
    let results = r.results.as_ref().unwrap();
    assert!(results["checks"].as_array().unwrap().len() >= 20, "{}", r.explain());
    // The totals of a cluster stopped by the script are not zeroed.
    assert!(results["cluster"]["elections"].as_u64().unwrap() >= 2, "{}", r.explain());
}

#[test]
fn an_infinite_loop_ends_at_the_timeout_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(&dir, "loop.lua", "local x = 0\nwhile true do x = x + 1 end\n");
    let r = run(&path, &["--timeout", "2"]);
    assert_eq!(r.code, Some(2), "{}", r.explain());
    assert!(r.stdout.contains("longer than --timeout 2 s"), "{}", r.explain());
}

#[test]
fn a_script_that_waits_too_long_ends_at_the_timeout_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(&dir, "wait.lua", "sleep(600)\n");
    let started = Instant::now();
    let r = run(&path, &["--timeout", "1"]);
    assert_eq!(r.code, Some(2), "{}", r.explain());
    assert!(r.stdout.contains("--timeout"), "{}", r.explain());
    assert!(started.elapsed() < Duration::from_secs(30), "it stopped at the timeout");
}

#[test]
fn a_memory_bomb_ends_at_the_lua_memory_limit_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(&dir, "bomb.lua", "local t = {}\nfor i = 1, 1e9 do t[i] = string.rep('x', 1000) .. i end\n");
    let r = run(&path, &["--lua-memory-mb", "16"]);
    assert_eq!(r.code, Some(2), "{}", r.explain());
    assert!(r.stdout.contains("Lua limit (--lua-memory-mb)"), "{}", r.explain());
}

#[test]
fn after_a_script_error_spawned_tasks_do_not_hold_the_exit() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(&dir, "spawned.lua", "spawn(function() sleep(50) end)\nerror('boom')\n");
    let started = Instant::now();
    let r = run(&path, &[]);
    assert_eq!(r.code, Some(2), "{}", r.explain());
    assert!(r.stdout.contains("boom"), "{}", r.explain());
    assert!(started.elapsed() < Duration::from_secs(20), "waited {:?} for a task of a failed run", started.elapsed());
}

#[test]
fn an_unwritable_out_directory_exits_2_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, b"").unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_replab"))
        .args(["run", "scripts/quickstart.lua", "--out"])
        .arg(blocker.join("out"))
        .current_dir(root())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot write results"), "{stderr}");
}

#[test]
fn bad_limits_are_usage_errors() {
    let r = run(&root().join("scripts/quickstart.lua"), &["--timeout", "0"]);
    assert_eq!(r.code, Some(2), "{}", r.explain());
    assert!(r.stderr.contains("--timeout"), "{}", r.explain());
}
