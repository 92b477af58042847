//! Gets, at whichever node received them (owner or not), and read repair.
//!
//! The coordinator asks every owner for its register, answers with the
//! merge of the first R replies, and keeps listening until every owner
//! answered or the deadline passed: with read repair on, each owner whose
//! register differs from the merge of everything heard so far is sent that
//! merge. A get changes no version, so a get that hears fewer than R
//! owners in time is `Failed`, never `Unknown`.
//!
//! This node's own register counts as a reply only once every record it
//! depends on is durable, the same rule replicas follow (they answer
//! `Fetch` with `after_persist`): a read must not show a version this node
//! could still lose in a crash, whose dot it could then reuse.

use std::collections::BTreeMap;

use bytes::Bytes;
use replab_api::{ConflictResolver, Instant, KeyedEffects, KeyedReply, NodeId, RequestId, StepError};

use crate::leaderless::Leaderless;
use crate::message::Message;
use crate::store::encode_register;

#[derive(Clone, Debug)]
pub struct PendingRead<Reg> {
    client: RequestId,
    key: Bytes,
    owners: Vec<NodeId>,
    /// Each owner's register as it answered (as repaired, after a repair).
    replies: BTreeMap<NodeId, Reg>,
    /// The merge of every reply so far.
    merged: Reg,
    answered: bool,
    /// This node's register, waiting for the record `.0` to be durable.
    local: Option<(u64, Reg)>,
    deadline: Instant,
}

impl<R: ConflictResolver> Leaderless<R> {
    pub(crate) fn get(&mut self, id: RequestId, key: Bytes, out: &mut KeyedEffects) {
        let owners = self.owners(&key);
        let quorum = self.config.read_quorum;
        let alive = self.alive(&owners);
        if alive < quorum {
            self.stats.failed_fast += 1;
            let reason = format!(
                "only {alive} of the key's {} owners are not known dead; the read quorum is {quorum}",
                owners.len()
            );
            self.reply(id, KeyedReply::Failed { reason }, out);
            return;
        }
        self.stats.reads += 1;
        let tag = self.next_tag();
        let me = self.id;
        for &owner in owners.iter().filter(|o| **o != me) {
            self.send(owner, &Message::Fetch { tag, key: key.clone() }, false, out);
        }
        let local = self.is_owner(&owners).then(|| (self.log.last_seq, self.store.register(&key)));
        let read = PendingRead {
            client: id,
            key,
            owners,
            replies: BTreeMap::new(),
            merged: R::Register::default(),
            answered: false,
            local: None,
            deadline: self.deadline(),
        };
        self.reads.insert(tag, read);
        match local {
            Some((seq, register)) if seq <= self.log.durable_seq => self.read_reply(tag, self.id, register, out),
            Some(waiting) => self.reads.get_mut(&tag).expect("just inserted").local = Some(waiting),
            None => {}
        }
    }

    pub(crate) fn on_fetched(
        &mut self,
        from: NodeId,
        tag: u64,
        register: &[u8],
        out: &mut KeyedEffects,
    ) -> Result<(), StepError> {
        let register = self.decode_peer_register(from, register)?;
        let Some(read) = self.reads.get(&tag) else {
            return Ok(()); // every owner answered, or the deadline passed
        };
        if !read.owners.contains(&from) {
            return Err(StepError::Rejected(format!("node {from} answered a read of a key it does not own")));
        }
        self.read_reply(tag, from, register, out);
        Ok(())
    }

    /// This node's records up to `up_to` are durable: reads waiting on
    /// them may count this node's register.
    pub(crate) fn reads_durable(&mut self, up_to: u64, out: &mut KeyedEffects) {
        let ready: Vec<(u64, R::Register)> = self
            .reads
            .iter_mut()
            .filter(|(_, r)| r.local.as_ref().is_some_and(|(seq, _)| *seq <= up_to))
            .map(|(tag, r)| (*tag, r.local.take().expect("just checked").1))
            .collect();
        let id = self.id;
        for (tag, register) in ready {
            self.read_reply(tag, id, register, out);
        }
    }

    fn read_reply(&mut self, tag: u64, from: NodeId, register: R::Register, out: &mut KeyedEffects) {
        let quorum = self.config.read_quorum;
        let Some(read) = self.reads.get_mut(&tag) else { return };
        if read.replies.contains_key(&from) {
            return; // a duplicate
        }
        assert!(read.owners.contains(&from), "node {from} answered a read of a key it does not own");
        R::merge(&mut read.merged, &register);
        read.replies.insert(from, register);
        let mut answer = None;
        if !read.answered && read.replies.len() >= quorum {
            read.answered = true;
            let (values, context) = R::read(&read.merged);
            answer = Some((read.client, KeyedReply::Values { values, context }));
        }
        let (answered, complete) = (read.answered, read.replies.len() == read.owners.len());
        if let Some((client, reply)) = answer {
            self.reply(client, reply, out);
        }
        if answered && self.config.read_repair {
            self.read_repair(tag, out);
        }
        if complete {
            self.reads.remove(&tag);
        }
    }

    /// Sends the merge to every owner whose last known register differs.
    fn read_repair(&mut self, tag: u64, out: &mut KeyedEffects) {
        let Some(read) = self.reads.get_mut(&tag) else { return };
        let stale: Vec<NodeId> =
            read.replies.iter().filter(|(_, r)| **r != read.merged).map(|(owner, _)| *owner).collect();
        if stale.is_empty() {
            return;
        }
        let merged = read.merged.clone();
        for owner in &stale {
            read.replies.insert(*owner, merged.clone());
        }
        let key = read.key.clone();
        let bytes = encode_register(&merged);
        for owner in stale {
            self.stats.read_repairs += 1;
            if owner == self.id {
                self.absorb(&key, &merged, out);
            } else {
                // Every version in the merge is durable at the node that
                // wrote it already; after_persist keeps the rule uniform:
                // no message carrying a register leaves before this node's
                // earlier records are durable.
                let store = Message::Store { key: key.clone(), register: bytes.clone(), ack: None };
                self.send(owner, &store, true, out);
            }
        }
    }

    pub(crate) fn expire_reads(&mut self, out: &mut KeyedEffects) {
        let now = self.clocks.now;
        let expired: Vec<u64> = self.reads.iter().filter(|(_, r)| r.deadline <= now).map(|(t, _)| *t).collect();
        for tag in expired {
            let read = self.reads.remove(&tag).expect("just seen");
            if read.answered {
                continue; // only read repair was still listening
            }
            self.stats.failed_reads += 1;
            let reason = format!(
                "{} of the {} replies needed within {} ms",
                read.replies.len(),
                self.config.read_quorum,
                self.config.request_timeout_ms
            );
            self.reply(read.client, KeyedReply::Failed { reason }, out);
        }
    }
}
