//! `c:client()`: one client session for a script, every operation recorded
//! in the run's history.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use mlua::{Table, UserData, UserDataMethods, Value as LuaValue};

use super::lua_cluster::lua_error;
use super::ops::{perform_at, perform_with_context};
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
        self.perform_with(kind, None).await.0
    }

    async fn perform_with(&self, kind: OpKind, context: Option<Bytes>) -> (Outcome, Option<Bytes>) {
        let recorders: Vec<&Recorder> = self.recorders.iter().collect();
        perform_with_context(&recorders, &mut *self.client.lock().await, self.id, kind, context).await
    }

    /// A read, through the leader or at one node (`{ node = id }`, with
    /// `stale = true` for that node's own replica at once).
    async fn read(&self, key: &mlua::LuaString, options: &Option<Table>) -> mlua::Result<(Outcome, Option<Bytes>)> {
        let (node, stale): (Option<u64>, bool) = match options {
            Some(t) => (t.get("node")?, t.get::<Option<bool>>("stale")?.unwrap_or(false)),
            None => (None, false),
        };
        let kind = OpKind::Get { key: value(key) };
        let target = match node {
            Some(node) => match self.addrs.get(&node) {
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
        Ok(match target {
            None => self.perform_with(kind, None).await,
            Some(target) => {
                let recorders: Vec<&Recorder> = self.recorders.iter().collect();
                let mut client = self.client.lock().await;
                perform_at(&recorders, &mut client, self.id, kind, target, stale).await
            }
        })
    }
}

/// The `context` option of a write (`{ context = ctx }`), from `get_all`.
fn context_option(options: &Option<Table>) -> mlua::Result<Option<Bytes>> {
    match options {
        Some(t) => Ok(t.get::<Option<mlua::LuaString>>("context")?.map(|c| Bytes::copy_from_slice(&c.as_bytes()))),
        None => Ok(None),
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
        // One value cannot stand for several: the script asks for all.
        Outcome::Ok(Reply::Siblings(values)) => {
            (LuaValue::Nil, Some(format!("siblings: {} concurrent values; read them with get_all", values.len())))
        }
        Outcome::Fail(why) => (LuaValue::Nil, Some(format!("failed: {why}"))),
        Outcome::Unknown(why) => (LuaValue::Nil, Some(format!("unknown: {why}"))),
    })
}

impl UserData for LuaClient {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        // The client's number in the history (`op.client` in `h:ops()`).
        methods.add_method("id", |_, this, ()| Ok(this.id));
        methods.add_async_method(
            "put",
            |lua, this, (key, val, options): (mlua::LuaString, mlua::LuaString, Option<Table>)| async move {
                let kind = OpKind::Put { key: value(&key), value: value(&val) };
                let (outcome, _) = this.perform_with(kind, context_option(&options)?).await;
                reply_to_lua(&lua, outcome)
            },
        );
        methods.add_async_method("get", |lua, this, (key, options): (mlua::LuaString, Option<Table>)| async move {
            let (outcome, _) = this.read(&key, &options).await?;
            reply_to_lua(&lua, outcome)
        });
        // Every value (siblings included) and the context for the next write.
        methods.add_async_method("get_all", |lua, this, (key, options): (mlua::LuaString, Option<Table>)| async move {
            let (outcome, context) = this.read(&key, &options).await?;
            let values = match outcome {
                Outcome::Ok(Reply::Get(v)) => v.into_iter().collect(),
                Outcome::Ok(Reply::Siblings(values)) => values,
                other => return reply_to_lua(&lua, other),
            };
            let t = lua.create_table()?;
            let list = lua.create_table()?;
            for (i, v) in values.iter().enumerate() {
                list.set(i + 1, lua.create_string(v.as_bytes())?)?;
            }
            t.set("values", list)?;
            if let Some(context) = context {
                t.set("context", lua.create_string(&context[..])?)?;
            }
            Ok((LuaValue::Table(t), None))
        });
        methods.add_async_method("del", |lua, this, (key, options): (mlua::LuaString, Option<Table>)| async move {
            let kind = OpKind::Delete { key: value(&key) };
            let (outcome, _) = this.perform_with(kind, context_option(&options)?).await;
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
