//! The admin channel: what the lab (`replab run` on processes) asks of a
//! node it started, over the node's authenticated client port.
//!
//! A node takes these requests only when started with the lab flag
//! `--allow-fault-injection` (`NodeSpec::lab`); any other node refuses
//! them with an error naming the flag. They do to the node what an
//! in-process cluster does from outside: link rules in the node's own
//! fault table (it applies them on its sending side, as the shared table
//! does in-process), its wall clock's skew, a power loss, and the
//! observations a check needs (the store, a keyed policy's replicas).

use std::sync::atomic::Ordering;

use tracing::warn;

use super::Command;
use super::event_loop::{NodeLoop, Replica};
use super::requests::ReplyTo;
use crate::client::protocol::{AdminRequest, ErrorKind, ResponseBody};

/// What a node without the lab flag answers.
pub const REFUSED: &str = "admin requests (fault injection) are refused: this node was not started by the lab \
                           (`replab node --allow-fault-injection`)";

impl NodeLoop {
    pub(super) fn on_admin(&mut self, request: AdminRequest, to: ReplyTo) {
        if !self.lab {
            self.stats.bad_requests += 1;
            return to.error(ErrorKind::BadRequest, REFUSED);
        }
        match request {
            AdminRequest::Links { rules } => {
                for (from, peer, faults) in rules {
                    if let Err(e) = self.faults.set(from, peer, faults) {
                        return to.error(ErrorKind::BadRequest, format!("link {from} -> {peer}: {e}"));
                    }
                }
                to.send(ResponseBody::AdminDone);
            }
            AdminRequest::ClockSkew { ms } => {
                self.clock.set_skew_ms(ms);
                to.send(ResponseBody::AdminDone);
            }
            AdminRequest::PowerLoss => {
                warn!(node = self.id, "power loss (asked by the lab): what was not fdatasynced is lost");
                // The loop crashes at the end of this turn, exactly as
                // `NodeHandle::power_loss` makes it; no answer is sent.
                self.power_loss.store(true, Ordering::Release);
                self.power_off = true;
            }
            AdminRequest::Dump => to.send(ResponseBody::Dump(self.kv.dump().into_iter().collect())),
            AdminRequest::Replicas => {
                let state = match &self.replica {
                    Replica::Keyed(keyed) => keyed.policy.replica_state(),
                    Replica::Log(_) => Vec::new(),
                };
                to.send(ResponseBody::Replicas(state));
            }
            AdminRequest::TransferLeader { to: target } => {
                self.on_command(Command::TransferLeader(target));
                to.send(ResponseBody::AdminDone);
            }
        }
    }
}
