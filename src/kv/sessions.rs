//! Client sessions: the idempotent receiver.
//!
//! A client numbers its requests within a session. The session remembers
//! the response to each request until the client says it has it, so a
//! retry (after a timeout, a lost reply, a leader change) returns the first
//! response instead of applying the write again. Because the session table
//! is part of the replicated state, a retry sent to a *new* leader is
//! deduplicated too: exactly-once effects across failover.
//!
//! Sessions expire after `session_expiry_ms` without a request, measured on
//! the clock carried in the log (`LoggedCommand::at_ms`), never the local
//! one, so every replica expires the same sessions at the same entry.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use replab_api::{ClientId, Seq};

use super::command::{KvError, WriteResult};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Session {
    last_active_ms: u64,
    /// Every request below this was acknowledged by the client.
    ack_below: Seq,
    responses: BTreeMap<Seq, WriteResult>,
}

/// Recently expired ids kept to tell "expired" from "never existed".
const EXPIRED_MEMORY: usize = 1024;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sessions {
    by_client: BTreeMap<ClientId, Session>,
    /// (last active, client), oldest first: the expiry order.
    by_activity: BTreeSet<(u64, ClientId)>,
    recently_expired: VecDeque<(ClientId, u64)>,
    /// The latest `at_ms` applied; never goes back.
    clock_ms: u64,
}

/// What to do with a request.
pub enum Admission {
    /// New: apply it and `record` the result.
    Apply,
    /// A retry: answer with the saved result, apply nothing.
    Duplicate(WriteResult),
    Refused(KvError),
}

impl Sessions {
    pub fn len(&self) -> usize {
        self.by_client.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_client.is_empty()
    }

    /// Moves the replicated clock and expires idle sessions.
    pub fn advance_clock(&mut self, at_ms: u64, expiry_ms: u64) {
        self.clock_ms = self.clock_ms.max(at_ms);
        while let Some(&(last_active_ms, client)) = self.by_activity.first() {
            if last_active_ms.saturating_add(expiry_ms) >= self.clock_ms {
                break;
            }
            self.by_activity.pop_first();
            self.by_client.remove(&client);
            if self.recently_expired.len() == EXPIRED_MEMORY {
                self.recently_expired.pop_front();
            }
            self.recently_expired.push_back((client, self.clock_ms - last_active_ms));
        }
    }

    pub fn register(&mut self, client: ClientId) {
        let fresh = Session { last_active_ms: self.clock_ms, ack_below: 0, responses: BTreeMap::new() };
        assert!(self.by_client.insert(client, fresh).is_none(), "client ids are log indexes, never reused");
        self.by_activity.insert((self.clock_ms, client));
    }

    /// Decides whether request `seq` of `client` is new, a retry or refused,
    /// and marks the session active.
    pub fn admit(&mut self, client: ClientId, seq: Seq, ack_below: Seq, max_saved: usize) -> Admission {
        let clock_ms = self.clock_ms;
        let Some(session) = self.by_client.get_mut(&client) else {
            let expired = self.recently_expired.iter().find(|(c, _)| *c == client);
            return Admission::Refused(match expired {
                Some(&(client, idle_ms)) => KvError::SessionExpired { client, idle_ms },
                None => KvError::UnknownSession { client },
            });
        };
        self.by_activity.remove(&(session.last_active_ms, client));
        session.last_active_ms = clock_ms;
        self.by_activity.insert((clock_ms, client));
        // The client's acknowledgement frees saved responses: this is what
        // bounds the session's memory.
        if ack_below > session.ack_below {
            session.ack_below = ack_below;
            // In place: `split_off` would allocate a new map per request.
            while let Some(oldest) = session.responses.first_entry() {
                if *oldest.key() >= ack_below {
                    break;
                }
                oldest.remove();
            }
        }
        if let Some(saved) = session.responses.get(&seq) {
            return Admission::Duplicate(saved.clone());
        }
        if seq < session.ack_below {
            return Admission::Refused(KvError::AlreadyAcknowledged { client, seq, ack_below: session.ack_below });
        }
        if session.responses.len() >= max_saved {
            return Admission::Refused(KvError::TooManyUnacknowledged { client, saved: session.responses.len() });
        }
        Admission::Apply
    }

    pub fn record(&mut self, client: ClientId, seq: Seq, result: WriteResult) {
        let session = self.by_client.get_mut(&client).expect("admitted requests have a session");
        session.responses.insert(seq, result);
    }
}
