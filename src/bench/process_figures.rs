//! Figures, tables, ratios, acceptance verdicts and JSON for `replab bench cluster
//! --processes [--etcd]`.

use serde_json::{Value, json};

use super::etcd::{EtcdPhase, EtcdRun};
use super::floor::Floor;
use super::load::{KEY_BYTES, KEY_SPACE, VALUE_BYTES};
use super::median;
use super::processes::{ProcessBenchArgs, etcd_counterpart};
use crate::wal::FsyncPolicy;

/// What a phase measured, on either side.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Figures {
    pub ops_per_sec: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    /// CPU time (user + system) of the three server processes per operation.
    pub server_cpu_us_per_op: f64,
    /// On the node the counters come from (the leader under raft).
    pub fdatasyncs_per_sec: f64,
    pub entries_per_fdatasync: f64,
}

impl Figures {
    /// The table cells from ops/s on.
    fn cells(&self) -> String {
        format!(
            "{:.0} | {:.0} | {:.0} | {:.0} | {:.1} | {:.0} | {:.1}",
            self.ops_per_sec,
            self.p50_us,
            self.p99_us,
            self.p999_us,
            self.server_cpu_us_per_op,
            self.fdatasyncs_per_sec,
            self.entries_per_fdatasync
        )
    }
}

const FIGURE_HEADER: &str =
    "ops/s | p50 µs | p99 µs | p99.9 µs | server CPU µs/op | leader fdatasync/s | entries/fdatasync |";

/// One measured replab phase.
#[derive(Clone, Debug)]
pub struct PhaseResult {
    pub name: String,
    pub clients: u64,
    pub ops: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub f: Figures,
    /// CPU time of this benchmark process (the load generator) per operation.
    pub client_cpu_us_per_op: f64,
    /// The leader (role and term) was the same at both ends of the phase.
    pub leader_kept: bool,
}

#[derive(Clone, Debug)]
pub struct ReplabRun {
    pub floor: Floor,
    pub phases: Vec<PhaseResult>,
    /// Client address of the node whose counters are shown.
    pub counters_from: String,
    /// The node processes of this run (all stopped by the time it returns).
    pub node_pids: Vec<u32>,
    /// The nodes' effective `wal.fsync`.
    pub wal_fsync: FsyncPolicy,
}

/// The figures one invocation reports: per phase the run with the median
/// ops/s, on each side.
pub struct Summary {
    pub runs: usize,
    pub floor: Floor,
    pub replab: Vec<PhaseResult>,
    /// Per replab phase, its etcd counterpart; `Err`: why there is none.
    pub etcd: Result<Vec<(String, EtcdPhase)>, String>,
    pub etcd_summary: String,
    pub node_pids: Vec<Vec<u32>>,
    pub wal_fsync: Option<FsyncPolicy>,
}

fn median_by<T: Clone>(items: &[T], key: impl Fn(&T) -> f64) -> Option<T> {
    if items.is_empty() {
        return None;
    }
    let m = median(items.iter().map(&key).collect());
    items.iter().find(|i| key(i) == m).cloned()
}

pub fn summarize(
    args: &ProcessBenchArgs,
    replab: &[ReplabRun],
    etcd: &[EtcdRun],
    etcd_problem: Option<String>,
) -> Summary {
    let names: Vec<String> =
        replab.first().map(|r| r.phases.iter().map(|p| p.name.clone()).collect()).unwrap_or_default();
    let phases = names
        .iter()
        .filter_map(|n| {
            let runs: Vec<PhaseResult> =
                replab.iter().filter_map(|r| r.phases.iter().find(|p| &p.name == n)).cloned().collect();
            median_by(&runs, |p| p.f.ops_per_sec)
        })
        .collect();
    let floor = median_by(&replab.iter().map(|r| r.floor).collect::<Vec<_>>(), Floor::put_us).unwrap_or(Floor {
        loopback_rtt_p50_us: 0.0,
        fdatasync_p50_us: 0.0,
        lone_fdatasync_p50_us: 0.0,
        lone_preallocated_fdatasync_p50_us: 0.0,
        concurrent_fdatasync_p50_us: 0.0,
        shared_disk_commit_p50_us: 0.0,
        disks: 1,
    });
    let etcd_rows = if args.etcd.is_none() {
        Err("not run (--etcd)".to_string())
    } else if etcd.is_empty() {
        Err(etcd_problem.unwrap_or_else(|| "missing".into()))
    } else {
        Ok(names
            .iter()
            .filter_map(|n| {
                let rows: Vec<EtcdPhase> = etcd.iter().filter_map(|r| etcd_counterpart(r, n)).cloned().collect();
                median_by(&rows, |p| p.f.ops_per_sec).map(|p| (n.clone(), p))
            })
            .collect())
    };
    let etcd_summary = etcd.first().map(|r| r.summary.clone()).unwrap_or_default();
    let node_pids = replab.iter().map(|r| r.node_pids.clone()).collect();
    let wal_fsync = replab.first().map(|r| r.wal_fsync);
    Summary { runs: replab.len(), floor, replab: phases, etcd: etcd_rows, etcd_summary, node_pids, wal_fsync }
}

pub fn print_replab(args: &ProcessBenchArgs, run: &ReplabRun, repeat: usize) {
    println!(
        "\nreplab run {repeat}: 3 `replab node` processes on 127.0.0.1, policy {}, config: the shipped defaults{} \
         (wal.fsync = {}; members on free ports; {}); {KEY_BYTES}-byte keys random over {KEY_SPACE}, \
         {VALUE_BYTES}-byte values; closed loop, one connection per client; {} s warm-up, {} s per phase; counters \
         from {}\n",
        args.policy,
        args.sets.iter().map(|s| format!(" + {s}")).collect::<String>(),
        run.wal_fsync.name(),
        data_phrase(args),
        args.warmup_seconds,
        args.seconds,
        run.counters_from
    );
    println!("| phase | clients | ops | errors | {FIGURE_HEADER} client CPU µs/op |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for p in &run.phases {
        let (name, clients, ops, errors, cells) = (&p.name, p.clients, p.ops, p.errors, p.f.cells());
        println!("| {name} | {clients} | {ops} | {errors} | {cells} | {:.1} |", p.client_cpu_us_per_op);
        if let Some(e) = &p.first_error {
            println!("  {}: first error: {e}", p.name);
        }
        if !p.leader_kept {
            println!("  {}: the leader changed during the phase; its counters are not comparable", p.name);
        }
    }
    let f = run.floor;
    println!(
        "floor of one put: 2 x loopback round trip p50 ({:.0} µs) + fdatasync p50 ({:.0} µs: the lowest of {:.0} µs \
         appending alone, {:.0} µs over zeros written ahead alone and {:.0} µs so with three syncing at once) = {:.0} \
         µs",
        f.loopback_rtt_p50_us,
        f.fdatasync_p50_us,
        f.lone_fdatasync_p50_us,
        f.lone_preallocated_fdatasync_p50_us,
        f.concurrent_fdatasync_p50_us,
        f.put_us()
    );
    println!(
        "{}: loopback round trip p50 ({:.0} µs) + their commit ({:.0} µs p50: three threads each writing and \
         fdatasyncing their own file in their member's directory, the followers one hop later, until two of three \
         are durable and acknowledged) = {:.0} µs",
        f.disks_phrase(),
        f.loopback_rtt_p50_us,
        f.shared_disk_commit_p50_us,
        f.shared_disk_put_us()
    );
}

/// Where the members keep their data, for the run's header.
fn data_phrase(args: &ProcessBenchArgs) -> String {
    if args.member_dirs.is_empty() {
        return "their data in one temporary directory".to_string();
    }
    let dirs: Vec<String> = args.member_dirs.iter().map(|d| d.display().to_string()).collect();
    format!("their data in {} (--member-dirs)", dirs.join(", "))
}

pub fn print_etcd(run: &EtcdRun, repeat: usize) {
    println!("\netcd run {repeat}: {}\n", run.summary);
    println!("| phase | clients | {FIGURE_HEADER}");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for p in &run.phases {
        println!("| {} | {} | {} |", p.name, p.clients, p.f.cells());
    }
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map(|r| format!("{r:.2}")).unwrap_or_else(|| "-".into())
}

/// One acceptance target: its name, the measured figure and whether met
/// (`None`: no figure to judge).
pub struct Verdict {
    pub target: String,
    pub measured: String,
    pub met: Option<bool>,
}

impl Summary {
    fn etcd_for(&self, phase: &str) -> Option<&EtcdPhase> {
        self.etcd.as_ref().ok()?.iter().find(|(n, _)| n == phase).map(|(_, p)| p)
    }

    pub fn verdicts(&self) -> Vec<Verdict> {
        let mut out = Vec::new();
        let missing = |t: &str| Verdict { target: t.into(), measured: "no etcd figure".into(), met: None };
        for p in &self.replab {
            let e = self.etcd_for(&p.name);
            if p.name == "put-1" {
                let t = "put-1: p50 <= 0.5x etcd's";
                out.push(match e.and_then(|e| ratio(p.f.p50_us, e.f.p50_us)) {
                    Some(r) => Verdict { target: t.into(), measured: format!("{r:.2}x"), met: Some(r <= 0.5) },
                    None => missing(t),
                });
                let r = ratio(p.f.p50_us, self.floor.put_us());
                out.push(Verdict {
                    target: "put-1: p50 <= 1.5x the physical floor".into(),
                    measured: format!("{} ({:.0} µs / {:.0} µs)", fmt_ratio(r), p.f.p50_us, self.floor.put_us()),
                    met: r.map(|r| r <= 1.5),
                });
            } else if p.name.starts_with("put-") {
                let t = format!("{}: ops/s >= 4x etcd's and p99 <= 0.5x etcd's", p.name);
                out.push(match e {
                    Some(e) => {
                        let (o, l) = (ratio(p.f.ops_per_sec, e.f.ops_per_sec), ratio(p.f.p99_us, e.f.p99_us));
                        Verdict {
                            target: t,
                            measured: format!("ops/s {}x, p99 {}x", fmt_ratio(o), fmt_ratio(l)),
                            met: Some(o.is_some_and(|o| o >= 4.0) && l.is_some_and(|l| l <= 0.5)),
                        }
                    }
                    None => missing(&t),
                });
            } else {
                let t = format!("{}: ops/s >= 4x etcd's (lread-64L, at the leader)", p.name);
                out.push(match e.and_then(|e| ratio(p.f.ops_per_sec, e.f.ops_per_sec)) {
                    Some(r) => Verdict { target: t, measured: format!("{r:.2}x"), met: Some(r >= 4.0) },
                    None => missing(&t),
                });
            }
        }
        if self.wal_fsync == Some(FsyncPolicy::Never) {
            // A target met by acknowledging writes no disk holds is not met.
            for v in &mut out {
                v.met = None;
                v.measured += " (not judged: wal.fsync = never acknowledges writes that were never fdatasync'ed)";
            }
        }
        out
    }

    pub fn to_json(&self, args: &ProcessBenchArgs) -> Value {
        let phases: Vec<Value> = self
            .replab
            .iter()
            .map(|p| {
                let e = self.etcd_for(&p.name);
                json!({
                    "phase": p.name, "clients": p.clients,
                    "replab": {
                        "ops": p.ops, "errors": p.errors, "ops_per_sec": p.f.ops_per_sec,
                        "p50_us": p.f.p50_us, "p99_us": p.f.p99_us, "p999_us": p.f.p999_us,
                        "server_cpu_us_per_op": p.f.server_cpu_us_per_op,
                        "leader_fdatasyncs_per_sec": p.f.fdatasyncs_per_sec,
                        "entries_per_fdatasync": p.f.entries_per_fdatasync,
                        "client_cpu_us_per_op": p.client_cpu_us_per_op,
                        "leader_kept": p.leader_kept,
                    },
                    "etcd": e.map(|e| json!({
                        "phase": e.name, "clients": e.clients, "ops_per_sec": e.f.ops_per_sec,
                        "p50_us": e.f.p50_us, "p99_us": e.f.p99_us, "p999_us": e.f.p999_us,
                        "server_cpu_us_per_op": e.f.server_cpu_us_per_op,
                        "leader_fdatasyncs_per_sec": e.f.fdatasyncs_per_sec,
                        "entries_per_fdatasync": e.f.entries_per_fdatasync,
                    })),
                    "ratio": e.map(|e| json!({
                        "ops_per_sec": ratio(p.f.ops_per_sec, e.f.ops_per_sec),
                        "p50": ratio(p.f.p50_us, e.f.p50_us), "p99": ratio(p.f.p99_us, e.f.p99_us),
                    })),
                })
            })
            .collect();
        let verdicts: Vec<Value> =
            self.verdicts().iter().map(|v| json!({"target": v.target, "measured": v.measured, "met": v.met})).collect();
        json!({
            "policy": args.policy, "sets": args.sets, "wal_fsync": self.wal_fsync.map(FsyncPolicy::name),
            "key_bytes": KEY_BYTES, "value_bytes": VALUE_BYTES, "key_space": KEY_SPACE,
            "warmup_seconds": args.warmup_seconds, "seconds": args.seconds, "max_ops": args.max_ops,
            "runs": self.runs,
            "node_pids": self.node_pids,
            "member_dirs": args.member_dirs,
            "floor": {
                "loopback_rtt_p50_us": self.floor.loopback_rtt_p50_us,
                "fdatasync_p50_us": self.floor.fdatasync_p50_us,
                "lone_fdatasync_p50_us": self.floor.lone_fdatasync_p50_us,
                "lone_preallocated_fdatasync_p50_us": self.floor.lone_preallocated_fdatasync_p50_us,
                "concurrent_fdatasync_p50_us": self.floor.concurrent_fdatasync_p50_us,
                "put_us": self.floor.put_us(),
                "shared_disk_commit_p50_us": self.floor.shared_disk_commit_p50_us,
                "shared_disk_put_us": self.floor.shared_disk_put_us(),
                "member_disks": self.floor.disks,
            },
            "etcd": match &self.etcd { Ok(_) => json!(self.etcd_summary), Err(why) => json!({"missing": why}) },
            "phases": phases,
            "acceptance": verdicts,
        })
    }
}

pub fn print_summary(s: &Summary) {
    println!("\nreplab against etcd (per phase, the run with the median ops/s of {}):\n", s.runs);
    println!(
        "| phase | replab ops/s | etcd ops/s | ratio | replab p50 µs | etcd p50 µs | ratio | replab p99 µs | etcd p99 µs | ratio | replab CPU µs/op | etcd CPU µs/op |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for p in &s.replab {
        match s.etcd_for(&p.name) {
            Some(e) => println!(
                "| {} | {:.0} | {:.0} | {} | {:.0} | {:.0} | {} | {:.0} | {:.0} | {} | {:.1} | {:.1} |",
                p.name,
                p.f.ops_per_sec,
                e.f.ops_per_sec,
                fmt_ratio(ratio(p.f.ops_per_sec, e.f.ops_per_sec)),
                p.f.p50_us,
                e.f.p50_us,
                fmt_ratio(ratio(p.f.p50_us, e.f.p50_us)),
                p.f.p99_us,
                e.f.p99_us,
                fmt_ratio(ratio(p.f.p99_us, e.f.p99_us)),
                p.f.server_cpu_us_per_op,
                e.f.server_cpu_us_per_op
            ),
            None => {
                let why = s.etcd.as_ref().err().cloned().unwrap_or_else(|| "missing".into());
                println!(
                    "| {} | {:.0} | etcd {why} | - | {:.0} | - | - | {:.0} | - | - | {:.1} | - |",
                    p.name, p.f.ops_per_sec, p.f.p50_us, p.f.p99_us, p.f.server_cpu_us_per_op
                )
            }
        }
    }
    println!("\nacceptance targets:");
    for v in s.verdicts() {
        let verdict = match v.met {
            Some(true) => "met",
            Some(false) => "NOT met",
            None => "not judged",
        };
        println!("  {verdict:10} {}: {}", v.target, v.measured);
    }
    if let Some(put) = s.replab.iter().find(|p| p.name == "put-1") {
        // Not a target: it splits the floor's gap into what the members'
        // disks cost (sharing one, by default) and what the engine costs.
        println!(
            "  (not a target) put-1 p50 against a put {}: {}x ({:.0} µs / {:.0} µs)",
            s.floor.disks_phrase(),
            fmt_ratio(ratio(put.f.p50_us, s.floor.shared_disk_put_us())),
            put.f.p50_us,
            s.floor.shared_disk_put_us()
        );
    }
}
