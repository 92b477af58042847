//! One outbound link per peer: a bounded queue, a writer task that
//! coalesces frames, and reconnection with backoff.
//!
//! A link carries messages one way, from this node to the peer. The peer's
//! messages to us arrive on the connection *it* dialed. Two one-way
//! connections per pair avoid deciding which of two simultaneous dials
//! wins, and a one-way cut is then simply a link that sends nothing.
//!
//! Queue policy: **drop the oldest** when full. The node's event loop must
//! never block on one slow or dead peer (that would stall the whole node,
//! heartbeats to healthy peers included), and replication protocols resend
//! what matters: a fresh heartbeat or append supersedes a stale one. Drops
//! are counted.

use std::collections::{BinaryHeap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::codec::{Framed, FramedParts, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use replab_api::NodeId;

mod outbox;
mod writer;

pub use outbox::Staging;

use super::NetConfig;
use super::envelope::{Envelope, EnvelopeCodec, FrameError, Kind, LinkEncoder};
use super::fault::{FaultTable, Verdict};
use super::handshake::Credentials;
use super::stats::{ConnectionLog, LinkCounters};
use writer::Writer;

/// Sends closer together than this after a direct write form a burst and
/// queue for the writer. Far below a loopback round trip (about 20 µs), so
/// request/response traffic always writes directly; far above the gap
/// between frames of one burst (well under 1 µs).
const BURST_SPACING: Duration = Duration::from_micros(5);

/// What a direct write did.
enum Direct {
    /// The frame is in the socket.
    Written,
    /// The writer must finish a partial frame or notice a broken socket.
    Handoff,
    /// The link is busy or just wrote: queue the frame.
    NotIdle,
}

/// A message on its way: the link adds sender, receiver and version.
#[derive(Clone)]
struct Outgoing {
    kind: Kind,
    payload: Bytes,
}

/// A message the fault layer delayed, ordered by due time then send order.
struct Delayed {
    due: Instant,
    seq: u64,
    message: Outgoing,
}

impl PartialEq for Delayed {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Delayed {}
impl PartialOrd for Delayed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Delayed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

/// State shared by the node's sends and the link's writer task.
///
/// Sends encode their frame straight into `pending` (the memcpy happens on
/// the sender's thread, as with a `BufWriter`), and the writer swaps the
/// whole buffer out in O(1) and writes it: no per-message allocation and no
/// per-message hand-off between threads.
struct LinkState {
    /// Encoded frames waiting for the writer, in send order.
    pending: BytesMut,
    /// Sizes of the frames in `pending`, oldest first: the queue's length,
    /// and where to cut when the oldest must go.
    pending_frames: VecDeque<u32>,
    /// Frames the fault layer delayed; the writer moves them to its heap.
    delayed: Vec<Delayed>,
    next_seq: u64,
    /// The live connection, once the handshake is done.
    stream: Option<Arc<TcpStream>>,
    /// The writer claimed work and is writing it: sends must queue behind
    /// it to keep frames in order.
    writer_busy: bool,
    /// The tail of a direct write the socket did not take at once. Never
    /// dropped: half a frame would corrupt the stream.
    unfinished: BytesMut,
    /// When the last direct write happened: a send right after it is part
    /// of a burst and queues, so the burst is coalesced into few writes
    /// instead of one syscall per frame.
    last_direct: Option<Instant>,
    /// A direct write found the connection broken.
    broken: bool,
}

struct Shared {
    state: Mutex<LinkState>,
    /// Wakes the writer: there is work.
    notify: Notify,
    /// Wakes bulk senders: the writer took the queue.
    drained: Notify,
    counters: Arc<LinkCounters>,
}

/// The sending half a node holds for one peer.
pub struct PeerLink {
    me: NodeId,
    peer: NodeId,
    shared: Arc<Shared>,
    faults: Arc<FaultTable>,
    capacity: usize,
    /// Queued bytes above which a sender writes them itself
    /// (`net.write_buffer_bytes`; see `flush_from_sender`).
    flush_bytes: usize,
    encoder: LinkEncoder,
}

pub struct LinkSetup {
    pub creds: Credentials,
    pub peer: NodeId,
    pub addr: SocketAddr,
    pub config: NetConfig,
    pub faults: Arc<FaultTable>,
    pub counters: Arc<LinkCounters>,
    pub log: Arc<ConnectionLog>,
    pub cancel: CancellationToken,
    pub seed: u64,
}

impl PeerLink {
    pub fn spawn(setup: LinkSetup, tracker: &tokio_util::task::TaskTracker) -> PeerLink {
        let state = LinkState {
            pending: BytesMut::with_capacity(64 * 1024),
            pending_frames: VecDeque::with_capacity(setup.config.outbound_queue_frames.min(4096)),
            delayed: Vec::new(),
            next_seq: 0,
            stream: None,
            writer_busy: false,
            unfinished: BytesMut::new(),
            last_direct: None,
            broken: false,
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            notify: Notify::new(),
            drained: Notify::new(),
            counters: Arc::clone(&setup.counters),
        });
        let link = PeerLink {
            me: setup.creds.node_id,
            peer: setup.peer,
            shared: Arc::clone(&shared),
            faults: Arc::clone(&setup.faults),
            capacity: setup.config.outbound_queue_frames,
            flush_bytes: setup.config.write_buffer_bytes,
            encoder: LinkEncoder::new(setup.creds.node_id, setup.peer, setup.config.max_frame_bytes),
        };
        let writer = Writer { setup, shared, delayed: BinaryHeap::new() };
        tracker.spawn(writer.run());
        link
    }

    /// Frames waiting for the writer.
    pub fn queued(&self) -> usize {
        let state = self.shared.state.lock().expect("link state lock");
        state.pending_frames.len() + state.delayed.len()
    }

    /// Waits until fewer than `frames` are queued. For bulk senders that
    /// would rather wait than have the drop-oldest policy act.
    pub async fn wait_for_room(&self, frames: usize) {
        loop {
            let drained = self.shared.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if self.queued() < frames {
                return;
            }
            drained.await;
        }
    }

    /// Sends an envelope to the peer, after the fault layer had its say.
    /// Never blocks.
    ///
    /// Fast path: when the link is connected and idle (nothing queued, the
    /// writer not writing), the frame goes straight into the socket from
    /// the caller's thread with a non-blocking write, saving the wake-up of
    /// the writer task, which is most of a small message's latency.
    /// Otherwise the frame is queued behind the frames before it.
    pub fn send(&self, kind: Kind, payload: Bytes) {
        self.submit(Outgoing { kind, payload });
    }

    /// The fault layer's verdict on the next message, counted.
    fn verdict(&self) -> Verdict {
        let counters = &self.shared.counters;
        let verdict = self.faults.decide(self.me, self.peer);
        if verdict.dropped {
            LinkCounters::add(&counters.dropped_fault, 1);
        }
        if verdict.duplicated {
            LinkCounters::add(&counters.duplicated, 1);
        }
        if verdict.reordered {
            LinkCounters::add(&counters.reordered, 1);
        }
        verdict
    }

    fn submit(&self, message: Outgoing) {
        let verdict = self.verdict();
        if verdict.dropped {
            return;
        }
        let mut state = self.shared.state.lock().expect("link state lock");
        match verdict.copies {
            [Some(Duration::ZERO), None] => {
                match self.try_direct_write(&mut state, &message) {
                    Direct::Written => return,
                    Direct::Handoff => {
                        drop(state);
                        self.shared.notify.notify_one();
                        return;
                    }
                    Direct::NotIdle => {}
                }
                let was_empty = state.pending_frames.is_empty();
                self.enqueue(&mut state, message);
                if state.pending.len() >= self.flush_bytes && self.flush_from_sender(&mut state) {
                    // The socket is full: the writer waits for room, and
                    // later sends queue behind it instead of retrying.
                    drop(state);
                    self.shared.notify.notify_one();
                    return;
                }
                // The writer takes the whole buffer when it runs, so it
                // needs waking only for the first frame after it emptied
                // it: a burst costs one wake-up, not one per frame.
                if !was_empty {
                    return;
                }
            }
            [Some(first), second] => {
                if let Some(second) = second {
                    self.enqueue_after(&mut state, message.clone(), second);
                }
                self.enqueue_after(&mut state, message, first);
            }
            [None, Some(only)] => self.enqueue_after(&mut state, message, only),
            [None, None] => {}
        }
        drop(state);
        self.shared.notify.notify_one();
    }

    /// Under sustained load, the sender writes the queued bytes itself when
    /// the writer task is not writing, as a `BufWriter` would flush: the
    /// bytes leave without waiting for the writer task to be scheduled,
    /// which on a busy machine is the bottleneck. Whatever the socket does
    /// not take stays queued for the writer.
    ///
    /// Returns true when bytes are left that the writer should take over:
    /// the socket was full or broken.
    fn flush_from_sender(&self, state: &mut LinkState) -> bool {
        let writable = !state.writer_busy && !state.broken && state.unfinished.is_empty();
        let Some(stream) = state.stream.as_ref().filter(|_| writable).map(Arc::clone) else { return false };
        let written = match stream.try_write(&state.pending) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(_) => {
                // Let the writer find the broken connection and reconnect.
                state.broken = true;
                return true;
            }
        };
        let counters = &self.shared.counters;
        LinkCounters::add(&counters.bytes_out, written as u64);
        state.pending.advance(written);
        let mut left = written;
        let mut frames = 0u64;
        while let Some(&size) = state.pending_frames.front() {
            let size = size as usize;
            if left >= size {
                left -= size;
                state.pending_frames.pop_front();
                frames += 1;
                continue;
            }
            if left > 0 {
                // The socket took part of this frame: its tail can no longer
                // be dropped, so it moves to the writer's unfinished bytes.
                state.pending_frames.pop_front();
                let tail = state.pending.split_to(size - left);
                LinkCounters::add(&counters.bytes_out, tail.len() as u64);
                state.unfinished.extend_from_slice(&tail);
                frames += 1;
            }
            break;
        }
        LinkCounters::add(&counters.frames_out, frames);
        !state.pending.is_empty() || !state.unfinished.is_empty()
    }

    /// Writes the frame into the socket if the link is idle and the last
    /// direct write is not too recent.
    fn try_direct_write(&self, state: &mut LinkState, message: &Outgoing) -> Direct {
        let idle = state.pending_frames.is_empty()
            && state.unfinished.is_empty()
            && !state.writer_busy
            && !state.broken
            // Checked last: reading the clock costs more than the rest.
            && state.last_direct.is_none_or(|at| at.elapsed() >= BURST_SPACING);
        let Some(stream) = state.stream.as_ref().filter(|_| idle).map(Arc::clone) else {
            return Direct::NotIdle;
        };
        let counters = &self.shared.counters;
        let LinkState { pending, unfinished, .. } = state;
        debug_assert!(pending.is_empty(), "no frames queued means no bytes pending");
        if let Err(e) = self.encoder.encode(message.kind, &message.payload, pending) {
            drop_unsendable(counters, &e);
            return Direct::Written;
        }
        let written = match stream.try_write(pending) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
            // The frame is lost with the connection, as queued ones would
            // be; the writer notices and reconnects.
            Err(_) => {
                pending.clear();
                LinkCounters::add(&counters.dropped_disconnect, 1);
                state.stream = None;
                state.broken = true;
                return Direct::Handoff;
            }
        };
        LinkCounters::add(&counters.frames_out, 1);
        LinkCounters::add(&counters.bytes_out, pending.len() as u64);
        pending.advance(written);
        let whole = pending.is_empty();
        unfinished.extend_from_slice(pending);
        pending.clear();
        state.last_direct = Some(Instant::now());
        // A partial write leaves its tail for the writer to finish.
        if whole { Direct::Written } else { Direct::Handoff }
    }

    fn enqueue(&self, state: &mut LinkState, message: Outgoing) {
        if state.pending_frames.len() >= self.capacity {
            // Drop the oldest frame: its bytes are at the front.
            let oldest = state.pending_frames.pop_front().expect("queue is full, so not empty");
            state.pending.advance(oldest as usize);
            LinkCounters::add(&self.shared.counters.dropped_queue, 1);
        }
        let before = state.pending.len();
        match self.encoder.encode(message.kind, &message.payload, &mut state.pending) {
            Ok(()) => state.pending_frames.push_back((state.pending.len() - before) as u32),
            Err(e) => drop_unsendable(&self.shared.counters, &e),
        }
    }

    fn enqueue_after(&self, state: &mut LinkState, message: Outgoing, delay: Duration) {
        if delay.is_zero() {
            return self.enqueue(state, message);
        }
        if state.delayed.len() >= self.capacity {
            state.delayed.remove(0); // the oldest; rare, so O(n) is fine
            LinkCounters::add(&self.shared.counters.dropped_queue, 1);
        }
        state.next_seq += 1;
        let seq = state.next_seq;
        state.delayed.push(Delayed { due: Instant::now() + delay, seq, message });
    }
}

/// Only an envelope above max_frame_bytes fails to encode; it could never
/// be delivered, so it is dropped and counted.
fn drop_unsendable(counters: &LinkCounters, e: &FrameError) {
    warn!("dropping an unsendable envelope: {e}");
    LinkCounters::add(&counters.dropped_queue, 1);
}

/// Switches a connection from handshake frames to envelope frames, keeping
/// any bytes already read or buffered.
pub fn into_envelope_framed<S>(framed: Framed<S, LengthDelimitedCodec>, cfg: &NetConfig) -> Framed<S, EnvelopeCodec>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite,
{
    let parts = framed.into_parts();
    let mut next = FramedParts::new::<Envelope>(parts.io, EnvelopeCodec::new(cfg.max_frame_bytes));
    next.read_buf = parts.read_buf;
    next.write_buf = parts.write_buf;
    let mut framed = Framed::from_parts(next);
    framed.set_backpressure_boundary(cfg.write_buffer_bytes);
    framed
}
