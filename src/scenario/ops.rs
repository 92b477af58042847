//! One client operation, performed and recorded in the run's history.
//!
//! Every operation a script or a workload sends goes through `perform`: it
//! is invoked on the run's clock, sent with the client library's retries,
//! and completed as ok, fail (certainly not applied) or unknown (may have
//! been applied, at any time after the invoke).

use crate::check::{OpKind, Outcome, Recorder, Reply, Value};
use crate::client::{Client, ClientError};
use crate::kv::{WriteOp, WriteResult};

/// Sends `kind` through `client` and records it under `client_id` in every
/// recorder given (the run's, the cluster's, a workload's own). A write may
/// carry a causal context (leaderless). Returns the outcome and the context
/// the reply carried (a read's, for the client's next write; a write's,
/// covering it).
pub async fn perform_with_context(
    recorders: &[&Recorder],
    client: &mut Client,
    client_id: u64,
    kind: OpKind,
    context: Option<bytes::Bytes>,
) -> (Outcome, Option<bytes::Bytes>) {
    let handles: Vec<_> = recorders.iter().map(|r| r.invoke(client_id, kind.clone())).collect();
    if let Some(context) = &context {
        for (recorder, handle) in recorders.iter().zip(&handles) {
            recorder.set_context(handle, Value::new(context.clone()));
        }
    }
    let is_read = matches!(kind, OpKind::Get { .. });
    let (outcome, node, returned) = execute(client, kind, context).await;
    // A read's record keeps the context it returned; a write's, the one it
    // carried.
    let recorded = if is_read { returned.clone().map(Value::new) } else { None };
    for (recorder, handle) in recorders.iter().zip(handles) {
        recorder.complete_with(handle, outcome.clone(), node, recorded.clone());
    }
    (outcome, returned)
}

/// What a read returned, as the history records it.
pub fn read_reply(read: &crate::client::ReadValue) -> Reply {
    if read.siblings.len() > 1 {
        Reply::Siblings(read.siblings.iter().cloned().map(Value::new).collect())
    } else {
        Reply::Get(read.siblings.first().cloned().map(Value::new))
    }
}

async fn execute(
    client: &mut Client,
    kind: OpKind,
    context: Option<bytes::Bytes>,
) -> (Outcome, Option<u64>, Option<bytes::Bytes>) {
    let written = |result: Result<crate::client::Written, ClientError>| match result {
        Ok(w) => {
            let outcome = match w.result {
                WriteResult::Cas { succeeded, .. } => Outcome::Ok(Reply::Cas(succeeded)),
                WriteResult::Incr { value, .. } => Outcome::Ok(Reply::Incr(value)),
                WriteResult::Failed(e) => Outcome::Fail(e.to_string()),
                WriteResult::Put { .. } | WriteResult::Deleted { .. } => Outcome::Ok(Reply::Done),
            };
            (outcome, None, w.context)
        }
        Err(e) => (failure(e), None, None),
    };
    match kind {
        OpKind::Put { key, value } => {
            let op = WriteOp::Put { key: key.bytes().clone(), value: value.bytes().clone() };
            written(client.write_with_context(op, context).await)
        }
        OpKind::Delete { key } => {
            written(client.write_with_context(WriteOp::Delete { key: key.bytes().clone() }, context).await)
        }
        OpKind::Cas { key, expected, new } => {
            let expected = expected.map(|v| v.bytes().clone());
            written(client.cas(key.bytes().clone(), expected, new.bytes().clone()).await)
        }
        OpKind::Incr { key, by } => written(client.incr(key.bytes().clone(), by).await),
        OpKind::Get { key } => match client.get(key.bytes().clone()).await {
            Ok(read) => (Outcome::Ok(read_reply(&read)), Some(read.node), read.context),
            Err(e) => (failure(e), None, None),
        },
    }
}

fn failure(e: ClientError) -> Outcome {
    match e {
        ClientError::Unknown(why) => Outcome::Unknown(why),
        ClientError::Failed(why) => Outcome::Fail(why),
        ClientError::Refused(e) => Outcome::Fail(e.to_string()),
    }
}

/// A read sent to one node only, recorded as a read like any other (the
/// checkers judge what it returned). `stale`: served at once from that
/// node's own replica, possibly behind; otherwise a linearizable read that
/// fails if that node is not the leader (no redirect is followed). Returns
/// the outcome and the context the read returned.
pub async fn perform_at(
    recorders: &[&Recorder],
    client: &mut Client,
    client_id: u64,
    kind: OpKind,
    (node, addr): (u64, std::net::SocketAddr),
    stale: bool,
) -> (Outcome, Option<bytes::Bytes>) {
    let OpKind::Get { key } = &kind else { unreachable!("reads at one node are reads") };
    let handles: Vec<_> = recorders.iter().map(|r| r.invoke_on(client_id, kind.clone(), Some(node))).collect();
    let read = if stale {
        client.get_stale(addr, key.bytes().clone()).await
    } else {
        client.get_at(addr, key.bytes().clone()).await
    };
    let (outcome, context) = match read {
        Ok(read) => (Outcome::Ok(read_reply(&read)), read.context),
        Err(e) => (failure(e), None),
    };
    let recorded = context.clone().map(Value::new);
    for (recorder, handle) in recorders.iter().zip(handles) {
        recorder.complete_with(handle, outcome.clone(), Some(node), recorded.clone());
    }
    (outcome, context)
}
