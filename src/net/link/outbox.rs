//! Staging: a caller's own buffer of frames for one link, handed over in
//! one piece.
//!
//! A sender that stages its messages and flushes once per turn (the node's
//! event loop does) touches the link's shared state once per turn instead
//! of once per message: encoding happens in memory only this caller owns,
//! with no lock and no atomic instruction between two messages, and the
//! whole turn leaves in one write.

use bytes::{Buf, Bytes, BytesMut};

use super::{Outgoing, PeerLink, drop_unsendable};
use crate::net::envelope::Kind;
use crate::net::stats::LinkCounters;

/// Frames staged for one link, in send order.
#[derive(Debug, Default)]
pub struct Staging {
    bytes: BytesMut,
    /// Size of each staged frame, oldest first.
    frames: Vec<u32>,
}

impl Staging {
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

impl PeerLink {
    /// Stages a message after the fault layer had its say. Nothing reaches
    /// the link before [`PeerLink::flush_staged`], except when the staged
    /// bytes pass `write_buffer_bytes`: then they are flushed at once, as
    /// a `BufWriter` would.
    pub fn stage(&self, staging: &mut Staging, kind: Kind, payload: Bytes) {
        let verdict = self.verdict();
        if verdict.dropped {
            return;
        }
        let message = Outgoing { kind, payload };
        for delay in verdict.copies.into_iter().flatten() {
            if delay.is_zero() {
                let before = staging.bytes.len();
                match self.encoder.encode(message.kind, &message.payload, &mut staging.bytes) {
                    Ok(()) => staging.frames.push((staging.bytes.len() - before) as u32),
                    Err(e) => drop_unsendable(&self.shared.counters, &e),
                }
            } else {
                // A delayed copy leaves on its own schedule, so it need not
                // wait for the staged frames; faults are rare enough that
                // taking the lock for it costs nothing that matters.
                let mut state = self.shared.state.lock().expect("link state lock");
                self.enqueue_after(&mut state, message.clone(), delay);
                drop(state);
                self.shared.notify.notify_one();
            }
        }
        if staging.bytes.len() >= self.flush_bytes {
            self.flush_staged(staging);
        }
    }

    /// Moves the staged frames behind those already queued and, when the
    /// writer task is not writing, writes them from the caller's thread.
    /// The writer is woken only for what the socket did not take.
    pub fn flush_staged(&self, staging: &mut Staging) {
        if staging.is_empty() {
            return;
        }
        let mut state = self.shared.state.lock().expect("link state lock");
        let swapped = state.pending_frames.is_empty();
        if swapped {
            // The usual case: swap buffers rather than copy.
            debug_assert!(state.pending.is_empty(), "no frames queued means no bytes pending");
            std::mem::swap(&mut state.pending, &mut staging.bytes);
        } else {
            state.pending.extend_from_slice(&staging.bytes);
        }
        staging.bytes.clear();
        state.pending_frames.extend(staging.frames.drain(..));
        // A busy writer claims the queue again when its write is done; a
        // link that is not connected yet takes it once it is.
        let leftover = !state.writer_busy && self.flush_from_sender(&mut state);
        if swapped && state.pending_frames.is_empty() {
            // Everything was written: swap back, so the staging buffer is
            // reused in place, as a `BufWriter`'s is, and stays in cache.
            std::mem::swap(&mut state.pending, &mut staging.bytes);
            staging.bytes.clear();
        }
        // The queue bound holds for what stays queued: the oldest go. Frames
        // the socket took were never queued, so a large turn on a healthy
        // link loses nothing.
        while state.pending_frames.len() > self.capacity {
            let oldest = state.pending_frames.pop_front().expect("over capacity, so not empty");
            state.pending.advance(oldest as usize);
            LinkCounters::add(&self.shared.counters.dropped_queue, 1);
        }
        drop(state);
        if leftover {
            self.shared.notify.notify_one();
        }
    }
}
