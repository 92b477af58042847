//! The registry's entry point: `policy = "raft"` and the `[raft]` section.

use replab_api::{ConfigError, PolicyContext, PolicyFactory, Recovered, ReplicationPolicy};

use crate::config::RaftConfig;
use crate::raft::Raft;

pub struct RaftFactory;

impl PolicyFactory for RaftFactory {
    const NAME: &'static str = "raft";

    type Config = RaftConfig;

    fn validate(config: &RaftConfig, members: usize) -> Result<(), ConfigError> {
        config.validate(members)
    }

    fn describe(config: &RaftConfig, members: usize) -> String {
        let pre_vote = if config.pre_vote { "with pre-vote" } else { "without pre-vote" };
        format!("raft on {members} members, a write commits on {} of them; {pre_vote}", members / 2 + 1)
    }

    fn build(ctx: PolicyContext, config: RaftConfig, recovered: Recovered) -> Box<dyn ReplicationPolicy> {
        Box::new(Raft::new(ctx, config, recovered))
    }
}
