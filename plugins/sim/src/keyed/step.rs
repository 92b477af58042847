//! Running the keyed world: the event loop, stepping a node with one
//! input and carrying out its effects (the disk, the network, replies),
//! with the checker's hooks after each.

use bytes::Bytes;
use replab_api::{KeyedEffect, KeyedInput, NodeId};

use crate::keyed::checker::{Failure, KeyedViolation};
use crate::keyed::event::KeyedEvent;
use crate::keyed::world::KeyedSim;

impl KeyedSim {
    /// Steps one live node with one input at the current virtual time and
    /// carries out its effects.
    pub(crate) fn step_node(&mut self, id: NodeId, input: KeyedInput) -> Result<(), KeyedViolation> {
        let i = self.index(id);
        let clocks = self.clocks(id);
        let node = &mut self.nodes[i];
        let Some(policy) = node.policy.as_mut() else { return Ok(()) };
        let mut out = std::mem::take(&mut node.effects);
        if let Err(e) = policy.step(clocks, input, &mut out) {
            self.stats.step_errors += 1;
            self.step_errors.push((self.now_us, id, e));
        }
        let mut result = Ok(());
        let mut persisted = false;
        for effect in out.drain() {
            if result.is_ok() {
                persisted |= matches!(effect, KeyedEffect::Persist { .. } | KeyedEffect::Checkpoint { .. });
                result = self.carry_out(id, effect);
            }
        }
        self.nodes[i].effects = out;
        result?;
        if persisted {
            self.check(|c, w| c.after_persisting_step(w, id))?;
        }
        self.maybe_start_sync(id);
        Ok(())
    }

    fn carry_out(&mut self, id: NodeId, effect: KeyedEffect) -> Result<(), KeyedViolation> {
        let i = self.index(id);
        match effect {
            KeyedEffect::Send { to, bytes, after_persist } => {
                if to == id || to == 0 || to as usize > self.nodes.len() {
                    let detail = format!("a message to node {to}, which is not a peer");
                    return Err(self.fail(Failure::new("EffectContract", Some(id), detail)));
                }
                let disk = &mut self.nodes[i].disk;
                if after_persist && disk.has_unsynced() {
                    disk.hold(to, bytes);
                    self.stats.held_sends += 1;
                } else {
                    self.send(id, to, bytes);
                }
            }
            KeyedEffect::Persist { record } => {
                let seq = self.nodes[i].disk.persist(record.clone());
                self.stats.records += 1;
                self.check(|c, w| c.on_record(w, id, seq, &record))?;
            }
            KeyedEffect::Checkpoint { state } => {
                self.nodes[i].disk.checkpoint(state.clone());
                self.stats.checkpoints += 1;
                self.check(|c, w| c.on_checkpoint(w, id, &state))?;
            }
            KeyedEffect::Reply { id: request, reply } => {
                let Some(index) = self.clients.answer(id, request, reply.clone(), self.now_us) else {
                    let detail = format!("a reply to request {request}, which is not waiting: {reply:?}");
                    return Err(self.fail(Failure::new("ReplyContract", Some(id), detail)));
                };
                self.check(|c, w| c.on_reply(w, &w.clients.ops[index]))?;
            }
        }
        Ok(())
    }

    /// Puts a message on the network.
    pub(crate) fn send(&mut self, from: NodeId, to: NodeId, bytes: Bytes) {
        for arrival_us in self.network.route(from, to, self.now_us).into_iter().flatten() {
            self.queue.schedule(arrival_us, KeyedEvent::Deliver { from, to, bytes: bytes.clone() });
        }
    }

    pub(crate) fn maybe_start_sync(&mut self, id: NodeId) {
        let i = self.index(id);
        let node = &mut self.nodes[i];
        if node.policy.is_none() {
            return;
        }
        let Some(up_to) = node.disk.sync_to_start() else { return };
        node.disk.sync_in_flight = Some(up_to);
        let incarnation = node.incarnation;
        let disk = self.options.disk;
        let latency = self.rng.range_inclusive(disk.fsync_min_us, disk.fsync_max_us.max(disk.fsync_min_us));
        self.queue.schedule(self.now_us + latency, KeyedEvent::SyncDone { node: id, incarnation, up_to });
    }

    fn complete_sync(&mut self, id: NodeId, up_to: u64) -> Result<(), KeyedViolation> {
        let i = self.index(id);
        let (new_records, released) = self.nodes[i]
            .disk
            .complete_sync(up_to)
            .map_err(|e| self.fail(Failure::new("EffectContract", Some(id), format!("disk write: {e}"))))?;
        for (to, bytes) in released {
            self.send(id, to, bytes);
        }
        if new_records {
            let up_to = self.nodes[i].disk.durable.last_seq;
            self.check(|c, w| c.on_durable(w, id, up_to))?;
            self.step_node(id, KeyedInput::Persisted { up_to })?;
        }
        self.maybe_start_sync(id);
        Ok(())
    }

    fn is_current(&self, id: NodeId, incarnation: u64) -> bool {
        let node = &self.nodes[self.index(id)];
        node.incarnation == incarnation && node.policy.is_some()
    }

    fn handle(&mut self, at_us: u64, event: KeyedEvent) -> Result<(), KeyedViolation> {
        assert!(at_us >= self.now_us, "virtual time went backwards");
        self.now_us = at_us;
        self.events += 1;
        match event {
            KeyedEvent::Tick { node, incarnation } => {
                if self.is_current(node, incarnation) {
                    self.step_node(node, KeyedInput::Tick)?;
                    let at = self.now_us + self.options.tick_interval_us;
                    self.queue.schedule(at, KeyedEvent::Tick { node, incarnation });
                }
            }
            KeyedEvent::Deliver { from, to, bytes } => {
                if self.is_alive(to) && !self.network.is_cut(from, to) {
                    self.network.stats.delivered += 1;
                    self.step_node(to, KeyedInput::Message { from, bytes })?;
                } else {
                    self.network.stats.dropped += 1;
                }
            }
            KeyedEvent::SyncDone { node, incarnation, up_to } => {
                if self.is_current(node, incarnation) {
                    self.complete_sync(node, up_to)?;
                }
            }
            KeyedEvent::Detector => {
                self.detect()?;
                let at = self.now_us + self.options.detector.interval_us;
                self.queue.schedule(at, KeyedEvent::Detector);
            }
        }
        Ok(())
    }

    /// Processes the next event (there always is one: the detector).
    pub fn step(&mut self) -> Result<(), KeyedViolation> {
        self.guard()?;
        if let Some((at_us, event)) = self.queue.pop() {
            self.handle(at_us, event)?;
        }
        Ok(())
    }

    /// Runs every event up to and including `time_us`, then sets the clock
    /// there.
    pub fn run_until(&mut self, time_us: u64) -> Result<(), KeyedViolation> {
        self.guard()?;
        while self.queue.peek_time().is_some_and(|t| t <= time_us) {
            self.step()?;
        }
        self.now_us = self.now_us.max(time_us);
        Ok(())
    }

    pub fn run_for(&mut self, duration_us: u64) -> Result<(), KeyedViolation> {
        self.run_until(self.now_us + duration_us)
    }
}
