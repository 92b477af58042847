//! `replab bench wal`: what durability costs, against the machine's ceiling.
//!
//! Cases, all in one directory with 256-byte records:
//! (a) ceiling: a plain loop of write + fdatasync, one record at a time;
//! (b) the WAL, fsync `always`, one appender;
//! (c) the WAL with group commit (`batch`), 1, 8 and 64 concurrent appenders;
//! (d) the WAL with fsync `never`, against a plain buffered write loop.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Measurement, median, print_table};
use crate::wal::{FsyncPolicy, RecordBatch, RecordRef, Wal, WalHandle, WalOptions};

#[derive(Clone, Debug)]
pub struct WalBenchArgs {
    pub dir: Option<PathBuf>,
    /// Records per synced case (each case also stops at `seconds`).
    pub records: u64,
    /// Records per unsynced case.
    pub unsynced_records: u64,
    pub record_bytes: usize,
    pub seconds: f64,
    /// Each case runs this many times; the median run is reported.
    pub repeats: usize,
}

impl Default for WalBenchArgs {
    fn default() -> WalBenchArgs {
        WalBenchArgs {
            dir: None,
            records: 3_000,
            unsynced_records: 200_000,
            record_bytes: 256,
            seconds: 3.0,
            repeats: 5,
        }
    }
}

/// One benchmark case: runs in the directory it is given.
type Case<'a> = Box<dyn Fn(&Path) -> Result<Measurement, String> + 'a>;

pub fn run(args: &WalBenchArgs) -> Result<Vec<Measurement>, String> {
    let root = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("replab-bench-wal-{}", std::process::id())),
    };
    std::fs::create_dir_all(&root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
    let budget = Duration::from_secs_f64(args.seconds);
    let record = vec![0xA5u8; args.record_bytes];
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;

    let mut rows = Vec::new();
    let cases: Vec<(&str, Case<'_>)> = vec![
        ("(a) write+fdatasync loop", Box::new(|dir| raw_sync_loop(dir, &record, args.records, budget))),
        ("(b) wal always, 1 appender", Box::new(|dir| wal_always_direct(dir, &record, args.records, budget))),
        (
            "(b') wal always, 1 appender via log thread",
            Box::new(|dir| runtime.block_on(wal_appenders(dir, FsyncPolicy::Always, 1, &record, args.records, budget))),
        ),
        (
            "(c) wal batch, 1 appender",
            Box::new(|dir| runtime.block_on(wal_appenders(dir, FsyncPolicy::Batch, 1, &record, args.records, budget))),
        ),
        (
            "(c) wal batch, 8 appenders",
            Box::new(|dir| {
                runtime.block_on(wal_appenders(dir, FsyncPolicy::Batch, 8, &record, args.records * 4, budget))
            }),
        ),
        (
            "(c) wal batch, 64 appenders",
            Box::new(|dir| {
                runtime.block_on(wal_appenders(dir, FsyncPolicy::Batch, 64, &record, args.records * 16, budget))
            }),
        ),
        ("(d) wal never, 1 record/append", Box::new(|dir| wal_never(dir, &record, 1, args.unsynced_records, budget))),
        (
            "(d) wal never, 64 records/append",
            Box::new(|dir| wal_never(dir, &record, 64, args.unsynced_records, budget)),
        ),
        ("(d) plain buffered write loop", Box::new(|dir| buffered_loop(dir, &record, args.unsynced_records, budget))),
    ];
    // Rounds interleave the cases (a, b, c, ..., a, b, c, ...) so that the
    // machine's drift during the run hits every case alike.
    let mut runs: Vec<Vec<Measurement>> = vec![Vec::new(); cases.len()];
    let repeats = args.repeats.max(1);
    let progress = crate::progress::Progress::new("bench wal", (repeats * cases.len()) as u64);
    for round in 0..repeats {
        for (slot, (name, case)) in cases.iter().enumerate() {
            let dir = root.join(format!("case-{slot}-{round}"));
            let _ = std::fs::remove_dir_all(&dir);
            progress.start_step(&format!("{name}, run {}/{repeats}", round + 1));
            let measured = case(&dir);
            progress.finish_step();
            let mut m = measured.inspect_err(|_| progress.finish())?;
            let _ = std::fs::remove_dir_all(&dir);
            m.name = name.to_string();
            runs[slot].push(m);
        }
    }
    progress.finish();
    for case_runs in runs {
        // Report the run with the median throughput.
        let med = median(case_runs.iter().map(Measurement::ops_per_sec).collect());
        let chosen = case_runs.into_iter().find(|m| m.ops_per_sec() == med).expect("median is one of the runs");
        rows.push(chosen);
    }
    if args.dir.is_none() {
        let _ = std::fs::remove_dir_all(&root);
    }

    print_table(
        &format!(
            "WAL benchmark: {}-byte records in {} (median of {} runs)",
            args.record_bytes,
            root.display(),
            args.repeats
        ),
        &rows,
    );
    print_ratios(&rows);
    Ok(rows)
}

fn print_ratios(rows: &[Measurement]) {
    let find = |prefix: &str| rows.iter().find(|m| m.name.starts_with(prefix)).expect("case present");
    let a = find("(a)");
    let b = find("(b) ");
    let c64 = find("(c) wal batch, 64");
    let d1 = find("(d) wal never, 1");
    let d64 = find("(d) wal never, 64");
    let plain = find("(d) plain");
    println!("\nratios (targets in brackets):");
    println!(
        "  (b)/(a) p50 append latency:            {:.2}x  [<= 1.25x]",
        b.p50_us() as f64 / a.p50_us().max(1) as f64
    );
    println!("  (c, 64 appenders)/(b) records/s:       {:.1}x  [>= 20x]", c64.ops_per_sec() / b.ops_per_sec());
    println!("  (d, 1/append)/plain buffered MB/s:     {:.2}   [>= 0.50]", d1.mb_per_sec() / plain.mb_per_sec());
    println!("  (d, 64/append)/plain buffered MB/s:    {:.2}   [>= 0.50]", d64.mb_per_sec() / plain.mb_per_sec());
}

fn raw_sync_loop(dir: &Path, record: &[u8], records: u64, budget: Duration) -> Result<Measurement, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let mut file = OpenOptions::new().create(true).append(true).open(dir.join("raw")).map_err(|e| e.to_string())?;
    let mut m = Measurement::new("raw");
    let start = Instant::now();
    while m.ops < records && start.elapsed() < budget {
        let t = Instant::now();
        file.write_all(record).map_err(|e| e.to_string())?;
        file.sync_data().map_err(|e| e.to_string())?;
        m.record_latency(t.elapsed());
        m.ops += 1;
        m.bytes += record.len() as u64;
    }
    m.elapsed = start.elapsed();
    Ok(m)
}

async fn wal_appenders(
    dir: &Path,
    fsync: FsyncPolicy,
    appenders: u64,
    record: &[u8],
    records: u64,
    budget: Duration,
) -> Result<Measurement, String> {
    let opts = WalOptions { fsync, ..WalOptions::default() };
    let (wal, _) = Wal::open(dir, opts).map_err(|e| e.to_string())?;
    let handle = Arc::new(WalHandle::spawn(wal));
    let per_appender = records.div_ceil(appenders);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..appenders {
        let handle = Arc::clone(&handle);
        let record = record.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut m = Measurement::new("part");
            let mut batch = RecordBatch::new();
            while m.ops < per_appender && start.elapsed() < budget {
                batch.clear();
                batch.push(1, &record);
                let t = Instant::now();
                handle.append(std::mem::take(&mut batch)).await.map_err(|e| e.to_string())?;
                m.record_latency(t.elapsed());
                m.ops += 1;
                m.bytes += record.len() as u64;
            }
            Ok::<Measurement, String>(m)
        }));
    }
    let mut total = Measurement::new("wal");
    for task in tasks {
        let part = task.await.map_err(|e| e.to_string())??;
        total.ops += part.ops;
        total.bytes += part.bytes;
        total.latency_us.add(&part.latency_us).map_err(|e| e.to_string())?;
    }
    total.elapsed = start.elapsed();
    let stats = handle.stats();
    total.note = format!("{:.1} records/fdatasync", stats.records as f64 / stats.fdatasyncs.max(1) as f64);
    Arc::into_inner(handle).expect("all appenders finished").close();
    Ok(total)
}

/// The log used directly by its owner: what a single-writer node does
/// when it needs each record durable before it goes on.
fn wal_always_direct(dir: &Path, record: &[u8], records: u64, budget: Duration) -> Result<Measurement, String> {
    let opts = WalOptions { fsync: FsyncPolicy::Always, ..WalOptions::default() };
    let (mut wal, _) = Wal::open(dir, opts).map_err(|e| e.to_string())?;
    let mut m = Measurement::new("always");
    let start = Instant::now();
    while m.ops < records && start.elapsed() < budget {
        let t = Instant::now();
        wal.append([RecordRef { kind: 1, payload: record }]).map_err(|e| e.to_string())?;
        m.record_latency(t.elapsed());
        m.ops += 1;
        m.bytes += record.len() as u64;
    }
    m.elapsed = start.elapsed();
    m.note = format!("{} fdatasyncs", wal.stats().fdatasyncs);
    Ok(m)
}

fn wal_never(
    dir: &Path,
    record: &[u8],
    per_append: usize,
    records: u64,
    budget: Duration,
) -> Result<Measurement, String> {
    let opts = WalOptions { fsync: FsyncPolicy::Never, ..WalOptions::default() };
    let (mut wal, _) = Wal::open(dir, opts).map_err(|e| e.to_string())?;
    let refs = vec![RecordRef { kind: 1, payload: record }; per_append];
    let mut m = Measurement::new("never");
    let start = Instant::now();
    while m.ops < records && start.elapsed() < budget {
        let t = Instant::now();
        wal.append(refs.iter().copied()).map_err(|e| e.to_string())?;
        m.record_latency(t.elapsed());
        m.ops += per_append as u64;
        m.bytes += (record.len() * per_append) as u64;
    }
    m.elapsed = start.elapsed();
    m.note = format!("latency per append call of {per_append}");
    Ok(m)
}

fn buffered_loop(dir: &Path, record: &[u8], records: u64, budget: Duration) -> Result<Measurement, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let file = OpenOptions::new().create(true).append(true).open(dir.join("buffered")).map_err(|e| e.to_string())?;
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, file);
    let mut m = Measurement::new("buffered");
    let start = Instant::now();
    while m.ops < records && start.elapsed() < budget {
        let t = Instant::now();
        out.write_all(record).map_err(|e| e.to_string())?;
        m.record_latency(t.elapsed());
        m.ops += 1;
        m.bytes += record.len() as u64;
    }
    out.flush().map_err(|e| e.to_string())?;
    m.elapsed = start.elapsed();
    Ok(m)
}
