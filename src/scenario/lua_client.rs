//! `c:client()`: one client session for a script, every operation recorded
//! in the run's history.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use mlua::{Table, UserData, UserDataMethods, Value as LuaValue};

use super::ops::perform;
use super::run_state::RunState;
use crate::check::{OpKind, Outcome, Reply, Value};
use crate::client::Client;

pub struct LuaClient {
    client: Arc<tokio::sync::Mutex<Client>>,
    /// Client addresses by node id, for reads from one replica.
    addrs: BTreeMap<u64, SocketAddr>,
    /// This client's number in the history.
    id: u64,
    run: Arc<RunState>,
}

impl LuaClient {
    pub fn new(client: Client, addrs: BTreeMap<u64, SocketAddr>, run: Arc<RunState>) -> LuaClient {
        let id = run.next_client_id();
        LuaClient { client: Arc::new(tokio::sync::Mutex::new(client)), addrs, id, run }
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
        methods.add_async_method("put", |lua, this, (key, val): (mlua::LuaString, mlua::LuaString)| async move {
            let kind = OpKind::Put { key: value(&key), value: value(&val) };
            let outcome = perform(&this.run, &mut *this.client.lock().await, this.id, kind).await;
            reply_to_lua(&lua, outcome)
        });
        methods.add_async_method("get", |lua, this, (key, options): (mlua::LuaString, Option<Table>)| async move {
            let stale_node: Option<u64> = match &options {
                Some(t) if t.get::<Option<bool>>("stale")?.unwrap_or(false) => Some(t.get("node")?),
                _ => None,
            };
            let kind = OpKind::Get { key: value(&key) };
            let target = match stale_node {
                Some(node) => match this.addrs.get(&node) {
                    Some(addr) => Some((node, *addr)),
                    None => return Err(super::lua_cluster::lua_error(format!("node {node} is not a member"))),
                },
                None => None,
            };
            let mut client = this.client.lock().await;
            let outcome = match target {
                None => perform(&this.run, &mut client, this.id, kind).await,
                Some(target) => super::ops::perform_stale_get(&this.run, &mut client, this.id, kind, target).await,
            };
            reply_to_lua(&lua, outcome)
        });
        methods.add_async_method("del", |lua, this, key: mlua::LuaString| async move {
            let kind = OpKind::Delete { key: value(&key) };
            let outcome = perform(&this.run, &mut *this.client.lock().await, this.id, kind).await;
            reply_to_lua(&lua, outcome)
        });
        methods.add_async_method(
            "cas",
            |lua, this, (key, expected, new): (mlua::LuaString, Option<mlua::LuaString>, mlua::LuaString)| async move {
                let kind = OpKind::Cas { key: value(&key), expected: expected.as_ref().map(value), new: value(&new) };
                let outcome = perform(&this.run, &mut *this.client.lock().await, this.id, kind).await;
                reply_to_lua(&lua, outcome)
            },
        );
        methods.add_async_method("incr", |lua, this, (key, by): (mlua::LuaString, Option<i64>)| async move {
            let kind = OpKind::Incr { key: value(&key), by: by.unwrap_or(1) };
            let outcome = perform(&this.run, &mut *this.client.lock().await, this.id, kind).await;
            reply_to_lua(&lua, outcome)
        });
    }
}
