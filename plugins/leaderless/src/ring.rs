//! Consistent hashing: which members replicate a key (its preference
//! list).
//!
//! Every member puts `ring_vnodes` points on a 64-bit ring, at the hash of
//! (member id, point number). A key's owners are the first N distinct
//! members met walking clockwise from the key's hash. Virtual nodes even
//! out the share of keys each member gets; and when membership changes
//! (not supported yet: members are fixed at build), only the keys next to
//! the changed points move. Everything here is a pure function of the
//! member list and the key, so every node computes the same owners.

use replab_api::NodeId;

use crate::hash::{Fnv1a64, key_hash};

#[derive(Clone, Debug)]
pub struct Ring {
    /// (position, member), sorted; ties between members' points (a 2^-64
    /// event) are broken by member id, so the order is still total.
    points: Vec<(u64, NodeId)>,
    members: usize,
}

/// Distinguishes ring points from any other use of the hash.
const RING_DOMAIN: &[u8] = b"replab-leaderless-ring";

impl Ring {
    /// `members` must be distinct and non-empty, `vnodes` at least 1 (the
    /// config validation guarantees both).
    pub fn new(members: &[NodeId], vnodes: u32) -> Ring {
        assert!(!members.is_empty() && vnodes > 0, "a ring needs points");
        let mut points = Vec::with_capacity(members.len() * vnodes as usize);
        for &member in members {
            for vnode in 0..u64::from(vnodes) {
                let position = Fnv1a64::new().write(RING_DOMAIN).write_u64(member).write_u64(vnode).finish_mixed();
                points.push((position, member));
            }
        }
        points.sort_unstable();
        let mut distinct: Vec<NodeId> = members.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), members.len(), "members must be distinct: {members:?}");
        Ring { points, members: members.len() }
    }

    pub fn members(&self) -> usize {
        self.members
    }

    /// The first `n` distinct members clockwise from the key's hash, in
    /// preference order (the first is the key's natural coordinator).
    pub fn owners(&self, key: &[u8], n: usize) -> Vec<NodeId> {
        assert!(n >= 1 && n <= self.members, "{n} owners asked of a ring of {} members", self.members);
        let hash = key_hash(key);
        let start = self.points.partition_point(|(position, _)| *position < hash);
        let mut owners = Vec::with_capacity(n);
        for i in 0..self.points.len() {
            let (_, member) = self.points[(start + i) % self.points.len()];
            if !owners.contains(&member) {
                owners.push(member);
                if owners.len() == n {
                    break;
                }
            }
        }
        assert_eq!(owners.len(), n, "every member has a point on the ring");
        owners
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_distinct_members_and_the_same_for_every_ring_built_alike() {
        let a = Ring::new(&[1, 2, 3, 4, 5], 16);
        let b = Ring::new(&[1, 2, 3, 4, 5], 16);
        for i in 0..200u32 {
            let key = format!("key-{i}");
            let owners = a.owners(key.as_bytes(), 3);
            assert_eq!(owners, b.owners(key.as_bytes(), 3));
            let mut sorted = owners.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), 3, "{owners:?}");
            assert!(owners.iter().all(|o| (1..=5).contains(o)));
        }
    }

    #[test]
    fn a_shorter_preference_list_is_a_prefix_of_a_longer_one() {
        let ring = Ring::new(&[1, 2, 3, 4, 5], 8);
        for i in 0..100u32 {
            let key = format!("k{i}");
            let five = ring.owners(key.as_bytes(), 5);
            assert_eq!(ring.owners(key.as_bytes(), 2), five[..2]);
        }
    }

    #[test]
    fn virtual_nodes_spread_the_first_owner_over_every_member() {
        let ring = Ring::new(&[1, 2, 3, 4, 5], 16);
        let mut first = [0u32; 6];
        for i in 0..5_000u32 {
            first[ring.owners(format!("k{i}").as_bytes(), 1)[0] as usize] += 1;
        }
        for (member, count) in first.iter().enumerate().skip(1) {
            assert!((400..=1_800).contains(count), "member {member} coordinates {count} of 5000 keys: {first:?}");
        }
    }
}
