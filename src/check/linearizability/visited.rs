//! The memo of the search: configurations already explored.
//!
//! A configuration is (set of linearized operations, register state). Two
//! paths that reach the same one have the same futures, so the second is
//! cut (Lowe's improvement to Wing & Gong).
//!
//! Two refinements keep the memo small and effective:
//!
//! - The set is stored as a window. Operations are numbered in invocation
//!   order and every one below `low` is linearized, so a set is `low` plus
//!   the few words above it: a configuration costs tens of bytes, not a
//!   bit per operation of the key.
//! - Optional operations (outcome unknown) are kept apart, as a 64-bit
//!   mask. A configuration that linearized a superset of the optional
//!   operations of a *closed* (fully explored, failed) configuration with
//!   the same required set and state is cut too: every completion from it
//!   would also complete the closed one (skipping an optional operation is
//!   always allowed). Only closed configurations subsume others, which is
//!   what keeps the pruning sound. Without this, k pending unknown
//!   operations multiply the configurations by 2^k.
//!
//! The table is flat (open addressing over parallel arrays, windows in one
//! `Vec<u64>`), so a lookup never allocates.

use super::model::State;

const NIL: u32 = u32::MAX;
const INITIAL_SLOTS: usize = 1024;

/// The configuration being entered.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Config<'a> {
    /// Hash of (required set, state); must not depend on `optional`.
    pub hash: u64,
    pub state: State,
    /// Every dense index below this is linearized.
    pub low: u32,
    /// Bitset words from word `low / 64` to the last non-zero word.
    pub window: &'a [u64],
    /// Linearized optional operations.
    pub optional: u64,
}

#[derive(Debug)]
pub(crate) struct Visited {
    /// Open addressing over heads: 0 empty, otherwise head index + 1.
    slots: Vec<u32>,
    // A head is one (required set, state); its entries differ in the
    // optional mask.
    head_hash: Vec<u64>,
    head_state: Vec<State>,
    head_low: Vec<u32>,
    head_start: Vec<u32>,
    head_len: Vec<u32>,
    head_first: Vec<u32>,
    words: Vec<u64>,
    entry_optional: Vec<u64>,
    entry_closed: Vec<bool>,
    entry_next: Vec<u32>,
}

impl Visited {
    pub fn new() -> Visited {
        Visited {
            slots: vec![0; INITIAL_SLOTS],
            head_hash: Vec::new(),
            head_state: Vec::new(),
            head_low: Vec::new(),
            head_start: Vec::new(),
            head_len: Vec::new(),
            head_first: Vec::new(),
            words: Vec::new(),
            entry_optional: Vec::new(),
            entry_closed: Vec::new(),
            entry_next: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.entry_optional.len()
    }

    /// Bytes held, for the memory budget.
    pub fn bytes(&self) -> usize {
        self.slots.capacity() * 4
            + self.head_hash.capacity() * 8
            + self.head_state.capacity() * std::mem::size_of::<State>()
            + (self.head_low.capacity() + self.head_start.capacity() + self.head_len.capacity()) * 4
            + self.head_first.capacity() * 4
            + self.words.capacity() * 8
            + self.entry_optional.capacity() * 8
            + self.entry_closed.capacity()
            + self.entry_next.capacity() * 4
    }

    /// Whether another configuration fits: indexes are u32.
    pub fn has_room(&self, window_words: usize) -> bool {
        let limit = (u32::MAX / 2) as usize;
        self.len() < limit && self.words.len() + window_words < limit
    }

    /// Enters a configuration: Some(entry) if it is new (the caller
    /// explores it and then calls `close`), None if it was seen before or
    /// is subsumed by a closed one.
    pub fn enter(&mut self, config: &Config<'_>) -> Option<u32> {
        assert!(self.has_room(config.window.len()), "callers check has_room first");
        let mask = self.slots.len() - 1;
        let mut slot = (config.hash as usize) & mask;
        loop {
            let head = self.slots[slot];
            if head == 0 {
                break;
            }
            let head = (head - 1) as usize;
            if self.head_matches(head, config) {
                let mut entry = self.head_first[head];
                while entry != NIL {
                    let seen = self.entry_optional[entry as usize];
                    if seen == config.optional || (self.entry_closed[entry as usize] && seen & !config.optional == 0) {
                        return None;
                    }
                    entry = self.entry_next[entry as usize];
                }
                let entry = self.push_entry(config.optional, self.head_first[head]);
                self.head_first[head] = entry;
                return Some(entry);
            }
            slot = (slot + 1) & mask;
        }
        let entry = self.push_entry(config.optional, NIL);
        let head = self.head_hash.len();
        self.head_hash.push(config.hash);
        self.head_state.push(config.state);
        self.head_low.push(config.low);
        self.head_start.push(self.words.len() as u32);
        self.head_len.push(config.window.len() as u32);
        self.head_first.push(entry);
        self.words.extend_from_slice(config.window);
        self.slots[slot] = (head + 1) as u32;
        if self.head_hash.len() * 2 > self.slots.len() {
            self.grow();
        }
        Some(entry)
    }

    /// Marks a configuration fully explored (and so failed).
    pub fn close(&mut self, entry: u32) {
        assert!(!self.entry_closed[entry as usize], "a configuration is explored once");
        self.entry_closed[entry as usize] = true;
    }

    fn head_matches(&self, head: usize, config: &Config<'_>) -> bool {
        if self.head_hash[head] != config.hash
            || self.head_state[head] != config.state
            || self.head_low[head] != config.low
            || self.head_len[head] as usize != config.window.len()
        {
            return false;
        }
        let start = self.head_start[head] as usize;
        &self.words[start..start + config.window.len()] == config.window
    }

    fn push_entry(&mut self, optional: u64, next: u32) -> u32 {
        let entry = self.entry_optional.len() as u32;
        self.entry_optional.push(optional);
        self.entry_closed.push(false);
        self.entry_next.push(next);
        entry
    }

    fn grow(&mut self) {
        let capacity = self.slots.len() * 2;
        let mask = capacity - 1;
        let mut slots = vec![0u32; capacity];
        for (head, &hash) in self.head_hash.iter().enumerate() {
            let mut slot = (hash as usize) & mask;
            while slots[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            slots[slot] = (head + 1) as u32;
        }
        self.slots = slots;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(hash: u64, low: u32, window: &[u64], optional: u64) -> Config<'_> {
        Config { hash, state: State::Absent, low, window, optional }
    }

    #[test]
    fn tells_configurations_apart_even_when_hashes_collide() {
        let mut visited = Visited::new();
        assert!(visited.enter(&config(7, 0, &[1], 0)).is_some());
        assert!(visited.enter(&config(7, 0, &[1], 0)).is_none());
        assert!(visited.enter(&config(7, 0, &[3], 0)).is_some());
        assert!(visited.enter(&config(7, 1, &[1], 0)).is_some());
        assert!(visited.enter(&config(7, 0, &[1, 1], 0)).is_some());
        for i in 0..3_000u64 {
            assert!(visited.enter(&config(i % 3, 5, &[i], 0)).is_some());
        }
        assert!(visited.enter(&config(2_999 % 3, 5, &[2_999], 0)).is_none());
    }

    #[test]
    fn only_closed_configurations_subsume_supersets_of_optional_ops() {
        let mut visited = Visited::new();
        let open = visited.enter(&config(1, 0, &[], 0b01)).expect("new");
        // Open: a superset is not cut (the open one may yet succeed
        // through it).
        assert!(visited.enter(&config(1, 0, &[], 0b11)).is_some());
        visited.close(open);
        assert!(visited.enter(&config(1, 0, &[], 0b101)).is_none());
        // Not a superset: explored on its own.
        assert!(visited.enter(&config(1, 0, &[], 0b10)).is_some());
    }
}
