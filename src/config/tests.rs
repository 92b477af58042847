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
fn preallocation_defaults_to_one_mebibyte_reaches_the_log_and_is_range_checked() {
    let loaded = load(&input()).unwrap();
    assert_eq!(loaded.wal.preallocate_bytes, 1 << 20);
    assert_eq!(loaded.wal.options().preallocate_bytes, 1 << 20);
    let inp = ConfigInput { sets: vec!["wal.preallocate_bytes=0".into()], ..input() };
    assert_eq!(load(&inp).unwrap().wal.options().preallocate_bytes, 0);
    let inp = ConfigInput { sets: vec!["wal.preallocate_bytes=2147483648".into()], ..input() };
    let err = load(&inp).unwrap_err().to_string();
    assert!(err.contains("wal.preallocate_bytes = 2147483648"), "{err}");
    assert!(err.contains("1073741824"), "{err}");
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
    assert_eq!(s.plugin::<replab_gossip::GossipConfig>("gossip").unwrap(), replab_gossip::GossipConfig::default());
    assert_eq!(
        s.plugin::<replab_heartbeat::HeartbeatConfig>("heartbeat").unwrap(),
        replab_heartbeat::HeartbeatConfig::default()
    );
}

#[test]
fn default_policy_sections_match_the_plugins_defaults() {
    let s = load(&input()).unwrap();
    assert_eq!(s.plugin::<replab_raft::RaftConfig>("raft").unwrap(), replab_raft::RaftConfig::default());
    assert_eq!(
        s.plugin::<replab_leaderless::LeaderlessConfig>("leaderless").unwrap(),
        replab_leaderless::LeaderlessConfig::default()
    );
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

/// A value of the wrong type for each kind of key: issue 11 found floats
/// rounded into integer keys and integers taken as strings.
fn wrong_value_for(default: &toml::Value) -> Option<&'static str> {
    match default {
        toml::Value::Integer(_) => Some("1.5"),
        toml::Value::String(_) => Some("12345"),
        toml::Value::Float(_) => Some("\"high\""),
        toml::Value::Boolean(_) => Some("1"),
        _ => None,
    }
}

#[test]
fn every_key_refuses_a_value_of_another_type_naming_the_key_value_and_origin() {
    let defaults: toml::Table = DEFAULT_TOML.parse().unwrap();
    let mut checked = 0;
    for (section, keys) in &defaults {
        for (name, default) in keys.as_table().unwrap() {
            let Some(wrong) = wrong_value_for(default) else { continue };
            let key = format!("{section}.{name}");
            let (_dir, inp) = with_file(&format!("[{section}]\n{name} = {wrong}\n"));
            let err = load(&inp).expect_err(&format!("{key} = {wrong} was accepted")).to_string();
            assert!(err.contains(&format!("{key} = ")) && err.contains("lab.toml"), "{err}");
            assert!(err.contains("expected"), "{err}");
            if key != "cluster.secret" {
                assert!(err.contains(wrong), "the value is shown: {err}");
            }
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} keys checked");
}

#[test]
fn a_float_for_an_integer_key_is_refused_from_every_layer() {
    let (_dir, inp) = with_file("[node]\ntick_interval_ms = 1.5\n");
    let err = load(&inp).unwrap_err().to_string();
    assert!(err.contains("node.tick_interval_ms = 1.5 (from config file") && err.contains("an integer"), "{err}");
    let (_dir, inp) = with_file("[node]\ntick_interval_ms = 2.0\n");
    assert!(load(&inp).is_err(), "a float is not an integer, even a whole one");
    let inp = ConfigInput { env: vec![("REPLAB_NODE__TICK_INTERVAL_MS".into(), "1.5".into())], ..input() };
    let err = load(&inp).unwrap_err().to_string();
    assert!(err.contains("node.tick_interval_ms = 1.5 (from environment variable REPLAB_NODE__TICK_INTERVAL_MS)"));
    let inp = ConfigInput { sets: vec!["node.tick_interval_ms=1.5".into()], ..input() };
    let err = load(&inp).unwrap_err().to_string();
    assert!(err.contains("node.tick_interval_ms = 1.5 (from --set node.tick_interval_ms=1.5)"), "{err}");
}

#[test]
fn an_integer_for_the_secret_is_refused_without_showing_it() {
    let (_dir, inp) = with_file("[cluster]\nsecret = 12345\n");
    let err = load(&inp).unwrap_err().to_string();
    assert!(err.contains("cluster.secret") && err.contains("lab.toml") && err.contains("expected a string"), "{err}");
    assert!(!err.contains("12345"), "the secret is never shown: {err}");
}

#[test]
fn a_member_field_of_the_wrong_type_is_refused_naming_the_member() {
    let (_dir, inp) =
        with_file("[[cluster.members]]\nid = 1.5\npeer_addr = \"127.0.0.1:7101\"\nclient_addr = \"127.0.0.1:7201\"\n");
    let err = load(&inp).unwrap_err().to_string();
    assert!(err.contains("cluster.members") && err.contains("member #1") && err.contains("`id`"), "{err}");
    assert!(err.contains("expected an integer"), "{err}");
}

#[test]
fn a_member_may_name_its_own_data_dir_but_not_another_members() {
    let on_host = |host: &str, id: u64, dir: &str| {
        format!(
            "[[cluster.members]]\nid = {id}\npeer_addr = \"{host}:710{id}\"\nclient_addr = \"{host}:720{id}\"\n{dir}"
        )
    };
    let member = |id: u64, dir: &str| on_host("127.0.0.1", id, dir);
    let (_dir, inp) = with_file(&(member(1, "data_dir = \"/disk1/replab\"\n") + &member(2, "")));
    let s = load(&inp).unwrap();
    assert_eq!(s.cluster.members[0].data_dir, "/disk1/replab");
    assert_eq!(s.cluster.members[1].data_dir, "", "optional: the default is <cluster.data_dir>/node-<id>");
    assert_eq!(s.node_dir(1), std::path::PathBuf::from("/disk1/replab"));
    assert_eq!(s.node_dir(2), std::path::PathBuf::from("replab-data/node-2"), "the shipped cluster.data_dir is empty");

    // The same directory, however it is spelled, or another member's
    // default: refused on one host, naming both members.
    for (one, two) in [("d", "d"), ("d", "./d/"), ("replab-data/node-2", "")] {
        let text = member(1, &format!("data_dir = \"{one}\"\n")) + &member(2, &format!("data_dir = \"{two}\"\n"));
        let (_dir, inp) = with_file(&text);
        let err = load(&inp).unwrap_err().to_string();
        assert!(err.contains("member #2 (id 2)") && err.contains("is member 1's too"), "{one} and {two}: {err}");
    }
    // Members on other machines may use the same path.
    let text = on_host("127.0.0.1", 1, "data_dir = \"d\"\n") + &on_host("127.0.0.2", 2, "data_dir = \"d\"\n");
    let (_dir, inp) = with_file(&text);
    assert!(load(&inp).is_ok());

    let (_dir, inp) = with_file(&member(1, "data_dir = 7\n"));
    let err = load(&inp).unwrap_err().to_string();
    assert!(err.contains("member #1") && err.contains("`data_dir`") && err.contains("expected a string"), "{err}");
}

#[test]
fn environment_and_set_values_are_text_read_as_the_keys_type() {
    let inp = ConfigInput {
        env: vec![("REPLAB_CLUSTER__SECRET".into(), "007".into()), ("REPLAB_GOSSIP__DEAD_PHI".into(), "20".into())],
        sets: vec!["cluster.id=12345".into(), "node.tick_interval_ms= 7".into(), "raft.pre_vote=false".into()],
        ..input()
    };
    let s = load(&inp).unwrap();
    assert_eq!(s.cluster.secret, "007", "a secret of digits keeps its leading zeros");
    assert_eq!(s.cluster.id, "12345");
    let (gossip, raft): (replab_gossip::GossipConfig, replab_raft::RaftConfig) =
        (s.plugin("gossip").unwrap(), s.plugin("raft").unwrap());
    assert_eq!((s.node.tick_interval_ms, gossip.dead_phi, raft.pre_vote), (7, 20.0, false));
    let inp = ConfigInput { sets: vec!["cluster.id=\"lab\"".into()], ..input() };
    assert_eq!(load(&inp).unwrap().cluster.id, "lab");
    let inp = ConfigInput { sets: vec!["raft.pre_vote=yes".into()], ..input() };
    assert!(load(&inp).unwrap_err().to_string().contains("raft.pre_vote = yes"));
}

#[test]
fn the_secret_never_appears_in_values_origins_or_errors() {
    let inp = ConfigInput { sets: vec!["cluster.secret=hunter2".into()], ..input() };
    let loaded = load_with_sources(&inp).unwrap();
    assert_eq!(loaded.settings.cluster.secret, "hunter2");
    let (value, origin) = &loaded.sources["cluster.secret"];
    assert_eq!(value, "\"<redacted>\"");
    assert_eq!(origin.to_string(), "--set cluster.secret=<redacted>");

    let inp = ConfigInput { sets: vec!["cluster.secrett=hunter2".into()], ..input() };
    let err = load(&inp).unwrap_err().to_string();
    assert!(err.contains("cluster.secrett") && !err.contains("hunter2"), "{err}");
    let (_dir, inp) = with_file("[cluster]\nid = \"lab\"\nsecret = \"hunter2\nseed = 1\n");
    let err = load(&inp).unwrap_err().to_string();
    assert!(err.contains("lab.toml") && err.contains("line 3"), "{err}");
    assert!(!err.contains("hunter2"), "a TOML error does not quote the line: {err}");
}
