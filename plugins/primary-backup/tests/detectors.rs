//! The failure detectors on the deterministic harness: the real gossip
//! and heartbeat plugins, their messages on the simulated network, their
//! verdicts driving primary-backup's failover. Each test runs seeds 0-29
//! (`REPLAB_SIM_SEED=N` runs one) and prints what it measured; a failure
//! names the seed and the command that replays it. The bounds are
//! derived from each detector's configuration in
//! `harness/detectors.rs` (`detection_bound_us`); the schedules are in
//! `harness/scenarios.rs`.

mod harness;

use harness::detectors::{DetectorConfig, DetectorKind};
use harness::scenarios::{self, CrashReport, Flap, FlapReport, MAX_DELAY_US, MEMBERS, Schedule, TICK_US};

const SEEDS: u64 = 30;
const TEST: &str = "detectors";

fn seeds() -> Vec<u64> {
    match std::env::var("REPLAB_SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(seed) => vec![seed],
        None => (0..SEEDS).collect(),
    }
}

fn replay(seed: u64) -> String {
    format!("replay: REPLAB_SIM_SEED={seed} cargo test --release -p replab-primary-backup --test {TEST} -- --nocapture")
}

fn config(kind: DetectorKind) -> DetectorConfig {
    DetectorConfig::defaults(kind, MEMBERS)
}

fn ms(us: u64) -> f64 {
    us as f64 / 1_000.0
}

/// Checks one crash run against the detector's bounds.
fn check_crash(seed: u64, detector: &DetectorConfig, report: &CrashReport) {
    let suspect_bound = detector.detection_bound_us(false, TICK_US, MAX_DELAY_US);
    let dead_bound = detector.detection_bound_us(true, TICK_US, MAX_DELAY_US);
    let context =
        format!("seed {seed}, {}, node {} crashed: {report:?}\n{}", detector.describe(), report.crashed, replay(seed));
    assert_eq!(report.verdicts_before, 0, "a verdict before anything failed, on a clean network; {context}");
    assert_eq!(report.false_suspicions, 0, "a live node was suspected on a clean network; {context}");
    for &(observer, suspected, dead) in &report.detections {
        let suspected = suspected.unwrap_or_else(|| panic!("node {observer} never suspected; {context}"));
        let dead = dead.unwrap_or_else(|| panic!("node {observer} never declared it dead; {context}"));
        assert!(
            suspected <= suspect_bound,
            "node {observer} suspected after {suspected} us > {suspect_bound}; {context}"
        );
        assert!(dead <= dead_bound, "node {observer} declared dead after {dead} us > {dead_bound}; {context}");
        if let Some(earliest) = detector.earliest_suspicion_us(TICK_US) {
            assert!(suspected >= earliest, "node {observer} suspected after {suspected} us < {earliest}; {context}");
        }
    }
}

/// (a) Crash a node at a random moment after a warm-up: every live
/// observer suspects it, and declares it dead, within the bounds its
/// configuration implies, and no verdict comes before the crash or about
/// a live node. With the default settings, then with settings drawn per
/// seed as the randomized runs draw them (gossip to every peer), so the
/// bound is not fitted to one configuration.
#[test]
fn detection_time_stays_within_the_configured_bounds() {
    for kind in DetectorKind::BOTH {
        let detector = config(kind);
        let (mut worst_suspect, mut worst_dead) = (0, 0);
        // How close the drawn configurations came to their bounds.
        let mut closest = 0.0f64;
        for seed in seeds() {
            let schedule = Schedule::draw(seed);
            let report = scenarios::crash_run(&schedule, &detector, TEST)
                .unwrap_or_else(|v| panic!("seed {seed}, {kind:?}: {v}"));
            check_crash(seed, &detector, &report);
            worst_suspect = worst_suspect.max(report.worst_suspicion_us().expect("checked"));
            worst_dead = worst_dead.max(report.worst_dead_us().expect("checked"));
            let drawn = DetectorConfig::draw(kind, seed, MEMBERS).with_full_fanout(MEMBERS);
            let report = scenarios::crash_run(&schedule, &drawn, TEST)
                .unwrap_or_else(|v| panic!("seed {seed}, {kind:?}, {}: {v}", drawn.describe()));
            check_crash(seed, &drawn, &report);
            let bound = drawn.detection_bound_us(false, TICK_US, MAX_DELAY_US) as f64;
            closest = closest.max(report.worst_suspicion_us().expect("checked") as f64 / bound);
        }
        println!(
            "{kind:?} ({}): worst suspicion {:.1} ms (bound {:.1}), worst dead {:.1} ms (bound {:.1}); \
             drawn settings: suspicion at most {:.0}% of the bound",
            detector.describe(),
            ms(worst_suspect),
            ms(detector.detection_bound_us(false, TICK_US, MAX_DELAY_US)),
            ms(worst_dead),
            ms(detector.detection_bound_us(true, TICK_US, MAX_DELAY_US)),
            100.0 * closest
        );
    }
}

/// A restarted node's new detector starts a new generation (the harness
/// hands in the node's incarnation, as the engine hands in its start
/// time), so gossip takes it back at its first round instead of after it
/// counted past its old self; heartbeats at its first heartbeat. Either
/// way within a tick (the restarted node's first) and a delay.
#[test]
fn a_restarted_node_is_taken_back_at_once() {
    for kind in DetectorKind::BOTH {
        let detector = config(kind);
        let mut worst = 0;
        for seed in seeds() {
            let taken_back = scenarios::restart_run(&Schedule::draw(seed), &detector, TEST)
                .unwrap_or_else(|v| panic!("seed {seed}, {kind:?}: {v}"));
            let bound = TICK_US + MAX_DELAY_US;
            assert!(
                taken_back.iter().all(|&us| us <= bound),
                "seed {seed}, {kind:?}: taken back after {taken_back:?} us, bound {bound}\n{}",
                replay(seed)
            );
            worst = worst.max(taken_back.into_iter().max().unwrap_or(0));
        }
        println!("{kind:?}: a restarted node was taken back by every observer within {:.1} ms", ms(worst));
    }
}

/// (b) A link, or a node's every link, cut and healed over and over:
/// the detectors raise suspicions, counted here. Isolating a node must
/// make both detectors suspect it; a single cut link makes heartbeats
/// suspect, while gossip can hear the far side through the others.
#[test]
fn a_flapping_link_produces_suspicions() {
    for kind in DetectorKind::BOTH {
        let detector = config(kind);
        let (mut link, mut node) = (FlapReport::default(), FlapReport::default());
        for seed in seeds() {
            let schedule = Schedule::draw(seed);
            let run = |flap| {
                scenarios::flap_run(&schedule, flap, &detector, TEST)
                    .unwrap_or_else(|v| panic!("seed {seed}, {kind:?}, {flap:?}: {v}"))
            };
            let (l, n) = (run(Flap::Link), run(Flap::Node));
            assert!(n.suspicions > 0, "seed {seed}, {kind:?}: a flapping node raised no suspicion\n{}", replay(seed));
            if kind == DetectorKind::Heartbeat {
                assert!(l.suspicions > 0, "seed {seed}: heartbeats need the cut link\n{}", replay(seed));
            }
            for (total, one) in [(&mut link, l), (&mut node, n)] {
                total.suspicions += one.suspicions;
                total.recoveries += one.recoveries;
                total.generations += one.generations;
                total.primaries += one.primaries;
            }
        }
        println!(
            "{kind:?}: {} seeds, 8 flaps each: a flapping link raised {} suspicions ({} recoveries, {} generations, \
             {} new primaries); a flapping node {} ({} recoveries, {} generations, {} new primaries)",
            seeds().len(),
            link.suspicions,
            link.recoveries,
            link.generations,
            link.primaries,
            node.suspicions,
            node.recoveries,
            node.generations,
            node.primaries
        );
        assert!(link.suspicions + node.suspicions > 0, "{kind:?} counted no suspicion");
    }
}

/// (c) Gossip and heartbeat under the same schedule (same seed, same
/// crash at the same time, same flaps): detection times, failover times
/// and suspicion counts side by side. Both must meet their bounds.
#[test]
fn gossip_and_heartbeat_compared_on_the_same_schedule() {
    println!("seed | crashed | heartbeat: suspect / dead / failover ms, flap link / node suspicions | gossip: same");
    let mut sums = [Sums::default(), Sums::default()];
    for seed in seeds() {
        let schedule = Schedule::draw(seed);
        let mut row = format!("{seed:4} |");
        let mut crashed = Vec::new();
        for (i, kind) in [DetectorKind::Heartbeat, DetectorKind::Gossip].into_iter().enumerate() {
            let detector = config(kind);
            let report = scenarios::crash_run(&schedule, &detector, TEST)
                .unwrap_or_else(|v| panic!("seed {seed}, {kind:?}: {v}"));
            check_crash(seed, &detector, &report);
            let flap = |f| scenarios::flap_run(&schedule, f, &detector, TEST).unwrap_or_else(|v| panic!("{v}"));
            let (link, node) = (flap(Flap::Link), flap(Flap::Node));
            sums[i].add(&report, &link, &node);
            crashed.push((report.crashed, report.was_primary));
            let failover = report.failover_us.map_or("-".to_string(), |f| format!("{:.0}", ms(f)));
            row += &format!(
                " {:.0} / {:.0} / {failover}, {} / {} |",
                ms(report.worst_suspicion_us().expect("checked")),
                ms(report.worst_dead_us().expect("checked")),
                link.suspicions,
                node.suspicions
            );
        }
        // Same schedule: the same node crashed, in the same role.
        assert_eq!(crashed[0], crashed[1], "seed {seed}: the schedules differ");
        let (node, primary) = crashed[0];
        println!("{row} node {node}{}", if primary { " (primary)" } else { "" });
    }
    for (sum, kind) in sums.iter().zip([DetectorKind::Heartbeat, DetectorKind::Gossip]) {
        println!("{kind:?} ({}): {}", config(kind).describe(), sum.summary());
    }
}

/// Totals over seeds, for the comparison's last lines.
#[derive(Default)]
struct Sums {
    runs: u64,
    suspect_us: Vec<u64>,
    dead_us: Vec<u64>,
    failover_us: Vec<u64>,
    link_suspicions: u64,
    node_suspicions: u64,
    generations: u64,
    primaries: u64,
}

impl Sums {
    fn add(&mut self, crash: &CrashReport, link: &FlapReport, node: &FlapReport) {
        self.runs += 1;
        self.suspect_us.extend(crash.detections.iter().filter_map(|d| d.1));
        self.dead_us.extend(crash.detections.iter().filter_map(|d| d.2));
        self.failover_us.extend(crash.failover_us);
        self.link_suspicions += link.suspicions;
        self.node_suspicions += node.suspicions;
        self.generations += link.generations + node.generations;
        self.primaries += link.primaries + node.primaries;
    }

    fn summary(&self) -> String {
        let stats = |v: &[u64]| {
            let mut v = v.to_vec();
            v.sort_unstable();
            match v.len() {
                0 => "none".to_string(),
                n => format!("median {:.0} ms, max {:.0} ms", ms(v[n / 2]), ms(v[n - 1])),
            }
        };
        format!(
            "suspected a crash: {}; dead: {}; a crashed primary replaced after {} ({} crashes of a primary); \
             flapping: {} suspicions on a link, {} on a node, {} generations, {} new primaries, over {} seeds",
            stats(&self.suspect_us),
            stats(&self.dead_us),
            stats(&self.failover_us),
            self.failover_us.len(),
            self.link_suspicions,
            self.node_suspicions,
            self.generations,
            self.primaries,
            self.runs
        )
    }
}
