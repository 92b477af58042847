//! Counters a node keeps about its own behaviour, for reports and tests.
//! They are per incarnation: a restart starts them at zero.

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RaftStats {
    /// PreVote rounds started (each may or may not lead to an election).
    pub pre_votes_started: u64,
    /// Real elections started (the term was raised).
    pub elections_started: u64,
    /// Elections this node won.
    pub times_elected: u64,
    /// Times the known leader changed to another node.
    pub leader_changes: u64,
    pub messages_sent: u64,
    pub bytes_sent: u64,
    pub appends_sent: u64,
    pub heartbeats_sent: u64,
    /// Rejected appends received by this node as leader.
    pub append_rejections: u64,
    /// Log suffixes this node truncated as follower.
    pub truncations: u64,
    pub snapshots_sent: u64,
    pub snapshots_installed: u64,
    pub reads_confirmed: u64,
    /// Times CheckQuorum made this leader step down.
    pub check_quorum_step_downs: u64,
    pub transfers_started: u64,
    pub transfers_aborted: u64,
    pub decode_errors: u64,
    /// A blank node learned that every other member holds no data either.
    pub memory_restored_by_empty_cluster: u64,
    /// A node that lost state caught up with its leader (or its old log).
    pub memory_restored_by_catch_up: u64,
    /// As leader: a follower said it lost state, so its progress restarted.
    pub progress_resets_after_memory_loss: u64,
}

impl RaftStats {
    /// Every counter by its field name, for `ReplicationPolicy::counters`.
    pub fn named(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("pre_votes_started", self.pre_votes_started),
            ("elections_started", self.elections_started),
            ("times_elected", self.times_elected),
            ("leader_changes", self.leader_changes),
            ("messages_sent", self.messages_sent),
            ("bytes_sent", self.bytes_sent),
            ("appends_sent", self.appends_sent),
            ("heartbeats_sent", self.heartbeats_sent),
            ("append_rejections", self.append_rejections),
            ("truncations", self.truncations),
            ("snapshots_sent", self.snapshots_sent),
            ("snapshots_installed", self.snapshots_installed),
            ("reads_confirmed", self.reads_confirmed),
            ("check_quorum_step_downs", self.check_quorum_step_downs),
            ("transfers_started", self.transfers_started),
            ("transfers_aborted", self.transfers_aborted),
            ("decode_errors", self.decode_errors),
            ("memory_restored_by_empty_cluster", self.memory_restored_by_empty_cluster),
            ("memory_restored_by_catch_up", self.memory_restored_by_catch_up),
            ("progress_resets_after_memory_loss", self.progress_resets_after_memory_loss),
        ]
    }
}
