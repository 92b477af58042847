//! `replab node` child processes, by member id: started, signalled,
//! stopped by pid. One supervisor for everything that starts nodes as
//! processes: `replab run` on processes (`cluster::procs`) and `replab
//! bench cluster --processes` (`bench::procs`).
//!
//! Children never outlive their owner: dropping a [`Children`] stops every
//! one still running (SIGTERM, SIGKILL after a grace period), and a child
//! started with `--exit-with-parent` gets standard input from a pipe this
//! side holds, so it stops by itself if the owner's process dies without
//! running any destructor (SIGKILL, abort).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use replab_api::NodeId;

/// The running children, by member id.
#[derive(Default)]
pub struct Children {
    running: BTreeMap<NodeId, Child>,
}

/// How to start one node.
pub struct Spawn<'a> {
    pub exe: &'a Path,
    pub config: &'a Path,
    pub id: NodeId,
    /// `--set` overrides after the file.
    pub sets: &'a [String],
    /// Hidden flags (`--allow-fault-injection`, ...).
    pub extra: Vec<String>,
    /// Where the node's stderr goes.
    pub log: &'a Path,
    /// Tie the child's life to this process: give it a pipe as stdin and
    /// keep the write end (with `--exit-with-parent` it stops when that
    /// closes), and on Linux ask the kernel to SIGKILL it when its parent
    /// dies (`PR_SET_PDEATHSIG`), which reaches a stopped (paused) child
    /// too, that cannot read its stdin.
    pub tied_to_parent: bool,
}

impl Children {
    /// Starts `exe node --config FILE --id N [--set ...] [extra ...]`.
    pub fn spawn(&mut self, s: Spawn<'_>) -> Result<u32, String> {
        if self.running.contains_key(&s.id) {
            return Err(format!("node {} is already running", s.id));
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(s.log)
            .map_err(|e| format!("{}: {e}", s.log.display()))?;
        let mut cmd = Command::new(s.exe);
        cmd.args(["node", "--config"]).arg(s.config).args(["--id", &s.id.to_string()]);
        // `replab node` ranks REPLAB_* variables above its config file, but
        // the file (and `sets`) already hold the settings the caller chose,
        // its own environment included: inherited, a variable would
        // silently override a compare variant's `--set`.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("REPLAB_") {
                cmd.env_remove(&name);
            }
        }
        for set in s.sets {
            cmd.args(["--set", set]);
        }
        cmd.args(&s.extra);
        let stdin = if s.tied_to_parent { Stdio::piped() } else { Stdio::null() };
        #[cfg(target_os = "linux")]
        if s.tied_to_parent {
            use std::os::unix::process::CommandExt;
            // SAFETY: between fork and exec the closure calls only
            // async-signal-safe functions (prctl, getppid).
            let parent = unsafe { libc::getpid() };
            unsafe {
                cmd.pre_exec(move || {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    // The parent may have died before the prctl.
                    if libc::getppid() != parent {
                        return Err(std::io::Error::other("the parent exited"));
                    }
                    Ok(())
                });
            }
        }
        let child = cmd
            .stdin(stdin)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {} node: {e}", s.exe.display()))?;
        let pid = child.id();
        self.running.insert(s.id, child);
        Ok(pid)
    }

    pub fn pid(&self, id: NodeId) -> Option<u32> {
        self.running.get(&id).map(Child::id)
    }

    pub fn pids(&self) -> Vec<u32> {
        self.running.values().map(Child::id).collect()
    }

    pub fn is_running(&self, id: NodeId) -> bool {
        self.running.contains_key(&id)
    }

    /// A child that exited by itself, with its status (it is forgotten).
    pub fn exited(&mut self) -> Option<(NodeId, u32, ExitStatus)> {
        let (id, pid, status) = self
            .running
            .iter_mut()
            .find_map(|(id, c)| c.try_wait().ok().flatten().map(|status| (*id, c.id(), status)))?;
        self.running.remove(&id);
        Some((id, pid, status))
    }

    /// Sends `signal` to node `id`.
    pub fn signal(&self, id: NodeId, signal: i32) -> Result<(), String> {
        let child = self.running.get(&id).ok_or_else(|| format!("node {id} is not running"))?;
        send(child, signal)
    }

    /// Waits up to `timeout` for node `id` to exit and forgets it; `None`
    /// if it is still running (then it is kept).
    pub async fn wait(&mut self, id: NodeId, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.running.get_mut(&id)?;
            if let Ok(Some(status)) = child.try_wait() {
                self.running.remove(&id);
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// SIGKILL, then reaps it.
    pub async fn kill(&mut self, id: NodeId) -> Result<ExitStatus, String> {
        self.signal(id, libc::SIGKILL)?;
        self.wait(id, Duration::from_secs(10)).await.ok_or_else(|| format!("node {id} survived SIGKILL"))
    }

    /// SIGTERM (and SIGCONT, should it be stopped), then SIGKILL after
    /// `grace`; reaps it.
    pub async fn terminate(&mut self, id: NodeId, grace: Duration) -> Result<ExitStatus, String> {
        self.signal(id, libc::SIGTERM)?;
        let _ = self.signal(id, libc::SIGCONT);
        match self.wait(id, grace).await {
            Some(status) => Ok(status),
            None => self.kill(id).await,
        }
    }

    /// SIGTERM to every child (SIGCONT too, so a stopped one gets it), then
    /// SIGKILL to any still alive after `grace`; waits for every one. Blocks:
    /// for `Drop` and synchronous callers.
    pub fn stop_all(&mut self, grace: Duration) {
        for c in self.running.values() {
            let _ = send(c, libc::SIGTERM);
            let _ = send(c, libc::SIGCONT);
        }
        let deadline = Instant::now() + grace;
        for c in self.running.values_mut() {
            while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        self.running.clear();
    }
}

fn send(child: &Child, signal: i32) -> Result<(), String> {
    let pid = i32::try_from(child.id()).map_err(|_| format!("pid {} out of range", child.id()))?;
    // SAFETY: kill(2) on the pid of a child we have not reaped yet, so the
    // pid cannot have been reused.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(format!("kill({pid}, {signal}): {}", std::io::Error::last_os_error()))
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        self.stop_all(Duration::from_secs(5));
    }
}

/// Ports the kernel hands out now on 127.0.0.1; they stay free long enough
/// in practice (the same method the process tests use).
pub fn free_ports(n: usize) -> Result<Vec<u16>, String> {
    free_ports_on(std::net::Ipv4Addr::LOCALHOST, n)
}

/// [`free_ports`] on another loopback address.
pub fn free_ports_on(ip: std::net::Ipv4Addr, n: usize) -> Result<Vec<u16>, String> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind((ip, 0)))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot find a free loopback port on {ip}: {e}"))?;
    listeners.iter().map(|l| l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())).collect()
}
