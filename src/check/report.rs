//! One checker's result in the shape every consumer wants: the Lua
//! `check.*` functions (pass, or fail the run with the witness), the
//! `results.json` file and the report's table.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Pass,
    Fail,
    /// The checker could not decide (budget spent, malformed input).
    Unknown,
}

impl fmt::Display for CheckStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CheckStatus::Pass => "pass",
            CheckStatus::Fail => "fail",
            CheckStatus::Unknown => "unknown",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    /// `linearizable`, `no_lost_writes`, `convergence`, `stale_reads`.
    pub name: String,
    pub status: CheckStatus,
    /// One line, readable on its own.
    pub summary: String,
    /// The evidence, multi-line; empty on a pass.
    pub witness: String,
    /// How many items break the property (lost writes, stale reads,
    /// diverging keys), for checkers that count them.
    #[serde(default)]
    pub violations: Option<u64>,
    #[serde(rename = "elapsed_s", serialize_with = "serialize_secs", deserialize_with = "deserialize_secs")]
    pub elapsed: Duration,
}

impl CheckReport {
    pub fn passed(&self) -> bool {
        self.status == CheckStatus::Pass
    }
}

/// `linearizable: fail (0.012s): key k3: ...` then the witness.
impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({:.3}s): {}", self.name, self.status, self.elapsed.as_secs_f64(), self.summary)?;
        if !self.witness.is_empty() {
            write!(f, "\n{}", self.witness.trim_end())?;
        }
        Ok(())
    }
}

/// Durations go to JSON as seconds (`elapsed_s`), the unit in the name.
pub(crate) fn serialize_secs<S: Serializer>(elapsed: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(elapsed.as_secs_f64())
}

fn deserialize_secs<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let secs = f64::deserialize(deserializer)?;
    Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
}
