//! Counters a node keeps about its own behaviour, for reports, tests and
//! cost measurements. They are per incarnation: a restart starts them at
//! zero.

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LeaderlessStats {
    /// Gets this node coordinated (it received them from a client).
    pub reads: u64,
    /// Gets answered `Failed` because fewer than R owners replied in time.
    pub failed_reads: u64,
    /// Puts this node coordinated as an owner (its clients' and forwarded
    /// ones).
    pub writes: u64,
    /// Puts this node handed to an owner because it owns none of the key.
    pub forwarded: u64,
    /// Requests answered `Failed` at once because fewer than W (puts) or
    /// R (gets) owners were not known dead.
    pub failed_fast: u64,
    /// Puts this node answered `Unknown` (as coordinator or forwarder).
    pub unknown_writes: u64,
    /// Copies of a forwarded put this node had already taken (a
    /// `Coordinate` the network duplicated): not coordinated again.
    pub duplicate_forwards: u64,
    /// Registers sent (or merged locally) by read repair.
    pub read_repairs: u64,
    /// Digest rounds this node started.
    pub anti_entropy_rounds: u64,
    /// Keys whose register changed here because of anti-entropy.
    pub anti_entropy_keys_repaired: u64,
    /// Anti-entropy messages this node sent (all three kinds).
    pub anti_entropy_messages: u64,
    /// Bytes of those messages.
    pub anti_entropy_bytes: u64,
    /// Every message this node sent, anti-entropy included.
    pub messages_sent: u64,
    pub bytes_sent: u64,
    pub decode_errors: u64,
    pub checkpoints: u64,
}

impl LeaderlessStats {
    /// Every counter by its field name, for `KeyedPolicy::counters`.
    pub fn named(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("reads", self.reads),
            ("failed_reads", self.failed_reads),
            ("writes", self.writes),
            ("forwarded", self.forwarded),
            ("failed_fast", self.failed_fast),
            ("unknown_writes", self.unknown_writes),
            ("duplicate_forwards", self.duplicate_forwards),
            ("read_repairs", self.read_repairs),
            ("anti_entropy_rounds", self.anti_entropy_rounds),
            ("anti_entropy_keys_repaired", self.anti_entropy_keys_repaired),
            ("anti_entropy_messages", self.anti_entropy_messages),
            ("anti_entropy_bytes", self.anti_entropy_bytes),
            ("messages_sent", self.messages_sent),
            ("bytes_sent", self.bytes_sent),
            ("decode_errors", self.decode_errors),
            ("checkpoints", self.checkpoints),
        ]
    }
}
