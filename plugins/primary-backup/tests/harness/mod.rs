//! Primary-backup on the deterministic harness with the real failure
//! detectors: the detectors' configuration and detection bounds
//! (`detectors`), the policy's invariants (`invariants`), the world
//! (`world`), one randomized run per seed (`chaos`), and the crash and
//! flapping schedules that measure the detectors (`scenarios`). Used by `tests/detected.rs` (the
//! randomized runs and the bug switches) and `tests/detectors.rs` (the
//! detectors themselves, on the same harness).

#![allow(dead_code)]

pub mod chaos;
pub mod detectors;
pub mod invariants;
pub mod scenarios;
pub mod world;
