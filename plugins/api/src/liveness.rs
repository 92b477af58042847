//! What a failure detector believes about a peer.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Liveness {
    Alive,
    /// Missed enough heartbeats to be doubted, not enough to be given up.
    Suspect,
    Dead,
}
