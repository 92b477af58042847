//! The coordinator's memory of forwarded puts, so that a `Coordinate` the
//! network delivers twice is coordinated once.
//!
//! A forwarder sends one `Coordinate` per client put, under a tag of its
//! own; the network may deliver it twice (the fault layer duplicates). A
//! coordinator that took each copy as a new put would apply the put twice,
//! under two versions (one can resurrect, as a sibling, a value a later
//! update had superseded), and could answer the two copies differently: a
//! second copy refused for lack of live owners answered `Failed` could
//! reach the forwarder before the first copy's `Written`, and the client
//! would hear "certainly not applied" about a put every replica holds.
//!
//! So the coordinator remembers each forwarded put by (forwarder, tag): a
//! copy of a put still in progress is dropped (the first copy's answer goes
//! to the same tag), a copy of an answered put gets the first answer again.
//!
//! The memory is bounded. An entry is kept for three request timeouts from
//! when its first copy arrived: the forwarder gives up (`Unknown`) two
//! timeouts after it sent the put, which was before, and after that no
//! answer reaches its client; the third is slack for clocks running at
//! slightly different rates. At most [`MAX_REMEMBERED`] entries are kept;
//! beyond that the oldest is forgotten early. The memory does not survive
//! a restart either. A copy that arrives once its put is forgotten is
//! coordinated again (the put may be applied twice), but never contradicts
//! the first answer: a coordinator answers a forwarded put it refuses for
//! lack of live owners `Unknown`, not `Failed` (see `writes.rs`), and its
//! other refusals (a context that does not decode, a key it does not own)
//! are the same for every copy.

use std::collections::{BTreeMap, VecDeque};

use replab_api::{Instant, KeyedReply, NodeId};

/// Most forwarded puts a coordinator remembers at once. Each entry holds
/// its answer: a context (a version vector: some bytes per writer of the
/// key) or a reason of at most a few hundred bytes, so a few MB at most.
pub const MAX_REMEMBERED: usize = 16_384;

/// How many request timeouts a forwarded put is remembered for.
pub const REMEMBER_TIMEOUTS: u64 = 3;

/// What a coordinator knows of one forwarded put.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    /// Being coordinated: its answer will go to the forwarder's tag.
    InProgress,
    /// Answered with this.
    Answered(KeyedReply),
}

#[derive(Debug, Default)]
pub struct ForwardedPuts {
    entries: BTreeMap<(NodeId, u64), Seen>,
    /// When each entry is forgotten, in the order entries were made (every
    /// entry lives equally long, so this order is also by deadline).
    order: VecDeque<(Instant, (NodeId, u64))>,
}

impl ForwardedPuts {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// What this node knows of the put `tag` from `from`, if anything.
    pub fn seen(&self, from: NodeId, tag: u64) -> Option<&Seen> {
        self.entries.get(&(from, tag))
    }

    /// A first copy arrived: remember it until `forget_at`.
    pub fn start(&mut self, from: NodeId, tag: u64, forget_at: Instant) {
        while self.entries.len() >= MAX_REMEMBERED {
            let Some((_, oldest)) = self.order.pop_front() else { break };
            self.entries.remove(&oldest);
        }
        if self.entries.insert((from, tag), Seen::InProgress).is_none() {
            self.order.push_back((forget_at, (from, tag)));
        }
    }

    /// The put was answered: later copies get the same answer.
    pub fn answered(&mut self, from: NodeId, tag: u64, reply: &KeyedReply) {
        if let Some(seen) = self.entries.get_mut(&(from, tag)) {
            *seen = Seen::Answered(reply.clone());
        }
    }

    /// Forgets the puts whose time is up.
    pub fn expire(&mut self, now: Instant) {
        while self.order.front().is_some_and(|(at, _)| *at <= now) {
            let (_, key) = self.order.pop_front().expect("checked");
            self.entries.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written() -> KeyedReply {
        KeyedReply::Written { context: bytes::Bytes::from_static(b"c") }
    }

    #[test]
    fn a_copy_sees_the_first_copys_progress_then_its_answer_until_forgotten() {
        let mut puts = ForwardedPuts::default();
        let t = |ms| Instant::ZERO.add_millis(ms);
        puts.start(4, 7, t(30));
        assert_eq!(puts.seen(4, 7), Some(&Seen::InProgress));
        assert_eq!(puts.seen(5, 7), None, "tags are the forwarder's own");
        puts.answered(4, 7, &written());
        assert_eq!(puts.seen(4, 7), Some(&Seen::Answered(written())));
        puts.expire(t(29));
        assert!(puts.seen(4, 7).is_some());
        puts.expire(t(30));
        assert_eq!(puts.seen(4, 7), None);
        assert_eq!(puts.len(), 0);
    }

    #[test]
    fn the_memory_is_bounded_and_forgets_the_oldest_first() {
        let mut puts = ForwardedPuts::default();
        let at = Instant::ZERO.add_millis(1_000);
        for tag in 0..MAX_REMEMBERED as u64 + 10 {
            puts.start(2, tag, at);
        }
        assert_eq!(puts.len(), MAX_REMEMBERED);
        assert_eq!(puts.seen(2, 9), None, "the oldest went first");
        assert!(puts.seen(2, 10).is_some());
        puts.expire(at);
        assert_eq!(puts.len(), 0, "every entry leaves by its deadline");
    }
}
