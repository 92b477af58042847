//! Which real failure detector a simulated run uses, its configuration,
//! and how soon it must suspect a crashed node.
//!
//! The detectors are the plugins the engine runs (`replab-gossip`,
//! `replab-heartbeat`); the simulator carries their messages over its
//! network and hands their verdicts to the policy (`replab_sim::detectors`).

use replab_api::{FailureDetector, NodeId, PluginRng};
use replab_gossip::{GossipConfig, GossipDetector, phi};
use replab_heartbeat::{HeartbeatConfig, HeartbeatDetector};
use replab_sim::{DetectorContext, mix_seed};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DetectorKind {
    Gossip,
    Heartbeat,
}

impl DetectorKind {
    pub const BOTH: [DetectorKind; 2] = [DetectorKind::Gossip, DetectorKind::Heartbeat];

    /// The randomized runs alternate kinds in pairs of seeds, so that
    /// both kinds meet both cluster sizes (which alternate every seed).
    pub fn for_seed(seed: u64) -> DetectorKind {
        if (seed / 2).is_multiple_of(2) { DetectorKind::Gossip } else { DetectorKind::Heartbeat }
    }

    pub fn name(self) -> &'static str {
        match self {
            DetectorKind::Gossip => GossipDetector::NAME,
            DetectorKind::Heartbeat => HeartbeatDetector::NAME,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum DetectorConfig {
    Gossip(GossipConfig),
    Heartbeat(HeartbeatConfig),
}

impl DetectorConfig {
    /// The engine's defaults (`config/default.toml`), except that gossip
    /// talks to every peer each round (`fanout = members - 1`): then every
    /// member's counter reaches every observer once per round, and the
    /// arrival distribution, hence the detection time, follows from the
    /// configuration. With a smaller fanout the gaps depend on how rumours
    /// spread, and phi-accrual learns them; no bound follows from the
    /// configuration alone.
    pub fn defaults(kind: DetectorKind, members: usize) -> DetectorConfig {
        match kind {
            DetectorKind::Gossip => DetectorConfig::Gossip(GossipConfig::default()),
            DetectorKind::Heartbeat => DetectorConfig::Heartbeat(HeartbeatConfig::default()),
        }
        .with_full_fanout(members)
    }

    /// A configuration drawn from the seed, for the randomized runs:
    /// faster and slower detectors than the defaults, and for gossip
    /// fanouts that need relays, so failover meets late and early verdicts.
    pub fn draw(kind: DetectorKind, seed: u64, members: usize) -> DetectorConfig {
        let mut rng = PluginRng::from_seed_u64(mix_seed(seed, 0xde7));
        let mut pick = |options: &[u64]| options[rng.range_inclusive(0, options.len() as u64 - 1) as usize];
        let interval_ms = pick(&[20, 50, 100]);
        let config = match kind {
            DetectorKind::Heartbeat => {
                let suspect_after_ms = interval_ms * pick(&[3, 5]);
                let dead_after_ms = suspect_after_ms * pick(&[1, 2]);
                DetectorConfig::Heartbeat(HeartbeatConfig { interval_ms, suspect_after_ms, dead_after_ms })
            }
            DetectorKind::Gossip => {
                let suspect_phi = pick(&[3, 5, 8]) as f64;
                DetectorConfig::Gossip(GossipConfig {
                    interval_ms,
                    fanout: pick(&[1, 2, members as u64 - 1]) as usize,
                    suspect_phi,
                    dead_phi: 2.0 * suspect_phi,
                    window: 100,
                    min_std_dev_ms: (interval_ms / pick(&[1, 2])) as f64,
                })
            }
        };
        config.validate();
        config
    }

    /// The same, with gossip sending to every peer each round, as its
    /// detection bound requires.
    pub fn with_full_fanout(self, members: usize) -> DetectorConfig {
        match self {
            DetectorConfig::Gossip(c) => DetectorConfig::Gossip(GossipConfig { fanout: members - 1, ..c }),
            heartbeat => heartbeat,
        }
    }

    pub fn kind(&self) -> DetectorKind {
        match self {
            DetectorConfig::Gossip(_) => DetectorKind::Gossip,
            DetectorConfig::Heartbeat(_) => DetectorKind::Heartbeat,
        }
    }

    fn validate(&self) {
        let result = match self {
            DetectorConfig::Gossip(c) => c.validate(),
            DetectorConfig::Heartbeat(c) => c.validate(),
        };
        result.unwrap_or_else(|e| panic!("a drawn detector configuration is invalid: {e:?}"));
    }

    /// The detector of one node, as the engine's registry builds it.
    pub fn build(&self, ctx: DetectorContext) -> Box<dyn FailureDetector> {
        match self {
            DetectorConfig::Gossip(c) => {
                Box::new(GossipDetector::new(ctx.id, &ctx.members, c.clone(), ctx.seed, ctx.generation))
            }
            DetectorConfig::Heartbeat(c) => Box::new(HeartbeatDetector::new(ctx.id, &ctx.members, c.clone())),
        }
    }

    /// How long after a crash every live observer must have given the
    /// verdict (`dead`: Dead, else Suspect), on a clean network whose
    /// one-way delay is at most `max_delay_us`, with nodes ticking every
    /// `tick_us`.
    ///
    /// * Heartbeat: the last heartbeat arrives at most `max_delay` after
    ///   the crash; silence is counted in whole milliseconds (up to 1 ms
    ///   lost to rounding) and judged at every tick, so the verdict comes
    ///   within `timeout + max_delay + 1 ms + tick`.
    /// * Gossip (full fanout): the crashed member's counter last grew at
    ///   an observer at most `max_delay` after the crash. Its window holds
    ///   gaps of one round, give or take the delays (2 ms), and the two
    ///   priming samples (0.75 and 1.25 rounds), so the mean is at most
    ///   `interval + 2 ms` and the spread at most `interval / 4 + 2 ms`,
    ///   or `min_std_dev_ms` if that is larger. Phi grows with silence
    ///   and shrinks with mean and spread, so the silence at which phi
    ///   reaches the threshold under those maxima bounds the real one;
    ///   add `max_delay` and a tick. Rounds start at ticks, so this holds
    ///   for intervals that are a whole number of ticks (asserted).
    pub fn detection_bound_us(&self, dead: bool, tick_us: u64, max_delay_us: u64) -> u64 {
        match self {
            DetectorConfig::Heartbeat(c) => {
                let timeout_ms = if dead { c.dead_after_ms } else { c.suspect_after_ms };
                timeout_ms * 1_000 + max_delay_us + 1_000 + tick_us
            }
            DetectorConfig::Gossip(c) => {
                assert!((c.interval_ms * 1_000).is_multiple_of(tick_us), "rounds fall between ticks: no bound");
                let threshold = if dead { c.dead_phi } else { c.suspect_phi };
                let interval = c.interval_ms as f64;
                let mean = interval + 2.0;
                let spread = (interval / 4.0 + 2.0).max(c.min_std_dev_ms);
                (silence_for_phi(threshold, mean, spread) * 1_000.0).ceil() as u64 + max_delay_us + tick_us
            }
        }
    }

    /// The earliest a heartbeat detector can suspect a crashed node: its
    /// last heartbeat left at most one interval (rounded up to a tick)
    /// before the crash (and 1 ms goes to rounding). None for gossip, whose window moves the moment.
    pub fn earliest_suspicion_us(&self, tick_us: u64) -> Option<u64> {
        match self {
            DetectorConfig::Heartbeat(c) => {
                Some((c.suspect_after_ms * 1_000).saturating_sub(c.interval_ms * 1_000 + tick_us + 1_000))
            }
            DetectorConfig::Gossip(_) => None,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            DetectorConfig::Heartbeat(c) => format!(
                "heartbeat every {} ms, suspect after {} ms, dead after {} ms",
                c.interval_ms, c.suspect_after_ms, c.dead_after_ms
            ),
            DetectorConfig::Gossip(c) => format!(
                "gossip every {} ms to {}, suspect at phi {}, dead at phi {}, min std dev {} ms",
                c.interval_ms, c.fanout, c.suspect_phi, c.dead_phi, c.min_std_dev_ms
            ),
        }
    }
}

/// The silence (ms) at which the gossip detector's phi reaches `threshold`
/// for a window of this mean and spread, found by bisection on the
/// detector's own `phi` function (increasing in the silence).
pub fn silence_for_phi(threshold: f64, mean_ms: f64, spread_ms: f64) -> f64 {
    let (mut low, mut high) = (0.0, mean_ms + 1_000.0 * spread_ms);
    assert!(phi::phi(high, mean_ms, spread_ms) >= threshold, "phi {threshold} is out of reach");
    for _ in 0..100 {
        let middle = (low + high) / 2.0;
        if phi::phi(middle, mean_ms, spread_ms) >= threshold {
            high = middle;
        } else {
            low = middle;
        }
    }
    high
}

/// Node ids of a cluster of `members`.
pub fn members(members: usize) -> Vec<NodeId> {
    (1..=members as NodeId).collect()
}
