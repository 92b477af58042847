//! `replab run`: every shipped scenario passes under Raft; the checkers
//! catch deliberately broken configurations; errors exit with the right
//! code and name the file and line.

mod api;
mod broken;
mod compare;
mod errors;
mod processes;
mod recheck;
mod report;
mod shipped;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub results: Option<serde_json::Value>,
    pub history_lines: Option<usize>,
}

/// Runs `replab COMMAND SCRIPT --out OUT ARGS...` from the repository root.
pub fn replab(command: &str, script: &Path, out: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_replab"))
        .arg(command)
        .arg(script)
        .arg("--out")
        .arg(out)
        .args(args)
        .env_remove("RUST_LOG")
        .current_dir(root())
        .output()
        .expect("run replab")
}

/// Runs `replab run SCRIPT --out DIR ARGS...` and reads what it wrote.
pub fn run(script: &Path, args: &[&str]) -> Run {
    let out = tempfile::tempdir().unwrap();
    let output = replab("run", script, out.path(), args);
    let results = std::fs::read_to_string(out.path().join("results.json"))
        .ok()
        .map(|text| serde_json::from_str(&text).expect("results.json is JSON"));
    let history_lines = std::fs::read_to_string(out.path().join("history.jsonl")).ok().map(|text| text.lines().count());
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        results,
        history_lines,
    }
}

impl Run {
    pub fn explain(&self) -> String {
        format!("exit {:?}\n--- stdout\n{}\n--- stderr\n{}", self.code, self.stdout, self.stderr)
    }

    /// The status of the named check in results.json.
    pub fn check_status(&self, name: &str) -> Option<String> {
        let checks = self.results.as_ref()?["checks"].as_array()?;
        let check = checks.iter().find(|c| c["name"] == name)?;
        Some(check["status"].as_str()?.to_string())
    }
}
