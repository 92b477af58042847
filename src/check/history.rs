//! The history model: every client operation, when it was invoked, when
//! (and whether) it completed, and what it returned.
//!
//! Times are microseconds on one monotonic clock shared by every client of
//! a run. An operation's outcome says what the client knows: `Ok` (it took
//! effect, and here is its reply), `Fail` (it definitely did not take
//! effect) or `Unknown` (the client gave up or the node crashed: it may
//! take effect at any time after its invocation, even after
//! `complete_us`, or never).
//!
//! On disk a history is JSON lines (`history.jsonl`), one operation a line:
//!
//! ```text
//! {"id":3,"client":1,"op":"put","key":"k1","value":"v3","invoke_us":120,"complete_us":340,"outcome":{"ok":"done"},"node":2}
//! ```

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::io::{self, BufRead, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::value::{Value, show};

/// What a client asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum OpKind {
    Put {
        key: Value,
        value: Value,
    },
    Get {
        key: Value,
    },
    Delete {
        key: Value,
    },
    /// Succeeds iff the current value equals `expected` (None: absent).
    Cas {
        key: Value,
        expected: Option<Value>,
        new: Value,
    },
    /// Reads the value as a decimal i64 (absent reads as 0), adds `by`,
    /// writes and returns the sum.
    Incr {
        key: Value,
        by: i64,
    },
}

impl OpKind {
    pub fn key(&self) -> &Value {
        match self {
            OpKind::Put { key, .. }
            | OpKind::Get { key }
            | OpKind::Delete { key }
            | OpKind::Cas { key, .. }
            | OpKind::Incr { key, .. } => key,
        }
    }

    /// Whether the operation can change the key's value.
    pub fn is_write(&self) -> bool {
        !matches!(self, OpKind::Get { .. })
    }

    pub fn name(&self) -> &'static str {
        match self {
            OpKind::Put { .. } => "put",
            OpKind::Get { .. } => "get",
            OpKind::Delete { .. } => "delete",
            OpKind::Cas { .. } => "cas",
            OpKind::Incr { .. } => "incr",
        }
    }
}

/// What an operation that took effect returned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// Put and delete return nothing.
    Done,
    Get(Option<Value>),
    /// Whether the compare-and-swap swapped.
    Cas(bool),
    /// The value after the increment.
    Incr(i64),
    /// A read that found several concurrent values (siblings, sorted),
    /// under a policy that keeps them (leaderless with version vectors).
    /// No register ever holds two values at once: to the linearizability
    /// checker this read is impossible, which is the finding.
    Siblings(Vec<Value>),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok(Reply),
    /// Definitely did not take effect (rejected before it was proposed).
    Fail(String),
    /// May or may not have taken effect, at any time after invocation.
    Unknown(String),
}

impl Outcome {
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok(_))
    }

    pub fn is_fail(&self) -> bool {
        matches!(self, Outcome::Fail(_))
    }

    pub fn is_unknown(&self) -> bool {
        matches!(self, Outcome::Unknown(_))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    pub id: u64,
    pub client: u64,
    #[serde(flatten)]
    pub kind: OpKind,
    pub invoke_us: u64,
    /// None when the client never heard back; for an Unknown op, when the
    /// client gave up (the op may still take effect later).
    #[serde(default)]
    pub complete_us: Option<u64>,
    pub outcome: Outcome,
    /// The node the client sent the request to, when known.
    #[serde(default)]
    pub node: Option<u64>,
    /// The causal context (leaderless): for a write, the one it carried;
    /// for a read, the one it returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
}

impl Operation {
    pub fn key(&self) -> &Value {
        self.kind.key()
    }

    /// The value this operation definitely wrote, if it is an
    /// acknowledged write: `Some(None)` for a delete.
    pub fn acknowledged_write(&self) -> Option<Option<Value>> {
        let Outcome::Ok(reply) = &self.outcome else {
            return None;
        };
        match (&self.kind, reply) {
            (OpKind::Put { value, .. }, _) => Some(Some(value.clone())),
            (OpKind::Delete { .. }, _) => Some(None),
            (OpKind::Cas { new, .. }, Reply::Cas(true)) => Some(Some(new.clone())),
            (OpKind::Incr { .. }, Reply::Incr(n)) => Some(Some(Value::from_i64(*n))),
            _ => None,
        }
    }

    /// The value this operation wrote if it took effect, when that value
    /// is known: acknowledged writes, and Unknown puts, deletes and cas
    /// (whose value is in the request). An Unknown incr's result is not
    /// known, so it gives None.
    pub fn possible_write(&self) -> Option<Option<Value>> {
        match &self.outcome {
            Outcome::Ok(_) => self.acknowledged_write(),
            Outcome::Fail(_) => None,
            Outcome::Unknown(_) => match &self.kind {
                OpKind::Put { value, .. } => Some(Some(value.clone())),
                OpKind::Delete { .. } => Some(None),
                OpKind::Cas { new, .. } => Some(Some(new.clone())),
                OpKind::Get { .. } | OpKind::Incr { .. } => None,
            },
        }
    }

    /// Whether this operation may have changed its key: an acknowledged
    /// write, or an Unknown op that is not a get.
    pub fn may_have_written(&self) -> bool {
        match &self.outcome {
            Outcome::Ok(_) => self.acknowledged_write().is_some(),
            Outcome::Fail(_) => false,
            Outcome::Unknown(_) => self.kind.is_write(),
        }
    }

    /// Completion time, with an op that never completed (or whose effect
    /// is unknown) completing at +infinity.
    pub fn effective_complete_us(&self) -> u64 {
        match (&self.outcome, self.complete_us) {
            (Outcome::Unknown(_), _) | (_, None) => u64::MAX,
            (_, Some(t)) => t,
        }
    }

    /// Checks what a history read from a file could get wrong; the
    /// checkers assume it.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(complete_us) = self.complete_us
            && complete_us < self.invoke_us
        {
            return Err(format!("completes at {complete_us} us, before its invocation at {} us", self.invoke_us));
        }
        let Outcome::Ok(reply) = &self.outcome else {
            return Ok(());
        };
        if self.complete_us.is_none() {
            return Err("is ok but has no complete_us".to_string());
        }
        let matches = matches!(
            (&self.kind, reply),
            (OpKind::Put { .. } | OpKind::Delete { .. }, Reply::Done)
                | (OpKind::Get { .. }, Reply::Get(_) | Reply::Siblings(_))
                | (OpKind::Cas { .. }, Reply::Cas(_))
                | (OpKind::Incr { .. }, Reply::Incr(_))
        );
        if !matches {
            return Err(format!("is a {} but its reply is {reply:?}", self.kind.name()));
        }
        Ok(())
    }
}

/// Seconds with microsecond precision: witnesses must tell apart two
/// operations 200 µs apart.
pub fn fmt_us(us: u64) -> String {
    if us == u64::MAX {
        return "never".to_string();
    }
    format!("{}.{:06}s", us / 1_000_000, us % 1_000_000)
}

/// `get k3 -> v17`, `put k3=v21`, `cas k3 v1->v2 swapped`, with a failed
/// or unknown outcome in brackets.
impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpKind::Put { key, value } => write!(f, "put {key}={value}"),
            OpKind::Get { key } => write!(f, "get {key}"),
            OpKind::Delete { key } => write!(f, "delete {key}"),
            OpKind::Cas { key, expected, new } => write!(f, "cas {key} {}->{new}", show(expected.as_ref())),
            OpKind::Incr { key, by } => write!(f, "incr {key} by {by}"),
        }
    }
}

/// `{a | b} (2 siblings)`.
pub fn show_siblings(values: &[Value]) -> String {
    let shown: Vec<String> = values.iter().map(|v| show(Some(v))).collect();
    format!("{{{}}} ({} siblings)", shown.join(" | "), values.len())
}

impl Operation {
    /// The values an ok read returned: none (absent), one, or siblings.
    pub fn read_values(&self) -> Option<Vec<&Value>> {
        match &self.outcome {
            Outcome::Ok(Reply::Get(v)) => Some(v.iter().collect()),
            Outcome::Ok(Reply::Siblings(values)) => Some(values.iter().collect()),
            _ => None,
        }
    }

    /// The operation and its result, without times: `get k3 -> v17`.
    pub fn action(&self) -> String {
        let kind = &self.kind;
        match &self.outcome {
            Outcome::Ok(Reply::Done) => kind.to_string(),
            Outcome::Ok(Reply::Get(v)) => format!("{kind} -> {}", show(v.as_ref())),
            Outcome::Ok(Reply::Siblings(values)) => format!("{kind} -> {}", show_siblings(values)),
            Outcome::Ok(Reply::Cas(true)) => format!("{kind} swapped"),
            Outcome::Ok(Reply::Cas(false)) => format!("{kind} refused"),
            Outcome::Ok(Reply::Incr(n)) => format!("{kind} -> {n}"),
            Outcome::Fail(why) => format!("{kind} [failed: {why}]"),
            Outcome::Unknown(why) => format!("{kind} [unknown: {why}]"),
        }
    }

    /// `invoked 1.100000s, completed 1.203000s` or `invoked 1.100000s,
    /// gave up 1.300000s`.
    pub fn interval(&self) -> String {
        let end = match (&self.outcome, self.complete_us) {
            (_, None) => "never completed".to_string(),
            (Outcome::Unknown(_), Some(t)) => format!("gave up {}", fmt_us(t)),
            (_, Some(t)) => format!("completed {}", fmt_us(t)),
        };
        format!("invoked {}, {end}", fmt_us(self.invoke_us))
    }
}

/// `get k3 -> v17 (op 12, client 4, invoked 1.100000s, completed 1.203000s)`
impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (op {}, client {}, {})", self.action(), self.id, self.client, self.interval())?;
        if let Some(node) = self.node {
            write!(f, " via node {node}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("history line {line}: {message}")]
    Parse { line: usize, message: String },
    #[error("history: operation {id}: {message}")]
    Invalid { id: u64, message: String },
    #[error("history: {0}")]
    Io(#[from] io::Error),
}

/// Every operation of a run, in the order they were invoked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    pub ops: Vec<Operation>,
}

impl History {
    pub fn new(ops: Vec<Operation>) -> History {
        History { ops }
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Operation> {
        self.ops.iter()
    }

    /// Positions in `ops` of each key's operations, keys in byte order.
    pub fn by_key(&self) -> BTreeMap<&Value, Vec<usize>> {
        let mut keys: BTreeMap<&Value, Vec<usize>> = BTreeMap::new();
        for (index, op) in self.ops.iter().enumerate() {
            keys.entry(op.key()).or_default().push(index);
        }
        keys
    }

    pub fn count_ok(&self) -> usize {
        self.ops.iter().filter(|op| op.outcome.is_ok()).count()
    }

    pub fn count_unknown(&self) -> usize {
        self.ops.iter().filter(|op| op.outcome.is_unknown()).count()
    }

    /// Every operation valid on its own, and ids unique.
    pub fn validate(&self) -> Result<(), HistoryError> {
        let mut ids = HashSet::with_capacity(self.ops.len());
        for op in &self.ops {
            op.validate().map_err(|message| HistoryError::Invalid { id: op.id, message })?;
            if !ids.insert(op.id) {
                return Err(HistoryError::Invalid { id: op.id, message: "the id is used twice".to_string() });
            }
        }
        Ok(())
    }

    pub fn write_jsonl<W: Write>(&self, mut out: W) -> io::Result<()> {
        for op in &self.ops {
            serde_json::to_writer(&mut out, op).map_err(io::Error::other)?;
            out.write_all(b"\n")?;
        }
        out.flush()
    }

    /// Reads JSON lines; blank lines are skipped. A malformed or invalid
    /// line is an error naming its line number (1-based).
    pub fn read_jsonl<R: BufRead>(input: R) -> Result<History, HistoryError> {
        let mut ops = Vec::new();
        let mut ids = HashSet::new();
        for (index, line) in input.lines().enumerate() {
            let line_number = index + 1;
            let line = line.map_err(|e| HistoryError::Parse { line: line_number, message: e.to_string() })?;
            if line.trim().is_empty() {
                continue;
            }
            let op: Operation = serde_json::from_str(&line)
                .map_err(|e| HistoryError::Parse { line: line_number, message: e.to_string() })?;
            let invalid = |message: String| HistoryError::Parse {
                line: line_number,
                message: format!("operation {}: {message}", op.id),
            };
            op.validate().map_err(invalid)?;
            if !ids.insert(op.id) {
                return Err(invalid("the id is used twice".to_string()));
            }
            ops.push(op);
        }
        Ok(History { ops })
    }

    pub fn save_jsonl(&self, path: &Path) -> io::Result<()> {
        let file = std::fs::File::create(path)?;
        self.write_jsonl(io::BufWriter::new(file))
    }

    pub fn load_jsonl(path: &Path) -> Result<History, HistoryError> {
        let file = std::fs::File::open(path)?;
        History::read_jsonl(io::BufReader::new(file))
    }
}

impl FromIterator<Operation> for History {
    fn from_iter<I: IntoIterator<Item = Operation>>(iter: I) -> History {
        History { ops: iter.into_iter().collect() }
    }
}

impl<'a> IntoIterator for &'a History {
    type Item = &'a Operation;
    type IntoIter = std::slice::Iter<'a, Operation>;

    fn into_iter(self) -> Self::IntoIter {
        self.ops.iter()
    }
}
