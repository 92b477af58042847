//! `replab compare`: the same scenario under several configurations.

use crate::*;

struct Compared {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    /// compare.json: one entry per variant.
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
        let checks = row["results"]["checks"].as_array()?;
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
    let seeds: Vec<u64> = rows.iter().map(|r| r["results"]["seed"].as_u64().unwrap()).collect();
    assert_eq!(seeds, vec![7, 7]);
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
        let checks = row["results"]["checks"].as_array()?;
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
