//! Fault controls of the world beyond crash and restart (which live with
//! the node lifecycle in `sim.rs`): the network, a message filter for
//! precise scenarios, and stalled disks.

use bytes::Bytes;
use replab_api::{NodeId, ReplicationPolicy};

use crate::network::Network;
use crate::sim::Sim;
use crate::state_machine::StateMachine;

impl<P: ReplicationPolicy, M: StateMachine> Sim<P, M> {
    pub fn network_mut(&mut self) -> &mut Network {
        &mut self.network
    }

    /// Messages for which `keep(from, to, bytes)` is false are dropped at
    /// send time (for tests that need one precise message lost).
    pub fn set_filter(&mut self, keep: impl FnMut(NodeId, NodeId, &Bytes) -> bool + 'static) {
        self.filter = Some(Box::new(keep));
    }

    pub fn clear_filter(&mut self) {
        self.filter = None;
    }

    /// A stalled disk completes no sync: writes pile up unsynced, and sends
    /// that wait for them stay held.
    pub fn set_disk_stalled(&mut self, id: NodeId, stalled: bool) {
        let i = self.index(id);
        self.nodes[i].disk.stalled = stalled;
        if !stalled {
            self.maybe_start_sync(id);
        }
    }
}
