//! The sequential specification of one key: a register that supports put,
//! get, delete, compare-and-swap and increment.
//!
//! The search applies steps millions of times, so values are interned to
//! small integers once, up front: a state is 16 bytes, copied and hashed
//! without touching the heap. Canonical decimals are kept as numbers so
//! that increments can produce values no operation ever mentioned.

use std::collections::HashMap;

use crate::check::history::{OpKind, Operation, Outcome, Reply};
use crate::check::value::Value;

/// The register's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum State {
    Absent,
    /// A value whose bytes are exactly `n.to_string()`.
    Int(i64),
    /// Any other value, by its interned id.
    Raw(u32),
}

/// What one operation does to the register, and what its reply demands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// A put or delete (acknowledged or unknown): always applies.
    Write(State),
    /// An acknowledged get: applies only if the register holds this.
    Read(State),
    /// An acknowledged cas that swapped.
    CasSwapped { expected: State, new: State },
    /// An acknowledged cas that was refused: the register held something
    /// else.
    CasRefused { expected: State },
    /// A cas of unknown outcome: swaps if it can, else does nothing.
    CasMaybe { expected: State, new: State },
    /// An acknowledged increment and the sum it returned.
    IncrTo { by: i64, result: i64 },
    /// An increment of unknown outcome: adds if the value is a number.
    IncrMaybe { by: i64 },
}

/// Interns one key's values and applies steps.
#[derive(Debug, Default)]
pub(crate) struct KeyModel {
    ids: HashMap<Value, u32>,
    values: Vec<Value>,
    /// What an increment reads for each interned value.
    raw_ints: Vec<Option<i64>>,
}

impl KeyModel {
    pub fn state_of(&mut self, value: Option<&Value>) -> State {
        let Some(value) = value else {
            return State::Absent;
        };
        if let Some(n) = value.canonical_i64() {
            return State::Int(n);
        }
        if let Some(&id) = self.ids.get(value) {
            return State::Raw(id);
        }
        let id = u32::try_from(self.values.len()).expect("fewer than 2^32 distinct values per key");
        self.ids.insert(value.clone(), id);
        self.values.push(value.clone());
        self.raw_ints.push(value.parse_i64());
        State::Raw(id)
    }

    pub fn value_of(&self, state: State) -> Option<Value> {
        match state {
            State::Absent => None,
            State::Int(n) => Some(Value::from_i64(n)),
            State::Raw(id) => self.values.get(id as usize).cloned(),
        }
    }

    /// The step for an operation that may have taken effect; None for one
    /// that constrains nothing (Fail, or an Unknown get).
    pub fn step_of(&mut self, op: &Operation) -> Option<Step> {
        let step = match (&op.outcome, &op.kind) {
            (Outcome::Fail(_), _) | (Outcome::Unknown(_), OpKind::Get { .. }) => return None,
            (_, OpKind::Put { value, .. }) => Step::Write(self.state_of(Some(value))),
            (_, OpKind::Delete { .. }) => Step::Write(State::Absent),
            (Outcome::Ok(Reply::Get(value)), OpKind::Get { .. }) => Step::Read(self.state_of(value.as_ref())),
            // A register holds one value: a read that saw several can
            // match no state, so the history cannot be linearized. (Its
            // marker is a value no write wrote.)
            (Outcome::Ok(Reply::Siblings(values)), OpKind::Get { .. }) => {
                Step::Read(self.state_of(Some(&Value::new(crate::check::history::show_siblings(values)))))
            }
            (Outcome::Ok(Reply::Cas(true)), OpKind::Cas { expected, new, .. }) => {
                Step::CasSwapped { expected: self.state_of(expected.as_ref()), new: self.state_of(Some(new)) }
            }
            (Outcome::Ok(Reply::Cas(false)), OpKind::Cas { expected, .. }) => {
                Step::CasRefused { expected: self.state_of(expected.as_ref()) }
            }
            (Outcome::Unknown(_), OpKind::Cas { expected, new, .. }) => {
                Step::CasMaybe { expected: self.state_of(expected.as_ref()), new: self.state_of(Some(new)) }
            }
            (Outcome::Ok(Reply::Incr(result)), OpKind::Incr { by, .. }) => Step::IncrTo { by: *by, result: *result },
            (Outcome::Unknown(_), OpKind::Incr { by, .. }) => Step::IncrMaybe { by: *by },
            // A reply of the wrong kind: History::validate rejects these
            // before the search starts.
            (Outcome::Ok(_), OpKind::Get { .. } | OpKind::Cas { .. } | OpKind::Incr { .. }) => return None,
        };
        Some(step)
    }

    pub fn as_int(&self, state: State) -> Option<i64> {
        match state {
            State::Absent => Some(0),
            State::Int(n) => Some(n),
            State::Raw(id) => self.raw_ints.get(id as usize).copied().flatten(),
        }
    }

    /// The state after `step`, or None if the step's reply is impossible
    /// from `state`.
    #[inline]
    pub fn apply(&self, state: State, step: Step) -> Option<State> {
        match step {
            Step::Write(new) => Some(new),
            Step::Read(seen) => (seen == state).then_some(state),
            Step::CasSwapped { expected, new } => (expected == state).then_some(new),
            Step::CasRefused { expected } => (expected != state).then_some(state),
            Step::CasMaybe { expected, new } => Some(if expected == state { new } else { state }),
            Step::IncrTo { by, result } => {
                let sum = self.as_int(state)?.checked_add(by)?;
                (sum == result).then_some(State::Int(result))
            }
            // An increment of a non-number (or one that overflows) fails
            // and changes nothing.
            Step::IncrMaybe { by } => {
                Some(self.as_int(state).and_then(|n| n.checked_add(by)).map_or(state, State::Int))
            }
        }
    }
}

/// Which optional writes can be left out of the search without changing
/// its answer: an unknown put (or cas) whose value nothing could ever
/// observe.
///
/// Why that is sound: take any linearization that includes such a write
/// U of value u. Until the next write, the register holds u, and by
/// assumption nothing in between can tell: no get or cas mentions u, no
/// cas is refused anywhere on the key (a refusal observes "not the
/// expected value"), and no increment reads u as a number (u is not one,
/// or the key has no increments), so the operations in between are
/// optional ones that did nothing. Removing U and those does not change
/// any reply or the state after the next write. So the history is
/// linearizable with U iff it is without it. Dropping U up front saves
/// the search a factor per pending unknown operation.
pub(crate) struct Observers {
    observed: std::collections::HashSet<State>,
    any_refused_cas: bool,
    any_incr: bool,
}

impl Observers {
    pub fn of(steps: impl Iterator<Item = Step>) -> Observers {
        let mut observers =
            Observers { observed: std::collections::HashSet::new(), any_refused_cas: false, any_incr: false };
        for step in steps {
            match step {
                Step::Read(seen) => {
                    observers.observed.insert(seen);
                }
                Step::CasSwapped { expected, .. } | Step::CasMaybe { expected, .. } => {
                    observers.observed.insert(expected);
                }
                Step::CasRefused { .. } => observers.any_refused_cas = true,
                Step::IncrTo { .. } | Step::IncrMaybe { .. } => observers.any_incr = true,
                Step::Write(_) => {}
            }
        }
        observers
    }

    /// Whether an optional step can be left out (see the type's doc).
    pub fn can_skip(&self, model: &KeyModel, step: Step) -> bool {
        let written = match step {
            Step::Write(written) | Step::CasMaybe { new: written, .. } => written,
            _ => return false,
        };
        let observable = self.any_refused_cas
            || self.observed.contains(&written)
            || (self.any_incr && model.as_int(written).is_some());
        !observable
    }
}

/// A 64-bit hash of a state, mixed so that nearby integers spread out.
#[inline]
pub(crate) fn state_hash(state: State) -> u64 {
    let raw = match state {
        State::Absent => 0x9e37_79b9_7f4a_7c15,
        State::Int(n) => (n as u64) ^ 0x5851_f42d_4c95_7f2d,
        State::Raw(id) => u64::from(id) ^ 0x1405_7b7e_f767_814f,
    };
    mix64(raw)
}

/// SplitMix64's finalizer.
#[inline]
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increments_read_numbers_and_skip_the_rest() {
        let mut model = KeyModel::default();
        let seven = model.state_of(Some(&Value::from("007")));
        let text = model.state_of(Some(&Value::from("abc")));
        assert_eq!(model.apply(seven, Step::IncrTo { by: 1, result: 8 }), Some(State::Int(8)));
        assert_eq!(model.apply(State::Absent, Step::IncrTo { by: 2, result: 2 }), Some(State::Int(2)));
        assert_eq!(model.apply(text, Step::IncrTo { by: 1, result: 1 }), None);
        assert_eq!(model.apply(text, Step::IncrMaybe { by: 1 }), Some(text));
        assert_eq!(model.apply(State::Int(i64::MAX), Step::IncrMaybe { by: 1 }), Some(State::Int(i64::MAX)));
        assert_eq!(model.value_of(seven), Some(Value::from("007")));
        assert_ne!(seven, State::Int(7));
    }
}
