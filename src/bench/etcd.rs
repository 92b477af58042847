//! The etcd side of `replab bench cluster --etcd`: runs the peer script
//! `shared/peers/etcd/bench.sh` (a 3-member etcd 3.4 on 127.0.0.1 driven
//! by etcd's own `benchmark` tool) and parses the table it prints.
//!
//! The script runs in its own process group, so that stopping it (on
//! Ctrl-C, an error or a panic here) reaches the etcd members and the load
//! generator it started, and its own trap stops the members by pid.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::process_figures::Figures;

/// One row of bench.sh's table.
#[derive(Clone, Debug, PartialEq)]
pub struct EtcdPhase {
    pub name: String,
    pub clients: u64,
    pub f: Figures,
}

/// What bench.sh printed: its summary line and its rows.
#[derive(Clone, Debug)]
pub struct EtcdRun {
    pub summary: String,
    pub phases: Vec<EtcdPhase>,
}

impl EtcdRun {
    pub fn phase(&self, name: &str) -> Option<&EtcdPhase> {
        self.phases.iter().find(|p| p.name == name)
    }
}

/// Why there is no etcd figure: shown in the etcd column.
pub fn missing_reason(script: &Path) -> Option<String> {
    if !script.is_file() {
        return Some(format!("missing: no {}", script.display()));
    }
    let peer_dir =
        std::env::var_os("PEER_DIR").map(PathBuf::from).unwrap_or_else(|| std::env::temp_dir().join("replab-peers"));
    let tool = peer_dir.join("bin/benchmark");
    if !tool.is_file() {
        let install = script.with_file_name("install.sh");
        return Some(format!("missing: no {} (run {})", tool.display(), install.display()));
    }
    let on_path =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join("etcd").is_file())).unwrap_or(false);
    if !on_path {
        return Some("missing: no etcd on PATH".into());
    }
    None
}

/// The default location of the peer script: beside the repository, as
/// `../shared/peers/etcd/bench.sh` from the working directory or from the
/// source tree this binary was built from.
pub fn default_script() -> PathBuf {
    let relative = Path::new("../shared/peers/etcd/bench.sh");
    if relative.is_file() {
        return relative.to_path_buf();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Kills the script's process group when dropped before it finished.
struct GroupGuard {
    pgid: Option<i32>,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        let Some(pgid) = self.pgid else { return };
        // SIGTERM lets bench.sh's trap stop its etcd members gracefully;
        // SIGKILL after 12 s (its own stop waits up to 10 s).
        // SAFETY: kill(2) on a process group this process created.
        unsafe { libc::kill(-pgid, libc::SIGTERM) };
        for _ in 0..120 {
            // SAFETY: signal 0 only checks whether the group still exists.
            if unsafe { libc::kill(-pgid, 0) } != 0 {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // SAFETY: as above.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
    }
}

/// Runs bench.sh with `seconds` per measured phase and `clients` for the
/// many-client phases. Bounded: the script bounds each phase with
/// `timeout`, and this waits at most a generous multiple of that.
pub async fn run(script: &Path, seconds: f64, clients: usize) -> Result<EtcdRun, String> {
    let dur_s = seconds.ceil().max(1.0) as u64;
    let mut cmd = tokio::process::Command::new("bash");
    cmd.arg(script)
        .env("DUR", dur_s.to_string())
        .env("C", clients.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0);
    let child = cmd.spawn().map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    let mut guard = GroupGuard { pgid: child.id().and_then(|id| i32::try_from(id).ok()) };
    // Four phases of (warm-up + DUR, each capped at 3 DUR by the script) plus start-up.
    let bound = Duration::from_secs(4 * (60 + 3 * dur_s) + 120);
    let out = tokio::time::timeout(bound, child.wait_with_output())
        .await
        .map_err(|_| format!("{} did not finish within {} s", script.display(), bound.as_secs()))?
        .map_err(|e| format!("{}: {e}", script.display()))?;
    guard.pgid = None;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!("{} failed ({}): {}{}", script.display(), out.status, stdout.trim(), stderr.trim()));
    }
    parse(&stdout)
}

/// Parses bench.sh's output: a summary line starting with `etcd `, a
/// header starting with `phase`, then one row per phase.
pub fn parse(text: &str) -> Result<EtcdRun, String> {
    let summary = text.lines().find(|l| l.starts_with("etcd ")).unwrap_or("").to_string();
    let mut phases = Vec::new();
    let mut in_table = false;
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.first() == Some(&"phase") {
            in_table = true;
            continue;
        }
        if !in_table || fields.len() < 13 || !(fields[0].starts_with("put-") || fields[0].starts_with("lread-")) {
            continue;
        }
        let num = |i: usize| -> Result<f64, String> {
            fields[i]
                .trim_end_matches('%')
                .parse::<f64>()
                .map_err(|_| format!("etcd row {:?}: field {i} unreadable", line))
        };
        let ops_per_sec = num(3)?;
        phases.push(EtcdPhase {
            name: fields[0].to_string(),
            clients: num(1)? as u64,
            f: Figures {
                ops_per_sec,
                p50_us: num(5)? * 1000.0,
                p99_us: num(6)? * 1000.0,
                p999_us: num(7)? * 1000.0,
                // etcdCPU: percent of one core over the phase.
                server_cpu_us_per_op: if ops_per_sec > 0.0 { num(8)? * 1e4 / ops_per_sec } else { 0.0 },
                fdatasyncs_per_sec: num(10)?,
                entries_per_fdatasync: num(12)?,
            },
        });
    }
    if phases.is_empty() {
        return Err(format!("no phase rows in the etcd output:\n{text}"));
    }
    Ok(EtcdRun { summary, phases })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
etcd 3.4.23 x3 on 127.0.0.1 | 2 cores | key=16B val=256B keyspace=100000 | DUR=2s/phase | leader=:23793 | db=12MB | wall 32s
phase       cli    total     ops/s   avg_ms   p50_ms   p99_ms  p999_ms etcdCPU   host wal_fs/s   fs_ms  op/fs
put-1         1     1327       756    1.316    1.156    6.900    9.434     89%   100%      740   0.617    1.0
put-64       64     8366      3952   15.879   14.725   46.151   53.853     91%   100%      223   3.566   17.7
lread-64     64     9818      3975   15.789   12.271   59.046  102.884     70%   100%        0   0.000    0.0
lread-64L    64    12479      5302   11.643    9.874   31.257   39.805     71%   100%        0   0.000    0.0
(etcdCPU: sum of 3 etcd processes, 100% = 1 core; host: busy % of all cores incl. benchmark client;
";

    #[test]
    fn parses_every_row_of_bench_sh() {
        let run = parse(SAMPLE).unwrap();
        assert_eq!(run.phases.len(), 4);
        assert!(run.summary.starts_with("etcd 3.4.23"));
        let p = run.phase("put-64").unwrap();
        assert_eq!(p.clients, 64);
        assert_eq!(p.f.ops_per_sec, 3952.0);
        assert!((p.f.p99_us - 46_151.0).abs() < 0.5);
        assert!((p.f.server_cpu_us_per_op - 91.0 * 1e4 / 3952.0).abs() < 1e-6);
        assert_eq!(p.f.entries_per_fdatasync, 17.7);
        assert!(run.phase("lread-64L").is_some());
    }

    #[test]
    fn output_without_rows_or_with_garbage_is_an_error() {
        assert!(parse("nothing here\n").is_err());
        let bad = "phase cli\nput-1 1 x y z a b c d e f g h\n";
        assert!(parse(bad).is_err());
    }
}
