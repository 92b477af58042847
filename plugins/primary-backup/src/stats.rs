//! Counters a node keeps about its own behaviour, for reports and tests.
//! They are per incarnation: a restart starts them at zero.

/// Declares the counters once: the struct fields and their names for
/// `ReplicationPolicy::counters` cannot drift apart.
macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct PrimaryBackupStats {
            $($(#[$doc])* pub $name: u64,)*
        }

        impl PrimaryBackupStats {
            /// Every counter by its field name.
            pub fn named(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name)),*]
            }
        }
    };
}

counters! {
    /// Claims this node started (each raised the generation).
    takeovers_started,
    /// Claims this node won.
    became_primary,
    /// Times this node stopped being primary (a higher generation).
    stepped_down,
    /// Promises this node gave to claimants.
    promises_granted,
    /// Claims this node refused (older generation, promised elsewhere, or
    /// a less up-to-date log).
    promises_refused,
    /// As backup: appends and snapshots refused because they came from an
    /// older generation's primary.
    appends_rejected_lower_generation,
    /// As backup: snapshots installed over an applied state that held
    /// entries the primary never had (async's discarded acknowledgements).
    rollbacks,
    /// As backup: divergences reported to the primary.
    divergences_reported,
    /// As primary (async): entries acknowledged before any backup had them.
    acks_before_replication,
    /// As backup: log suffixes truncated on a conflict.
    truncations,
    snapshots_sent,
    snapshots_installed,
    messages_sent,
    bytes_sent,
    appends_sent,
    heartbeats_sent,
    reads_confirmed,
    decode_errors,
    /// A node that lost durable state caught up with its primary.
    memory_restored,
    /// A blank node learned that every other member holds no data either
    /// (a first start of the whole cluster).
    memory_restored_by_empty_cluster,
}
