use super::phi::{ArrivalWindow, phi};
use super::*;

const ME: NodeId = 1;

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// A table in generation 1.
fn gossip(table: &[(NodeId, u64)]) -> Bytes {
    let heartbeats = table.iter().map(|(id, counter)| (*id, Heartbeat { generation: 1, counter: *counter })).collect();
    Bytes::from(postcard::to_allocvec(&Gossip { heartbeats }).unwrap())
}

#[test]
fn phi_matches_the_normal_tail() {
    // At the mean, half the heartbeats are later: phi = -log10(0.5).
    assert!((phi(100.0, 100.0, 10.0) - std::f64::consts::LOG10_2).abs() < 1e-3);
    // One standard deviation late: P = 0.1587, phi 0.799.
    assert!((phi(110.0, 100.0, 10.0) - 0.7995).abs() < 0.01);
    // Three: P = 0.00135, phi 2.87.
    assert!((phi(130.0, 100.0, 10.0) - 2.87).abs() < 0.05);
    assert!(phi(0.0, 100.0, 10.0) < 1e-6, "an early arrival is no suspicion");
    assert_eq!(phi(1e9, 100.0, 10.0), phi::PHI_MAX, "capped, never infinite");
}

#[test]
fn phi_grows_with_silence_and_with_a_steadier_peer() {
    let mut steady = ArrivalWindow::primed(100, 100.0);
    let mut jittery = ArrivalWindow::primed(100, 100.0);
    for i in 0..100 {
        steady.push(100.0);
        jittery.push(if i % 2 == 0 { 40.0 } else { 160.0 });
    }
    let mut last = 0.0;
    for silence in (0..1_000).step_by(50) {
        let now = steady.phi(silence as f64, 1.0);
        assert!(now >= last, "phi never falls as silence grows: {last} then {now} at {silence} ms");
        last = now;
    }
    assert!(steady.phi(300.0, 1.0) > jittery.phi(300.0, 1.0), "a regular peer is doubted sooner");
    assert!((jittery.std_dev_ms() - 60.0).abs() < 1.0);
}

#[test]
fn each_round_bumps_the_counter_and_tells_fanout_distinct_peers() {
    let config = GossipConfig { fanout: 2, ..GossipConfig::default() };
    let mut d = GossipDetector::new(ME, &[1, 2, 3, 4, 5], config, 7, 1);
    let mut out = DetectorEffects::default();
    for ms in (0..1_000).step_by(10) {
        d.step(at(ms), DetectorInput::Tick, &mut out).unwrap();
        if ms % 100 == 0 {
            let round: Vec<NodeId> = out.sends.drain(..).map(|(to, _)| to).collect();
            assert_eq!(round.len(), 2, "fanout peers per round");
            assert_ne!(round[0], round[1], "distinct");
            assert!(!round.contains(&ME));
        }
    }
    assert_eq!(d.heartbeat, Heartbeat { generation: 1, counter: 10 });
}

#[test]
fn a_relayed_counter_is_a_heartbeat_and_stale_ones_are_not() {
    let mut d = GossipDetector::new(ME, &[1, 2, 3], GossipConfig::default(), 1, 1);
    let mut out = DetectorEffects::default();
    // Node 2 relays node 3's counter; node 3 itself never talks to us.
    for round in 1..=30u64 {
        let now = at(round * 100);
        d.step(now, DetectorInput::Message { from: 2, bytes: gossip(&[(2, round), (3, round), (1, 99)]) }, &mut out)
            .unwrap();
        d.step(now, DetectorInput::Tick, &mut out).unwrap();
    }
    let view = d.view(at(3_000));
    assert_eq!(view[1].liveness, Liveness::Alive, "node 3 is alive by hearsay: {view:?}");
    assert_eq!(view[1].silent_ms, Some(0));
    // A stale table moves nothing.
    d.step(at(3_050), DetectorInput::Message { from: 2, bytes: gossip(&[(3, 5)]) }, &mut out).unwrap();
    assert_eq!(d.members[&3].heartbeat.counter, 30);
    assert_eq!(d.members[&3].grew_at, Some(at(3_000)));
}

#[test]
fn a_silent_member_goes_suspect_then_dead_and_comes_back() {
    let mut d = GossipDetector::new(ME, &[1, 2], GossipConfig::default(), 1, 1);
    let mut out = DetectorEffects::default();
    let mut counter = 0;
    let mut suspect_at = None;
    let mut dead_at = None;
    for ms in (0..=6_000).step_by(10) {
        let talking = ms <= 2_000 || ms >= 5_000;
        if talking && ms % 100 == 0 {
            counter += 1;
            d.step(at(ms), DetectorInput::Message { from: 2, bytes: gossip(&[(2, counter)]) }, &mut out).unwrap();
        }
        d.step(at(ms), DetectorInput::Tick, &mut out).unwrap();
        let liveness = d.view(at(ms))[0].liveness;
        if liveness == Liveness::Suspect && suspect_at.is_none() {
            suspect_at = Some(ms);
        }
        if liveness == Liveness::Dead && dead_at.is_none() {
            dead_at = Some(ms);
        }
    }
    let (suspect_at, dead_at) = (suspect_at.expect("suspected"), dead_at.expect("declared dead"));
    // Regular 100 ms heartbeats, min_std_dev 100 ms: phi 5 after ~510 ms
    // of silence (4.1 standard deviations past the mean), phi 16 after
    // ~810 ms (7.1).
    assert!((2_450..2_600).contains(&suspect_at), "suspected at {suspect_at} ms");
    assert!((2_750..2_900).contains(&dead_at), "dead at {dead_at} ms");
    assert_eq!(out.verdicts, vec![(2, Liveness::Suspect), (2, Liveness::Dead), (2, Liveness::Alive)]);
}

#[test]
fn garbage_and_strangers_are_refused_without_changing_anything() {
    let mut d = GossipDetector::new(ME, &[1, 2], GossipConfig::default(), 1, 1);
    let mut out = DetectorEffects::default();
    let garbage = DetectorInput::Message { from: 2, bytes: Bytes::from_static(&[0xff; 9]) };
    assert!(matches!(d.step(at(0), garbage, &mut out), Err(StepError::Decode { from: 2, .. })));
    let stranger = DetectorInput::Message { from: 9, bytes: gossip(&[(2, 5)]) };
    assert!(matches!(d.step(at(0), stranger, &mut out), Err(StepError::Rejected(_))));
    assert_eq!(d.members[&2].heartbeat, Heartbeat::default());
}

#[test]
fn config_errors_name_the_key() {
    let bad = GossipConfig { dead_phi: 1.0, ..GossipConfig::default() };
    assert_eq!(bad.validate().unwrap_err().key, "dead_phi");
    let bad = GossipConfig { dead_phi: 400.0, ..GossipConfig::default() };
    assert_eq!(bad.validate().unwrap_err().key, "dead_phi", "phi never reaches 400: nobody would ever be dead");
    let bad = GossipConfig { suspect_phi: f64::NAN, ..GossipConfig::default() };
    assert_eq!(bad.validate().unwrap_err().key, "suspect_phi");
    let bad = GossipConfig { fanout: 0, ..GossipConfig::default() };
    assert_eq!(bad.validate().unwrap_err().key, "fanout");
    let bad = GossipConfig { min_std_dev_ms: f64::NAN, ..GossipConfig::default() };
    assert_eq!(bad.validate().unwrap_err().key, "min_std_dev_ms");
    assert!(GossipConfig::default().validate().is_ok());
}

#[test]
fn a_restarted_member_is_news_at_once_thanks_to_its_generation() {
    let mut d = GossipDetector::new(ME, &[1, 2], GossipConfig::default(), 1, 1);
    let mut out = DetectorEffects::default();
    let table = |generation, counter| {
        let heartbeats = vec![(2, Heartbeat { generation, counter })];
        Bytes::from(postcard::to_allocvec(&Gossip { heartbeats }).unwrap())
    };
    for round in 1..=50u64 {
        d.step(at(round * 100), DetectorInput::Message { from: 2, bytes: table(7, round) }, &mut out).unwrap();
    }
    // Node 2 crashes for 5 s, long enough to be declared dead.
    for ms in (5_000..10_000).step_by(10) {
        d.step(at(ms), DetectorInput::Tick, &mut out).unwrap();
    }
    assert_eq!(d.view(at(10_000))[0].liveness, Liveness::Dead);
    // It restarts: generation 8, counting from 1 again, far below 50.
    d.step(at(10_000), DetectorInput::Message { from: 2, bytes: table(8, 1) }, &mut out).unwrap();
    assert_eq!(d.view(at(10_000))[0].liveness, Liveness::Alive, "the new generation outranks the old counter");
    // An old-generation rumour still in flight changes nothing.
    d.step(at(10_010), DetectorInput::Message { from: 2, bytes: table(7, 60) }, &mut out).unwrap();
    assert_eq!(d.members[&2].heartbeat, Heartbeat { generation: 8, counter: 1 });
}
