//! Snapshots: the state machine's state at one log index.
//!
//! A snapshot lets the log be compacted: every entry at or below
//! `meta.last_included.index` can be deleted (that index becomes the low
//! watermark), and a follower that fell behind the compaction point is
//! brought up to date by installing the snapshot instead of replaying
//! entries it can no longer be sent.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::entry::LogPosition;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// The last entry whose effect the snapshot contains.
    pub last_included: LogPosition,
}

/// A snapshot's metadata and the state machine's serialized state. The
/// bytes are opaque to plugins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub meta: SnapshotMeta,
    pub data: Bytes,
}
