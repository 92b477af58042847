//! What a node remembers of its own past.
//!
//! Quorum protocols are safe because members keep their promises: a vote
//! cast in a term, an entry acknowledged to a leader. A member that lost
//! durable state no longer knows what it promised. If it went on voting
//! as if its shorter log were all it ever had, it could help elect a
//! leader that lacks entries it once acknowledged, and committed data
//! would be overwritten. The engine tells the policy what it knows about
//! such a loss, durably, until the policy reports (`Effect::MemoryRestored`)
//! that it has caught up with what it may have lost.

use serde::{Deserialize, Serialize};

use crate::entry::LogPosition;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Memory {
    /// Everything this node made durable is there. (A torn tail cut at
    /// recovery held writes that were never synced, so never promised.)
    #[default]
    Intact,
    /// An operator cut the log at damaged records (`replab node
    /// --repair-wal`). Before the cut it reached at least `reached`.
    Truncated { reached: LogPosition },
    /// No durable state at all, and nothing tells a first start from a
    /// wiped disk: the node may have promised anything.
    Blank,
}

impl Memory {
    /// The larger loss of the two: a node repaired twice, or wiped after a
    /// repair, must still assume the worst.
    pub fn merge(self, other: Memory) -> Memory {
        match (self, other) {
            (Memory::Blank, _) | (_, Memory::Blank) => Memory::Blank,
            (Memory::Truncated { reached: a }, Memory::Truncated { reached: b }) => {
                Memory::Truncated { reached: if a.at_least_as_up_to_date_as(b) { a } else { b } }
            }
            (Memory::Truncated { reached }, Memory::Intact) | (Memory::Intact, Memory::Truncated { reached }) => {
                Memory::Truncated { reached }
            }
            (Memory::Intact, Memory::Intact) => Memory::Intact,
        }
    }

    pub fn is_intact(&self) -> bool {
        *self == Memory::Intact
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_the_larger_loss() {
        let at = |index, term| Memory::Truncated { reached: LogPosition { index, term } };
        assert_eq!(Memory::Intact.merge(Memory::Intact), Memory::Intact);
        assert_eq!(Memory::Intact.merge(at(5, 2)), at(5, 2));
        assert_eq!(at(5, 2).merge(at(9, 1)), at(5, 2), "a later term is further along");
        assert_eq!(at(5, 2).merge(at(7, 2)), at(7, 2));
        assert_eq!(at(5, 2).merge(Memory::Blank), Memory::Blank);
        assert_eq!(Memory::Blank.merge(Memory::Intact), Memory::Blank);
    }
}
