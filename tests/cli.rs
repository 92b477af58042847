//! The command line: usage errors, help text and configuration errors.

use std::process::{Command, Output};

fn replab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_replab"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run the replab binary")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn unknown_command_prints_usage_and_exits_2() {
    let out = replab(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("Usage"), "{}", text(&out));
}

#[test]
fn unknown_flag_prints_usage_and_exits_2() {
    let out = replab(&["config", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("--no-such-flag"), "{}", text(&out));
}

#[test]
fn every_command_has_help_with_an_example() {
    let commands: [&[&str]; 11] = [
        &[],
        &["run"],
        &["node"],
        &["client"],
        &["config"],
        &["bench"],
        &["bench", "wal"],
        &["bench", "net"],
        &["bench", "raft"],
        &["bench", "cluster"],
        &["bench", "check"],
    ];
    for cmd in commands {
        let mut args = cmd.to_vec();
        args.push("--help");
        let out = replab(&args);
        assert_eq!(out.status.code(), Some(0), "{cmd:?}");
        let help = text(&out);
        assert!(help.contains("Example"), "help of {cmd:?} has an example:\n{help}");
    }
}

/// `replab client` needs the cluster id and secret, so every example of it
/// (help, the sample cluster's config file, the README) passes --config.
#[test]
fn every_client_example_passes_the_config() {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut sources = vec![
        ("replab --help".to_string(), text(&replab(&["--help"]))),
        ("replab client --help".to_string(), text(&replab(&["client", "--help"]))),
    ];
    for file in ["config/cluster-3.toml", "README.md"] {
        sources.push((file.to_string(), std::fs::read_to_string(format!("{root}/{file}")).unwrap()));
    }
    for (source, content) in &sources {
        // An example may continue on the next line (a trailing backslash).
        let mut examples = 0;
        let lines: Vec<&str> = content.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(at) = line.find("replab client ") else { continue };
            // A command line starts the line (after `#` in TOML, or a path);
            // prose and clap's usage line name the command otherwise.
            let before = line[..at].trim_start_matches([' ', '#']);
            if !(before.is_empty() || before.ends_with('/')) {
                continue;
            }
            let mut example = line[at..].to_string();
            let mut next = i + 1;
            while example.trim_end().ends_with('\\') && next < lines.len() {
                example.push_str(lines[next]);
                next += 1;
            }
            assert!(example.contains("--config "), "{source}: `{example}` lacks --config");
            examples += 1;
        }
        assert!(examples > 0, "{source} has no replab client example");
    }
}

#[test]
fn config_prints_every_key_with_its_origin_and_redacts_the_secret() {
    let out = replab(&["config", "--set", "wal.fsync=never"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("wal.fsync = \"never\"    # from --set wal.fsync=never"), "{shown}");
    assert!(shown.contains("wal.segment_size_bytes = 67108864    # from the defaults"), "{shown}");
    assert!(!shown.contains("replab-lab-secret"), "the secret is never printed");
}

#[test]
fn config_never_prints_the_secret_whatever_its_origin() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lab.toml");
    std::fs::write(&file, "[cluster]\nsecret = \"hunter2-file\"\n").unwrap();
    let runs = [
        replab(&["config", "--set", "cluster.secret=hunter2-set"]),
        replab(&["config", "--config", file.to_str().unwrap()]),
        Command::new(env!("CARGO_BIN_EXE_replab"))
            .args(["config"])
            .env("REPLAB_CLUSTER__SECRET", "hunter2-env")
            .output()
            .unwrap(),
    ];
    for out in &runs {
        assert_eq!(out.status.code(), Some(0), "{}", text(out));
        let shown = text(out);
        assert!(!shown.contains("hunter2"), "the secret is printed:\n{shown}");
        assert!(shown.contains("cluster.secret = \"<redacted>\""), "{shown}");
    }
    assert!(text(&runs[0]).contains("# from --set cluster.secret=<redacted>"), "{}", text(&runs[0]));

    // Nor in an error: a wrong type, a TOML error on the secret's line.
    for broken in ["[cluster]\nsecret = 4242424242\n", "[cluster]\nsecret = \"hunter2-broken\n"] {
        std::fs::write(&file, broken).unwrap();
        let out = replab(&["config", "--config", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let err = text(&out);
        assert!(err.contains("lab.toml") && !err.contains("hunter2") && !err.contains("4242424242"), "{err}");
    }
}

#[test]
fn a_float_for_an_integer_key_exits_2_naming_the_key_value_and_origin() {
    let out = replab(&["config", "--set", "node.tick_interval_ms=1.5"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = text(&out);
    assert!(
        err.contains("node.tick_interval_ms = 1.5 (from --set node.tick_interval_ms=1.5): expected an integer"),
        "{err}"
    );
}

#[test]
fn bad_config_value_exits_2_naming_the_key_and_origin() {
    let out = replab(&["config", "--set", "wal.fsync_interval_ms=0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out);
    assert!(err.contains("wal.fsync_interval_ms = 0 (from --set wal.fsync_interval_ms=0)"), "{err}");
}

#[test]
fn unknown_config_key_from_the_environment_exits_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_replab"))
        .args(["config"])
        .env("REPLAB_WAL__FSYNK", "always")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("REPLAB_WAL__FSYNK"), "{}", text(&out));
}

#[test]
fn missing_config_file_exits_2_naming_the_file() {
    let out = replab(&["config", "--config", "/nonexistent/lab.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("/nonexistent/lab.toml"));
}

/// Loopback addresses where nothing listens.
fn closed_addresses(n: usize) -> Vec<String> {
    let listeners: Vec<_> = (0..n).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    listeners.iter().map(|l| l.local_addr().unwrap().to_string()).collect()
}

#[test]
fn client_status_exits_1_when_no_node_answers() {
    let addrs = closed_addresses(2);
    let out = replab(&["client", "--cluster", &addrs.join(","), "status"]);
    let err = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no node answered"), "{err}");
    assert!(addrs.iter().all(|a| err.contains(a.as_str())), "names every address: {err}");
}

#[test]
fn wal_benchmark_runs_a_tiny_bounded_round() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = replab(&[
        "bench",
        "wal",
        "--dir",
        d,
        "--records",
        "20",
        "--unsynced-records",
        "200",
        "--seconds",
        "1",
        "--repeats",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    for case in ["(a) write+fdatasync loop", "(b) wal always", "(c) wal batch, 64 appenders", "(d) plain buffered"] {
        assert!(table.contains(case), "{case} missing from\n{table}");
    }
    assert!(table.contains("ratios"));
    // stderr is not a terminal here: progress comes as plain lines, one
    // per case started and finished.
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("bench wal 1/9: (a) write+fdatasync loop, run 1/1"), "{log}");
    assert!(log.contains("bench wal: done"), "{log}");
}

/// Issue 15: every benchmark shows its progress; on a pipe, as lines.
#[test]
fn raft_net_and_check_benchmarks_report_progress() {
    let cases: &[(&[&str], &str)] = &[
        (&["bench", "raft", "--repeats", "1", "--entries", "2000"], "bench raft 2/2: batch 64, run 1/1"),
        (
            &["bench", "net", "--repeats", "1", "--sizes", "64", "--seconds", "0.2", "--round-trips", "50"],
            "bench net 1/1: 64 B, run 1/1",
        ),
        (
            &["bench", "check", "--repeats", "1", "--ops", "200", "--keys", "2"],
            "bench check 1/2: 2 keys, as recorded, run 1/1",
        ),
    ];
    for (args, line) in cases {
        let out = replab(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(log.contains(line), "{args:?} should log {line:?}:\n{log}");
    }
}

/// Issue 12: the strategies benchmark measures raft and leaderless W=1,
/// W=2 in one run (tiny and bounded here, by the put count: the 60 s
/// bound only keeps a stalled run finite, since 20 puts on a loaded
/// machine can take longer than a short one; the figures are in
/// docs/PERFORMANCE.md).
#[test]
fn strategies_benchmark_runs_every_strategy_in_one_run() {
    let out = replab(&["bench", "cluster", "--strategies", "--puts", "20", "--seconds", "60", "--repeats", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    for case in ["put, raft, fsync batch", "leaderless N=3 W=1, fsync batch", "leaderless N=3 W=2, fsync batch"] {
        let row = table.lines().find(|l| l.contains(case)).unwrap_or_else(|| panic!("{case} missing from\n{table}"));
        assert!(row.contains("| 20 |"), "every case made its 20 puts: {row}");
    }
}

/// Issue 12: the config says whether a leaderless cluster's quorums
/// overlap.
#[test]
fn config_says_whether_quorums_overlap() {
    let out = replab(&["config", "--config", "config/leaderless-lww.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("N=3 W=1 R=2; quorums do not overlap (R + W = 3 <= N)"), "{shown}");
    assert!(shown.contains("conflicts resolved by lww"), "{shown}");
    let out = replab(&["config", "--config", "config/leaderless-lww.toml", "--set", "leaderless.write_quorum=2"]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("N=3 W=2 R=2; quorums overlap (R + W = 4 > N)"), "{shown}");
    let out = replab(&["config", "--config", "config/raft.toml"]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("# raft on 3 members, a write commits on 2 of them"), "{shown}");
}

#[test]
fn ci_runs_exactly_the_readme_test_command() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let ci = std::fs::read_to_string(format!("{root}/.ci/run")).unwrap();
    let ci_command = ci.lines().last().unwrap().trim();
    assert!(ci_command.starts_with("cargo "), "last line of .ci/run is the command: {ci_command}");
    assert!(readme.lines().any(|l| l.trim() == ci_command), "README must show `{ci_command}`");
}

/// Issue 12: bad strategy settings are refused before anything starts,
/// naming the key.
#[test]
fn bad_leaderless_settings_exit_2_naming_the_key() {
    let leaderless = ["--set", "policy.replication=leaderless", "--set", "policy.conflict_resolver=version-vector"];
    let cases: &[(&[&str], &str)] = &[
        (&["--set", "leaderless.write_quorum=4"], "leaderless.write_quorum = 4"),
        (&["--set", "leaderless.read_quorum=0"], "leaderless.read_quorum = 0"),
        (&["--set", "leaderless.replicas=5"], "leaderless.replicas = 5"),
    ];
    for (extra, expected) in cases {
        let mut args = vec!["config"];
        args.extend(leaderless);
        args.extend(*extra);
        let out = replab(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(expected), "{args:?}: {}", text(&out));
    }
    let out = replab(&["config", "--set", "policy.replication=leaderless", "--set", "policy.conflict_resolver=lwx"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("policy.conflict_resolver") && text(&out).contains("lww, version-vector"),
        "{}",
        text(&out)
    );
    let out = replab(&["config", "--set", "policy.replication=leaderless"]);
    assert_eq!(out.status.code(), Some(2), "leaderless needs a resolver");
    assert!(text(&out).contains("policy.conflict_resolver"), "{}", text(&out));
    let out = replab(&["config", "--set", "policy.conflict_resolver=lww"]);
    assert_eq!(out.status.code(), Some(2), "a resolver under raft");
    assert!(text(&out).contains("means nothing under raft"), "{}", text(&out));
    let out = replab(&["config", "--set", "leaderless.write_quorum=1"]);
    assert_eq!(out.status.code(), Some(2), "a leaderless key under raft");
    assert!(text(&out).contains("leaderless.write_quorum") && text(&out).contains("no effect"), "{}", text(&out));
}

/// Issue 13: an unknown mode, a detector timeout shorter than its
/// interval, and a primary-backup key under another policy are refused
/// before anything starts, naming the key and where it was set.
#[test]
fn bad_primary_backup_settings_exit_2_naming_the_key() {
    let pb = ["config", "--set", "policy.replication=primary-backup"];
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--set", "primary_backup.mode=eventually"],
            &["primary_backup.mode = eventually (from --set", "expected one of `async`, `sync`, `quorum`"],
        ),
        (
            &["--set", "policy.failure_detector=heartbeat", "--set", "heartbeat.suspect_after_ms=50"],
            &["heartbeat.suspect_after_ms = 50", "must exceed interval_ms (100)"],
        ),
        (&["--set", "gossip.interval_ms=abc"], &["gossip.interval_ms = abc", "expected an integer"]),
    ];
    for (extra, expected) in cases {
        let mut args = pb.to_vec();
        args.extend(*extra);
        let out = replab(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        for part in *expected {
            assert!(text(&out).contains(part), "{args:?} should say {part:?}: {}", text(&out));
        }
    }
    let out = replab(&["config", "--set", "primary_backup.mode=sync"]);
    assert_eq!(out.status.code(), Some(2), "a primary-backup key under raft: {}", text(&out));
    assert!(
        text(&out).contains("primary_backup.mode = sync")
            && text(&out).contains("no effect; set policy.replication = \"primary-backup\""),
        "{}",
        text(&out)
    );
    let out = replab(&["config", "--config", "config/primary-backup-quorum.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// Issue 14: the process benchmark runs every phase against three real
/// `replab node` processes (tiny, bounded phases here), writes its JSON,
/// says etcd is missing when its script is, and leaves no node running.
#[test]
fn process_benchmark_measures_every_phase_and_stops_every_node() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let no_script = dir.path().join("no-such-bench.sh");
    let out = replab(&[
        "bench",
        "cluster",
        "--processes",
        "--etcd",
        "--etcd-script",
        no_script.to_str().unwrap(),
        "--clients",
        "4",
        "--seconds",
        "1",
        "--warmup-seconds",
        "0.2",
        "--max-ops",
        "300",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    for phase in ["put-1", "put-4", "get-4"] {
        let row = table
            .lines()
            .find(|l| l.starts_with(&format!("| {phase} |")))
            .unwrap_or_else(|| panic!("{phase}:\n{table}"));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        // | phase | clients | ops | errors | ops/s | p50 | p99 | p99.9 | cpu | fsync/s | entries/fsync |
        let ops: u64 = cells[3].parse().unwrap();
        assert!(ops > 0 && ops <= 300 + 4, "{row}");
        assert_eq!(cells[4], "0", "no errors: {row}");
        for c in &cells[5..10] {
            assert!(c.parse::<f64>().unwrap() > 0.0, "{row}");
        }
    }
    assert!(table.contains("etcd missing: no "), "{table}");
    assert!(table.contains("floor of one put"), "{table}");
    assert!(table.contains("config: the shipped defaults (wal.fsync = batch;"), "{table}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let phases = v["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 3);
    for p in phases {
        assert!(p["replab"]["ops_per_sec"].as_f64().unwrap() > 0.0, "{p}");
        assert!(p["replab"]["server_cpu_us_per_op"].as_f64().unwrap() > 0.0, "{p}");
        if p["phase"].as_str().unwrap().starts_with("put") {
            // Durable writes: the leader synced its log during the phase.
            assert!(p["replab"]["leader_fdatasyncs_per_sec"].as_f64().unwrap() > 0.0, "{p}");
            // About one entry per sync at one client; a little under 1 when
            // a hard-state save of its own was synced in the phase too.
            assert!(p["replab"]["entries_per_fdatasync"].as_f64().unwrap() > 0.5, "{p}");
        }
        assert!(p["etcd"].is_null());
    }
    assert!(v["etcd"]["missing"].as_str().unwrap().contains("no-such-bench.sh"));
    assert_eq!(v["wal_fsync"], "batch", "the shipped default, durable");
    let pids = v["node_pids"][0].as_array().unwrap();
    assert_eq!(pids.len(), 3);
    for pid in pids {
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "node {pid} survived the benchmark");
    }
}

/// A process benchmark small enough for a test: 2 clients, at most 100
/// operations or half a second per phase, no warm-up; `extra` after.
fn tiny_process_bench(extra: &[&str]) -> Output {
    let mut args = vec![
        "bench",
        "cluster",
        "--processes",
        "--clients",
        "2",
        "--seconds",
        "0.5",
        "--warmup-seconds",
        "0",
        "--max-ops",
        "100",
    ];
    args.extend_from_slice(extra);
    replab(&args)
}

/// Issue 14: figures bought by not syncing judge no target.
#[test]
fn process_benchmark_judges_no_target_without_fdatasync() {
    let out = tiny_process_bench(&["--set", "wal.fsync=never"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("+ wal.fsync=never (wal.fsync = never;"), "{table}");
    let floor = table.lines().find(|l| l.contains("p50 <= 1.5x the physical floor")).expect("the floor verdict");
    assert!(floor.trim_start().starts_with("not judged"), "{floor}");
    assert!(floor.contains("never fdatasync'ed"), "{floor}");
}

/// Issue 14: `--member-dirs` puts each member's data in a directory of
/// its own (a disk of its own, on a machine that has them); the floor's
/// syncs go there too, and the run leaves nothing behind in them. The
/// bench itself refuses a run whose nodes do not hold their locks there.
#[test]
fn process_benchmark_keeps_each_members_data_in_its_member_dir() {
    let disks: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let names: Vec<String> = disks.iter().map(|d| d.path().display().to_string()).collect();
    let out = tiny_process_bench(&["--member-dirs", &names.join(",")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains(&format!("their data in {} (--member-dirs)", names.join(", "))), "{table}");
    // Three directories of one file system are one disk, and the output says so.
    assert!(table.contains("with the members sharing this disk: loopback round trip"), "{table}");
    for disk in &disks {
        let left: Vec<_> = std::fs::read_dir(disk.path()).unwrap().collect();
        assert!(left.is_empty(), "the run removed what it wrote in {}: {left:?}", disk.path().display());
    }
}

/// Issue 14: `--member-dirs` takes three directories, and says which one
/// is not a directory, before anything starts.
#[test]
fn process_benchmark_refuses_member_dirs_that_are_not_three_directories() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let out = replab(&["bench", "cluster", "--processes", "--member-dirs", &format!("{d},{d}")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--member-dirs takes one directory per member, three"), "{}", text(&out));
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let f = file.display().to_string();
    let out = replab(&["bench", "cluster", "--processes", "--member-dirs", &format!("{d},{f},{d}")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains(&format!("--member-dirs: {f:?} is not a directory")), "{}", text(&out));
    let out = replab(&["bench", "cluster", "--member-dirs", &format!("{d},{d},{d}")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("add --processes"), "{}", text(&out));
}

/// Issue 14: Ctrl-C stops the benchmark and every node it started, and
/// removes what it wrote in --member-dirs.
#[test]
fn process_benchmark_stops_its_nodes_on_ctrl_c() {
    use std::io::BufRead;
    let disks: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let names: Vec<String> = disks.iter().map(|d| d.path().display().to_string()).collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_replab"))
        .args(["bench", "cluster", "--processes", "--clients", "2", "--seconds", "60", "--warmup-seconds", "0"])
        .args(["--member-dirs", &names.join(",")])
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let pids: Vec<String> = loop {
        let line = lines.next().expect("the bench said which nodes it started").unwrap();
        if let Some(rest) = line.strip_prefix("nodes ready (pids ") {
            break rest.split(')').next().unwrap().split(' ').map(String::from).collect();
        }
    };
    assert_eq!(pids.len(), 3);
    for pid in &pids {
        assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    }
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let started = std::time::Instant::now();
    let status = child.wait().unwrap();
    assert!(!status.success(), "an interrupted benchmark fails");
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "took {:?}", started.elapsed());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("interrupted")), "{rest:?}");
    for pid in &pids {
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "node {pid} survived Ctrl-C");
    }
    for disk in &disks {
        let left: Vec<_> = std::fs::read_dir(disk.path()).unwrap().collect();
        assert!(left.is_empty(), "Ctrl-C left {left:?} in {}", disk.path().display());
    }
}

#[test]
fn process_benchmark_refuses_bad_input_with_a_clear_error() {
    let out = replab(&["bench", "cluster", "--processes", "--policy", "paxos"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("--policy: `paxos` is not one of raft, primary-backup, leaderless"), "{}", text(&out));
    let out = replab(&["bench", "cluster", "--processes", "--clients", "0"]);
    assert!(text(&out).contains("--clients must be within"), "{}", text(&out));
    let out = replab(&["bench", "cluster", "--processes", "--set", "wal.nonsense=1", "--seconds", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("nonsense"), "{}", text(&out));
    let out = replab(&["bench", "cluster", "--etcd", "--strategies"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}
