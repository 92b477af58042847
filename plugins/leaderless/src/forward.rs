//! A put at a node that owns none of the key: it hands the put to the
//! first owner its failure detector does not call dead (`Coordinate`) and
//! relays the answer (`Coordinated`). Puts must be coordinated by an owner
//! because only an owner may generate a version's dot (see `writes.rs`).

use bytes::Bytes;
use replab_api::{ConflictResolver, Instant, KeyedEffects, KeyedReply, NodeId, RequestId, StepError};

use crate::leaderless::Leaderless;
use crate::message::Message;

#[derive(Clone, Debug)]
pub struct PendingForward {
    client: RequestId,
    coordinator: NodeId,
    deadline: Instant,
}

impl<R: ConflictResolver> Leaderless<R> {
    pub(crate) fn forward(
        &mut self,
        id: RequestId,
        key: Bytes,
        value: Option<Bytes>,
        context: Bytes,
        owners: Vec<NodeId>,
        out: &mut KeyedEffects,
    ) {
        let quorum = self.config.write_quorum;
        let alive = self.alive(&owners);
        let coordinator = owners.iter().copied().find(|o| !self.dead.contains(o));
        let Some(coordinator) = coordinator.filter(|_| alive >= quorum) else {
            self.stats.failed_fast += 1;
            let reason = format!(
                "only {alive} of the key's {} owners are not known dead; the write quorum is {quorum}",
                owners.len()
            );
            self.reply(id, KeyedReply::Failed { reason }, out);
            return;
        };
        let tag = self.next_tag();
        self.send(coordinator, &Message::Coordinate { tag, key, value, context }, false, out);
        self.stats.forwarded += 1;
        // The coordinator has a whole timeout for its quorum; the answer
        // still has to come back.
        let deadline = self.clocks.now.add_millis(self.config.request_timeout_ms.saturating_mul(2));
        self.forwards.insert(tag, PendingForward { client: id, coordinator, deadline });
    }

    pub(crate) fn on_coordinated(
        &mut self,
        from: NodeId,
        tag: u64,
        reply: KeyedReply,
        out: &mut KeyedEffects,
    ) -> Result<(), StepError> {
        let Some(forward) = self.forwards.get(&tag) else {
            return Ok(()); // timed out already
        };
        if forward.coordinator != from {
            return Err(StepError::Rejected(format!(
                "node {from} answered a put forwarded to node {}",
                forward.coordinator
            )));
        }
        let forward = self.forwards.remove(&tag).expect("just seen");
        self.reply(forward.client, reply, out);
        Ok(())
    }

    pub(crate) fn expire_forwards(&mut self, out: &mut KeyedEffects) {
        let now = self.clocks.now;
        let expired: Vec<u64> = self.forwards.iter().filter(|(_, f)| f.deadline <= now).map(|(t, _)| *t).collect();
        for tag in expired {
            let forward = self.forwards.remove(&tag).expect("just seen");
            self.stats.unknown_writes += 1;
            let reason = format!(
                "coordinator {} did not answer within {} ms; the write may have been applied",
                forward.coordinator,
                self.config.request_timeout_ms.saturating_mul(2)
            );
            self.reply(forward.client, KeyedReply::Unknown { reason }, out);
        }
    }
}
