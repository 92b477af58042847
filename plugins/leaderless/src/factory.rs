//! The registry's entry point: `policy.replication = "leaderless"` and the
//! `[leaderless]` section.

use replab_api::{ConfigError, ConflictResolver, KeyedFactory, KeyedPolicy, KeyedRecovered, PolicyContext};

use crate::config::LeaderlessConfig;
use crate::leaderless::Leaderless;

pub struct LeaderlessFactory;

impl KeyedFactory for LeaderlessFactory {
    const NAME: &'static str = "leaderless";

    type Config = LeaderlessConfig;

    fn validate(config: &LeaderlessConfig, members: usize) -> Result<(), ConfigError> {
        config.validate(members)
    }

    /// Whether the quorums overlap is the first thing to know about a
    /// leaderless configuration: without overlap a read may miss a write
    /// that was acknowledged.
    fn describe(config: &LeaderlessConfig, members: usize) -> String {
        let (n, w, r) = (config.replicas, config.write_quorum, config.read_quorum);
        let overlap = if config.quorums_overlap() {
            format!("quorums overlap (R + W = {} > N)", r + w)
        } else {
            format!("quorums do not overlap (R + W = {} <= N): a read may miss an acknowledged write", r + w)
        };
        format!("leaderless on {members} members, N={n} W={w} R={r}; {overlap}")
    }

    /// Builds the node with [`Leaderless::recover`]: an undecodable record
    /// or checkpoint, a bad config or a non-member is an error naming it,
    /// and the engine refuses to start the node.
    fn build<R: ConflictResolver>(
        ctx: PolicyContext,
        config: LeaderlessConfig,
        recovered: KeyedRecovered,
    ) -> Result<Box<dyn KeyedPolicy>, String> {
        Leaderless::<R>::recover(ctx, config, recovered).map(|node| Box::new(node) as Box<dyn KeyedPolicy>)
    }
}
