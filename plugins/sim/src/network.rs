//! The seeded network: per directed link delay, loss, duplication and
//! reordering, plus cuts (one-way), partitions, isolation and heal.
//!
//! The network decides at send time how many copies of a message arrive
//! and when; a link cut while a message is in flight drops it on arrival,
//! as a reset connection would.
//!
//! A link is FIFO, like the engine's TCP connections: a message never
//! arrives before one sent earlier on the same link, whatever delays were
//! drawn. Only messages picked for reordering (and duplicate copies) skip
//! that rule, and later messages may overtake them.

use replab_api::{NodeId, PluginRng};

use crate::options::LinkConfig;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetworkStats {
    pub sent: u64,
    pub delivered: u64,
    pub dropped: u64,
    pub duplicated: u64,
    pub reordered: u64,
}

pub struct Network {
    nodes: usize,
    /// Indexed `(from - 1) * nodes + (to - 1)`.
    links: Vec<LinkConfig>,
    cut: Vec<bool>,
    /// Latest in-order arrival time per link, for FIFO delivery.
    last_arrival_us: Vec<u64>,
    rng: PluginRng,
    pub stats: NetworkStats,
}

impl Network {
    pub fn new(nodes: usize, link: LinkConfig, seed: u64) -> Network {
        Network {
            nodes,
            links: vec![link; nodes * nodes],
            cut: vec![false; nodes * nodes],
            last_arrival_us: vec![0; nodes * nodes],
            rng: PluginRng::from_seed_u64(seed),
            stats: NetworkStats::default(),
        }
    }

    fn slot(&self, from: NodeId, to: NodeId) -> usize {
        assert!(from >= 1 && to >= 1 && from as usize <= self.nodes && to as usize <= self.nodes, "unknown link");
        (from as usize - 1) * self.nodes + (to as usize - 1)
    }

    pub fn set_all_links(&mut self, link: LinkConfig) {
        self.links.iter_mut().for_each(|l| *l = link);
    }

    pub fn set_link(&mut self, from: NodeId, to: NodeId, link: LinkConfig) {
        let slot = self.slot(from, to);
        self.links[slot] = link;
    }

    pub fn link(&self, from: NodeId, to: NodeId) -> LinkConfig {
        self.links[self.slot(from, to)]
    }

    pub fn is_cut(&self, from: NodeId, to: NodeId) -> bool {
        self.cut[self.slot(from, to)]
    }

    /// Cuts the link one way: `from`'s messages no longer reach `to`.
    pub fn cut(&mut self, from: NodeId, to: NodeId) {
        let slot = self.slot(from, to);
        self.cut[slot] = true;
    }

    pub fn isolate(&mut self, node: NodeId) {
        for other in 1..=self.nodes as NodeId {
            if other != node {
                self.cut(node, other);
                self.cut(other, node);
            }
        }
    }

    /// Splits the cluster: nodes in different groups cannot talk. Nodes in
    /// no group are isolated.
    pub fn partition(&mut self, groups: &[&[NodeId]]) {
        let group_of = |n: NodeId| groups.iter().position(|g| g.contains(&n));
        for a in 1..=self.nodes as NodeId {
            for b in 1..=self.nodes as NodeId {
                if a != b && (group_of(a).is_none() || group_of(a) != group_of(b)) {
                    self.cut(a, b);
                }
            }
        }
    }

    pub fn heal(&mut self) {
        self.cut.iter_mut().for_each(|c| *c = false);
    }

    /// Decides the fate of one message sent at `now_us`: the arrival times
    /// of the copies that will arrive, none if it is dropped.
    pub fn route(&mut self, from: NodeId, to: NodeId, now_us: u64) -> [Option<u64>; 2] {
        self.stats.sent += 1;
        let slot = self.slot(from, to);
        let link = self.links[slot];
        if self.cut[slot] || self.rng.chance(link.drop_probability) {
            self.stats.dropped += 1;
            return [None, None];
        }
        let delay = self.delay(&link);
        let first = if link.reorder_extra_max_us > 0 && self.rng.chance(link.reorder_probability) {
            self.stats.reordered += 1;
            now_us + delay + self.rng.range_inclusive(0, link.reorder_extra_max_us)
        } else {
            let arrival = (now_us + delay).max(self.last_arrival_us[slot]);
            self.last_arrival_us[slot] = arrival;
            arrival
        };
        let second = if self.rng.chance(link.duplicate_probability) {
            self.stats.duplicated += 1;
            Some(now_us + self.delay(&link) + self.rng.range_inclusive(0, link.reorder_extra_max_us))
        } else {
            None
        };
        [Some(first), second]
    }

    fn delay(&mut self, link: &LinkConfig) -> u64 {
        self.rng.range_inclusive(link.delay_min_us, link.delay_max_us.max(link.delay_min_us))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_cut_across_groups_only() {
        let mut net = Network::new(5, LinkConfig::BENIGN, 1);
        net.partition(&[&[1, 2], &[3, 4, 5]]);
        assert!(!net.is_cut(1, 2));
        assert!(net.is_cut(1, 3));
        assert!(net.is_cut(5, 2));
        assert!(!net.is_cut(4, 5));
        net.heal();
        assert!(!net.is_cut(1, 3));
        net.isolate(4);
        assert!(net.is_cut(4, 1) && net.is_cut(1, 4) && !net.is_cut(1, 2));
    }

    #[test]
    fn links_are_fifo_unless_a_message_is_picked_for_reordering() {
        let link = LinkConfig { delay_min_us: 10, delay_max_us: 5_000, ..LinkConfig::BENIGN };
        let mut net = Network::new(2, link, 3);
        let arrivals: Vec<u64> = (0..1_000).map(|t| net.route(1, 2, t).into_iter().flatten().next().unwrap()).collect();
        assert!(arrivals.windows(2).all(|w| w[0] <= w[1]), "FIFO link delivered out of order");
        let link = LinkConfig { reorder_probability: 0.5, reorder_extra_max_us: 10_000, ..link };
        net.set_all_links(link);
        let arrivals: Vec<u64> =
            (1_000..2_000).map(|t| net.route(1, 2, t).into_iter().flatten().next().unwrap()).collect();
        assert!(arrivals.windows(2).any(|w| w[0] > w[1]), "reordering never happened");
    }

    #[test]
    fn lossy_links_drop_and_duplicate_with_their_probabilities() {
        let link = LinkConfig { drop_probability: 0.2, duplicate_probability: 0.1, ..LinkConfig::BENIGN };
        let mut net = Network::new(2, link, 7);
        for _ in 0..10_000 {
            net.route(1, 2, 0);
        }
        let s = net.stats;
        assert!((1_500..2_500).contains(&s.dropped), "{s:?}");
        assert!((500..1_100).contains(&s.duplicated), "{s:?}");
    }
}
