//! A primary-backup world on the harness: what to run (`Spec`), the
//! policy's settings drawn from the seed, and the world itself, with a
//! ledger state machine, a real failure detector on every node and
//! primary-backup's step check.

use replab_api::PluginRng;
use replab_primary_backup::{Bug, Mode, PrimaryBackup, PrimaryBackupConfig};
use replab_sim::{LedgerStateMachine, LinkConfig, SimOptions, mix_seed};

use super::detectors::{DetectorConfig, DetectorKind};
use super::invariants::{self, Primaries, World};

/// What to run: a seed, a mode, a bug switch, and whether the simulator's
/// Raft-style invariants run too (the bug tests turn them off to show
/// that primary-backup's own invariants catch each bug).
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub seed: u64,
    pub mode: Mode,
    pub bug: Bug,
    pub raft_checks: bool,
    /// 3 or 5, alternating by seed in the randomized runs.
    pub members: usize,
    /// The test a violation's replay line names.
    pub test: &'static str,
}

impl Spec {
    /// A randomized run of `tests/detected.rs`.
    pub fn new(seed: u64, mode: Mode) -> Spec {
        let members = if seed.is_multiple_of(2) { 3 } else { 5 };
        Spec { seed, mode, bug: Bug::None, raft_checks: mode != Mode::Async, members, test: "detected" }
    }

    /// The command that replays this run, printed with every violation.
    pub fn replay_command(&self) -> String {
        let bug = match self.bug {
            Bug::None => String::new(),
            bug => format!("REPLAB_SIM_BUG={} ", serde_name(bug)),
        };
        let checks = if self.raft_checks == (self.mode != Mode::Async) { "" } else { "REPLAB_SIM_RAFT_CHECKS=0 " };
        let test = self.test;
        if test != "detected" {
            return format!(
                "REPLAB_SIM_SEED={{seed}} cargo test --release -p replab-primary-backup --test {test} -- --nocapture"
            );
        }
        format!(
            "REPLAB_SIM_SEED={{seed}} REPLAB_SIM_MODE={} {bug}{checks}cargo test --release -p replab-primary-backup \
             --test detected -- --exact replay_one_seed --nocapture",
            self.mode
        )
    }
}

fn serde_name(bug: Bug) -> String {
    toml::Value::try_from(bug).ok().and_then(|v| v.as_str().map(str::to_string)).expect("a bug has a name")
}

/// The policy's settings, drawn from the seed: small batches and windows
/// as well as the defaults, and snapshots in a third of the seeds.
pub fn policy_config(seed: u64, mode: Mode, bug: Bug) -> PrimaryBackupConfig {
    let mut rng = PluginRng::from_seed_u64(mix_seed(seed, 0x9b));
    let mut choose = |options: &[u64]| options[rng.range_inclusive(0, options.len() as u64 - 1) as usize];
    PrimaryBackupConfig {
        mode,
        bug,
        max_entries_per_append: choose(&[2, 64]) as usize,
        max_inflight_appends: choose(&[1, 4, 16]) as usize,
        snapshot_threshold_entries: choose(&[0, 0, 12]),
        ..PrimaryBackupConfig::default()
    }
}

/// A world built for a spec: the simulator, the detectors' configuration,
/// and the primaries the step check has seen.
pub struct Built {
    pub sim: World,
    pub detector: DetectorConfig,
    pub primaries: Primaries,
}

/// Builds the world of `spec` with the detector drawn from its seed.
pub fn world(spec: &Spec, record_effects: bool) -> Built {
    let detector = DetectorConfig::draw(DetectorKind::for_seed(spec.seed), spec.seed, spec.members);
    world_with(spec, detector, record_effects)
}

/// Builds the world of `spec`: policies, ledgers, `detector` on every
/// node, the step check.
pub fn world_with(spec: &Spec, detector: DetectorConfig, record_effects: bool) -> Built {
    let members = spec.members;
    let mut options = SimOptions::new(spec.seed, members);
    options.link = LinkConfig { delay_min_us: 200, delay_max_us: 1_000, ..LinkConfig::BENIGN };
    options.check_invariants = spec.raft_checks;
    options.record_effects = record_effects;
    options.replay_command = spec.replay_command();
    let config = policy_config(spec.seed, spec.mode, spec.bug);
    let build = move |ctx, recovered| PrimaryBackup::new(ctx, config.clone(), recovered);
    let mut sim = World::with_state_machine(options, build, |_| LedgerStateMachine::default());
    let for_nodes = detector.clone();
    sim.attach_detectors(move |ctx| for_nodes.build(ctx));
    let primaries = Primaries::default();
    sim.set_step_check(invariants::step_check(primaries.clone()));
    Built { sim, detector, primaries }
}
