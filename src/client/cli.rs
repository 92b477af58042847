//! `replab client`: one operation against a running cluster, printed for
//! people.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use super::protocol::NodeStatus;
use super::{Client, ClientError, ClientOptions, Written};
use crate::config::Settings;
use crate::kv::{WriteOp, WriteResult};

#[derive(Clone, Debug)]
pub enum Operation {
    Put { key: String, value: String, context: Option<String> },
    Get { key: String, stale: bool },
    Del { key: String, context: Option<String> },
    Cas { key: String, expected: Option<String>, new: String },
    Incr { key: String, by: i64 },
    Status,
}

/// Runs `op`; `Ok(text)` is printed, `Err(text)` is printed to stderr with
/// exit code 1 (the operation failed or its outcome is unknown; for
/// `status`, no node answered).
pub async fn run(settings: &Settings, nodes: Vec<SocketAddr>, op: Operation) -> Result<String, String> {
    let node_cfg = &settings.node;
    let mut client = Client::new(ClientOptions {
        nodes: nodes.clone(),
        cluster_id: settings.cluster.id.clone(),
        secret: settings.cluster.secret.clone(),
        net: settings.net.clone(),
        op_timeout: Duration::from_millis(node_cfg.request_timeout_ms),
        attempt_timeout: Duration::from_millis((node_cfg.request_timeout_ms / 2).clamp(200, 2_000)),
        name: u64::from(std::process::id()),
        pinned: false,
    });
    let text = |e: ClientError| e.to_string();
    match op {
        Operation::Put { key, value, context } => {
            let op = WriteOp::Put { key: key.into(), value: value.into() };
            client.write_with_context(op, parse_context(context)?).await.map(describe).map_err(text)
        }
        Operation::Del { key, context } => {
            let op = WriteOp::Delete { key: key.into() };
            client.write_with_context(op, parse_context(context)?).await.map(describe).map_err(text)
        }
        Operation::Cas { key, expected, new } => {
            client.cas(key, expected.map(Bytes::from), new).await.map(describe).map_err(text)
        }
        Operation::Incr { key, by } => client.incr(key, by).await.map(describe).map_err(text),
        Operation::Get { key, stale: false } => client.get(key).await.map(|r| show_read(&r)).map_err(text),
        Operation::Get { key, stale: true } => {
            client.get_stale(nodes[0], key).await.map(|r| show_read(&r)).map_err(text)
        }
        Operation::Status => status_table(&mut client, &nodes).await,
    }
}

/// A context as `get` prints it: hex.
fn parse_context(context: Option<String>) -> Result<Option<Bytes>, String> {
    let Some(hex) = context else { return Ok(None) };
    if hex.len() % 2 != 0 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("--context {hex:?} is not the hex a get printed (pairs of 0-9, a-f)"));
    }
    let bytes = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("checked hex"));
    Ok(Some(bytes.collect()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn describe(w: Written) -> String {
    if let Some(context) = &w.context {
        // A leaderless store versions values rather than numbering them.
        let what = if matches!(w.result, WriteResult::Deleted { .. }) { "deleted" } else { "stored" };
        return format!("OK {what}\n# context {}", hex(context));
    }
    let again = if w.duplicate { " (a retry: answered from the session, not applied again)" } else { "" };
    match w.result {
        WriteResult::Put { version } => format!("OK version {version}{again}"),
        WriteResult::Deleted { existed: true } => format!("OK deleted{again}"),
        WriteResult::Deleted { existed: false } => format!("OK (the key did not exist){again}"),
        WriteResult::Cas { succeeded: true, version, .. } => format!("OK version {version}{again}"),
        WriteResult::Cas { succeeded: false, current, .. } => {
            format!("NOT SWAPPED: current value is {}{again}", current.map_or("(absent)".to_string(), |v| show(&v)))
        }
        WriteResult::Incr { value, version } => format!("{value} (version {version}){again}"),
        WriteResult::Failed(e) => format!("REFUSED: {e}"),
    }
}

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn show_read(r: &super::ReadValue) -> String {
    if let Some(context) = &r.context {
        // Every sibling on its own line, then what to pass to the next write.
        let mut out = match r.siblings.len() {
            0 => "(not found)".to_string(),
            _ => r.siblings.iter().map(|v| show(v)).collect::<Vec<_>>().join("\n"),
        };
        if r.siblings.len() > 1 {
            out.push_str(&format!(
                "\n# {} siblings: concurrent writes; a put with this context replaces them",
                r.siblings.len()
            ));
        }
        out.push_str(&format!("\n# context {} (node {})", hex(context), r.node));
        return out;
    }
    let value = r.value.as_ref().map_or("(not found)".to_string(), |v| show(v));
    let label = match r.consistency {
        super::protocol::Consistency::Linearizable => "linearizable",
        super::protocol::Consistency::Stale => "STALE read: this replica may be behind",
        super::protocol::Consistency::Unconfirmed => {
            "UNCONFIRMED read: the primary did not check that it still leads (async replication)"
        }
    };
    format!("{value}\n# version {}, node {} had applied {}; {label}", r.version, r.node, r.applied_index)
}

/// One line per node; an error if no node answered (a table of
/// "unreachable" would exit 0, and a script would take the cluster for up).
async fn status_table(client: &mut Client, nodes: &[SocketAddr]) -> Result<String, String> {
    let mut out = String::from(
        "node  address               role           term   commit  applied  last     leader  sees (failure detector)\n",
    );
    let mut problems = Vec::new();
    for addr in nodes {
        match client.status(*addr).await {
            Ok(s) => out.push_str(&status_line(addr, &s)),
            // A status changes nothing: "outcome unknown" would mislead.
            Err(ClientError::Unknown(why) | ClientError::Failed(why)) => {
                out.push_str(&format!("?     {addr:<21} unreachable: {why}\n"));
                problems.push(why);
            }
            Err(e) => {
                out.push_str(&format!("?     {addr:<21} unreachable: {e}\n"));
                problems.push(format!("{addr}: {e}"));
            }
        }
    }
    if problems.len() == nodes.len() {
        return Err(format!("no node answered:\n  {}", problems.join("\n  ")));
    }
    Ok(out.trim_end().to_string())
}

fn status_line(addr: &SocketAddr, s: &NodeStatus) -> String {
    let p = &s.policy;
    let leader = p.leader.map_or("-".to_string(), |l| l.to_string());
    let sees: Vec<String> = s.liveness.iter().map(|v| format!("{}:{:?}", v.peer, v.liveness).to_lowercase()).collect();
    format!(
        "{:<5} {:<21} {:<14} {:<6} {:<7} {:<8} {:<8} {:<7} {}\n",
        p.id,
        addr.to_string(),
        p.role.to_string(),
        p.term,
        p.commit_index,
        p.applied_index,
        p.last_index,
        leader,
        sees.join(" ")
    )
}
