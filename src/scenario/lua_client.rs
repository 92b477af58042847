//! `c:client()`: one client session for a script, every operation recorded
//! in the run's history.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use mlua::{Table, UserData, UserDataMethods, Value as LuaValue};

use super::lua_cluster::lua_error;
use super::ops::{perform_at, perform_recorded};
use super::run_state::RunState;
use crate::check::{OpKind, Outcome, Recorder, Reply, Value};
use crate::client::Client;

pub struct LuaClient {
    client: Arc<tokio::sync::Mutex<Client>>,
    /// The run's history and the cluster's.
    recorders: Vec<Recorder>,
    /// Client addresses by node id, for reads from one replica.
    addrs: BTreeMap<u64, SocketAddr>,
    /// This client's number in the history.
    id: u64,
}

impl LuaClient {
    pub fn new(
        client: Client,
        addrs: BTreeMap<u64, SocketAddr>,
        recorders: Vec<Recorder>,
        run: Arc<RunState>,
    ) -> LuaClient {
        let id = run.next_client_id();
        LuaClient { client: Arc::new(tokio::sync::Mutex::new(client)), recorders, addrs, id }
    }

    async fn perform(&self, kind: OpKind) -> Outcome {
        let recorders: Vec<&Recorder> = self.recorders.iter().collect();
        perform_recorded(&recorders, &mut *self.client.lock().await, self.id, kind).await
    }
}

fn value(s: &mlua::LuaString) -> Value {
    Value::new(bytes::Bytes::copy_from_slice(&s.as_bytes()))
}

/// Lua's convention: the result, or `nil` and an error message.
type LuaResult = (LuaValue, Option<String>);

fn reply_to_lua(lua: &mlua::Lua, outcome: Outcome) -> mlua::Result<LuaResult> {
    Ok(match outcome {
        Outcome::Ok(Reply::Done) => (LuaValue::Boolean(true), None),
        Outcome::Ok(Reply::Cas(swapped)) => (LuaValue::Boolean(swapped), None),
        Outcome::Ok(Reply::Incr(n)) => (LuaValue::Integer(n), None),
        Outcome::Ok(Reply::Get(None)) => (LuaValue::Nil, None),
        Outcome::Ok(Reply::Get(Some(v))) => (LuaValue::String(lua.create_string(v.as_bytes())?), None),
        Outcome::Fail(why) => (LuaValue::Nil, Some(format!("failed: {why}"))),
        Outcome::Unknown(why) => (LuaValue::Nil, Some(format!("unknown: {why}"))),
    })
}

impl UserData for LuaClient {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        // The client's number in the history (`op.client` in `h:ops()`).
        methods.add_method("id", |_, this, ()| Ok(this.id));
        methods.add_async_method("put", |lua, this, (key, val): (mlua::LuaString, mlua::LuaString)| async move {
            let kind = OpKind::Put { key: value(&key), value: value(&val) };
            let outcome = this.perform(kind).await;
            reply_to_lua(&lua, outcome)
        });
        methods.add_async_method("get", |lua, this, (key, options): (mlua::LuaString, Option<Table>)| async move {
            let (node, stale): (Option<u64>, bool) = match &options {
                Some(t) => (t.get("node")?, t.get::<Option<bool>>("stale")?.unwrap_or(false)),
                None => (None, false),
            };
            let kind = OpKind::Get { key: value(&key) };
            let target = match node {
                Some(node) => match this.addrs.get(&node) {
                    Some(addr) => Some((node, *addr)),
                    None => return Err(lua_error(format!("get: node {node} is not a member"))),
                },
                None if stale => {
                    return Err(lua_error(
                        "get: a stale read is served by one node's own replica: name it, \
                         get(key, { stale = true, node = id })",
                    ));
                }
                None => None,
            };
            let outcome = match target {
                None => this.perform(kind).await,
                Some(target) => {
                    let recorders: Vec<&Recorder> = this.recorders.iter().collect();
                    let mut client = this.client.lock().await;
                    perform_at(&recorders, &mut client, this.id, kind, target, stale).await
                }
            };
            reply_to_lua(&lua, outcome)
        });
        methods.add_async_method("del", |lua, this, key: mlua::LuaString| async move {
            let kind = OpKind::Delete { key: value(&key) };
            let outcome = this.perform(kind).await;
            reply_to_lua(&lua, outcome)
        });
        methods.add_async_method(
            "cas",
            |lua, this, (key, expected, new): (mlua::LuaString, Option<mlua::LuaString>, mlua::LuaString)| async move {
                let kind = OpKind::Cas { key: value(&key), expected: expected.as_ref().map(value), new: value(&new) };
                let outcome = this.perform(kind).await;
                reply_to_lua(&lua, outcome)
            },
        );
        methods.add_async_method("incr", |lua, this, (key, by): (mlua::LuaString, Option<i64>)| async move {
            let kind = OpKind::Incr { key: value(&key), by: by.unwrap_or(1) };
            let outcome = this.perform(kind).await;
            reply_to_lua(&lua, outcome)
        });
    }
}
