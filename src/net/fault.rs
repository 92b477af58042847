//! The fault layer: drop, delay, duplicate, reorder or cut one directed
//! link, at run time.
//!
//! Faults act on the *sending* side, before the socket: a dropped message is
//! never written, so TCP cannot retransmit it, and a cut link delivers
//! nothing in that one direction while the other keeps working (a one-way
//! partition, which TCP itself could never produce).
//!
//! Every directed link draws its decisions from its own generator, seeded
//! from the run's seed and the link's ends. A scenario run twice with the
//! same seed makes the same decision for the n-th message on each link,
//! whatever the thread timing between links.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use replab_api::{NodeId, PluginRng};

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum Delay {
    #[default]
    None,
    Fixed {
        ms: f64,
    },
    Uniform {
        min_ms: f64,
        max_ms: f64,
    },
    Exponential {
        mean_ms: f64,
    },
}

/// The faults on one directed link. The default is a healthy link.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinkFaults {
    /// Nothing gets through in this direction.
    pub cut: bool,
    /// Probability that a message is dropped.
    pub drop: f64,
    /// Probability that a message is sent twice.
    pub duplicate: f64,
    /// Probability that a message is held back so later ones overtake it.
    pub reorder: f64,
    /// How long a reordered message is held back, at most.
    pub reorder_window_ms: f64,
    pub delay: Delay,
}

impl Default for LinkFaults {
    fn default() -> LinkFaults {
        LinkFaults { cut: false, drop: 0.0, duplicate: 0.0, reorder: 0.0, reorder_window_ms: 20.0, delay: Delay::None }
    }
}

impl LinkFaults {
    pub fn is_healthy(&self) -> bool {
        *self == LinkFaults::default()
    }

    /// Checks probabilities and delays; the message names the bad field.
    pub fn validate(&self) -> Result<(), String> {
        for (name, p) in [("drop", self.drop), ("duplicate", self.duplicate), ("reorder", self.reorder)] {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("{name} must be a probability within 0..=1, got {p}"));
            }
        }
        let ok = |ms: f64| (0.0..=600_000.0).contains(&ms);
        let delays_ok = match self.delay {
            Delay::None => true,
            Delay::Fixed { ms } => ok(ms),
            Delay::Uniform { min_ms, max_ms } => ok(min_ms) && ok(max_ms) && min_ms <= max_ms,
            Delay::Exponential { mean_ms } => ok(mean_ms),
        };
        if !delays_ok || !ok(self.reorder_window_ms) {
            return Err(format!("delays must be within 0..=600000 ms (and min <= max), got {:?}", self.delay));
        }
        Ok(())
    }
}

/// What happens to one message: up to two copies, each with its delay.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Verdict {
    pub copies: [Option<Duration>; 2],
    pub dropped: bool,
    pub duplicated: bool,
    pub reordered: bool,
}

impl Verdict {
    const PASS: Verdict =
        Verdict { copies: [Some(Duration::ZERO), None], dropped: false, duplicated: false, reordered: false };
}

struct LinkState {
    faults: LinkFaults,
    rng: PluginRng,
}

/// Faults for every directed link of a cluster, shared by its nodes.
pub struct FaultTable {
    seed: u64,
    /// False while every link is healthy: the send path then skips the lock.
    any: AtomicBool,
    links: Mutex<HashMap<(NodeId, NodeId), LinkState>>,
}

impl FaultTable {
    pub fn new(seed: u64) -> FaultTable {
        FaultTable { seed, any: AtomicBool::new(false), links: Mutex::new(HashMap::new()) }
    }

    fn link_seed(&self, from: NodeId, to: NodeId) -> u64 {
        // SplitMix-style mixing so (1,2) and (2,1) get unrelated streams.
        let mut z = self.seed ^ from.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ to.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn set(&self, from: NodeId, to: NodeId, faults: LinkFaults) -> Result<(), String> {
        faults.validate()?;
        let mut links = self.links.lock().expect("fault table lock");
        let seed = self.link_seed(from, to);
        links.entry((from, to)).or_insert_with(|| LinkState { faults, rng: PluginRng::from_seed_u64(seed) }).faults =
            faults;
        let any = links.values().any(|l| !l.faults.is_healthy());
        self.any.store(any, Ordering::Release);
        Ok(())
    }

    pub fn get(&self, from: NodeId, to: NodeId) -> LinkFaults {
        let links = self.links.lock().expect("fault table lock");
        links.get(&(from, to)).map(|l| l.faults).unwrap_or_default()
    }

    fn update(&self, from: NodeId, to: NodeId, change: impl FnOnce(&mut LinkFaults)) {
        let mut faults = self.get(from, to);
        change(&mut faults);
        self.set(from, to, faults).expect("a cut keeps faults valid");
    }

    /// Stops everything from `from` to `to`; the reverse direction is
    /// untouched.
    pub fn cut(&self, from: NodeId, to: NodeId) {
        self.update(from, to, |f| f.cut = true);
    }

    /// Cuts every link between the two groups, both ways.
    pub fn partition(&self, a: &[NodeId], b: &[NodeId]) {
        for &x in a {
            for &y in b {
                if x != y {
                    self.cut(x, y);
                    self.cut(y, x);
                }
            }
        }
    }

    /// Cuts `node` off from every other member, both ways.
    pub fn isolate(&self, node: NodeId, members: &[NodeId]) {
        self.partition(&[node], members);
    }

    /// Every link healthy again. The generators keep their position, so a
    /// run stays a pure function of its seed.
    pub fn heal(&self) {
        let mut links = self.links.lock().expect("fault table lock");
        for link in links.values_mut() {
            link.faults = LinkFaults::default();
        }
        self.any.store(false, Ordering::Release);
    }

    /// Whether `from -> to` is cut (no lock while every link is healthy).
    pub fn is_cut(&self, from: NodeId, to: NodeId) -> bool {
        self.any.load(Ordering::Acquire) && self.get(from, to).cut
    }

    /// Decides the fate of the next message on `from -> to`.
    pub fn decide(&self, from: NodeId, to: NodeId) -> Verdict {
        if !self.any.load(Ordering::Acquire) {
            return Verdict::PASS;
        }
        let mut links = self.links.lock().expect("fault table lock");
        let Some(link) = links.get_mut(&(from, to)) else {
            return Verdict::PASS;
        };
        let f = link.faults;
        if f.is_healthy() {
            return Verdict::PASS;
        }
        if f.cut || link.rng.chance(f.drop) {
            return Verdict { copies: [None, None], dropped: true, duplicated: false, reordered: false };
        }
        let mut verdict = Verdict::PASS;
        let mut delay_of = |rng: &mut PluginRng| -> Duration {
            let mut ms = sample_delay_ms(rng, f.delay);
            if rng.chance(f.reorder) {
                verdict.reordered = true;
                // Held back by half to all of the window, so messages sent
                // right after it overtake it.
                ms += f.reorder_window_ms * (0.5 + 0.5 * unit(rng));
            }
            Duration::from_secs_f64(ms / 1000.0)
        };
        let first = delay_of(&mut link.rng);
        let second = if link.rng.chance(f.duplicate) { Some(delay_of(&mut link.rng)) } else { None };
        let reordered = verdict.reordered;
        Verdict { copies: [Some(first), second], dropped: false, duplicated: second.is_some(), reordered }
    }
}

fn unit(rng: &mut PluginRng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

fn sample_delay_ms(rng: &mut PluginRng, delay: Delay) -> f64 {
    match delay {
        Delay::None => 0.0,
        Delay::Fixed { ms } => ms,
        Delay::Uniform { min_ms, max_ms } => min_ms + (max_ms - min_ms) * unit(rng),
        // Inverse transform; 1 - u keeps ln away from 0.
        Delay::Exponential { mean_ms } => -mean_ms * (1.0 - unit(rng)).ln(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_table_passes_everything_at_once() {
        let t = FaultTable::new(1);
        assert_eq!(t.decide(1, 2), Verdict::PASS);
    }

    #[test]
    fn cut_is_one_way() {
        let t = FaultTable::new(1);
        t.cut(1, 2);
        assert!(t.decide(1, 2).dropped);
        assert_eq!(t.decide(2, 1), Verdict::PASS);
        assert!(t.is_cut(1, 2) && !t.is_cut(2, 1));
        t.heal();
        assert!(!t.is_cut(1, 2));
        assert_eq!(t.decide(1, 2), Verdict::PASS);
    }

    #[test]
    fn same_seed_makes_the_same_decisions() {
        let faults = LinkFaults { drop: 0.3, duplicate: 0.2, reorder: 0.2, ..LinkFaults::default() };
        let run = |seed| {
            let t = FaultTable::new(seed);
            t.set(1, 2, faults).unwrap();
            (0..500).map(|_| t.decide(1, 2)).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn drop_rate_is_close_to_its_probability() {
        let t = FaultTable::new(3);
        t.set(1, 2, LinkFaults { drop: 0.2, ..LinkFaults::default() }).unwrap();
        let dropped = (0..10_000).filter(|_| t.decide(1, 2).dropped).count();
        assert!((1_700..2_300).contains(&dropped), "{dropped} of 10000 dropped at p=0.2");
    }

    #[test]
    fn delays_follow_their_distribution() {
        let t = FaultTable::new(3);
        t.set(1, 2, LinkFaults { delay: Delay::Uniform { min_ms: 10.0, max_ms: 20.0 }, ..LinkFaults::default() })
            .unwrap();
        for _ in 0..1000 {
            let d = t.decide(1, 2).copies[0].unwrap().as_secs_f64() * 1000.0;
            assert!((10.0..=20.0).contains(&d), "{d}");
        }
        t.set(1, 2, LinkFaults { delay: Delay::Exponential { mean_ms: 5.0 }, ..LinkFaults::default() }).unwrap();
        let mean: f64 =
            (0..20_000).map(|_| t.decide(1, 2).copies[0].unwrap().as_secs_f64() * 1000.0).sum::<f64>() / 20_000.0;
        assert!((4.5..5.5).contains(&mean), "exponential mean {mean}");
    }

    #[test]
    fn invalid_faults_name_the_field() {
        let t = FaultTable::new(1);
        let err = t.set(1, 2, LinkFaults { drop: 1.5, ..LinkFaults::default() }).unwrap_err();
        assert!(err.contains("drop"), "{err}");
        let err = t
            .set(1, 2, LinkFaults { delay: Delay::Uniform { min_ms: 5.0, max_ms: 1.0 }, ..LinkFaults::default() })
            .unwrap_err();
        assert!(err.contains("delay"), "{err}");
    }
}
