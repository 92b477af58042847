//! Time as a plugin sees it: a monotonic instant handed in by the engine.
//!
//! The engine (or the simulator) decides what "now" is. Plugins only
//! compare and add instants, so the same code runs on virtual time in the
//! harness and on `tokio::time::Instant` in the engine.

use serde::{Deserialize, Serialize};

/// Microseconds since an arbitrary origin chosen by the engine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Instant {
    micros: u64,
}

impl Instant {
    pub const ZERO: Instant = Instant { micros: 0 };

    pub const fn from_micros(micros: u64) -> Instant {
        Instant { micros }
    }

    pub const fn from_millis(millis: u64) -> Instant {
        Instant { micros: millis * 1_000 }
    }

    pub const fn as_micros(self) -> u64 {
        self.micros
    }

    pub const fn as_millis(self) -> u64 {
        self.micros / 1_000
    }

    pub const fn add_millis(self, millis: u64) -> Instant {
        Instant { micros: self.micros.saturating_add(millis.saturating_mul(1_000)) }
    }

    pub const fn add_micros(self, micros: u64) -> Instant {
        Instant { micros: self.micros.saturating_add(micros) }
    }

    /// Microseconds from `earlier` to `self`, or 0 if `earlier` is later.
    pub const fn micros_since(self, earlier: Instant) -> u64 {
        self.micros.saturating_sub(earlier.micros)
    }
}
