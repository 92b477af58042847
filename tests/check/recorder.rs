//! The recorder: shared across threads, one clock, pending operations
//! end up Unknown.

use std::thread;

use replab::check::recorder::NEVER_COMPLETED;
use replab::check::{Outcome, Recorder, Reply};

use crate::{get_kind, put_kind};

#[test]
fn records_from_many_threads_on_one_clock() {
    let recorder = Recorder::new();
    let threads: Vec<_> = (0..4u64)
        .map(|client| {
            let recorder = recorder.clone();
            thread::spawn(move || {
                for i in 0..250 {
                    let handle = recorder.invoke(client, put_kind("k", &format!("{client}-{i}")));
                    assert!(recorder.complete(handle, Outcome::Ok(Reply::Done)));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("no panic");
    }
    let history = recorder.finish();
    assert_eq!(history.len(), 1_000);
    assert!(history.validate().is_ok());
    assert!(history.iter().all(|op| op.outcome.is_ok()));
    // Ids follow invocation times.
    assert!(history.ops.windows(2).all(|w| w[0].invoke_us <= w[1].invoke_us));
    crate::assert_linearizable(&history);
}

#[test]
fn pending_operations_become_unknown() {
    let recorder = Recorder::new();
    let done = recorder.invoke(1, put_kind("k", "a"));
    let pending = recorder.invoke_on(2, get_kind("k"), Some(3));
    assert!(recorder.complete_on(done, Outcome::Ok(Reply::Done), Some(1)));
    let history = recorder.finish();
    assert_eq!(history.ops[0].node, Some(1));
    assert!(history.ops[0].complete_us.is_some());
    assert_eq!(history.ops[1].outcome, Outcome::Unknown(NEVER_COMPLETED.to_string()));
    assert_eq!(history.ops[1].complete_us, None);
    assert_eq!(history.ops[1].node, Some(3));
    // Completing later is still recorded.
    assert!(recorder.complete(pending, Outcome::Ok(Reply::Get(None))));
    assert!(recorder.finish().ops[1].outcome.is_ok());
}

#[test]
fn handles_from_another_recorder_are_refused() {
    let first = Recorder::new();
    let second = Recorder::new();
    let _ = second.invoke(1, get_kind("k"));
    let foreign = first.invoke(1, get_kind("k"));
    assert!(!second.complete(foreign, Outcome::Ok(Reply::Get(None))));
    assert!(second.finish().ops[0].outcome.is_unknown());
}

#[test]
fn clones_share_the_origin() {
    let origin = std::time::Instant::now();
    let recorder = Recorder::with_origin(origin);
    assert_eq!(recorder.clone().origin(), origin);
    let handle = recorder.clone().invoke(1, get_kind("k"));
    assert_eq!(recorder.len(), 1);
    assert!(recorder.complete(handle, Outcome::Fail("refused".to_string())));
}
