//! `c:workload{...}`: concurrent clients issuing a random mix of operations
//! at a bounded rate, for a bounded time, recording a history.
//!
//! Every written value is unique (client, sequence number), so the
//! checkers can tell which write a read saw.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mlua::{Table, UserData, UserDataMethods, Value as LuaValue};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use replab_api::PluginRng;

use super::lua_cluster::lua_error;
use super::ops::perform_with_context;
use super::run_state::RunState;
use crate::check::{History, OpKind, Outcome, Recorder, Reply, Value};
use crate::client::Client;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MixOp {
    Put,
    Get,
    Del,
    Cas,
    Incr,
    /// Read-modify-write: a get, then a put that carries the context the
    /// get returned (under leaderless, it supersedes what it read).
    Update,
}

const MIX_NAMES: [(&str, MixOp); 7] = [
    ("put", MixOp::Put),
    ("get", MixOp::Get),
    ("del", MixOp::Del),
    ("delete", MixOp::Del),
    ("cas", MixOp::Cas),
    ("incr", MixOp::Incr),
    ("update", MixOp::Update),
];

#[derive(Clone, Debug)]
pub struct WorkloadSpec {
    pub clients: usize,
    pub keys: usize,
    mix: Vec<(MixOp, f64)>,
    /// Operations per second over all clients; 0: as fast as they go.
    pub rate: f64,
    pub value_size: usize,
    /// The workload stops by itself after this long (default 60 s: every
    /// load loop is bounded).
    pub duration: Duration,
    /// And after this many operations in all.
    pub max_ops: u64,
    /// Client i talks first to node i mod N (then the others), instead of
    /// every client starting at the first node: under a leaderless policy
    /// each coordinates at a different node, as clients spread over a
    /// load balancer would.
    pub spread: bool,
}

impl WorkloadSpec {
    pub fn from_lua(options: Option<Table>) -> mlua::Result<WorkloadSpec> {
        let mut spec = WorkloadSpec {
            clients: 4,
            keys: 8,
            mix: vec![(MixOp::Put, 0.5), (MixOp::Get, 0.5)],
            rate: 0.0,
            value_size: 16,
            duration: Duration::from_secs(60),
            max_ops: 10_000_000,
            spread: false,
        };
        let Some(t) = options else { return Ok(spec) };
        for pair in t.pairs::<String, LuaValue>() {
            let (key, value) = pair?;
            let number = || -> mlua::Result<f64> {
                match &value {
                    LuaValue::Integer(i) => Ok(*i as f64),
                    LuaValue::Number(n) => Ok(*n),
                    other => Err(lua_error(format!("workload {key} must be a number, got {}", other.type_name()))),
                }
            };
            match key.as_str() {
                "clients" => spec.clients = in_range("clients", number()?, 1.0, 256.0)? as usize,
                "keys" => spec.keys = in_range("keys", number()?, 1.0, 1_000_000.0)? as usize,
                "rate" => spec.rate = in_range("rate", number()?, 0.0, 1_000_000.0)?,
                "value_size" => spec.value_size = in_range("value_size", number()?, 1.0, 1_048_576.0)? as usize,
                "duration" => spec.duration = Duration::from_secs_f64(in_range("duration", number()?, 0.001, 3600.0)?),
                "max_ops" => spec.max_ops = in_range("max_ops", number()?, 1.0, 1e12)? as u64,
                "spread" => {
                    spec.spread =
                        value.as_boolean().ok_or_else(|| lua_error("workload spread must be true or false"))?
                }
                "mix" => spec.mix = parse_mix(&value)?,
                other => {
                    return Err(lua_error(format!(
                        "unknown workload option `{other}`; known: clients, keys, mix, rate, value_size, duration, max_ops, \
                         spread"
                    )));
                }
            }
        }
        Ok(spec)
    }

    fn pick(&self, rng: &mut PluginRng) -> MixOp {
        let total: f64 = self.mix.iter().map(|(_, w)| w).sum();
        let mut x = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * total;
        for (op, weight) in &self.mix {
            if x < *weight {
                return *op;
            }
            x -= weight;
        }
        self.mix.last().expect("mix is not empty").0
    }
}

fn in_range(name: &str, v: f64, lo: f64, hi: f64) -> mlua::Result<f64> {
    if v.is_finite() && v >= lo && v <= hi {
        Ok(v)
    } else {
        Err(lua_error(format!("workload {name} = {v} is outside {lo} ..= {hi}")))
    }
}

fn parse_mix(value: &LuaValue) -> mlua::Result<Vec<(MixOp, f64)>> {
    let t = value.as_table().ok_or_else(|| lua_error("workload mix must be a table like { put = 0.5, get = 0.5 }"))?;
    let mut mix = Vec::new();
    for pair in t.pairs::<String, f64>() {
        let (name, weight) = pair?;
        let op = MIX_NAMES.iter().find(|(n, _)| *n == name).map(|(_, op)| *op).ok_or_else(|| {
            lua_error(format!("workload mix: unknown operation `{name}`; known: put, get, del, cas, incr, update"))
        })?;
        if !(weight.is_finite() && weight >= 0.0) {
            return Err(lua_error(format!("workload mix: weight of {name} must be a number >= 0")));
        }
        mix.push((op, weight));
    }
    // Sort for a deterministic order: Lua table iteration order is not.
    mix.sort_by_key(|(op, _)| *op as u8);
    if mix.iter().map(|(_, w)| w).sum::<f64>() <= 0.0 {
        return Err(lua_error("workload mix: the weights add up to 0"));
    }
    Ok(mix)
}

enum State {
    Ready(Vec<Client>),
    Running { stop: Arc<AtomicBool>, tasks: Vec<JoinHandle<()>> },
    Stopped,
}

pub struct LuaWorkload {
    spec: WorkloadSpec,
    state: tokio::sync::Mutex<State>,
    /// This workload's own history (`w:stop()` returns it).
    recorder: Recorder,
    /// The cluster's history, which this workload's operations join.
    cluster_recorder: Recorder,
    run: Arc<RunState>,
}

impl LuaWorkload {
    pub fn new(
        spec: WorkloadSpec,
        clients: Vec<Client>,
        cluster_recorder: Recorder,
        run: Arc<RunState>,
    ) -> LuaWorkload {
        let recorder = Recorder::with_origin(run.started);
        LuaWorkload { spec, state: tokio::sync::Mutex::new(State::Ready(clients)), recorder, cluster_recorder, run }
    }

    async fn start(&self) -> mlua::Result<()> {
        let mut state = self.state.lock().await;
        let State::Ready(clients) = std::mem::replace(&mut *state, State::Stopped) else {
            return Err(lua_error("the workload was already started"));
        };
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let per_client_ops = self.spec.max_ops.div_ceil(self.spec.clients as u64);
        let mut tasks = Vec::new();
        for client in clients {
            let worker = Worker {
                spec: self.spec.clone(),
                client,
                id: self.run.next_client_id(),
                rng: PluginRng::from_seed_u64(self.run.derive_seed()),
                recorders: [self.run.recorder.clone(), self.cluster_recorder.clone(), self.recorder.clone()],
                stop: Arc::clone(&stop),
                deadline: started + self.spec.duration,
                max_ops: per_client_ops,
            };
            tasks.push(tokio::spawn(worker.run()));
        }
        self.run.event(format!(
            "workload: {} clients, {} keys, rate {}",
            self.spec.clients,
            self.spec.keys,
            if self.spec.rate > 0.0 { format!("{} ops/s", self.spec.rate) } else { "unbounded".into() }
        ));
        *state = State::Running { stop, tasks };
        Ok(())
    }

    /// Stops the clients (after their operation in flight) and returns the
    /// workload's history. `wait_full`: let it finish by itself first, at
    /// the end of its duration or once it issued `max_ops` operations,
    /// whichever comes first.
    async fn stop(&self, wait_full: bool) -> mlua::Result<LuaHistory> {
        let mut state = self.state.lock().await;
        match std::mem::replace(&mut *state, State::Stopped) {
            State::Running { stop, tasks } => {
                // Each client stops by itself at the deadline or at its
                // share of max_ops; waiting for them is waiting for both.
                if !wait_full {
                    stop.store(true, Ordering::Release);
                }
                for task in tasks {
                    task.await.map_err(|e| lua_error(format!("a workload client failed: {e}")))?;
                }
            }
            State::Ready(_) => return Err(lua_error("the workload was never started")),
            State::Stopped => return Err(lua_error("the workload was already stopped")),
        }
        let history = self.recorder.finish();
        self.run.event(format!("workload stopped after {} operations", history.len()));
        Ok(LuaHistory(Arc::new(history)))
    }
}

struct Worker {
    spec: WorkloadSpec,
    client: Client,
    id: u64,
    rng: PluginRng,
    recorders: [Recorder; 3],
    stop: Arc<AtomicBool>,
    deadline: Instant,
    max_ops: u64,
}

impl Worker {
    async fn run(mut self) {
        let interval =
            (self.spec.rate > 0.0).then(|| Duration::from_secs_f64(self.spec.clients as f64 / self.spec.rate));
        let mut next_at = Instant::now();
        let mut last_seen: Vec<Option<Value>> = vec![None; self.spec.keys];
        let mut done = 0u64;
        while !self.stop.load(Ordering::Acquire) && Instant::now() < self.deadline && done < self.max_ops {
            if let Some(interval) = interval {
                // Never burst to catch up after a slow operation.
                next_at = next_at.max(Instant::now());
                tokio::time::sleep_until(next_at).await;
                next_at += interval;
            }
            let slot = self.rng.range_inclusive(0, self.spec.keys as u64 - 1) as usize;
            let key = Value::new(format!("k{slot}"));
            done += 1;
            let fresh = || {
                let mut v = format!("c{}-{done}", self.id);
                while v.len() < self.spec.value_size {
                    v.push('.');
                }
                Value::new(v)
            };
            let [run, cluster, own] = &self.recorders;
            let recorders = [run, cluster, own];
            let mut context = None;
            let kind = match self.spec.pick(&mut self.rng) {
                MixOp::Put => OpKind::Put { key, value: fresh() },
                MixOp::Get => OpKind::Get { key },
                MixOp::Del => OpKind::Delete { key },
                MixOp::Cas => OpKind::Cas { key, expected: last_seen[slot].clone(), new: fresh() },
                MixOp::Incr => OpKind::Incr { key, by: 1 },
                MixOp::Update => {
                    let read = OpKind::Get { key: key.clone() };
                    let (outcome, returned) =
                        perform_with_context(&recorders, &mut self.client, self.id, read, None).await;
                    if !outcome.is_ok() {
                        continue;
                    }
                    context = returned;
                    OpKind::Put { key, value: fresh() }
                }
            };
            let written = match &kind {
                OpKind::Put { value, .. } | OpKind::Cas { new: value, .. } => Some(value.clone()),
                _ => None,
            };
            let (outcome, _) = perform_with_context(&recorders, &mut self.client, self.id, kind, context).await;
            // Remember what this client last saw, for its next cas.
            match outcome {
                Outcome::Ok(Reply::Get(v)) => last_seen[slot] = v,
                Outcome::Ok(Reply::Done) | Outcome::Ok(Reply::Cas(true)) => last_seen[slot] = written,
                _ => {}
            }
        }
    }
}

impl UserData for LuaWorkload {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_async_method("start", |_, this, ()| async move { this.start().await });
        methods.add_async_method("stop", |_, this, ()| async move { this.stop(false).await });
        // start, run the whole duration, stop.
        methods.add_async_method("run", |_, this, ()| async move {
            this.start().await?;
            this.stop(true).await
        });
        methods.add_async_method("wait", |_, this, ()| async move { this.stop(true).await });
    }
}

/// A history handed to scripts (`w:stop()`), and from them to `check.*`.
#[derive(Clone)]
pub struct LuaHistory(pub Arc<History>);

/// One operation as a Lua table (`h:ops()`; fields in docs/LUA_API.md).
fn op_table(lua: &mlua::Lua, op: &crate::check::Operation) -> mlua::Result<Table> {
    let bytes = |v: &Value| lua.create_string(v.as_bytes());
    let t = lua.create_table()?;
    t.set("id", op.id)?;
    t.set("client", op.client)?;
    t.set("kind", op.kind.name())?;
    t.set("key", bytes(op.key())?)?;
    match &op.kind {
        OpKind::Put { value, .. } => t.set("value", bytes(value)?)?,
        OpKind::Cas { expected, new, .. } => {
            t.set("value", bytes(new)?)?;
            if let Some(expected) = expected {
                t.set("expected", bytes(expected)?)?;
            }
        }
        OpKind::Incr { by, .. } => t.set("by", *by)?,
        OpKind::Get { .. } | OpKind::Delete { .. } => {}
    }
    let (outcome, reason) = match &op.outcome {
        Outcome::Ok(reply) => {
            match reply {
                Reply::Get(Some(v)) => t.set("result", bytes(v)?)?,
                Reply::Cas(swapped) => t.set("result", *swapped)?,
                Reply::Incr(n) => t.set("result", *n)?,
                Reply::Siblings(values) => {
                    let list = lua.create_table()?;
                    for (i, v) in values.iter().enumerate() {
                        list.set(i + 1, bytes(v)?)?;
                    }
                    t.set("result", list)?;
                }
                Reply::Get(None) | Reply::Done => {}
            }
            ("ok", None)
        }
        Outcome::Fail(why) => ("fail", Some(why)),
        Outcome::Unknown(why) => ("unknown", Some(why)),
    };
    t.set("outcome", outcome)?;
    t.set("reason", reason.cloned())?;
    t.set("invoke", op.invoke_us as f64 / 1e6)?;
    t.set("complete", op.complete_us.map(|us| us as f64 / 1e6))?;
    t.set("node", op.node)?;
    if let Some(context) = &op.context {
        t.set("context", bytes(context)?)?;
    }
    Ok(t)
}

impl UserData for LuaHistory {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("len", |_, this, ()| Ok(this.0.len()));
        methods.add_method("ops", |lua, this, ()| {
            let list = lua.create_table_with_capacity(this.0.len(), 0)?;
            for (i, op) in this.0.iter().enumerate() {
                list.set(i + 1, op_table(lua, op)?)?;
            }
            Ok(list)
        });
        methods.add_method("counts", |lua, this, ()| {
            let t = lua.create_table()?;
            let ops = this.0.iter();
            let (mut ok, mut fail, mut unknown) = (0, 0, 0);
            for op in ops {
                match op.outcome {
                    Outcome::Ok(_) => ok += 1,
                    Outcome::Fail(_) => fail += 1,
                    Outcome::Unknown(_) => unknown += 1,
                }
            }
            t.set("ok", ok)?;
            t.set("fail", fail)?;
            t.set("unknown", unknown)?;
            Ok(t)
        });
    }
}
