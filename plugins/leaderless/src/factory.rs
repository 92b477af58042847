//! The registry's entry point: `policy.replication = "leaderless"` and the
//! `[leaderless]` section.

use replab_api::{
    Clocks, ConfigError, ConflictResolver, KeyState, KeyedEffect, KeyedEffects, KeyedFactory, KeyedInput, KeyedPolicy,
    KeyedRecovered, KeyedReply, NodeId, PolicyContext, PolicyStatus, Role, StepError,
};

use crate::config::LeaderlessConfig;
use crate::leaderless::Leaderless;

pub struct LeaderlessFactory;

impl KeyedFactory for LeaderlessFactory {
    const NAME: &'static str = "leaderless";

    type Config = LeaderlessConfig;

    fn validate(config: &LeaderlessConfig, members: usize) -> Result<(), ConfigError> {
        config.validate(members)
    }

    /// Builds the node with [`Leaderless::recover`]. That can fail (an
    /// undecodable record, say), and this signature has no room for an
    /// error, while panicking or skipping the record are both worse; so a
    /// failed recovery builds an [`Unavailable`] policy that answers every
    /// client request `Failed` with the reason. The engine should call
    /// `recover` itself and refuse to start instead.
    fn build<R: ConflictResolver>(
        ctx: PolicyContext,
        config: LeaderlessConfig,
        recovered: KeyedRecovered,
    ) -> Box<dyn KeyedPolicy> {
        let id = ctx.id;
        match Leaderless::<R>::recover(ctx, config, recovered) {
            Ok(node) => Box::new(node),
            Err(reason) => Box::new(Unavailable { id, reason }),
        }
    }
}

/// A node whose state could not be recovered: it holds nothing, sends
/// nothing, refuses peers' messages and answers every client request
/// `Failed` naming why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unavailable {
    pub id: NodeId,
    pub reason: String,
}

impl KeyedPolicy for Unavailable {
    fn step(&mut self, _clocks: Clocks, input: KeyedInput, out: &mut KeyedEffects) -> Result<(), StepError> {
        match input {
            KeyedInput::Client { id, .. } => {
                let reason = format!("node {} could not recover its state: {}", self.id, self.reason);
                out.push(KeyedEffect::Reply { id, reply: KeyedReply::Failed { reason } });
                Ok(())
            }
            KeyedInput::Message { .. } => {
                Err(StepError::Rejected(format!("node {} is unavailable: {}", self.id, self.reason)))
            }
            KeyedInput::Tick | KeyedInput::Persisted { .. } | KeyedInput::PeerLiveness { .. } => Ok(()),
        }
    }

    fn status(&self) -> PolicyStatus {
        PolicyStatus {
            id: self.id,
            role: Role::Peer,
            term: 0,
            leader: None,
            first_index: 1,
            last_index: 0,
            commit_index: 0,
            applied_index: 0,
            durable_index: 0,
        }
    }

    fn replica_state(&self) -> Vec<KeyState> {
        Vec::new()
    }
}
