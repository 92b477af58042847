//! Generation clock: the term.
//!
//! A term is a number that only ever grows. Every leader is elected for one
//! term, every message carries the sender's term, and a node that sees a
//! larger term adopts it at once. That single rule is what lets old leaders
//! (from a "previous generation") be recognised and ignored after a
//! partition heals: their messages carry a smaller term.
//!
//! The term and the vote cast in it are the node's *hard state*. They must
//! be durable before any message that depends on them leaves the node,
//! otherwise a crash-and-restart could let a node vote twice in one term.

use serde::{Deserialize, Serialize};

use crate::ids::NodeId;

/// The generation number of a leadership epoch.
pub type Term = u64;

/// State that must survive a crash before the node may act on it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    /// The latest term this node has seen.
    pub term: Term,
    /// The candidate this node voted for in `term`, if any.
    pub vote: Option<NodeId>,
}

impl HardState {
    /// Adopts `term` if it is newer, clearing the vote (a new generation
    /// starts with no vote cast). Returns true if the term changed.
    pub fn observe(&mut self, term: Term) -> bool {
        if term > self.term {
            self.term = term;
            self.vote = None;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_term_is_adopted_and_clears_the_vote() {
        let mut hs = HardState { term: 3, vote: Some(2) };
        assert!(hs.observe(5));
        assert_eq!(hs, HardState { term: 5, vote: None });
    }

    #[test]
    fn older_or_equal_term_changes_nothing() {
        let mut hs = HardState { term: 5, vote: Some(1) };
        assert!(!hs.observe(5));
        assert!(!hs.observe(4));
        assert_eq!(hs, HardState { term: 5, vote: Some(1) });
    }
}
