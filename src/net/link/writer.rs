//! The link's writer task: connects, authenticates, writes what the
//! senders queued, and reconnects with backoff when the connection breaks.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::codec::{Framed, LengthDelimitedCodec};
use tracing::{debug, info, warn};

use super::{Delayed, LinkSetup, Shared, drop_unsendable};
use crate::net::NetError;
use crate::net::backoff::Backoff;
use crate::net::envelope::{FrameError, LinkEncoder};
use crate::net::handshake::{self, Side};
use crate::net::stats::LinkCounters;

pub(super) struct Writer {
    pub(super) setup: LinkSetup,
    pub(super) shared: Arc<Shared>,
    pub(super) delayed: BinaryHeap<Reverse<Delayed>>,
}

/// What the writer found when it looked for work.
enum Claim {
    /// Frames to write (count).
    Work(u64),
    Idle,
    Broken,
}

impl Writer {
    pub(super) async fn run(mut self) {
        let cfg = self.setup.config.clone();
        let mut backoff = Backoff::new(cfg.reconnect_backoff_min_ms, cfg.reconnect_backoff_max_ms, self.setup.seed);
        let cancel = self.setup.cancel.clone();
        loop {
            let connected = tokio::select! {
                _ = cancel.cancelled() => return,
                result = self.connect() => result,
            };
            let stream = match connected {
                Ok(stream) => Arc::new(stream),
                Err(e) => {
                    debug!(peer = self.setup.peer, addr = %self.setup.addr, "link not connected: {e}");
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(backoff.next_delay()) => continue,
                    }
                }
            };
            backoff.reset();
            LinkCounters::add(&self.setup.counters.connects, 1);
            self.setup.counters.connected.store(true, std::sync::atomic::Ordering::Relaxed);
            {
                let mut state = self.shared.state.lock().expect("link state lock");
                state.stream = Some(Arc::clone(&stream));
                state.writer_busy = false;
                state.last_direct = None;
                state.broken = false;
            }
            let result = self.write_loop(&stream).await;
            self.setup.counters.connected.store(false, std::sync::atomic::Ordering::Relaxed);
            {
                // Half a frame must never start the next connection's stream.
                let mut state = self.shared.state.lock().expect("link state lock");
                state.stream = None;
                state.writer_busy = false;
                state.broken = false;
                if !state.unfinished.is_empty() {
                    state.unfinished.clear();
                    LinkCounters::add(&self.setup.counters.dropped_disconnect, 1);
                }
            }
            match result {
                Ok(()) => return, // cancelled
                Err(e) => {
                    // Normal when a peer crashes or restarts; the reason is
                    // kept in the connection log either way.
                    info!(peer = self.setup.peer, "link to node {} broke: {e}", self.setup.peer);
                    self.setup.log.record(format!("link to node {}: {e}", self.setup.peer));
                }
            }
        }
    }

    /// Dials and authenticates; the stream is then ours to write envelope
    /// frames into.
    async fn connect(&self) -> Result<TcpStream, NetError> {
        let cfg = &self.setup.config;
        let timeout = Duration::from_millis(cfg.connect_timeout_ms);
        let stream = tokio::time::timeout(timeout, TcpStream::connect(self.setup.addr))
            .await
            .map_err(|_| NetError::Timeout(format!("connect to {}", self.setup.addr)))??;
        stream.set_nodelay(true)?;
        let mut framed = Framed::new(stream, LengthDelimitedCodec::new());
        let expected = self.setup.peer;
        let admit = move |p: &handshake::Peer| {
            if p.node_id == expected {
                Ok(())
            } else {
                Err(format!("dialed node {expected}, reached node {}", p.node_id))
            }
        };
        let hs_timeout = Duration::from_millis(cfg.handshake_timeout_ms);
        handshake::run(&mut framed, &self.setup.creds, Side::Dialer, &admit, hs_timeout).await.map_err(|e| {
            warn!(peer = expected, "handshake with {} failed: {e}", self.setup.addr);
            self.setup.log.record(format!("link to node {expected}: handshake failed: {e}"));
            NetError::Handshake(e)
        })?;
        // The handshake flushed its last frame and the peer sends nothing
        // on this connection, so no buffered bytes are left behind.
        Ok(framed.into_inner())
    }

    /// Writes what the senders queued until the connection breaks (Err) or
    /// the link is cancelled (Ok).
    ///
    /// Write coalescing: every frame queued since the last round goes to
    /// the kernel in one write, so under load many frames share a syscall.
    async fn write_loop(&mut self, stream: &TcpStream) -> Result<(), FrameError> {
        let cancel = self.setup.cancel.clone();
        let encoder = LinkEncoder::new(self.setup.creds.node_id, self.setup.peer, self.setup.config.max_frame_bytes);
        let mut head = BytesMut::new();
        let mut buf = BytesMut::with_capacity(64 * 1024);
        loop {
            let frames = match self.claim(&mut head, &mut buf, &encoder) {
                Claim::Work(frames) => frames,
                Claim::Broken => return Err(FrameError::Io(std::io::ErrorKind::BrokenPipe.into())),
                Claim::Idle => {
                    let next_due = self.delayed.peek().map(|Reverse(d)| d.due);
                    tokio::select! {
                        _ = cancel.cancelled() => return Ok(()),
                        _ = self.shared.notify.notified() => {}
                        _ = sleep_until_opt(next_due) => {}
                        // The peer never writes on this connection, so
                        // readable means closed: reconnect now rather than
                        // on the next failed write.
                        _ = peer_closed(stream) => return Err(FrameError::Io(std::io::ErrorKind::ConnectionReset.into())),
                    }
                    continue;
                }
            };
            for chunk in [&head, &buf] {
                // A peer that stops reading must not keep shutdown waiting.
                let written = tokio::select! {
                    _ = cancel.cancelled() => return Ok(()),
                    written = write_all(stream, chunk) => written,
                };
                if let Err(e) = written {
                    LinkCounters::add(&self.setup.counters.dropped_disconnect, frames);
                    return Err(e);
                }
            }
            LinkCounters::add(&self.setup.counters.frames_out, frames);
            LinkCounters::add(&self.setup.counters.bytes_out, buf.len() as u64);
            head.clear();
            buf.clear();
        }
    }

    /// Takes the work that is due: the tail of a direct write into `head`,
    /// queued frames and due delayed ones into `buf` (swapped with the
    /// shared buffer, so its capacity is reused). Marks the writer busy
    /// while it has work; idle, it uncorks, allowing direct writes again.
    fn claim(&mut self, head: &mut BytesMut, buf: &mut BytesMut, encoder: &LinkEncoder) -> Claim {
        let now = Instant::now();
        let mut state = self.shared.state.lock().expect("link state lock");
        if state.broken {
            return Claim::Broken;
        }
        std::mem::swap(head, &mut state.unfinished);
        std::mem::swap(buf, &mut state.pending);
        let mut frames = state.pending_frames.len() as u64;
        state.pending_frames.clear();
        for delayed in state.delayed.drain(..) {
            self.delayed.push(Reverse(delayed));
        }
        // The held-back frames obey the queue bound too, dropping the one
        // due first (with a fixed delay, the oldest).
        while self.delayed.len() > self.setup.config.outbound_queue_frames {
            self.delayed.pop();
            LinkCounters::add(&self.setup.counters.dropped_queue, 1);
        }
        while self.delayed.peek().is_some_and(|Reverse(d)| d.due <= now) {
            let Reverse(d) = self.delayed.pop().expect("peeked");
            match encoder.encode(d.message.kind, &d.message.payload, buf) {
                Ok(()) => frames += 1,
                Err(e) => drop_unsendable(&self.setup.counters, &e),
            }
        }
        state.writer_busy = frames > 0 || !head.is_empty();
        if state.writer_busy {
            drop(state);
            self.shared.drained.notify_waiters();
            Claim::Work(frames)
        } else {
            Claim::Idle
        }
    }
}

/// Resolves when the peer closed the connection. The peer never writes
/// on a link's connection after the handshake, so any readiness to read
/// is EOF or an error; stray bytes are discarded.
async fn peer_closed(stream: &TcpStream) {
    let mut scratch = [0u8; 64];
    loop {
        if stream.readable().await.is_err() {
            return;
        }
        match stream.try_read(&mut scratch) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return,
        }
    }
}

/// `write_all` through a shared reference, so direct writers can use the
/// same socket between the writer's turns.
async fn write_all(stream: &TcpStream, mut buf: &[u8]) -> Result<(), FrameError> {
    while !buf.is_empty() {
        stream.writable().await?;
        match stream.try_write(buf) {
            Ok(0) => return Err(FrameError::Io(std::io::ErrorKind::WriteZero.into())),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

async fn sleep_until_opt(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}
