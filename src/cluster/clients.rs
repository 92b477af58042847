//! Clients of a cluster: free ones, ones pinned to one node, and ones that
//! know only some nodes (one side of a partition).

use std::net::SocketAddr;
use std::time::Duration;

use replab_api::NodeId;

use super::{Cluster, ClusterError};
use crate::client::{Client, ClientOptions};

impl Cluster {
    /// A client for this cluster (each gets its own name).
    pub fn client(&mut self) -> Client {
        let nodes = self.client_addrs();
        self.client_of(nodes, false)
    }

    /// A client bound to node `id`: it never follows a redirect nor tries
    /// another node, so what it sees is what that node does.
    pub fn pinned_client(&mut self, id: NodeId) -> Result<Client, ClusterError> {
        let addr = self.client_addr(id).ok_or(ClusterError::NoSuchNode(id))?;
        Ok(self.client_of(vec![addr], true))
    }

    /// A client that knows only `ids` (one side of a partition, say): it
    /// follows redirects and retries among them, and never elsewhere.
    pub fn client_of_nodes(&mut self, ids: &[NodeId]) -> Result<Client, ClusterError> {
        let addrs = ids
            .iter()
            .map(|id| self.client_addr(*id).ok_or(ClusterError::NoSuchNode(*id)))
            .collect::<Result<_, _>>()?;
        Ok(self.client_of(addrs, false))
    }

    fn client_of(&mut self, nodes: Vec<SocketAddr>, pinned: bool) -> Client {
        self.clients_made += 1;
        let node = &self.settings.node;
        Client::new(ClientOptions {
            nodes,
            cluster_id: self.settings.cluster.id.clone(),
            secret: self.settings.cluster.secret.clone(),
            net: self.settings.net.clone(),
            op_timeout: Duration::from_millis(node.request_timeout_ms.max(1_000)),
            attempt_timeout: Duration::from_millis((node.request_timeout_ms / 2).clamp(200, 2_000)),
            name: 1_000_000 + self.clients_made,
            pinned,
        })
    }
}
