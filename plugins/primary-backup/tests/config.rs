//! The `[primary_backup]` section: parsing, defaults, and validation
//! errors that name the offending key.

use replab_api::PolicyFactory;
use replab_primary_backup::{Bug, Mode, PrimaryBackupConfig, PrimaryBackupFactory};

fn parse(text: &str) -> Result<PrimaryBackupConfig, toml::de::Error> {
    toml::from_str(text)
}

#[test]
fn a_partial_section_keeps_the_other_defaults() {
    let config = parse("mode = \"async\"\ntakeover_timeout_ms = 900").unwrap();
    assert_eq!(config.mode, Mode::Async);
    assert_eq!(config.takeover_timeout_ms, 900);
    assert_eq!(config.heartbeat_interval_ms, PrimaryBackupConfig::default().heartbeat_interval_ms);
    assert_eq!(config.bug, Bug::None);
    assert_eq!(parse("").unwrap(), PrimaryBackupConfig::default());
    assert_eq!(PrimaryBackupConfig::default().mode, Mode::Quorum);
}

#[test]
fn modes_and_bug_switches_are_snake_case() {
    for (text, mode) in [("async", Mode::Async), ("sync", Mode::Sync), ("quorum", Mode::Quorum)] {
        assert_eq!(parse(&format!("mode = \"{text}\"")).unwrap().mode, mode);
        assert_eq!(mode.to_string(), text);
    }
    let bugs = [
        ("ack_before_quorum", Bug::AckBeforeQuorum),
        ("accept_lower_generation", Bug::AcceptLowerGeneration),
        ("claim_without_promises", Bug::ClaimWithoutPromises),
        ("ignore_longer_logs", Bug::IgnoreLongerLogs),
        ("none", Bug::None),
    ];
    for (text, bug) in bugs {
        assert_eq!(parse(&format!("bug = \"{text}\"")).unwrap().bug, bug);
    }
}

#[test]
fn an_unknown_mode_is_an_error_naming_the_valid_ones() {
    let err = parse("mode = \"semi_sync\"").unwrap_err().to_string();
    for expected in ["semi_sync", "async", "sync", "quorum"] {
        assert!(err.contains(expected), "{expected} missing from: {err}");
    }
}

#[test]
fn unknown_keys_are_refused() {
    let err = parse("heartbeat_ms = 10").unwrap_err().to_string();
    assert!(err.contains("unknown field `heartbeat_ms`"), "{err}");
}

#[test]
fn defaults_are_valid() {
    for members in [1, 2, 3, 5] {
        assert_eq!(PrimaryBackupFactory::validate(&PrimaryBackupConfig::default(), members), Ok(()));
    }
}

#[test]
fn errors_name_the_key() {
    let base = PrimaryBackupConfig::default;
    let cases: Vec<(PrimaryBackupConfig, &str)> = vec![
        (PrimaryBackupConfig { heartbeat_interval_ms: 0, ..base() }, "heartbeat_interval_ms"),
        (PrimaryBackupConfig { takeover_timeout_ms: 0, ..base() }, "takeover_timeout_ms"),
        (PrimaryBackupConfig { takeover_timeout_ms: 50, heartbeat_interval_ms: 50, ..base() }, "takeover_timeout_ms"),
        (PrimaryBackupConfig { max_entries_per_append: 0, ..base() }, "max_entries_per_append"),
        (PrimaryBackupConfig { max_bytes_per_append: 0, ..base() }, "max_bytes_per_append"),
        (PrimaryBackupConfig { max_inflight_appends: 0, ..base() }, "max_inflight_appends"),
        (PrimaryBackupConfig { max_uncommitted_entries: 0, ..base() }, "max_uncommitted_entries"),
        (PrimaryBackupConfig { max_pending_reads: 0, ..base() }, "max_pending_reads"),
    ];
    for (config, key) in cases {
        let err = PrimaryBackupFactory::validate(&config, 3).expect_err(key);
        assert_eq!(err.key, key, "{err}");
        assert!(!err.key.contains('.'), "no section prefix");
    }
    assert_eq!(PrimaryBackupFactory::validate(&base(), 0).unwrap_err().key, "members");
}

#[test]
fn the_description_says_what_each_mode_costs() {
    assert_eq!(PrimaryBackupFactory::NAME, "primary-backup");
    assert_eq!(replab_primary_backup::SECTION, "primary_backup");
    let describe = |mode| PrimaryBackupFactory::describe(&PrimaryBackupConfig { mode, ..Default::default() }, 5);
    assert!(describe(Mode::Async).contains("durable on 1 of them"), "{}", describe(Mode::Async));
    assert!(describe(Mode::Sync).contains("durable on 5 of them"));
    assert!(describe(Mode::Quorum).contains("durable on 3 of them"));
    assert!(describe(Mode::Async).contains("3 promises"));
}
