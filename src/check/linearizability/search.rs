//! Wing & Gong's search with Lowe's memoization, for one key.
//!
//! The history becomes a doubly linked list of call and return entries in
//! time order. The search walks it from the front: at a call it tries to
//! linearize that operation next (the model must accept its reply, and the
//! resulting configuration must be new); if so it lifts the call and its
//! return out of the list and starts again from the front. Reaching a
//! return entry means some operation had to be linearized by then and was
//! not, so it backtracks: pops the last linearized operation, puts its
//! entries back and tries the next call after it. Success is when every
//! required operation is linearized; failure is backtracking with an
//! empty stack.
//!
//! Operations of unknown outcome have no return entry: they may be
//! linearized anywhere after their call or never, and the search never
//! has to backtrack on their account.
//!
//! The loop allocates nothing but the memo's growth: the list is index
//! arrays, the linearized set a bitset, and its hash is kept up to date
//! by XOR-ing one random word per operation in or out (Zobrist hashing).

use std::time::Instant;

use super::model::{KeyModel, State, Step, mix64, state_hash};
use super::visited::{Config, Visited};

/// One operation of the key, as the search sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyOp {
    pub step: Step,
    pub invoke_us: u64,
    /// None: outcome unknown, so it may be linearized any time after its
    /// invocation, or never.
    pub complete_us: Option<u64>,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub deadline: Instant,
    pub memory_budget_bytes: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SearchResult {
    Linearizable,
    /// No order exists. The longest sequence of operations the search
    /// managed to linearize, as positions in the key's op slice.
    Violation {
        longest_prefix: Vec<usize>,
    },
    OutOfTime,
    OutOfMemory,
}

const NIL: u32 = u32::MAX;
const HEAD: u32 = 0;
/// How often the loop reads the clock: often enough to stop within a
/// millisecond or so of the deadline, rarely enough to cost nothing.
const CHECK_EVERY_ITERATIONS: u64 = 4096;

struct Frame {
    call_entry: u32,
    state_before: State,
    /// The configuration this step entered, closed on backtracking.
    memo_entry: u32,
    /// The scan this step was taken in, resumed on backtracking.
    phase: Phase,
}

/// Each configuration's candidates are scanned twice: required operations
/// first, then optional ones. Exploring "skip the unknown operation"
/// before "take it" means the configuration with fewer optional
/// operations is closed first and then subsumes the ones with more (see
/// `visited`); the other way round nothing would ever be subsumed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Required,
    Optional,
}

/// The call/return list, as arrays indexed by entry (entry 0 is the head).
struct Entries {
    next: Vec<u32>,
    prev: Vec<u32>,
    /// The operation of each entry (unused for the head).
    op: Vec<u32>,
    is_call: Vec<bool>,
    /// Each operation's return entry, NIL for an optional one.
    return_of: Vec<u32>,
}

impl Entries {
    fn build(ops: &[KeyOp]) -> Entries {
        // (time, is_return, op): at equal times calls sort first, so two
        // operations that touch at one microsecond count as concurrent;
        // the clock cannot order them, and the checker must not invent an
        // order that makes a correct history fail.
        let mut timeline: Vec<(u64, bool, u32)> = Vec::with_capacity(ops.len() * 2);
        for (index, op) in ops.iter().enumerate() {
            timeline.push((op.invoke_us, false, index as u32));
            if let Some(complete_us) = op.complete_us {
                timeline.push((complete_us, true, index as u32));
            }
        }
        timeline.sort_unstable();
        let count = timeline.len() + 1;
        let mut entries = Entries {
            next: Vec::with_capacity(count),
            prev: Vec::with_capacity(count),
            op: Vec::with_capacity(count),
            is_call: Vec::with_capacity(count),
            return_of: vec![NIL; ops.len()],
        };
        entries.next.push(if timeline.is_empty() { NIL } else { 1 });
        entries.prev.push(NIL);
        entries.op.push(NIL);
        entries.is_call.push(false);
        for (position, &(_, is_return, op)) in timeline.iter().enumerate() {
            let entry = (position + 1) as u32;
            entries.next.push(if position + 1 < timeline.len() { entry + 1 } else { NIL });
            entries.prev.push(entry - 1);
            entries.op.push(op);
            entries.is_call.push(!is_return);
            if is_return {
                entries.return_of[op as usize] = entry;
            }
        }
        entries
    }

    #[inline]
    fn unlink(&mut self, entry: u32) {
        let (prev, next) = (self.prev[entry as usize], self.next[entry as usize]);
        self.next[prev as usize] = next;
        if next != NIL {
            self.prev[next as usize] = prev;
        }
    }

    /// Undoes `unlink`; entries must be relinked in the reverse order of
    /// their unlinking (dancing links).
    #[inline]
    fn relink(&mut self, entry: u32) {
        let (prev, next) = (self.prev[entry as usize], self.next[entry as usize]);
        self.next[prev as usize] = entry;
        if next != NIL {
            self.prev[next as usize] = entry;
        }
    }

    #[inline]
    fn lift(&mut self, call_entry: u32) {
        self.unlink(call_entry);
        let ret = self.return_of[self.op[call_entry as usize] as usize];
        if ret != NIL {
            self.unlink(ret);
        }
    }

    #[inline]
    fn unlift(&mut self, call_entry: u32) {
        let ret = self.return_of[self.op[call_entry as usize] as usize];
        if ret != NIL {
            self.relink(ret);
        }
        self.relink(call_entry);
    }
}

/// Where an operation's bit lives in a configuration.
#[derive(Clone, Copy)]
enum Slot {
    /// In the dense bitset of the required set (and of optional
    /// operations beyond the 64 the mask can hold).
    Dense(u32),
    /// In the optional mask.
    Optional(u32),
}

/// The linearized set, kept so that the memo key is cheap to produce.
struct LinearizedSet {
    bits: Vec<u64>,
    /// Every dense index below `low` is linearized.
    low: usize,
    dense_count: usize,
    dense_len: usize,
    optional: u64,
    /// XOR of the Zobrist words of the linearized dense operations.
    hash: u64,
}

impl LinearizedSet {
    #[inline]
    fn insert(&mut self, slot: Slot, zobrist: u64) {
        match slot {
            Slot::Optional(bit) => self.optional |= 1u64 << bit,
            Slot::Dense(index) => {
                let index = index as usize;
                assert_eq!(self.bits[index / 64] & (1u64 << (index % 64)), 0, "linearized twice");
                self.bits[index / 64] |= 1u64 << (index % 64);
                self.dense_count += 1;
                self.hash ^= zobrist;
                while self.low < self.dense_len && self.bits[self.low / 64] & (1u64 << (self.low % 64)) != 0 {
                    self.low += 1;
                }
            }
        }
    }

    #[inline]
    fn remove(&mut self, slot: Slot, zobrist: u64) {
        match slot {
            Slot::Optional(bit) => self.optional &= !(1u64 << bit),
            Slot::Dense(index) => {
                let index = index as usize;
                assert_ne!(self.bits[index / 64] & (1u64 << (index % 64)), 0, "undoing what was not done");
                self.bits[index / 64] &= !(1u64 << (index % 64));
                self.dense_count -= 1;
                self.hash ^= zobrist;
                self.low = self.low.min(index);
            }
        }
    }

    /// The words from `low / 64` to the last non-zero one. Bits below
    /// `low` are all set, so `(low, window)` identifies the set.
    #[inline]
    fn window(&self) -> &[u64] {
        let first = self.low / 64;
        let mut above_low = self.dense_count - self.low;
        if above_low == 0 {
            return &self.bits[first..first];
        }
        let mut word = first;
        loop {
            let mut bits = self.bits[word];
            if word == first {
                bits &= !((1u64 << (self.low % 64)) - 1);
            }
            let ones = bits.count_ones() as usize;
            if ones >= above_low {
                return &self.bits[first..=word];
            }
            above_low -= ones;
            word += 1;
        }
    }
}

/// Decides whether `ops` (one key's operations, in invocation order) are
/// linearizable against the register model, starting from an absent
/// value.
pub(crate) fn search(model: &KeyModel, ops: &[KeyOp], limits: &Limits) -> SearchResult {
    assert!(ops.len() < (u32::MAX / 2) as usize, "op indexes fit in u32 entries");
    let mut remaining_required = ops.iter().filter(|op| op.complete_us.is_some()).count();
    if remaining_required == 0 {
        // Every operation is optional: linearizing none of them is an
        // order.
        return SearchResult::Linearizable;
    }
    let mut entries = Entries::build(ops);
    let mut slots: Vec<Slot> = Vec::with_capacity(ops.len());
    let (mut dense_len, mut optional_len) = (0u32, 0u32);
    for op in ops {
        if op.complete_us.is_none() && optional_len < 64 {
            slots.push(Slot::Optional(optional_len));
            optional_len += 1;
        } else {
            slots.push(Slot::Dense(dense_len));
            dense_len += 1;
        }
    }
    let zobrist: Vec<u64> = (0..ops.len() as u64).map(|i| mix64(i.wrapping_add(0x243f_6a88_85a3_08d3))).collect();
    let mut set = LinearizedSet {
        bits: vec![0u64; (dense_len as usize).div_ceil(64)],
        low: 0,
        dense_count: 0,
        dense_len: dense_len as usize,
        optional: 0,
        hash: 0,
    };
    let mut visited = Visited::new();
    let mut stack: Vec<Frame> = Vec::with_capacity(ops.len());
    let mut longest_prefix: Vec<usize> = Vec::new();
    let mut state = State::Absent;
    let mut entry = entries.next[HEAD as usize];
    let mut phase = Phase::Required;
    let mut iterations = 0u64;

    loop {
        if remaining_required == 0 {
            return SearchResult::Linearizable;
        }
        iterations += 1;
        if iterations.is_multiple_of(CHECK_EVERY_ITERATIONS) {
            if Instant::now() >= limits.deadline {
                return SearchResult::OutOfTime;
            }
            if visited.bytes() > limits.memory_budget_bytes {
                return SearchResult::OutOfMemory;
            }
        }

        if entry == NIL || !entries.is_call[entry as usize] {
            // A required operation's return. (NIL cannot be reached while
            // a required op remains, since its return is still listed; it
            // is handled the same way rather than trusted.)
            if phase == Phase::Required {
                // Every required candidate was tried; now the optional
                // ones, from the front again.
                phase = Phase::Optional;
                entry = entries.next[HEAD as usize];
                continue;
            }
            // Nothing can be linearized next: backtrack.
            let Some(frame) = stack.pop() else {
                assert!(remaining_required > 0, "a violation leaves a required op out");
                return SearchResult::Violation { longest_prefix };
            };
            visited.close(frame.memo_entry);
            let op = entries.op[frame.call_entry as usize] as usize;
            state = frame.state_before;
            set.remove(slots[op], zobrist[op]);
            entries.unlift(frame.call_entry);
            if ops[op].complete_us.is_some() {
                remaining_required += 1;
            }
            phase = frame.phase;
            entry = entries.next[frame.call_entry as usize];
            continue;
        }

        let op = entries.op[entry as usize] as usize;
        let optional = ops[op].complete_us.is_none();
        if optional != (phase == Phase::Optional) {
            entry = entries.next[entry as usize];
            continue;
        }
        if let Some(new_state) = model.apply(state, ops[op].step)
            && (!optional || worth_placing(model, ops, &entries, op, state, new_state))
        {
            set.insert(slots[op], zobrist[op]);
            let window = set.window();
            if !visited.has_room(window.len()) {
                return SearchResult::OutOfMemory;
            }
            let config = Config {
                hash: set.hash ^ state_hash(new_state),
                state: new_state,
                low: set.low as u32,
                window,
                optional: set.optional,
            };
            if let Some(memo_entry) = visited.enter(&config) {
                stack.push(Frame { call_entry: entry, state_before: state, memo_entry, phase });
                state = new_state;
                entries.lift(entry);
                if !optional {
                    remaining_required -= 1;
                }
                if stack.len() > longest_prefix.len() {
                    longest_prefix.clear();
                    longest_prefix.extend(stack.iter().map(|f| entries.op[f.call_entry as usize] as usize));
                }
                entry = entries.next[HEAD as usize];
                phase = Phase::Required;
                continue;
            }
            set.remove(slots[op], zobrist[op]);
        }
        entry = entries.next[entry as usize];
    }
}

/// Whether placing optional operation `op` next, taking the register from
/// `state` to `new_state`, can be part of an order no other choice gives.
///
/// Take an order that places `op` next, then `x`. Placing `op` adds no
/// return to the list, so `x` is callable now too. If `x` does not
/// observe `new_state` (a blind write, or an optional op that would do
/// nothing), dropping `op` (and any such no-op) leaves an order that works
/// as well. If `x` only reads and accepts the old value too (a refused cas
/// whose expected value is neither), `x` can go first and `op` right after
/// it, an order the search also tries. If `x` could not follow `new_state`
/// at all, the order is invalid. So `op` is worth placing only if it
/// changes the value and some callable operation depends on the new
/// value. This cuts the side branches that every pending unknown
/// operation would otherwise add at every configuration.
fn worth_placing(
    model: &KeyModel,
    ops: &[KeyOp],
    entries: &Entries,
    op: usize,
    state: State,
    new_state: State,
) -> bool {
    if new_state == state {
        return false;
    }
    let mut entry = entries.next[HEAD as usize];
    while entry != NIL && entries.is_call[entry as usize] {
        let other = entries.op[entry as usize] as usize;
        entry = entries.next[entry as usize];
        if other == op || matches!(ops[other].step, Step::Write(_)) {
            continue;
        }
        let Some(after) = model.apply(new_state, ops[other].step) else {
            continue;
        };
        let read_only = after == new_state;
        if read_only && (ops[other].complete_us.is_none() || model.apply(state, ops[other].step) == Some(state)) {
            // An optional no-op, or a read-only op that accepts the old
            // value as well: it can go first and `op` after it.
            continue;
        }
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limits() -> Limits {
        Limits { deadline: Instant::now() + Duration::from_secs(10), memory_budget_bytes: 1 << 30 }
    }

    fn op(step: Step, invoke_us: u64, complete_us: Option<u64>) -> KeyOp {
        KeyOp { step, invoke_us, complete_us }
    }

    #[test]
    fn concurrent_write_may_be_seen_or_not() {
        let model = KeyModel::default();
        let ops = [
            op(Step::Write(State::Int(1)), 0, Some(10)),
            op(Step::Read(State::Absent), 1, Some(2)),
            op(Step::Read(State::Int(1)), 3, Some(4)),
        ];
        assert_eq!(search(&model, &ops, &limits()), SearchResult::Linearizable);
    }

    #[test]
    fn read_after_a_completed_write_must_see_it() {
        let model = KeyModel::default();
        let ops = [op(Step::Write(State::Int(1)), 0, Some(10)), op(Step::Read(State::Absent), 11, Some(12))];
        assert_eq!(search(&model, &ops, &limits()), SearchResult::Violation { longest_prefix: vec![0] });
    }

    #[test]
    fn optional_write_explains_a_later_read() {
        let model = KeyModel::default();
        let ops = [
            op(Step::Write(State::Int(1)), 0, None),
            op(Step::Read(State::Absent), 5, Some(6)),
            op(Step::Read(State::Int(1)), 7, Some(8)),
        ];
        assert_eq!(search(&model, &ops, &limits()), SearchResult::Linearizable);
    }
}
