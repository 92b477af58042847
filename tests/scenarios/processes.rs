//! Lua scenarios on process-mode clusters (`processes = true`, `replab run
//! --processes`): every member a real `replab node` child, faults by
//! signal (crash, pause) or through the admin channel (links, clock skew,
//! power loss); children never outlive the run; a node started without the
//! lab flag refuses admin requests.

use std::io::{BufRead, BufReader, Lines};
use std::path::Path;
use std::process::{ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use crate::*;

fn script(name: &str) -> std::path::PathBuf {
    root().join("tests/scenarios/processes").join(name)
}

/// Every pid the output names: the numbers after a `pid` or `pids` word
/// (script logs), and in `(pids a, b, c)` (the run's timeline).
fn pids_in(text: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for line in text.lines() {
        let mut after_pid = false;
        for word in line.split_whitespace() {
            let word = word.trim_matches(|c: char| c == '(' || c == ')' || c == ',');
            if word == "pid" || word == "pids" {
                after_pid = true;
            } else if let (true, Ok(pid)) = (after_pid, word.parse::<u32>()) {
                pids.push(pid);
            } else {
                after_pid = false;
            }
        }
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// A process that exists and is not a zombie.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn assert_all_gone(pids: &[u32], context: &str) {
    let alive: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
    assert!(alive.is_empty(), "node processes {alive:?} outlived the run\n{context}");
}

fn check_line<'a>(run: &'a Run, name: &str) -> &'a str {
    run.stdout.lines().find(|l| l.starts_with(&format!("check {name}:"))).unwrap_or("")
}

#[test]
fn a_sigkilled_leader_restarts_and_no_acknowledged_write_is_lost() {
    let run = run(&script("leader-crash.lua"), &[]);
    assert_eq!(run.code, Some(0), "{}", run.explain());
    for check in ["linearizable", "no_lost_writes", "convergence"] {
        assert_eq!(run.check_status(check).as_deref(), Some("pass"), "{check}\n{}", run.explain());
    }
    assert!(check_line(&run, "the crashed node has no process").contains("pass"), "{}", run.explain());
    // The killed pid is gone; the restarted node is another process.
    let killed: u32 = run.stdout.lines().find_map(|l| l.split("killed pid ").nth(1)).unwrap().trim().parse().unwrap();
    let restarted: u32 =
        run.stdout.lines().find_map(|l| l.split("restarted pid ").nth(1)).unwrap().trim().parse().unwrap();
    assert_ne!(killed, restarted, "{}", run.explain());
    assert_all_gone(&pids_in(&run.stdout), &run.explain());
}

#[test]
fn stop_restart_wipe_and_leader_transfer_work_on_processes() {
    let run = run(&script("operator-calls.lua"), &[]);
    assert_eq!(run.code, Some(0), "{}", run.explain());
    for check in
        ["a stopped node has no process", "a restart is a new process", "leadership moves to the node asked for"]
    {
        assert!(check_line(&run, check).contains("pass"), "{check}\n{}", run.explain());
    }
    for check in ["linearizable", "no_lost_writes", "convergence"] {
        assert!(check_line(&run, check).contains("pass"), "{check}\n{}", run.explain());
    }
    assert_all_gone(&pids_in(&run.stdout), &run.explain());
}

#[test]
fn a_paused_leader_process_is_replaced_and_acknowledges_nothing_stale_when_resumed() {
    // SIGSTOP past the election timeout, isolated; SIGCONT; it steps down.
    let run = run(&root().join("scripts/zombie-leader.lua"), &["--processes"]);
    assert_eq!(run.code, Some(0), "{}", run.explain());
    for check in [
        "the resumed old leader acknowledged no write",
        "the resumed old leader served no read",
        "the old leader stepped down",
    ] {
        assert!(check_line(&run, check).contains(": pass"), "{check}\n{}", run.explain());
    }
    assert!(run.stdout.contains("as processes (pids"), "{}", run.explain());
    assert_eq!(run.check_status("linearizable").as_deref(), Some("pass"), "{}", run.explain());
    assert_all_gone(&pids_in(&run.stdout), &run.explain());
}

#[test]
fn a_pinned_client_on_the_minority_side_of_a_process_partition_gets_no_acknowledgement() {
    let run = run(&root().join("scripts/minority-pinned-client.lua"), &["--processes"]);
    assert_eq!(run.code, Some(0), "{}", run.explain());
    assert!(run.stdout.contains("as processes (pids"), "{}", run.explain());
    assert!(check_line(&run, "no write on the minority side was acknowledged").contains("pass"), "{}", run.explain());
    // Each of the five minority writes failed or stayed unknown.
    let minority: Vec<&str> = run.stdout.lines().filter(|l| l.contains("minority write")).collect();
    assert_eq!(minority.len(), 5, "{}", run.explain());
    assert!(minority.iter().all(|l| l.contains(" nil failed: ") || l.contains(" nil unknown: ")), "{minority:#?}");
    assert_all_gone(&pids_in(&run.stdout), &run.explain());
}

#[test]
fn power_loss_on_processes_loses_acknowledged_writes_only_without_fsync() {
    let out = tempfile::tempdir().unwrap();
    // The lab's environment asks for fsync everywhere; the variant's --set
    // outranks it in the lab, and the node processes must not read it
    // either, or "never" would sync and lose nothing.
    let output = Command::new(env!("CARGO_BIN_EXE_replab"))
        .args(["compare"])
        .arg(root().join("scripts/power-loss.lua"))
        .arg("--out")
        .arg(out.path())
        .args(["--processes", "--variant", "always:wal.fsync=always", "--variant", "never:wal.fsync=never"])
        .env_remove("RUST_LOG")
        .env("REPLAB_WAL__FSYNC", "always")
        .current_dir(root())
        .output()
        .expect("run replab");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let explain = format!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(saved_text(out.path()).contains("as processes (pids"), "the runs used node processes\n{explain}");
    let row = stdout.lines().find(|l| l.starts_with("| acknowledged writes lost |")).expect(&explain);
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    assert_eq!(cells[2], "0", "always: {row}\n{explain}");
    let never: u64 = cells[3].parse().expect(&explain);
    assert!(never > 0, "never: {row}\n{explain}");
    assert_eq!(output.status.code(), Some(1), "the never variant fails no_lost_writes\n{explain}");
}

/// Every file under `dir`, concatenated (what a compare run saved).
fn saved_text(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            text += &saved_text(&path);
        } else if let Ok(t) = std::fs::read_to_string(&path) {
            text += &t;
        }
    }
    text
}

#[test]
fn clock_skew_reaches_a_node_process() {
    // With node 1 a minute ahead, last-writer-wins keeps v1 over the later
    // v2; with the skew lost on its way, v2 would win.
    let run = run(&script("skew-status.lua"), &["--config", "config/leaderless-lww.toml"]);
    assert_eq!(run.code, Some(0), "{}", run.explain());
    assert!(run.stdout.contains("final v1\n"), "{}", run.explain());
    assert_all_gone(&pids_in(&run.stdout), &run.explain());
}

#[test]
fn no_node_process_outlives_a_run_that_ends_fails_or_times_out() {
    let ended = run(&script("pids-end.lua"), &[]);
    assert_eq!(ended.code, Some(0), "{}", ended.explain());
    let failed = run(&script("pids-error.lua"), &[]);
    assert_eq!(failed.code, Some(2), "{}", failed.explain());
    assert!(failed.stderr.contains("deliberate failure") || failed.stdout.contains("deliberate failure"));
    let timed_out = run(&script("pids-hang.lua"), &["--timeout", "3"]);
    assert_eq!(timed_out.code, Some(2), "{}", timed_out.explain());
    for run in [&ended, &failed, &timed_out] {
        let pids = pids_in(&run.stdout);
        assert!(pids.len() >= 3, "the run named its node pids\n{}", run.explain());
        assert_all_gone(&pids, &run.explain());
    }
}

/// Starts `replab run SCRIPT` (under tests/scenarios/processes), waits for
/// the line that logs its three node pids, and returns the child, the rest
/// of its output and the pids in member order.
fn start_run(name: &str) -> (std::process::Child, Lines<BufReader<ChildStdout>>, Vec<u32>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_replab"))
        .arg("run")
        .arg(script(name))
        .env_remove("RUST_LOG")
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    let pids = loop {
        match lines.next() {
            Some(Ok(line)) if pids_in(&line).len() == 3 => {
                // The words after `pids`, in the order the script logged.
                let after = line.split_once("pids").map_or("", |(_, rest)| rest);
                break Some(after.split_whitespace().filter_map(|w| w.parse().ok()).collect::<Vec<u32>>());
            }
            Some(Ok(_)) if Instant::now() < deadline => {}
            _ => break None,
        }
    };
    let Some(pids) = pids else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{name}: the run printed no pids line");
    };
    (child, lines, pids)
}

/// Starts `replab run pids-hang.lua`, waits for its pids line, and returns
/// the child and the pids.
fn start_hanging_run() -> (std::process::Child, Vec<u32>) {
    let (child, lines, pids) = start_run("pids-hang.lua");
    // Keep reading in the background so the run never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, pids)
}

#[test]
fn ctrl_c_stops_the_node_processes_and_a_killed_run_takes_them_along() {
    // Ctrl-C: the run stops its children by pid, then exits 2.
    let (mut run, pids) = start_hanging_run();
    assert!(pids.iter().all(|p| alive(*p)), "{pids:?}");
    unsafe { libc::kill(run.id() as i32, libc::SIGINT) };
    let status = run.wait().unwrap();
    assert_eq!(status.code(), Some(2), "{status}");
    assert_all_gone(&pids, "after Ctrl-C");

    // SIGKILL of the run itself: no destructor runs. The nodes see their
    // stdin pipe close (--exit-with-parent) and stop on their own; the
    // paused one, which cannot read, is killed by the kernel
    // (PR_SET_PDEATHSIG).
    let (mut run, pids) = start_hanging_run();
    run.kill().unwrap();
    run.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|p| alive(*p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let survivors: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
    for p in &survivors {
        unsafe { libc::kill(*p as i32, libc::SIGKILL) };
    }
    assert!(survivors.is_empty(), "{survivors:?} outlived a killed run");
}

/// A one-member cluster config on a free port, in `dir`.
fn single_node_config(dir: &Path) -> (std::path::PathBuf, std::net::SocketAddr) {
    let ports: Vec<u16> = (0..2)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect::<Vec<_>>()
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    let text = format!(
        "[cluster]\nid = \"admin-test\"\ndata_dir = \"{}\"\n\n[[cluster.members]]\nid = 1\npeer_addr = \
         \"127.0.0.1:{}\"\nclient_addr = \"127.0.0.1:{}\"\n",
        dir.join("data").display(),
        ports[0],
        ports[1]
    );
    let path = dir.join("cluster.toml");
    std::fs::write(&path, text).unwrap();
    (path, format!("127.0.0.1:{}", ports[1]).parse().unwrap())
}

#[test]
fn a_lab_node_stops_when_its_stdin_closes() {
    // --exit-with-parent alone (no PR_SET_PDEATHSIG here: the test, its
    // parent, lives on): closing the pipe stops the node, cleanly.
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = single_node_config(dir.path());
    let mut node = Command::new(env!("CARGO_BIN_EXE_replab"))
        .args(["node", "--config"])
        .arg(&config)
        .args(["--id", "1", "--exit-with-parent"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(node.try_wait().unwrap().is_none(), "the node runs while its stdin is open");
    drop(node.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = node.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = node.kill();
    let output = node.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let status = status.unwrap_or_else(|| panic!("the node outlived its closed stdin\n{stderr}"));
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("the lab that started it is gone"), "{stderr}");
}

/// Sends a clock-skew admin request to a node started with `flags`.
fn admin_answer(flags: &[&str]) -> Result<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let (config, addr) = single_node_config(dir.path());
    let mut node = Command::new(env!("CARGO_BIN_EXE_replab"))
        .args(["node", "--config"])
        .arg(&config)
        .args(["--id", "1"])
        .args(flags)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let settings =
        replab::config::load(&replab::config::ConfigInput { file: Some(config), env: Vec::new(), sets: Vec::new() })
            .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let answer = runtime.block_on(async {
        let mut client = replab::client::Client::new(replab::client::ClientOptions {
            nodes: vec![addr],
            cluster_id: settings.cluster.id.clone(),
            secret: settings.cluster.secret.clone(),
            net: settings.net.clone(),
            op_timeout: Duration::from_secs(2),
            attempt_timeout: Duration::from_secs(1),
            name: 7,
            pinned: false,
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while client.status(addr).await.is_err() {
            assert!(Instant::now() < deadline, "the node never answered");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let request = replab::client::protocol::AdminRequest::ClockSkew { ms: 5_000 };
        client.admin(addr, request).await.map(|a| format!("{a:?}")).map_err(|e| e.to_string())
    });
    let _ = node.kill();
    let _ = node.wait();
    answer
}

#[test]
fn a_node_without_the_lab_flag_refuses_admin_requests() {
    let refused = admin_answer(&[]).expect_err("a production node refuses admin requests");
    assert!(refused.contains("--allow-fault-injection") && refused.contains("refused"), "{refused}");
    let accepted = admin_answer(&["--allow-fault-injection"]).expect("a lab node takes them");
    assert_eq!(accepted, "AdminDone");
}

/// A verdict never passes over fewer replicas than it claims: node 2 is
/// frozen from outside the lab (which still believes it runs), so it
/// answers nothing, and convergence is undecided (exit 3), naming it.
#[test]
fn convergence_is_undecided_when_a_running_replica_cannot_answer() {
    let (mut child, lines, pids) = start_run("silent-replica.lua");
    let node2 = pids[1];
    assert_eq!(unsafe { libc::kill(node2 as i32, libc::SIGSTOP) }, 0);
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    let out = rest.join("\n");
    assert_eq!(status.code(), Some(3), "an undecided check exits 3\n{out}");
    let check = rest.iter().find(|l| l.starts_with("check convergence:")).cloned().unwrap_or_default();
    assert!(check.contains("node 2"), "the check names the silent node: {check}\n{out}");
    assert!(!check.contains("pass"), "{check}");
    assert_all_gone(&pids, &out);
}
