use super::*;

fn input() -> ConfigInput {
    ConfigInput::default()
}

fn with_file(text: &str) -> (tempfile::TempDir, ConfigInput) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lab.toml");
    std::fs::write(&path, text).unwrap();
    (dir, ConfigInput { file: Some(path), ..input() })
}

#[test]
fn defaults_load_into_typed_settings() {
    let s = load(&input()).unwrap();
    assert_eq!(s.wal.fsync, FsyncSetting::Batch);
    assert_eq!(s.wal.segment_size_bytes, 64 << 20);
    assert_eq!(s.cluster.id, "replab");
}

#[test]
fn layers_override_in_order_file_then_env_then_set() {
    let (_dir, mut inp) = with_file("[wal]\nfsync = \"always\"\nsegment_size_bytes = 8192\nfsync_interval_ms = 7\n");
    assert_eq!(load(&inp).unwrap().wal.fsync, FsyncSetting::Always);

    inp.env = vec![
        ("REPLAB_WAL__FSYNC".into(), "never".into()),
        ("REPLAB_WAL__SEGMENT_SIZE_BYTES".into(), "16384".into()),
        ("REPLAB_SIM_SEED".into(), "99".into()), // not config: no section separator
        ("HOME".into(), "/root".into()),
    ];
    let s = load(&inp).unwrap();
    assert_eq!((s.wal.fsync, s.wal.segment_size_bytes, s.wal.fsync_interval_ms), (FsyncSetting::Never, 16384, 7));

    inp.sets = vec!["wal.fsync=interval".into(), "wal.segment_size_bytes=32768".into()];
    let loaded = load_with_sources(&inp).unwrap();
    assert_eq!(loaded.settings.wal.fsync, FsyncSetting::Interval);
    assert_eq!(loaded.settings.wal.segment_size_bytes, 32768);
    assert_eq!(loaded.sources["wal.fsync"].1, Origin::Set("wal.fsync=interval".into()));
    assert_eq!(loaded.sources["wal.fsync_interval_ms"].1, Origin::File(inp.file.clone().unwrap()));
    assert_eq!(loaded.sources["cluster.id"].1, Origin::Defaults);
}

#[test]
fn unknown_key_in_a_file_names_the_key_the_file_and_the_known_keys() {
    let (_dir, inp) = with_file("[wal]\nsegment_size = 4096\n");
    let err = load(&inp).unwrap_err().to_string();
    assert!(err.contains("unknown key `wal.segment_size`"), "{err}");
    assert!(err.contains("lab.toml"), "{err}");
    assert!(err.contains("segment_size_bytes"), "hint lists the real keys: {err}");
}

#[test]
fn unknown_section_from_set_is_refused() {
    let inp = ConfigInput { sets: vec!["wall.fsync=always".into()], ..input() };
    let err = load(&inp).unwrap_err().to_string();
    assert!(err.contains("unknown key `wall.fsync`") && err.contains("--set wall.fsync=always"), "{err}");
}

#[test]
fn unknown_key_from_the_environment_names_the_variable() {
    let inp = ConfigInput { env: vec![("REPLAB_WAL__FSINK".into(), "always".into())], ..input() };
    let err = load(&inp).unwrap_err().to_string();
    assert!(err.contains("wal.fsink") && err.contains("REPLAB_WAL__FSINK"), "{err}");
}

#[test]
fn wrong_type_names_the_key_value_and_origin() {
    let (_dir, inp) = with_file("[wal]\nsegment_size_bytes = \"big\"\n");
    let err = load(&inp).unwrap_err().to_string();
    assert!(err.contains("wal.segment_size_bytes"), "{err}");
    assert!(err.contains("lab.toml"), "{err}");
    assert!(err.contains("big"), "{err}");
}

#[test]
fn unknown_enum_variant_names_the_key_and_the_choices() {
    let inp = ConfigInput { sets: vec!["wal.fsync=sometimes".into()], ..input() };
    let err = load(&inp).unwrap_err().to_string();
    assert!(err.contains("wal.fsync"), "{err}");
    assert!(err.contains("--set wal.fsync=sometimes"), "{err}");
    assert!(err.contains("always") && err.contains("batch"), "lists the choices: {err}");
}

#[test]
fn out_of_range_value_names_the_key_the_range_and_the_origin() {
    let inp = ConfigInput { env: vec![("REPLAB_WAL__SEGMENT_SIZE_BYTES".into(), "12".into())], ..input() };
    let err = load(&inp).unwrap_err().to_string();
    assert!(err.contains("wal.segment_size_bytes = 12"), "{err}");
    assert!(err.contains("REPLAB_WAL__SEGMENT_SIZE_BYTES"), "{err}");
    assert!(err.contains("4096"), "{err}");
}

#[test]
fn malformed_set_and_unreadable_file_are_clear_errors() {
    let inp = ConfigInput { sets: vec!["wal.fsync".into()], ..input() };
    assert!(load(&inp).unwrap_err().to_string().contains("section.key=value"));
    let inp = ConfigInput { file: Some("/nonexistent/replab.toml".into()), ..input() };
    assert!(load(&inp).unwrap_err().to_string().contains("/nonexistent/replab.toml"));
    let (_dir, inp) = with_file("[wal\nfsync = 1");
    let err = load(&inp).unwrap_err().to_string();
    assert!(err.contains("not valid TOML") && err.contains("lab.toml"), "{err}");
}

#[test]
fn default_net_section_matches_the_transport_defaults() {
    assert_eq!(load(&input()).unwrap().net, crate::net::NetConfig::default());
}

#[test]
fn a_relation_between_two_keys_is_checked() {
    let inp = ConfigInput {
        sets: vec!["net.reconnect_backoff_min_ms=500".into(), "net.reconnect_backoff_max_ms=100".into()],
        ..input()
    };
    let err = load(&inp).unwrap_err().to_string();
    assert!(err.contains("net.reconnect_backoff_min_ms = 500") && err.contains("reconnect_backoff_max_ms"), "{err}");
}

#[test]
fn default_detector_sections_match_the_plugins_defaults() {
    let s = load(&input()).unwrap();
    assert_eq!(s.policy.failure_detector, "gossip");
    assert_eq!(s.gossip, replab_gossip::GossipConfig::default());
    assert_eq!(s.heartbeat, replab_heartbeat::HeartbeatConfig::default());
}

#[test]
fn an_unknown_failure_detector_names_the_key_and_the_choices() {
    let inp = ConfigInput { sets: vec!["policy.failure_detector=swim".into()], ..input() };
    let err = load(&inp).unwrap_err().to_string();
    assert!(err.contains("policy.failure_detector") && err.contains("gossip, heartbeat"), "{err}");
}

#[test]
fn a_bad_detector_setting_names_its_full_key() {
    let inp = ConfigInput { sets: vec!["gossip.dead_phi=1.0".into()], ..input() };
    let err = load(&inp).unwrap_err().to_string();
    assert!(err.contains("gossip.dead_phi"), "{err}");
    let inp = ConfigInput {
        sets: vec!["policy.failure_detector=heartbeat".into(), "heartbeat.suspect_after_ms=10".into()],
        ..input()
    };
    let err = load(&inp).unwrap_err().to_string();
    assert!(err.contains("heartbeat.suspect_after_ms"), "{err}");
}

#[test]
fn every_shipped_config_file_loads() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut loaded = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let inp = ConfigInput { file: Some(path.clone()), ..input() };
            load(&inp).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            loaded += 1;
        }
    }
    assert!(loaded >= 4, "default, cluster-3, gossip and heartbeat");
}
