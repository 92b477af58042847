//! The failure-detector oracle. It sees what no real detector can (who is
//! down, which links are cut) and reports it the way a heartbeat detector
//! would, late: a peer that cannot reach a node for `suspect_after_us` is
//! `Suspect` to it, for `dead_after_us` `Dead`, and `Alive` again at the
//! first look after it gets through. A restarted node starts believing
//! everyone alive and is told otherwise after the same delays. Lossy links
//! do not count as cut: the detector sees partitions and crashes only.

use replab_api::{KeyedInput, Liveness, NodeId};

use crate::keyed::checker::KeyedViolation;
use crate::keyed::world::KeyedSim;

impl KeyedSim {
    pub(crate) fn detect(&mut self) -> Result<(), KeyedViolation> {
        let config = self.options.detector;
        let now = self.now_us;
        for observer in self.members() {
            if !self.is_alive(observer) {
                continue;
            }
            for peer in self.members() {
                if peer == observer {
                    continue;
                }
                let reachable = self.is_alive(peer) && !self.network.is_cut(peer, observer);
                let (o, p) = (self.index(observer), self.index(peer));
                let node = &mut self.nodes[o];
                let since = &mut node.unreachable_since[p];
                *since = if reachable { None } else { Some(since.unwrap_or(now)) };
                let verdict = match *since {
                    Some(t) if now - t >= config.dead_after_us => Liveness::Dead,
                    Some(t) if now - t >= config.suspect_after_us => Liveness::Suspect,
                    _ => Liveness::Alive,
                };
                if node.told[p] == verdict {
                    continue;
                }
                node.told[p] = verdict;
                match verdict {
                    Liveness::Dead => self.stats.told_dead += 1,
                    Liveness::Suspect => self.stats.told_suspect += 1,
                    Liveness::Alive => self.stats.told_alive += 1,
                }
                self.step_node(observer, KeyedInput::PeerLiveness { peer, liveness: verdict })?;
            }
        }
        Ok(())
    }

    /// What `observer` was last told about `peer`.
    pub fn verdict(&self, observer: NodeId, peer: NodeId) -> Liveness {
        self.nodes[self.index(observer)].told[self.index(peer)]
    }
}
