//! Majority arithmetic: the only place that knows what "a quorum" is.
//!
//! Raft's safety rests on any two majorities of the voters intersecting,
//! so the commit index is the highest index stored by a majority, and an
//! election is won by a majority of granted votes.

use replab_api::LogIndex;

/// Smallest number of voters that forms a majority.
pub fn majority(voters: usize) -> usize {
    assert!(voters > 0, "a quorum needs at least one voter");
    voters / 2 + 1
}

/// The highest index that a majority of `indexes` (one per voter) has
/// reached. Sorts `indexes` in place, so callers can pass a reusable
/// scratch buffer and avoid allocating on every acknowledgement.
pub fn committed_index(indexes: &mut [LogIndex]) -> LogIndex {
    assert!(!indexes.is_empty(), "a quorum needs at least one voter");
    indexes.sort_unstable_by(|a, b| b.cmp(a));
    indexes[majority(indexes.len()) - 1]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoteResult {
    /// Not decided yet: the missing votes could still swing it.
    Pending,
    Won,
    /// A majority can no longer be reached.
    Lost,
}

pub fn vote_result(granted: usize, rejected: usize, voters: usize) -> VoteResult {
    assert!(granted + rejected <= voters, "more votes ({granted}+{rejected}) than voters ({voters})");
    let needed = majority(voters);
    if granted >= needed {
        VoteResult::Won
    } else if voters - rejected < needed {
        VoteResult::Lost
    } else {
        VoteResult::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority_of_small_clusters() {
        assert_eq!(majority(1), 1);
        assert_eq!(majority(2), 2);
        assert_eq!(majority(3), 2);
        assert_eq!(majority(4), 3);
        assert_eq!(majority(5), 3);
        assert_eq!(majority(7), 4);
    }

    #[test]
    fn committed_index_is_the_majority_th_highest() {
        assert_eq!(committed_index(&mut [5]), 5);
        assert_eq!(committed_index(&mut [5, 3, 9]), 5);
        assert_eq!(committed_index(&mut [1, 2, 3, 4, 5]), 3);
        assert_eq!(committed_index(&mut [0, 0, 7, 7, 7]), 7);
        assert_eq!(committed_index(&mut [0, 0, 0, 7, 7]), 0);
        // An even cluster needs more than half.
        assert_eq!(committed_index(&mut [9, 9, 1, 1]), 1);
        assert_eq!(committed_index(&mut [9, 9, 9, 1]), 9);
    }

    #[test]
    fn votes_win_lose_or_wait() {
        assert_eq!(vote_result(1, 0, 1), VoteResult::Won);
        assert_eq!(vote_result(1, 0, 3), VoteResult::Pending);
        assert_eq!(vote_result(2, 0, 3), VoteResult::Won);
        assert_eq!(vote_result(1, 2, 3), VoteResult::Lost);
        assert_eq!(vote_result(1, 1, 3), VoteResult::Pending);
        assert_eq!(vote_result(2, 2, 5), VoteResult::Pending);
        assert_eq!(vote_result(2, 3, 5), VoteResult::Lost);
        assert_eq!(vote_result(2, 2, 4), VoteResult::Lost);
    }
}
