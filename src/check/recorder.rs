//! Records client operations as they happen, from any thread.
//!
//! Every client of a run shares one `Recorder` (clones share state) and so
//! one monotonic origin: the checkers compare times across clients, which
//! is only sound on a single clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::history::{History, OpKind, Operation, Outcome};
use super::value::Value;

/// Why a never-completed operation is Unknown.
pub const NEVER_COMPLETED: &str = "never completed";

static NEXT_RECORDER_ID: AtomicU64 = AtomicU64::new(1);

#[derive(Clone, Debug)]
pub struct Recorder {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Tells handles of one recorder from another's.
    recorder_id: u64,
    origin: Instant,
    slots: Mutex<Vec<Slot>>,
}

#[derive(Debug)]
struct Slot {
    op: Operation,
    completed: bool,
}

/// An invoked operation awaiting completion. Completing consumes it, so an
/// operation cannot be completed twice.
#[derive(Debug)]
#[must_use = "an operation that is never completed is recorded as Unknown"]
pub struct OpHandle {
    recorder_id: u64,
    id: u64,
}

impl OpHandle {
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl Default for Recorder {
    fn default() -> Recorder {
        Recorder::new()
    }
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder::with_origin(Instant::now())
    }

    /// A recorder whose times count from `origin`, e.g. the start of the
    /// run, so that they line up with fault windows measured from it.
    pub fn with_origin(origin: Instant) -> Recorder {
        Recorder {
            inner: Arc::new(Inner {
                recorder_id: NEXT_RECORDER_ID.fetch_add(1, Ordering::Relaxed),
                origin,
                slots: Mutex::new(Vec::new()),
            }),
        }
    }

    pub fn origin(&self) -> Instant {
        self.inner.origin
    }

    /// Microseconds since the origin.
    pub fn now_us(&self) -> u64 {
        u64::try_from(self.inner.origin.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    pub fn invoke(&self, client: u64, kind: OpKind) -> OpHandle {
        self.invoke_on(client, kind, None)
    }

    /// Records an invocation sent to `node`.
    pub fn invoke_on(&self, client: u64, kind: OpKind, node: Option<u64>) -> OpHandle {
        let mut slots = self.lock();
        // The clock is read under the lock so that ids follow invocation
        // times: a history is in invocation order.
        let invoke_us = self.now_us();
        let id = slots.len() as u64;
        slots.push(Slot {
            op: Operation {
                id,
                client,
                kind,
                invoke_us,
                complete_us: None,
                outcome: Outcome::Unknown(NEVER_COMPLETED.to_string()),
                node,
                context: None,
            },
            completed: false,
        });
        OpHandle { recorder_id: self.inner.recorder_id, id }
    }

    /// Records the outcome. Returns false, recording nothing, for a handle
    /// from another recorder.
    pub fn complete(&self, handle: OpHandle, outcome: Outcome) -> bool {
        self.complete_on(handle, outcome, None)
    }

    /// Records the outcome and, when given, the node that answered.
    pub fn complete_on(&self, handle: OpHandle, outcome: Outcome, node: Option<u64>) -> bool {
        self.complete_with(handle, outcome, node, None)
    }

    /// Records the outcome, the node that answered and the causal context
    /// (a write's, given at its invocation, is kept unless one is given).
    pub fn complete_with(&self, handle: OpHandle, outcome: Outcome, node: Option<u64>, context: Option<Value>) -> bool {
        if handle.recorder_id != self.inner.recorder_id {
            return false;
        }
        let mut slots = self.lock();
        let complete_us = self.now_us();
        let Some(slot) = usize::try_from(handle.id).ok().and_then(|i| slots.get_mut(i)) else {
            return false;
        };
        assert!(!slot.completed, "handles are consumed on completion");
        assert!(complete_us >= slot.op.invoke_us, "the clock is monotonic");
        slot.completed = true;
        slot.op.complete_us = Some(complete_us);
        slot.op.outcome = outcome;
        if node.is_some() {
            slot.op.node = node;
        }
        if context.is_some() {
            slot.op.context = context;
        }
        true
    }

    /// Notes the causal context a write carries (leaderless).
    pub fn set_context(&self, handle: &OpHandle, context: Value) {
        if handle.recorder_id != self.inner.recorder_id {
            return;
        }
        let mut slots = self.lock();
        if let Some(slot) = usize::try_from(handle.id).ok().and_then(|i| slots.get_mut(i)) {
            slot.op.context = Some(context);
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// The history so far. Operations not yet completed appear as Unknown
    /// ("never completed", no complete_us): whatever happens to them
    /// later, the client never learnt their outcome.
    pub fn finish(&self) -> History {
        let slots = self.lock();
        History::new(slots.iter().map(|slot| slot.op.clone()).collect())
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Slot>> {
        // A client that panicked mid-record leaves the slots consistent
        // (every write to them is a single assignment), so keep going.
        self.inner.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
