//! `replab bench net`: one loopback link, our transport against plain TCP.
//!
//! For 64 B, 1 KiB and 64 KiB payloads it measures one-way streaming
//! (messages/s, MB/s) and ping-pong round trips (p50, p99), first through
//! replab's transport (handshake, envelope, link queue, write coalescing,
//! checks on every received envelope), then through a plain tokio TCP
//! client and server that move the same length-prefixed payloads: the
//! ceiling.
//!
//! Each end of the link runs on its own thread with its own current-thread
//! runtime, as two nodes in two processes would. Both ends sharing one
//! multi-threaded runtime would measure the scheduler's placement instead:
//! two tasks that tokio happens to put on the same worker talk with no
//! thread wake-up at all (loopback delivers inside the sender's write), two
//! on different workers pay one per message, and which one a run gets
//! changes from run to run.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

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

/// The most either end waits for the other beyond the time budget: a
/// bound, never reached when the transport works.
const STALL_LIMIT: Duration = Duration::from_secs(20);

/// Enough messages for about a second at plain-TCP speed; the time
/// budget bounds the slow cases.
fn stream_count(size: usize) -> u64 {
    (1_000_000_000 / (size as u64 + 200)).clamp(10_000, 2_000_000)
}

pub fn run(args: &NetBenchArgs) -> Result<Vec<Measurement>, String> {
    let budget = Duration::from_secs_f64(args.seconds);
    let mut rows = Vec::new();
    let mut ratios = Vec::new();
    let repeats = args.repeats.max(1);
    let progress = crate::progress::Progress::new("bench net", (repeats * args.sizes.len()) as u64);
    for &size in &args.sizes {
        let count = stream_count(size);
        let (mut ours_s, mut plain_s, mut ours_r, mut plain_r) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        // Interleaved repeats: drift on a shared machine hits both alike.
        for repeat in 0..repeats {
            progress.start_step(&format!("{size} B, run {}/{repeats}", repeat + 1));
            let measured = (|| -> Result<(), String> {
                ours_s.push(replab_stream(size, count, budget)?);
                plain_s.push(plain_stream(size, count, budget)?);
                ours_r.push(replab_ping_pong(size, args.round_trips, budget)?);
                plain_r.push(plain_ping_pong(size, args.round_trips, budget)?);
                Ok(())
            })();
            progress.finish_step();
            measured.inspect_err(|_| progress.finish())?;
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
    progress.finish();
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

/// Runs the two ends of a link, each on its own thread and current-thread
/// runtime, and returns what each returned.
fn two_nodes<A, B, FA, FB, RA, RB>(a: A, b: B) -> Result<(RA, RB), String>
where
    A: FnOnce() -> FA + Send,
    B: FnOnce() -> FB + Send,
    FA: Future<Output = Result<RA, String>>,
    FB: Future<Output = Result<RB, String>>,
    RA: Send,
    RB: Send,
{
    fn on_own_runtime<F: Future<Output = Result<R, String>>, R>(side: impl FnOnce() -> F) -> Result<R, String> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        runtime.block_on(side())
    }
    std::thread::scope(|s| {
        // Named, so a profile tells the two ends apart.
        let spawn = |name: &str| std::thread::Builder::new().name(name.to_string());
        let b = spawn("bench-node-b").spawn_scoped(s, || on_own_runtime(b)).map_err(|e| e.to_string())?;
        let a = spawn("bench-node-a").spawn_scoped(s, || on_own_runtime(a)).map_err(|e| e.to_string())?;
        let a = a.join().map_err(|_| "bench side a panicked".to_string());
        let b = b.join().map_err(|_| "bench side b panicked".to_string());
        Ok((a??, b??))
    })
}

/// A loopback listener bound before either side starts, so each knows the
/// other's address.
fn bind() -> Result<(std::net::TcpListener, SocketAddr), String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    Ok((listener, addr))
}

/// A payload whose clones cost nothing (no reference count), so the
/// benchmark measures the transport rather than the sender's copying: the
/// plain-TCP baseline writes one buffer over and over too. Leaked once per
/// case; a few KiB at most per run.
fn static_payload(size: usize, fill: u8) -> Bytes {
    Bytes::from_static(Box::leak(vec![fill; size].into_boxed_slice()))
}

/// An empty payload ends a run: the receiver stops at it.
const END: Bytes = Bytes::new();

/// Starts one node's network on the current runtime: node `me` with the
/// single peer `peer` at `peer_addr`.
fn start_node(
    me: u64,
    listener: std::net::TcpListener,
    peer: u64,
    peer_addr: SocketAddr,
) -> Result<(Network, Incoming), String> {
    let listener = TcpListener::from_std(listener).map_err(|e| e.to_string())?;
    let creds =
        Credentials { cluster_id: "bench".into(), secret: "bench-secret".into(), node_id: me, role: Role::Peer };
    Ok(Network::start(NetworkSetup {
        creds,
        config: NetConfig { outbound_queue_frames: 65_536, ..NetConfig::default() },
        listener,
        peers: BTreeMap::from([(peer, peer_addr)]),
        faults: Arc::new(FaultTable::new(1)),
        seed: me,
    }))
}

async fn connected(net: &Network, peer: u64) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !net.stats()[&peer].connected {
        if Instant::now() > deadline {
            return Err(format!("bench link {} -> {peer} did not connect within 10 s", net.id()));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

fn replab_stream(size: usize, count: u64, budget: Duration) -> Result<Measurement, String> {
    let ((la, addr_a), (lb, addr_b)) = (bind()?, bind()?);
    let (received_tx, received) = oneshot::channel::<()>();
    let sender = || async move {
        let (a, _inbox) = start_node(1, la, 2, addr_b)?;
        connected(&a, 2).await?;
        let payload = static_payload(size, 7);
        // At most about as many queued bytes as the plain sender's
        // BufWriter holds, so the queue stays in cache as its buffer does.
        let room_frames = (NetConfig::default().write_buffer_bytes / (size + 16)).max(16);
        let start = Instant::now();
        let mut sent = 0u64;
        // Checking the clock and the queue every message would cost more
        // than sending it; every 256 messages is often enough. Waiting for
        // room keeps the drop-oldest policy from acting, as TCP
        // backpressure does for the plain sender. Messages are deferred and
        // flushed in bulk, as the node's event loop does at the end of
        // each turn.
        let mut outbox = a.outbox();
        while sent < count && (!sent.is_multiple_of(256) || start.elapsed() < budget) {
            if sent.is_multiple_of(256) {
                a.flush(&mut outbox);
                a.wait_for_room(2, room_frames).await.map_err(|e| e.to_string())?;
            }
            a.stage(&mut outbox, 2, Kind::Peer, payload.clone()).map_err(|e| e.to_string())?;
            sent += 1;
        }
        a.stage(&mut outbox, 2, Kind::Peer, END).map_err(|e| e.to_string())?;
        a.flush(&mut outbox);
        // Queued bytes die with the network: wait until they arrived.
        let _ = tokio::time::timeout(STALL_LIMIT, received).await;
        let dropped = a.stats()[&2].dropped_queue;
        a.shutdown().await;
        Ok((start, sent, dropped))
    };
    let receiver = || async move {
        let (b, mut inbox) = start_node(2, lb, 1, addr_a)?;
        let receive = async {
            let mut got = 0u64;
            while let Some(batch) = inbox.recv().await {
                for message in batch {
                    if message.payload.is_empty() {
                        return got;
                    }
                    got += 1;
                }
            }
            got
        };
        let got = tokio::time::timeout(budget + STALL_LIMIT, receive).await;
        let end = Instant::now();
        let _ = received_tx.send(());
        b.shutdown().await;
        got.map(|got| (got, end)).map_err(|_| "stream receiver stalled".to_string())
    };
    let ((start, sent, dropped), (got, end)) = two_nodes(sender, receiver)?;
    let mut m = Measurement::new("replab stream");
    m.ops = got;
    m.bytes = got * size as u64;
    m.elapsed = end - start;
    m.note = format!("{dropped} dropped, {} lost", sent - got.min(sent));
    Ok(m)
}

fn replab_ping_pong(size: usize, round_trips: u64, budget: Duration) -> Result<Measurement, String> {
    let ((la, addr_a), (lb, addr_b)) = (bind()?, bind()?);
    let pinger = || async move {
        let (a, mut inbox) = start_node(1, la, 2, addr_b)?;
        connected(&a, 2).await?;
        let payload = static_payload(size, 9);
        let mut m = Measurement::new("replab ping-pong");
        let start = Instant::now();
        while m.ops < round_trips && start.elapsed() < budget {
            let t = Instant::now();
            a.send(2, Kind::Peer, payload.clone()).map_err(|e| e.to_string())?;
            match tokio::time::timeout(STALL_LIMIT, inbox.recv()).await {
                Ok(Some(_)) => {}
                _ => return Err("ping-pong reply lost".into()),
            }
            m.record_latency(t.elapsed());
            m.ops += 1;
            m.bytes += 2 * size as u64;
        }
        m.elapsed = start.elapsed();
        a.send(2, Kind::Peer, END).map_err(|e| e.to_string())?;
        // The echo's answer to END says it stopped.
        let _ = tokio::time::timeout(STALL_LIMIT, inbox.recv()).await;
        a.shutdown().await;
        Ok(m)
    };
    let echo = || async move {
        let (b, mut inbox) = start_node(2, lb, 1, addr_a)?;
        let echo = async {
            while let Some(batch) = inbox.recv().await {
                for message in batch {
                    let end = message.payload.is_empty();
                    let _ = b.send(1, Kind::Peer, message.payload);
                    if end {
                        return;
                    }
                }
            }
        };
        let stalled = tokio::time::timeout(budget + STALL_LIMIT, echo).await.is_err();
        b.shutdown().await;
        if stalled { Err("ping-pong echo stalled".to_string()) } else { Ok(()) }
    };
    let (m, ()) = two_nodes(pinger, echo)?;
    Ok(m)
}

fn plain_stream(size: usize, count: u64, budget: Duration) -> Result<Measurement, String> {
    let (listener, addr) = bind()?;
    let sender = || async move {
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
        Ok(start)
    };
    let receiver = || async move {
        let listener = TcpListener::from_std(listener).map_err(|e| e.to_string())?;
        let receive = async {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let mut reader = BufReader::with_capacity(256 * 1024, stream);
            let mut buf = vec![0u8; 64 * 1024 + 64];
            let mut got = 0u64;
            while let Ok(len) = reader.read_u32().await {
                reader.read_exact(&mut buf[..len as usize]).await?;
                got += 1;
            }
            Ok::<u64, std::io::Error>(got)
        };
        let got = tokio::time::timeout(budget + STALL_LIMIT, receive).await;
        let end = Instant::now();
        let got = got.map_err(|_| "plain stream receiver stalled".to_string())?.map_err(|e| e.to_string())?;
        Ok((got, end))
    };
    let (start, (got, end)) = two_nodes(sender, receiver)?;
    let mut m = Measurement::new("plain stream");
    m.ops = got;
    m.bytes = got * size as u64;
    m.elapsed = end - start;
    Ok(m)
}

fn plain_ping_pong(size: usize, round_trips: u64, budget: Duration) -> Result<Measurement, String> {
    let (listener, addr) = bind()?;
    let pinger = || async move {
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
        Ok(m)
    };
    let echo = || async move {
        let listener = TcpListener::from_std(listener).map_err(|e| e.to_string())?;
        let echo = async {
            let (mut stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let mut buf = vec![0u8; 4 + 64 * 1024];
            // Until the pinger closes its end.
            while let Ok(len) = stream.read_u32().await {
                let len = len as usize;
                buf[..4].copy_from_slice(&(len as u32).to_be_bytes());
                stream.read_exact(&mut buf[4..4 + len]).await?;
                stream.write_all(&buf[..4 + len]).await?;
            }
            Ok::<(), std::io::Error>(())
        };
        match tokio::time::timeout(budget + STALL_LIMIT, echo).await {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(_) => Err("plain ping-pong echo stalled".to_string()),
        }
    };
    let (m, ()) = two_nodes(pinger, echo)?;
    Ok(m)
}
