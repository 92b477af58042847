//! One client operation, performed and recorded in the run's history.
//!
//! Every operation a script or a workload sends goes through `perform`: it
//! is invoked on the run's clock, sent with the client library's retries,
//! and completed as ok, fail (certainly not applied) or unknown (may have
//! been applied, at any time after the invoke).

use crate::check::{OpKind, Outcome, Recorder, Reply, Value};
use crate::client::{Client, ClientError};
use crate::kv::WriteResult;

/// Sends `kind` through `client` and records it under `client_id` in every
/// recorder given (the run's, the cluster's, a workload's own).
pub async fn perform_recorded(recorders: &[&Recorder], client: &mut Client, client_id: u64, kind: OpKind) -> Outcome {
    let handles: Vec<_> = recorders.iter().map(|r| r.invoke(client_id, kind.clone())).collect();
    let (outcome, node) = execute(client, kind).await;
    for (recorder, handle) in recorders.iter().zip(handles) {
        recorder.complete_on(handle, outcome.clone(), node);
    }
    outcome
}

async fn execute(client: &mut Client, kind: OpKind) -> (Outcome, Option<u64>) {
    let written = |result: Result<crate::client::Written, ClientError>| match result {
        Ok(w) => match w.result {
            WriteResult::Cas { succeeded, .. } => Outcome::Ok(Reply::Cas(succeeded)),
            WriteResult::Incr { value, .. } => Outcome::Ok(Reply::Incr(value)),
            WriteResult::Failed(e) => Outcome::Fail(e.to_string()),
            WriteResult::Put { .. } | WriteResult::Deleted { .. } => Outcome::Ok(Reply::Done),
        },
        Err(e) => failure(e),
    };
    match kind {
        OpKind::Put { key, value } => (written(client.put(key.bytes().clone(), value.bytes().clone()).await), None),
        OpKind::Delete { key } => (written(client.delete(key.bytes().clone()).await), None),
        OpKind::Cas { key, expected, new } => {
            let expected = expected.map(|v| v.bytes().clone());
            (written(client.cas(key.bytes().clone(), expected, new.bytes().clone()).await), None)
        }
        OpKind::Incr { key, by } => (written(client.incr(key.bytes().clone(), by).await), None),
        OpKind::Get { key } => match client.get(key.bytes().clone()).await {
            Ok(read) => (Outcome::Ok(Reply::Get(read.value.map(Value::new))), Some(read.node)),
            Err(e) => (failure(e), None),
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
/// fails if that node is not the leader (no redirect is followed).
pub async fn perform_at(
    recorders: &[&Recorder],
    client: &mut Client,
    client_id: u64,
    kind: OpKind,
    (node, addr): (u64, std::net::SocketAddr),
    stale: bool,
) -> Outcome {
    let OpKind::Get { key } = &kind else { unreachable!("reads at one node are reads") };
    let handles: Vec<_> = recorders.iter().map(|r| r.invoke_on(client_id, kind.clone(), Some(node))).collect();
    let read = if stale {
        client.get_stale(addr, key.bytes().clone()).await
    } else {
        client.get_at(addr, key.bytes().clone()).await
    };
    let outcome = match read {
        Ok(read) => Outcome::Ok(Reply::Get(read.value.map(Value::new))),
        Err(e) => failure(e),
    };
    for (recorder, handle) in recorders.iter().zip(handles) {
        recorder.complete_on(handle, outcome.clone(), Some(node));
    }
    outcome
}
