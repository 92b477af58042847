//! `replab compare`: the same scenario under several configurations.

use crate::*;

struct Compared {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    /// compare.json: one entry per variant, its runs under `runs`.
    rows: Option<Vec<serde_json::Value>>,
    out: tempfile::TempDir,
}

fn compare(script: &str, args: &[&str]) -> Compared {
    let out = tempfile::tempdir().unwrap();
    let output = replab("compare", std::path::Path::new(script), out.path(), args);
    let rows = std::fs::read_to_string(out.path().join("compare.json"))
        .ok()
        .map(|text| serde_json::from_str::<Vec<serde_json::Value>>(&text).expect("compare.json is JSON"));
    Compared {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        rows,
        out,
    }
}

impl Compared {
    fn explain(&self) -> String {
        format!("exit {:?}\n--- stdout\n{}\n--- stderr\n{}", self.code, self.stdout, self.stderr)
    }

    fn check_status(&self, variant: &str, check: &str) -> Option<String> {
        let row = self.rows.as_ref()?.iter().find(|r| r["variant"] == variant)?;
        let checks = row["runs"][0]["checks"].as_array()?;
        Some(checks.iter().find(|c| c["name"] == check)?["status"].as_str()?.to_string())
    }
}

#[test]
fn every_variant_runs_the_same_script_with_the_same_seed_and_lands_in_one_table() {
    let c = compare(
        "scripts/quickstart.lua",
        &["--seed", "7", "--variant", "always:wal.fsync=always", "--variant", "never:wal.fsync=never"],
    );
    assert_eq!(c.code, Some(0), "{}", c.explain());
    assert!(c.stdout.contains("| | always | never |"), "{}", c.explain());
    assert!(c.stdout.contains("| checks | 3/3 pass | 3/3 pass |"), "{}", c.explain());
    let rows = c.rows.as_ref().expect("compare.json written");
    let seeds: Vec<u64> = rows.iter().map(|r| r["runs"][0]["seed"].as_u64().unwrap()).collect();
    assert_eq!(seeds, vec![7, 7]);
    for file in ["compare.csv", "report.html"] {
        assert!(c.out.path().join(file).exists(), "{file} written");
    }
    for name in ["always", "never"] {
        assert!(c.out.path().join(name).join("results.json").exists(), "{name}'s own results");
        assert!(c.out.path().join(name).join("history.jsonl").exists(), "{name}'s own history");
    }
}

#[test]
fn a_broken_variant_fails_in_its_own_column_and_the_correct_one_passes() {
    let c = compare(
        "tests/scenarios/broken/minority-leader-acks.lua",
        &["--variant", "correct:", "--variant", "broken:raft.bug=commit_without_quorum"],
    );
    assert_eq!(c.code, Some(1), "{}", c.explain());
    assert_eq!(c.check_status("correct", "no_lost_writes").as_deref(), Some("pass"), "{}", c.explain());
    assert_eq!(c.check_status("broken", "no_lost_writes").as_deref(), Some("fail"), "{}", c.explain());
    assert!(c.stdout.contains("failed: no_lost_writes"), "the table names the failed check:\n{}", c.stdout);
}

#[test]
fn bad_variants_are_usage_errors_that_name_the_variant() {
    let script = "scripts/quickstart.lua";
    let c = compare(script, &["--variant", "only:wal.fsync=never"]);
    assert_eq!(c.code, Some(2));
    assert!(c.stderr.contains("at least two"), "{}", c.explain());
    let c = compare(script, &["--variant", "a:wal.fsync=never", "--variant", "b:wal.fsync=sometimes"]);
    assert_eq!(c.code, Some(2));
    assert!(c.stderr.contains("variant `b`") && c.stderr.contains("wal.fsync"), "{}", c.explain());
    assert!(!c.stdout.contains("variant a"), "nothing runs before every variant is valid:\n{}", c.stdout);
    let c = compare(script, &["--variant", "a:x", "--variant", "b:"]);
    assert_eq!(c.code, Some(2));
    assert!(c.stderr.contains("not KEY=VALUE"), "{}", c.explain());
    let c = compare(script, &["--variant", "a:", "--variant", "a:wal.fsync=never"]);
    assert_eq!(c.code, Some(2));
    assert!(c.stderr.contains("two variants are named `a`"), "{}", c.explain());
}

impl Compared {
    fn violations(&self, variant: &str, check: &str) -> Option<u64> {
        let row = self.rows.as_ref()?.iter().find(|r| r["variant"] == variant)?;
        let checks = row["runs"][0]["checks"].as_array()?;
        checks.iter().find(|c| c["name"] == check)?["violations"].as_u64()
    }
}

/// Issue 11: a power loss of the whole cluster costs nothing under
/// `fsync = always` and acknowledged writes under `never`.
#[test]
fn a_power_loss_loses_acknowledged_writes_under_fsync_never_and_none_under_always() {
    let c = compare(
        "scripts/power-loss.lua",
        &["--variant", "always:wal.fsync=always", "--variant", "never:wal.fsync=never"],
    );
    assert_eq!(c.code, Some(1), "never fails its check: {}", c.explain());
    assert_eq!(c.check_status("always", "no_lost_writes").as_deref(), Some("pass"), "{}", c.explain());
    assert_eq!(c.violations("always", "no_lost_writes"), Some(0), "{}", c.explain());
    assert_eq!(c.check_status("never", "no_lost_writes").as_deref(), Some("fail"), "{}", c.explain());
    assert!(c.violations("never", "no_lost_writes").unwrap() > 0, "{}", c.explain());
    assert!(c.stdout.contains("| acknowledged writes lost | 0 |"), "{}", c.explain());
}

impl Compared {
    fn note(&self, variant: &str, name: &str) -> Option<serde_json::Value> {
        let row = self.rows.as_ref()?.iter().find(|r| r["variant"] == variant)?;
        Some(row["runs"][0]["notes"][name].clone())
    }
}

/// Issue 12's acceptance: one command, three strategies, the textbook
/// contrasts as measured numbers.
#[test]
fn concurrent_writes_under_raft_lww_and_version_vectors_differ_as_the_textbook_says() {
    let c = compare(
        "scripts/concurrent-writes.lua",
        &[
            "--variant",
            "raft@config/raft.toml",
            "--variant",
            "lww@config/leaderless-lww.toml",
            "--variant",
            "vv@config/leaderless-vv.toml",
        ],
    );
    assert!(c.rows.is_some(), "{}", c.explain());
    let n = |variant: &str, name: &str| c.note(variant, name).and_then(|v| v.as_u64()).unwrap_or(u64::MAX);
    // raft: the minority side commits nothing; nothing is lost.
    assert_eq!(n("raft", "left acknowledged"), 0, "{}", c.explain());
    assert_eq!(n("raft", "right acknowledged"), 10, "{}", c.explain());
    for check in ["linearizable", "no_lost_writes", "lost_updates"] {
        assert_eq!(c.check_status("raft", check).as_deref(), Some("pass"), "raft {check}: {}", c.explain());
    }
    assert_eq!(c.violations("raft", "lost_updates"), Some(0));
    // lww: both sides acknowledged, and updates lost.
    assert_eq!((n("lww", "left acknowledged"), n("lww", "right acknowledged")), (10, 10), "{}", c.explain());
    assert_eq!(c.check_status("lww", "lost_updates").as_deref(), Some("fail"), "{}", c.explain());
    assert!(c.violations("lww", "lost_updates").unwrap() > 0);
    // vv: both sides acknowledged, nothing lost, 2 siblings until resolved.
    assert_eq!((n("vv", "left acknowledged"), n("vv", "right acknowledged")), (10, 10), "{}", c.explain());
    assert_eq!(c.check_status("vv", "lost_updates").as_deref(), Some("pass"), "{}", c.explain());
    assert_eq!(c.violations("vv", "lost_updates"), Some(0));
    assert_eq!(n("vv", "siblings after heal"), 2, "{}", c.explain());
    assert_eq!(n("vv", "siblings after resolve"), 1, "{}", c.explain());
    // Linearizability runs under every strategy and reports, never crashes:
    // a read of two siblings is no register's.
    assert_eq!(c.check_status("vv", "linearizable").as_deref(), Some("fail"), "{}", c.explain());
    assert!(c.stdout.contains("| acknowledged writes lost |"), "{}", c.explain());
    let lost_row = c.stdout.lines().find(|l| l.starts_with("| lost updates")).expect("a lost updates row");
    let cells: Vec<&str> = lost_row.split('|').map(str::trim).collect();
    assert_eq!(cells[2], "0", "raft loses nothing: {lost_row}");
    assert!(cells[3].parse::<u64>().unwrap() > 0, "lww loses updates: {lost_row}");
    assert_eq!(cells[4], "0", "vv loses nothing: {lost_row}");
}

/// Issue 12: a causally later write with a smaller timestamp.
#[test]
fn under_clock_skew_lww_loses_the_later_write_and_version_vectors_keep_it() {
    let c = compare(
        "scripts/clock-skew.lua",
        &["--variant", "lww@config/leaderless-lww.toml", "--variant", "vv@config/leaderless-vv.toml"],
    );
    assert!(c.rows.is_some(), "{}", c.explain());
    for variant in ["lww", "vv"] {
        assert_eq!(c.note(variant, "v1 acknowledged"), Some(serde_json::json!(true)), "{}", c.explain());
        assert_eq!(c.note(variant, "v2 acknowledged"), Some(serde_json::json!(true)), "{}", c.explain());
    }
    assert_eq!(c.note("lww", "final values"), Some(serde_json::json!("v1")), "the later v2 is gone: {}", c.explain());
    assert!(c.violations("lww", "lost_updates").unwrap() >= 1, "{}", c.explain());
    assert_eq!(c.note("vv", "final values"), Some(serde_json::json!("v1,v2")), "both kept: {}", c.explain());
    assert_eq!(c.violations("vv", "lost_updates"), Some(0), "{}", c.explain());
}

/// Issue 13's acceptance: a leader crash (its network failing first) under
/// Raft and primary-backup async and sync, in one table.
#[test]
fn a_leader_crash_costs_async_acknowledged_writes_and_stalls_sync() {
    let c = compare(
        "scripts/leader-crash-compare.lua",
        &[
            "--variant",
            "raft@config/raft.toml",
            "--variant",
            "async@config/primary-backup-async.toml",
            "--variant",
            "sync@config/primary-backup-sync.toml",
        ],
    );
    assert!(c.rows.is_some(), "{}", c.explain());
    // Raft: nothing lost, linearizable.
    for check in ["linearizable", "no_lost_writes", "convergence"] {
        assert_eq!(c.check_status("raft", check).as_deref(), Some("pass"), "raft {check}: {}", c.explain());
    }
    assert_eq!(c.violations("raft", "no_lost_writes"), Some(0), "{}", c.explain());
    // Async: acknowledged writes vanish, and the checks say so.
    assert!(c.violations("async", "no_lost_writes").unwrap_or(0) > 0, "{}", c.explain());
    assert_eq!(c.check_status("async", "no_lost_writes").as_deref(), Some("fail"), "{}", c.explain());
    // ... for a lower write latency than Raft's majority round trip.
    let put_p50 = |variant: &str| c.note(variant, "put p50 ms before the fault").and_then(|v| v.as_f64());
    let (raft_ms, async_ms) = (put_p50("raft").unwrap(), put_p50("async").unwrap());
    assert!(async_ms < raft_ms, "async put p50 {async_ms} ms, raft {raft_ms} ms: {}", c.explain());
    // Sync: nothing lost, and nothing acknowledged while a member is down;
    // the writes of that window fail or stay unknown.
    assert_eq!(c.violations("sync", "no_lost_writes"), Some(0), "{}", c.explain());
    assert_eq!(c.check_status("sync", "linearizable").as_deref(), Some("pass"), "{}", c.explain());
    let down_acks = c.note("sync", "puts acknowledged while a member was down").and_then(|v| v.as_u64());
    assert_eq!(down_acks, Some(0), "{}", c.explain());
    let sync = c.rows.as_ref().unwrap().iter().find(|r| r["variant"] == "sync").unwrap();
    let stalled = sync["runs"][0]["operations"]["fail"].as_u64().unwrap()
        + sync["runs"][0]["operations"]["unknown"].as_u64().unwrap();
    assert!(stalled > 0, "sync's writes stall while a backup is down: {}", c.explain());
    assert!(c.stdout.contains("| put p50 ms before the fault |"), "notes are rows of the table: {}", c.stdout);
}

/// Issue 13's acceptance: a primary paused past the detector's timeout
/// and resumed acknowledges nothing under Raft and primary-backup quorum;
/// under async it does, and the checks count what it cost.
#[test]
fn a_resumed_zombie_primary_acknowledges_nothing_unless_replication_is_async() {
    let c = compare(
        "scripts/zombie-primary.lua",
        &[
            "--variant",
            "raft@config/raft.toml",
            "--variant",
            "quorum@config/primary-backup-quorum.toml",
            "--variant",
            "async@config/primary-backup-async.toml",
        ],
    );
    assert!(c.rows.is_some(), "{}", c.explain());
    let acked = |variant: &str| {
        c.note(variant, "writes the zombie acknowledged after it resumed").and_then(|v| v.as_u64()).unwrap()
    };
    for safe in ["raft", "quorum"] {
        assert_eq!(acked(safe), 0, "{safe}: {}", c.explain());
        for check in ["the resumed old leader acknowledged no write", "the old leader stepped down", "no_lost_writes"] {
            assert_eq!(c.check_status(safe, check).as_deref(), Some("pass"), "{safe} {check}: {}", c.explain());
        }
    }
    assert!(acked("async") > 0, "{}", c.explain());
    assert_eq!(c.check_status("async", "the old leader stepped down").as_deref(), Some("pass"), "{}", c.explain());
    assert_eq!(c.check_status("async", "no_lost_writes").as_deref(), Some("fail"), "{}", c.explain());
    assert!(c.violations("async", "no_lost_writes").unwrap_or(0) > 0, "{}", c.explain());
}
