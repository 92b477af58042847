//! The messages leaderless nodes exchange, and their wire encoding
//! (postcard).
//!
//! Registers travel as their own postcard encoding (`Bytes`), opaque here:
//! only the node's resolver can decode them, which the receiver does
//! before acting on any of them, so a message with one bad register
//! changes nothing. Peer bytes are untrusted: decoding rejects trailing
//! garbage, and [`Message::validate`] bounds every size, so a peer cannot
//! make a node allocate or loop beyond what its frame already cost.

use bytes::Bytes;
use replab_api::KeyedReply;
use serde::{Deserialize, Serialize};

/// Longest key a client may use; longer ones are refused.
pub const MAX_KEY_BYTES: usize = 64 * 1024;
/// Most anti-entropy buckets (and so digest entries).
pub const MAX_BUCKETS: usize = 65_536;
/// Most registers one anti-entropy message carries; the sender stops
/// adding buckets there (see `anti_entropy.rs`).
pub const MAX_REGISTERS_PER_MESSAGE: usize = 4_096;
/// Most siblings a relayed reply may carry.
pub const MAX_VALUES_PER_REPLY: usize = 65_536;
/// Longest reason text a relayed `Failed`/`Unknown` may carry.
pub const MAX_REASON_BYTES: usize = 4_096;
/// Most ring points per member.
pub const MAX_VNODES: u32 = 1_024;

/// One key and its register's encoding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRegister {
    pub key: Bytes,
    pub register: Bytes,
}

/// Request tags are chosen by the node that waits for the answer and only
/// mean something to it (see `Leaderless::next_tag`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// A non-owner hands a put to an owner of the key, which coordinates it.
    Coordinate { tag: u64, key: Bytes, value: Option<Bytes>, context: Bytes },
    /// The coordinator's answer to a `Coordinate`: `Written`, `Failed` or
    /// `Unknown`, relayed to the client as is.
    Coordinated { tag: u64, reply: KeyedReply },
    /// A register to merge: a coordinator's write (`ack: Some(tag)`, answered
    /// with `Stored` once durable) or a read repair (`ack: None`).
    Store { key: Bytes, register: Bytes, ack: Option<u64> },
    /// The replica durably holds (a register covering) what `Store` carried.
    Stored { tag: u64 },
    /// A read coordinator asks an owner for its register of `key`.
    Fetch { tag: u64, key: Bytes },
    /// The owner's register (the default register if it never saw the key).
    Fetched { tag: u64, register: Bytes },
    /// Anti-entropy, step 1: one digest per bucket over the keys both the
    /// sender and the receiver replicate.
    Digests { round: u64, digests: Vec<u64> },
    /// Step 2: the receiver's registers in the buckets whose digests
    /// differ (`buckets`, ascending), asking for the sender's in return.
    DiffRegisters { round: u64, buckets: Vec<u32>, registers: Vec<KeyRegister> },
    /// Step 3: the initiator's registers in those buckets that differ from
    /// what step 2 carried.
    RepairRegisters { round: u64, registers: Vec<KeyRegister> },
}

impl Message {
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Coordinate { .. } => "coordinate",
            Message::Coordinated { .. } => "coordinated",
            Message::Store { .. } => "store",
            Message::Stored { .. } => "stored",
            Message::Fetch { .. } => "fetch",
            Message::Fetched { .. } => "fetched",
            Message::Digests { .. } => "digests",
            Message::DiffRegisters { .. } => "diff registers",
            Message::RepairRegisters { .. } => "repair registers",
        }
    }

    /// True for the three anti-entropy messages, whose cost is counted
    /// apart.
    pub fn is_anti_entropy(&self) -> bool {
        matches!(self, Message::Digests { .. } | Message::DiffRegisters { .. } | Message::RepairRegisters { .. })
    }

    pub fn encode(&self) -> Bytes {
        Bytes::from(postcard::to_allocvec(self).expect("encoding into a Vec cannot fail"))
    }

    /// Decodes and validates untrusted bytes from a peer.
    pub fn decode(bytes: &[u8]) -> Result<Message, String> {
        let (message, rest) = postcard::take_from_bytes::<Message>(bytes).map_err(|e| e.to_string())?;
        if !rest.is_empty() {
            return Err(format!("{} trailing bytes after a {} message", rest.len(), message.kind()));
        }
        message.validate()?;
        Ok(message)
    }

    /// Rejects sizes no correct peer sends. What depends on this node's
    /// configuration (the bucket count, who owns a key) is checked by the
    /// handlers.
    pub fn validate(&self) -> Result<(), String> {
        let key = |key: &Bytes| {
            if key.len() > MAX_KEY_BYTES {
                Err(format!("a {}-byte key (at most {MAX_KEY_BYTES})", key.len()))
            } else {
                Ok(())
            }
        };
        let registers = |registers: &[KeyRegister]| {
            if registers.len() > MAX_REGISTERS_PER_MESSAGE {
                return Err(format!("{} registers (at most {MAX_REGISTERS_PER_MESSAGE})", registers.len()));
            }
            registers.iter().try_for_each(|r| key(&r.key))
        };
        match self {
            Message::Coordinate { key: k, .. } | Message::Fetch { key: k, .. } | Message::Store { key: k, .. } => {
                key(k)
            }
            Message::Coordinated { reply, .. } => match reply {
                KeyedReply::Written { .. } => Ok(()),
                KeyedReply::Failed { reason } | KeyedReply::Unknown { reason } if reason.len() > MAX_REASON_BYTES => {
                    Err(format!("a {}-byte reason (at most {MAX_REASON_BYTES})", reason.len()))
                }
                KeyedReply::Failed { .. } | KeyedReply::Unknown { .. } => Ok(()),
                KeyedReply::Values { values, .. } if values.len() > MAX_VALUES_PER_REPLY => {
                    Err(format!("{} values (at most {MAX_VALUES_PER_REPLY})", values.len()))
                }
                KeyedReply::Values { .. } => Err("a put was answered with values".to_string()),
            },
            Message::Stored { .. } | Message::Fetched { .. } => Ok(()),
            Message::Digests { digests, .. } => {
                if digests.is_empty() || digests.len() > MAX_BUCKETS {
                    Err(format!("{} digests (1 to {MAX_BUCKETS})", digests.len()))
                } else {
                    Ok(())
                }
            }
            Message::DiffRegisters { buckets, registers: r, .. } => {
                if buckets.len() > MAX_BUCKETS {
                    return Err(format!("{} buckets (at most {MAX_BUCKETS})", buckets.len()));
                }
                if !buckets.windows(2).all(|w| w[0] < w[1]) {
                    return Err("buckets not strictly ascending".to_string());
                }
                registers(r)
            }
            Message::RepairRegisters { registers: r, .. } => registers(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    fn every_kind() -> Vec<Message> {
        let kr = KeyRegister { key: b("k"), register: b("r") };
        vec![
            Message::Coordinate { tag: 1, key: b("k"), value: Some(b("v")), context: b("") },
            Message::Coordinate { tag: 1, key: b("k"), value: None, context: b("c") },
            Message::Coordinated { tag: 2, reply: KeyedReply::Written { context: b("c") } },
            Message::Coordinated { tag: 2, reply: KeyedReply::Unknown { reason: "late".to_string() } },
            Message::Store { key: b("k"), register: b("r"), ack: Some(3) },
            Message::Store { key: b("k"), register: b("r"), ack: None },
            Message::Stored { tag: 3 },
            Message::Fetch { tag: 4, key: b("k") },
            Message::Fetched { tag: 4, register: b("r") },
            Message::Digests { round: 5, digests: vec![0, u64::MAX, 7] },
            Message::DiffRegisters { round: 5, buckets: vec![0, 2], registers: vec![kr.clone()] },
            Message::RepairRegisters { round: 5, registers: vec![kr] },
        ]
    }

    #[test]
    fn every_message_round_trips() {
        for message in every_kind() {
            assert_eq!(Message::decode(&message.encode()).unwrap(), message, "{}", message.kind());
        }
    }

    #[test]
    fn garbage_and_trailing_bytes_are_errors() {
        assert!(Message::decode(&[]).is_err());
        assert!(Message::decode(&[0xff; 4]).is_err());
        let mut bytes = Message::Stored { tag: 1 }.encode().to_vec();
        bytes.push(0);
        assert!(Message::decode(&bytes).unwrap_err().contains("trailing"));
    }

    #[test]
    fn oversized_or_malformed_contents_are_refused() {
        let big = Bytes::from(vec![0u8; MAX_KEY_BYTES + 1]);
        assert!(Message::decode(&Message::Fetch { tag: 1, key: big }.encode()).is_err());
        let unordered = Message::DiffRegisters { round: 1, buckets: vec![3, 3], registers: vec![] };
        assert!(Message::decode(&unordered.encode()).is_err());
        let values = Message::Coordinated { tag: 1, reply: KeyedReply::Values { values: vec![], context: b("") } };
        assert!(Message::decode(&values.encode()).is_err());
        assert!(Message::decode(&Message::Digests { round: 1, digests: vec![] }.encode()).is_err());
    }
}
