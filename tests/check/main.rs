//! The history model and the checkers: known-good histories pass,
//! known-bad ones fail with a witness naming the key and the operations.

mod brute_force;
mod budget;
mod classic;
mod convergence;
mod history_io;
mod linearizable_bad;
mod lost_updates;
mod lost_writes;
mod mutation;
mod recorder;
mod siblings;
mod simulated;
mod stale_reads;
mod unknown_ops;

use std::time::Duration;

use replab::check::{
    History, LinearizabilityOptions, LinearizabilityReport, OpKind, Operation, Outcome, Reply, Value, Verdict, Witness,
    check_linearizable_with,
};

/// Builds histories by hand; times are microseconds.
#[derive(Default)]
pub struct Builder {
    ops: Vec<Operation>,
}

pub fn v(s: &str) -> Value {
    Value::from(s)
}

pub fn put_kind(key: &str, value: &str) -> OpKind {
    OpKind::Put { key: v(key), value: v(value) }
}

pub fn get_kind(key: &str) -> OpKind {
    OpKind::Get { key: v(key) }
}

pub fn delete_kind(key: &str) -> OpKind {
    OpKind::Delete { key: v(key) }
}

pub fn cas_kind(key: &str, expected: Option<&str>, new: &str) -> OpKind {
    OpKind::Cas { key: v(key), expected: expected.map(v), new: v(new) }
}

pub fn incr_kind(key: &str, by: i64) -> OpKind {
    OpKind::Incr { key: v(key), by }
}

impl Builder {
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Records an operation and returns its id.
    pub fn op(&mut self, client: u64, kind: OpKind, invoke_us: u64, complete_us: Option<u64>, outcome: Outcome) -> u64 {
        let id = self.ops.len() as u64;
        self.ops.push(Operation { id, client, kind, invoke_us, complete_us, outcome, node: None, context: None });
        id
    }

    pub fn put(&mut self, client: u64, key: &str, value: &str, invoke_us: u64, complete_us: u64) -> u64 {
        self.op(client, put_kind(key, value), invoke_us, Some(complete_us), Outcome::Ok(Reply::Done))
    }

    pub fn get(&mut self, client: u64, key: &str, seen: Option<&str>, invoke_us: u64, complete_us: u64) -> u64 {
        self.op(client, get_kind(key), invoke_us, Some(complete_us), Outcome::Ok(Reply::Get(seen.map(v))))
    }

    pub fn delete(&mut self, client: u64, key: &str, invoke_us: u64, complete_us: u64) -> u64 {
        self.op(client, delete_kind(key), invoke_us, Some(complete_us), Outcome::Ok(Reply::Done))
    }

    #[allow(clippy::too_many_arguments)]
    pub fn cas(
        &mut self,
        client: u64,
        key: &str,
        expected: Option<&str>,
        new: &str,
        swapped: bool,
        invoke_us: u64,
        complete_us: u64,
    ) -> u64 {
        self.op(client, cas_kind(key, expected, new), invoke_us, Some(complete_us), Outcome::Ok(Reply::Cas(swapped)))
    }

    pub fn incr(&mut self, client: u64, key: &str, by: i64, result: i64, invoke_us: u64, complete_us: u64) -> u64 {
        self.op(client, incr_kind(key, by), invoke_us, Some(complete_us), Outcome::Ok(Reply::Incr(result)))
    }

    /// An operation whose outcome is unknown; the client gave up at
    /// `gave_up_us` (None: never heard back).
    pub fn unknown(&mut self, client: u64, kind: OpKind, invoke_us: u64, gave_up_us: Option<u64>) -> u64 {
        self.op(client, kind, invoke_us, gave_up_us, Outcome::Unknown("timeout".to_string()))
    }

    /// An operation rejected before it took effect.
    pub fn fail(&mut self, client: u64, kind: OpKind, invoke_us: u64, complete_us: u64) -> u64 {
        self.op(client, kind, invoke_us, Some(complete_us), Outcome::Fail("not leader".to_string()))
    }

    /// A read that found several concurrent values, returning `context`.
    pub fn siblings(&mut self, client: u64, key: &str, seen: &[&str], context: &str, at: (u64, u64)) -> u64 {
        let reply = Reply::Siblings(seen.iter().map(|s| v(s)).collect());
        let id = self.op(client, get_kind(key), at.0, Some(at.1), Outcome::Ok(reply));
        self.ops[id as usize].context = Some(v(context));
        id
    }

    /// Sets the causal context op `id` carried (a write) or returned (a read).
    pub fn with_context(&mut self, id: u64, context: &str) {
        self.ops[id as usize].context = Some(v(context));
    }

    pub fn history(&self) -> History {
        History::new(self.ops.clone())
    }
}

pub fn check(history: &History) -> LinearizabilityReport {
    check_linearizable_with(history, &LinearizabilityOptions::with_time_budget(Duration::from_secs(30)))
}

pub fn assert_linearizable(history: &History) {
    let report = check(history);
    assert!(report.verdict.is_linearizable(), "expected linearizable, got:\n{report}");
}

/// Asserts a violation on `key` and that the witness text mentions every
/// fragment; returns the witness.
pub fn assert_violation(history: &History, key: &str, fragments: &[&str]) -> Witness {
    let report = check(history);
    let Verdict::NotLinearizable { key: bad_key, witness } = &report.verdict else {
        panic!("expected a violation on {key}, got:\n{report}");
    };
    assert_eq!(bad_key, &v(key), "{report}");
    let text = witness.to_string();
    for fragment in fragments {
        assert!(text.contains(fragment), "witness lacks {fragment:?}:\n{text}");
    }
    assert!(report.summary().contains(&format!("key {key}")), "summary names the key: {}", report.summary());
    (**witness).clone()
}
