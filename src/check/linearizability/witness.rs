//! Turns a failed search into evidence a person can read.
//!
//! The search returns the longest order it managed to build. After it the
//! register holds some value; every required operation not in that order
//! must come before the earliest of their completions, and none of them
//! can. For each, the witness says why, in terms of the history: which
//! write its reply contradicts and when that write happened.
//!
//! The longest prefix is one of possibly several equally long ones, so the
//! explanation is a faithful account of one dead end, not the only one.

use std::fmt;

use serde::Serialize;

use super::model::{KeyModel, State, Step};
use super::search::KeyOp;
use crate::check::history::{OpKind, Operation, Outcome, Reply};
use crate::check::value::{Value, show};

/// Operations of the prefix shown (its end: the part that matters).
const PREFIX_SHOWN: usize = 8;
/// Stuck operations and pending unknown operations shown.
const STUCK_SHOWN: usize = 8;

/// Why a key's history is not linearizable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Witness {
    pub key: Value,
    /// Length of the longest linearizable prefix found.
    pub prefix_len: usize,
    /// Its last few operations, in linearization order.
    pub prefix_tail: Vec<Operation>,
    /// The key's value after the prefix.
    pub value_after_prefix: Option<Value>,
    /// The operation that wrote that value, if any.
    pub last_writer: Option<Operation>,
    /// Operations that had to come next and cannot, each with a reason.
    pub stuck: Vec<StuckOp>,
    /// How many there were in all (`stuck` is bounded).
    pub stuck_total: usize,
    /// Operations of unknown outcome that could also have taken effect
    /// there (bounded); none of their placements helps.
    pub pending_unknown: Vec<Operation>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StuckOp {
    pub op: Operation,
    pub reason: String,
}

impl Witness {
    /// One line: the first operation that cannot be ordered, and why.
    pub fn headline(&self) -> String {
        match self.stuck.first() {
            Some(stuck) => format!("key {}: {}, {}", self.key, stuck.op, stuck.reason),
            None => format!("key {}: no order of its operations fits their replies", self.key),
        }
    }
}

impl fmt::Display for Witness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "key {} is not linearizable.", self.key)?;
        writeln!(f, "These operations cannot be ordered after the longest linearizable prefix:")?;
        for stuck in &self.stuck {
            writeln!(f, "  {}\n    {}", stuck.op, stuck.reason)?;
        }
        if self.stuck_total > self.stuck.len() {
            writeln!(f, "  ... and {} more", self.stuck_total - self.stuck.len())?;
        }
        let shown = self.prefix_tail.len();
        writeln!(
            f,
            "Longest linearizable prefix: {} operation(s){}, after which {} = {}:",
            self.prefix_len,
            if shown < self.prefix_len { format!(" (last {shown} shown)") } else { String::new() },
            self.key,
            show(self.value_after_prefix.as_ref())
        )?;
        if self.prefix_len == 0 {
            writeln!(f, "  (empty: the key starts absent)")?;
        }
        let first_number = self.prefix_len - shown + 1;
        for (offset, op) in self.prefix_tail.iter().enumerate() {
            writeln!(f, "  {}. {op}", first_number + offset)?;
        }
        if !self.pending_unknown.is_empty() {
            writeln!(f, "Operations of unknown outcome that could take effect there (no placement of them helps):")?;
            for op in &self.pending_unknown {
                writeln!(f, "  {op}")?;
            }
        }
        Ok(())
    }
}

/// Builds the witness for one key. `history_ops[i]` is the operation
/// behind `key_ops[i]`; `all_ops` is every operation on the key, including
/// those the search left out (failed ones, unknown gets).
pub(crate) fn build(
    key: &Value,
    all_ops: &[&Operation],
    history_ops: &[&Operation],
    key_ops: &[KeyOp],
    model: &KeyModel,
    longest_prefix: &[usize],
) -> Witness {
    assert_eq!(history_ops.len(), key_ops.len(), "one history op per key op");
    let mut in_prefix = vec![false; key_ops.len()];
    let mut state = State::Absent;
    let mut last_writer: Option<usize> = None;
    for &index in longest_prefix {
        in_prefix[index] = true;
        // The prefix came out of the search, so every step applies; fall
        // back to the old state rather than trust that blindly.
        let next = model.apply(state, key_ops[index].step).unwrap_or(state);
        let wrote = match key_ops[index].step {
            Step::Write(_) | Step::CasSwapped { .. } | Step::IncrTo { .. } => true,
            Step::CasMaybe { .. } | Step::IncrMaybe { .. } => next != state,
            Step::Read(_) | Step::CasRefused { .. } => false,
        };
        if wrote {
            last_writer = Some(index);
        }
        state = next;
    }

    // Every required operation left must be linearized before the
    // earliest of their completions.
    let deadline_us =
        (0..key_ops.len()).filter(|&i| !in_prefix[i]).filter_map(|i| key_ops[i].complete_us).min().unwrap_or(u64::MAX);
    let mut candidates: Vec<usize> =
        (0..key_ops.len()).filter(|&i| !in_prefix[i] && key_ops[i].invoke_us <= deadline_us).collect();
    candidates.sort_by_key(|&i| (key_ops[i].complete_us.unwrap_or(u64::MAX), key_ops[i].invoke_us));

    let explainer = Explainer {
        all_ops,
        history_ops,
        key_ops,
        in_prefix: &in_prefix,
        value: model.value_of(state),
        last_writer: last_writer.map(|i| history_ops[i]),
    };
    let required: Vec<usize> = candidates.iter().copied().filter(|&i| key_ops[i].complete_us.is_some()).collect();
    let stuck: Vec<StuckOp> = required
        .iter()
        .take(STUCK_SHOWN)
        .map(|&i| StuckOp {
            op: history_ops[i].clone(),
            reason: match model.apply(state, key_ops[i].step) {
                None => explainer.why_not(i),
                Some(_) => "could come next, but then a later operation cannot be ordered".to_string(),
            },
        })
        .collect();
    let pending_unknown = candidates
        .iter()
        .filter(|&&i| key_ops[i].complete_us.is_none())
        .take(STUCK_SHOWN)
        .map(|&i| history_ops[i].clone())
        .collect();
    let tail_start = longest_prefix.len().saturating_sub(PREFIX_SHOWN);
    Witness {
        key: key.clone(),
        prefix_len: longest_prefix.len(),
        prefix_tail: longest_prefix[tail_start..].iter().map(|&i| history_ops[i].clone()).collect(),
        value_after_prefix: explainer.value.clone(),
        last_writer: explainer.last_writer.cloned(),
        stuck,
        stuck_total: required.len(),
        pending_unknown,
    }
}

struct Explainer<'a> {
    all_ops: &'a [&'a Operation],
    history_ops: &'a [&'a Operation],
    key_ops: &'a [KeyOp],
    in_prefix: &'a [bool],
    value: Option<Value>,
    last_writer: Option<&'a Operation>,
}

impl Explainer<'_> {
    /// Why operation `i`'s reply is impossible right after the prefix.
    fn why_not(&self, i: usize) -> String {
        let op = self.history_ops[i];
        match self.key_ops[i].step {
            Step::Read(_) => match &op.outcome {
                Outcome::Ok(Reply::Get(seen)) => self.why_not_seen(op, seen.as_ref(), "get"),
                Outcome::Ok(Reply::Siblings(values)) => format!(
                    "but it returned {} concurrent values, and a register holds one: the key held {}{}",
                    values.len(),
                    show(self.value.as_ref()),
                    self.written_by()
                ),
                _ => self.holds(),
            },
            Step::CasSwapped { .. } => {
                let expected = match &op.kind {
                    OpKind::Cas { expected, .. } => expected.as_ref(),
                    _ => None,
                };
                format!(
                    "but it swapped although the key held {}, not the expected {}{}",
                    show(self.value.as_ref()),
                    show(expected),
                    self.written_by()
                )
            }
            Step::CasRefused { .. } => format!(
                "but it was refused although the key held exactly the expected {}{}",
                show(self.value.as_ref()),
                self.written_by()
            ),
            Step::IncrTo { by, result } => {
                let would = match self.value.as_ref().map_or(Some(0), Value::parse_i64) {
                    Some(n) => match n.checked_add(by) {
                        Some(sum) => format!("so it would have returned {sum}"),
                        None => "and adding to it overflows".to_string(),
                    },
                    None => "which is not a number".to_string(),
                };
                format!(
                    "but it returned {result} while the key held {}{}, {would}",
                    show(self.value.as_ref()),
                    self.written_by()
                )
            }
            Step::Write(_) | Step::CasMaybe { .. } | Step::IncrMaybe { .. } => self.holds(),
        }
    }

    /// A read of `seen` that cannot happen after the prefix.
    fn why_not_seen(&self, op: &Operation, seen: Option<&Value>, verb: &str) -> String {
        let seen_text = show(seen);
        let writers: Vec<usize> =
            (0..self.history_ops.len()).filter(|&j| j != self.index_of(op) && self.might_write(j, seen)).collect();
        if seen.is_none() && writers.is_empty() {
            return format!(
                "but the key was not absent: it held {}{}, and no delete could come in between",
                show(self.value.as_ref()),
                self.written_by()
            );
        }
        if writers.is_empty() {
            let failed = self.all_ops.iter().find(|other| {
                other.outcome.is_fail() && matches!(written_by_request(other), Some(v) if v.as_ref() == seen)
            });
            return match failed {
                Some(failed) => {
                    format!("but {seen_text} was written only by {failed}, which failed and so never took effect")
                }
                None => {
                    let hint = if seen.is_some_and(|v| v.canonical_i64().is_some())
                        && self.all_ops.iter().any(|o| matches!(o.kind, OpKind::Incr { .. }))
                    {
                        " (an increment applied twice, or one not acknowledged?)"
                    } else {
                        ""
                    };
                    format!("but no operation ever wrote {seen_text} to this key{hint}")
                }
            };
        }
        if writers.iter().all(|&j| self.history_ops[j].invoke_us > op.effective_complete_us()) {
            let first = self.history_ops[writers[0]];
            return format!("but {seen_text} was written only later, by {first}, after this {verb} completed");
        }
        let overwritten = writers.iter().any(|&j| self.in_prefix[j]);
        if let Some(writer) = self.last_writer
            && overwritten
            && writer.effective_complete_us() < op.invoke_us
        {
            return format!("but {seen_text} was overwritten by {writer} before this {verb} began");
        }
        format!(
            "but the key held {} at this point{}; no order of the concurrent operations lets this {verb} see {seen_text}",
            show(self.value.as_ref()),
            self.written_by()
        )
    }

    fn holds(&self) -> String {
        format!("but the key held {}{}", show(self.value.as_ref()), self.written_by())
    }

    fn written_by(&self) -> String {
        match self.last_writer {
            Some(writer) => format!(" (written by {writer})"),
            None => String::new(),
        }
    }

    fn index_of(&self, op: &Operation) -> usize {
        self.history_ops.iter().position(|other| std::ptr::eq(*other, op)).unwrap_or(usize::MAX)
    }

    /// Whether operation j, if it took effect, may have left `value`.
    fn might_write(&self, j: usize, value: Option<&Value>) -> bool {
        let other = self.history_ops[j];
        if other.outcome.is_fail() {
            return false;
        }
        match (&other.outcome, &other.kind) {
            // An increment of unknown outcome can leave any number.
            (Outcome::Unknown(_), OpKind::Incr { .. }) => value.is_some_and(|v| v.parse_i64().is_some()),
            _ => other.possible_write().is_some_and(|written| written.as_ref() == value),
        }
    }
}

/// The value an operation's request would write, whatever its outcome.
fn written_by_request(op: &Operation) -> Option<Option<Value>> {
    match &op.kind {
        OpKind::Put { value, .. } => Some(Some(value.clone())),
        OpKind::Delete { .. } => Some(None),
        OpKind::Cas { new, .. } => Some(Some(new.clone())),
        OpKind::Get { .. } | OpKind::Incr { .. } => None,
    }
}
