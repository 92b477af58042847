//! `replab bench net`: one loopback link, our transport against plain TCP.
//!
//! For 64 B, 1 KiB and 64 KiB payloads it measures one-way streaming
//! (messages/s, MB/s) and ping-pong round trips (p50, p99), first through
//! replab's transport (handshake, envelope, link queue, write coalescing,
//! inbox channel), then through a plain tokio TCP client and server that
//! move the same length-prefixed payloads: the ceiling.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};

use super::{Measurement, median, print_table};
use crate::net::{Credentials, FaultTable, Incoming, Kind, NetConfig, Network, NetworkSetup, Role};

#[derive(Clone, Debug)]
pub struct NetBenchArgs {
    /// Payload sizes to measure.
    pub sizes: Vec<usize>,
    pub seconds: f64,
    pub round_trips: u64,
    pub repeats: usize,
}

impl Default for NetBenchArgs {
    fn default() -> NetBenchArgs {
        NetBenchArgs { sizes: SIZES.to_vec(), seconds: 2.0, round_trips: 5_000, repeats: 3 }
    }
}

const SIZES: [usize; 3] = [64, 1024, 64 * 1024];

/// Enough messages for about a second at plain-TCP speed; the time
/// budget bounds the slow cases.
fn stream_count(size: usize) -> u64 {
    (1_000_000_000 / (size as u64 + 200)).clamp(10_000, 2_000_000)
}

pub fn run(args: &NetBenchArgs) -> Result<Vec<Measurement>, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(run_all(args))
}

async fn run_all(args: &NetBenchArgs) -> Result<Vec<Measurement>, String> {
    let budget = Duration::from_secs_f64(args.seconds);
    let mut rows = Vec::new();
    let mut ratios = Vec::new();
    for &size in &args.sizes {
        let count = stream_count(size);
        let (mut ours_s, mut plain_s, mut ours_r, mut plain_r) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        // Interleaved repeats: drift on a shared machine hits both alike.
        for _ in 0..args.repeats.max(1) {
            ours_s.push(replab_stream(size, count, budget).await?);
            plain_s.push(plain_stream(size, count, budget).await?);
            ours_r.push(replab_ping_pong(size, args.round_trips, budget).await?);
            plain_r.push(plain_ping_pong(size, args.round_trips, budget).await?);
        }
        let pick = |runs: Vec<Measurement>, name: String| {
            let med = median(runs.iter().map(Measurement::ops_per_sec).collect());
            let mut m = runs.into_iter().find(|m| m.ops_per_sec() == med).expect("median is a run");
            m.name = name;
            m
        };
        let p50 = |runs: &[Measurement]| median(runs.iter().map(|m| m.p50_us() as f64).collect());
        let (o50, p50_plain) = (p50(&ours_r), p50(&plain_r));
        let os = pick(ours_s, format!("replab stream {size} B"));
        let ps = pick(plain_s, format!("plain tcp stream {size} B"));
        ratios.push((size, os.ops_per_sec() / ps.ops_per_sec(), o50 / p50_plain.max(1.0)));
        rows.push(os);
        rows.push(ps);
        rows.push(pick(ours_r, format!("replab ping-pong {size} B")));
        rows.push(pick(plain_r, format!("plain tcp ping-pong {size} B")));
    }
    print_table(&format!("Net benchmark: one loopback link (median of {} runs)", args.repeats), &rows);
    println!("\nratios (targets in brackets):");
    for (size, throughput, rtt) in ratios {
        let (t_target, r_target) = if size == 1024 { ("  [>= 0.70]", "  [<= 1.30x]") } else { ("", "") };
        println!(
            "  {size:>6} B: replab/plain stream msgs/s {throughput:.2}{t_target}; ping-pong p50 {rtt:.2}x{r_target}"
        );
    }
    Ok(rows)
}

/// A payload whose clones cost nothing (no reference count), so the
/// benchmark measures the transport rather than the sender's copying: the
/// plain-TCP baseline writes one buffer over and over too. Leaked once per
/// case; a few KiB at most per run.
fn static_payload(size: usize, fill: u8) -> Bytes {
    Bytes::from_static(Box::leak(vec![fill; size].into_boxed_slice()))
}

fn creds(id: u64) -> Credentials {
    Credentials { cluster_id: "bench".into(), secret: "bench-secret".into(), node_id: id, role: Role::Peer }
}

struct Pair {
    a: Network,
    b: Network,
    a_inbox: Incoming,
    b_inbox: Incoming,
}

async fn pair() -> Result<Pair, String> {
    let la = TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let lb = TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let (aa, ab) = (la.local_addr().map_err(|e| e.to_string())?, lb.local_addr().map_err(|e| e.to_string())?);
    let faults = Arc::new(FaultTable::new(1));
    let config = NetConfig { outbound_queue_frames: 65_536, ..NetConfig::default() };
    let start = |id, listener, peer: u64, addr| {
        Network::start(NetworkSetup {
            creds: creds(id),
            config: config.clone(),
            listener,
            peers: BTreeMap::from([(peer, addr)]),
            faults: Arc::clone(&faults),
            seed: id,
        })
    };
    let (a, a_inbox) = start(1, la, 2, ab);
    let (b, b_inbox) = start(2, lb, 1, aa);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(a.stats()[&2].connected && b.stats()[&1].connected) {
        if Instant::now() > deadline {
            return Err("bench links did not connect within 10 s".into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(Pair { a, b, a_inbox, b_inbox })
}

async fn replab_stream(size: usize, count: u64, budget: Duration) -> Result<Measurement, String> {
    let Pair { a, b, a_inbox, mut b_inbox } = pair().await?;
    let payload = static_payload(size, 7);
    let start = Instant::now();
    let receiver = tokio::spawn(async move {
        let mut got = 0u64;
        while got < count {
            match tokio::time::timeout(Duration::from_secs(5), b_inbox.recv()).await {
                Ok(Some(batch)) => got += batch.len() as u64,
                _ => break,
            }
        }
        (got, Instant::now())
    });
    let mut sent = 0u64;
    // Pace on the local queue so the drop-oldest policy never fires.
    // Checking the clock and the queue every message would cost more than
    // sending it; every 256 messages is often enough. Waiting for room
    // keeps the drop-oldest policy from acting, as TCP backpressure does
    // for the plain sender.
    while sent < count && (!sent.is_multiple_of(256) || start.elapsed() < budget) {
        if sent.is_multiple_of(256) {
            a.wait_for_room(2, 8_192).await.map_err(|e| e.to_string())?;
        }
        a.send(2, Kind::Peer, payload.clone()).map_err(|e| e.to_string())?;
        sent += 1;
    }
    drop(a_inbox);
    let stop_early = sent < count;
    let (got, end) = if stop_early {
        // Count what arrives of what was sent.
        tokio::time::sleep(Duration::from_millis(200)).await;
        receiver.abort();
        let stats = b.stats()[&1];
        (stats.frames_in, Instant::now() - Duration::from_millis(200))
    } else {
        receiver.await.map_err(|e| e.to_string())?
    };
    let mut m = Measurement::new("replab stream");
    m.ops = got;
    m.bytes = got * size as u64;
    m.elapsed = end - start;
    m.note = format!("{} dropped", a.stats()[&2].dropped_queue);
    a.shutdown().await;
    b.shutdown().await;
    Ok(m)
}

async fn replab_ping_pong(size: usize, round_trips: u64, budget: Duration) -> Result<Measurement, String> {
    let Pair { a, b, mut a_inbox, mut b_inbox } = pair().await?;
    let b = Arc::new(b);
    let echo_net = Arc::clone(&b);
    let echo = tokio::spawn(async move {
        while let Some(batch) = b_inbox.recv().await {
            for m in batch {
                let _ = echo_net.send(1, Kind::Peer, m.payload);
            }
        }
    });
    let payload = static_payload(size, 9);
    let mut m = Measurement::new("replab ping-pong");
    let start = Instant::now();
    while m.ops < round_trips && start.elapsed() < budget {
        let t = Instant::now();
        a.send(2, Kind::Peer, payload.clone()).map_err(|e| e.to_string())?;
        match tokio::time::timeout(Duration::from_secs(5), a_inbox.recv()).await {
            Ok(Some(_)) => {}
            _ => return Err("ping-pong reply lost".into()),
        }
        m.record_latency(t.elapsed());
        m.ops += 1;
        m.bytes += 2 * size as u64;
    }
    m.elapsed = start.elapsed();
    echo.abort();
    a.shutdown().await;
    if let Ok(b) = Arc::try_unwrap(b) {
        b.shutdown().await;
    }
    Ok(m)
}

async fn plain_stream(size: usize, count: u64, budget: Duration) -> Result<Measurement, String> {
    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let receiver = tokio::spawn(async move {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let mut reader = BufReader::with_capacity(256 * 1024, stream);
        let mut buf = vec![0u8; 64 * 1024 + 64];
        let mut got = 0u64;
        while let Ok(len) = reader.read_u32().await {
            reader.read_exact(&mut buf[..len as usize]).await?;
            got += 1;
        }
        Ok::<(u64, Instant), std::io::Error>((got, Instant::now()))
    });
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut writer = BufWriter::with_capacity(256 * 1024, stream);
    let payload = vec![7u8; size];
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < count && (!sent.is_multiple_of(256) || start.elapsed() < budget) {
        writer.write_u32(size as u32).await.map_err(|e| e.to_string())?;
        writer.write_all(&payload).await.map_err(|e| e.to_string())?;
        sent += 1;
    }
    writer.flush().await.map_err(|e| e.to_string())?;
    writer.into_inner().shutdown().await.map_err(|e| e.to_string())?;
    let (got, end) = receiver.await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
    let mut m = Measurement::new("plain stream");
    m.ops = got;
    m.bytes = got * size as u64;
    m.elapsed = end - start;
    Ok(m)
}

async fn plain_ping_pong(size: usize, round_trips: u64, budget: Duration) -> Result<Measurement, String> {
    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let echo = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let mut buf = vec![0u8; 4 + 64 * 1024];
        loop {
            let len = match stream.read_u32().await {
                Ok(len) => len as usize,
                Err(_) => return Ok::<(), std::io::Error>(()),
            };
            buf[..4].copy_from_slice(&(len as u32).to_be_bytes());
            stream.read_exact(&mut buf[4..4 + len]).await?;
            stream.write_all(&buf[..4 + len]).await?;
        }
    });
    let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut frame = (size as u32).to_be_bytes().to_vec();
    frame.extend(vec![9u8; size]);
    let mut back = vec![0u8; size];
    let mut m = Measurement::new("plain ping-pong");
    let start = Instant::now();
    while m.ops < round_trips && start.elapsed() < budget {
        let t = Instant::now();
        stream.write_all(&frame).await.map_err(|e| e.to_string())?;
        let len = stream.read_u32().await.map_err(|e| e.to_string())? as usize;
        stream.read_exact(&mut back[..len]).await.map_err(|e| e.to_string())?;
        m.record_latency(t.elapsed());
        m.ops += 1;
        m.bytes += 2 * size as u64;
    }
    m.elapsed = start.elapsed();
    drop(stream);
    let _ = echo.await;
    Ok(m)
}
