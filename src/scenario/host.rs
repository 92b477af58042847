//! The Lua state of a run and its global functions: `cluster.start`,
//! `sleep`, `spawn`, `now`, `log`, `random`, plus `check` and `report`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mlua::{
    Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, UserData, UserDataMethods, Value as LuaValue,
    VmState,
};
use tokio::task::JoinHandle;

use super::lua_cluster::{self, ClusterCell, lua_error};
use super::run_state::RunState;

/// Tasks started with `spawn`, awaited when the script ends.
pub type Spawned = Arc<Mutex<Vec<JoinHandle<()>>>>;

pub struct Host {
    pub lua: Lua,
    pub clusters: Arc<Mutex<Vec<Arc<ClusterCell>>>>,
    pub spawned: Spawned,
}

pub fn new(run: &Arc<RunState>, limits: super::Limits) -> mlua::Result<Host> {
    // The standard libraries minus io and os.execute-like escapes: a
    // scenario talks to replab, not to the machine.
    let libs = StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::UTF8 | StdLib::COROUTINE;
    let lua = Lua::new_with(libs, LuaOptions::default())?;
    lua.set_memory_limit(limits.lua_memory_bytes)?;
    // A loop that never waits never returns control to tokio, so no timer
    // can stop it; this hook, run every 100,000 instructions in every Lua
    // thread (the script's and spawned ones), can.
    let deadline = run.started + limits.timeout;
    let timeout_s = limits.timeout.as_secs_f64();
    lua.set_global_hook(HookTriggers::new().every_nth_instruction(100_000), move |_, _| {
        if std::time::Instant::now() >= deadline {
            Err(lua_error(format!("the run took longer than --timeout {timeout_s} s and was stopped")))
        } else {
            Ok(VmState::Continue)
        }
    })?;
    let globals = lua.globals();
    let clusters: Arc<Mutex<Vec<Arc<ClusterCell>>>> = Arc::new(Mutex::new(Vec::new()));
    let spawned: Spawned = Arc::new(Mutex::new(Vec::new()));

    // math.random follows the run's seed too.
    let math: Table = globals.get("math")?;
    let randomseed: Function = math.get("randomseed")?;
    randomseed.call::<()>(run.seed as i64)?;

    let cluster = lua.create_table()?;
    let (r, cs) = (Arc::clone(run), Arc::clone(&clusters));
    cluster.set(
        "start",
        lua.create_async_function(move |_, options: Option<Table>| {
            let (run, clusters) = (Arc::clone(&r), Arc::clone(&cs));
            async move {
                let (handle, cell) = lua_cluster::start(run, options).await?;
                clusters.lock().expect("clusters lock").push(cell);
                Ok(handle)
            }
        })?,
    )?;
    globals.set("cluster", cluster)?;

    globals.set(
        "sleep",
        lua.create_async_function(|_, seconds: f64| async move {
            if !(seconds.is_finite() && (0.0..=3600.0).contains(&seconds)) {
                return Err(lua_error(format!("sleep({seconds}): seconds must be within 0 ..= 3600")));
            }
            tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
            Ok(())
        })?,
    )?;

    let r = Arc::clone(run);
    globals.set("now", lua.create_function(move |_, ()| Ok(r.elapsed_s()))?)?;

    // Every client operation of the run so far (workloads and c:client()),
    // or, given a cluster, that cluster's only.
    let r = Arc::clone(run);
    globals.set(
        "history",
        lua.create_function(move |_, cluster: Option<mlua::UserDataRef<lua_cluster::LuaCluster>>| {
            let history = match cluster {
                Some(c) => c.0.recorder.finish(),
                None => r.recorder.finish(),
            };
            Ok(super::workload::LuaHistory(Arc::new(history)))
        })?,
    )?;

    let r = Arc::clone(run);
    globals.set(
        "log",
        lua.create_function(move |_, values: MultiValue| {
            let text: Vec<String> = values.iter().map(display).collect();
            println!("[{:8.3}s] {}", r.elapsed_s(), text.join(" "));
            Ok(())
        })?,
    )?;

    let r = Arc::clone(run);
    globals.set(
        "random",
        lua.create_function(move |_, (a, b): (Option<i64>, Option<i64>)| {
            let draw = r.random_u64();
            match (a, b) {
                (None, _) => Ok(LuaValue::Number((draw >> 11) as f64 / (1u64 << 53) as f64)),
                (Some(n), None) if n >= 1 => Ok(LuaValue::Integer(1 + (draw % n as u64) as i64)),
                (Some(m), Some(n)) if m <= n => Ok(LuaValue::Integer(m + (draw % ((n - m) as u64 + 1)) as i64)),
                _ => Err(lua_error("random(): use random(), random(n) with n >= 1, or random(m, n) with m <= n")),
            }
        })?,
    )?;

    let (r, sp) = (Arc::clone(run), Arc::clone(&spawned));
    globals.set(
        "spawn",
        lua.create_function(move |lua, (f, args): (Function, MultiValue)| {
            let thread = lua.create_thread(f)?;
            let task = thread.into_async::<MultiValue>(args)?;
            let run = Arc::clone(&r);
            let (tx, rx) = tokio::sync::oneshot::channel();
            let handle = tokio::spawn(async move {
                let result = task.await;
                if let Err(e) = &result {
                    run.task_error(super::describe_error(e));
                }
                let _ = tx.send(result.map_err(|e| super::describe_error(&e)));
            });
            sp.lock().expect("spawned lock").push(handle);
            Ok(LuaTask { result: Mutex::new(Some(rx)) })
        })?,
    )?;

    super::checks::install(&lua, run)?;
    drop(globals);
    Ok(Host { lua, clusters, spawned })
}

/// A task started with `spawn`; `t:join()` waits for it and returns what
/// its function returned (raising its error, if it failed).
struct LuaTask {
    result: Mutex<Option<tokio::sync::oneshot::Receiver<Result<MultiValue, String>>>>,
}

impl UserData for LuaTask {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_async_method("join", |_, this, ()| async move {
            let rx = this.result.lock().expect("task lock").take().ok_or_else(|| lua_error("task already joined"))?;
            match rx.await {
                Ok(Ok(values)) => Ok(values),
                Ok(Err(why)) => Err(lua_error(format!("spawned task failed: {why}"))),
                Err(_) => Err(lua_error("spawned task was cancelled")),
            }
        });
    }
}

fn display(v: &LuaValue) -> String {
    match v {
        LuaValue::Nil => "nil".into(),
        LuaValue::Boolean(b) => b.to_string(),
        LuaValue::Integer(i) => i.to_string(),
        LuaValue::Number(n) => n.to_string(),
        LuaValue::String(s) => s.to_string_lossy(),
        LuaValue::Error(e) => super::describe_error(e),
        other => format!("<{}>", other.type_name()),
    }
}
