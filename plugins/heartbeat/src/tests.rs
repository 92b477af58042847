use super::*;

const ME: NodeId = 1;

fn detector() -> HeartbeatDetector {
    HeartbeatDetector::new(ME, &[1, 2, 3], HeartbeatConfig::default())
}

fn beat() -> Bytes {
    Bytes::from(postcard::to_allocvec(&Heartbeat { seq: 1 }).unwrap())
}

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

#[test]
fn sends_a_heartbeat_to_every_peer_once_per_interval() {
    let mut d = detector();
    let mut out = DetectorEffects::default();
    for ms in (0..1_000).step_by(10) {
        d.step(at(ms), DetectorInput::Tick, &mut out).unwrap();
    }
    let to_2 = out.sends.iter().filter(|(to, _)| *to == 2).count();
    let to_3 = out.sends.iter().filter(|(to, _)| *to == 3).count();
    assert_eq!((to_2, to_3), (10, 10), "100 ms interval over one second");
    assert!(out.sends.iter().all(|(to, _)| *to != ME), "never to itself");
}

#[test]
fn silence_makes_a_peer_suspect_then_dead_and_a_heartbeat_revives_it() {
    let mut d = detector();
    let mut out = DetectorEffects::default();
    for ms in (0..=3_200).step_by(10) {
        // Node 2 beats throughout; node 3 stops after 1 s and returns at 3.1 s.
        d.step(at(ms), DetectorInput::Message { from: 2, bytes: beat() }, &mut out).unwrap();
        if ms <= 1_000 || ms >= 3_100 {
            d.step(at(ms), DetectorInput::Message { from: 3, bytes: beat() }, &mut out).unwrap();
        }
        d.step(at(ms), DetectorInput::Tick, &mut out).unwrap();
        if ms == 1_490 {
            assert_eq!(d.view(at(ms))[1].liveness, Liveness::Alive, "490 ms of silence is below suspect_after_ms");
        }
        if ms == 1_500 {
            assert_eq!(d.view(at(ms))[1].liveness, Liveness::Suspect);
        }
        if ms == 3_000 {
            assert_eq!(d.view(at(ms))[1].liveness, Liveness::Dead);
        }
    }
    assert_eq!(out.verdicts, vec![(3, Liveness::Suspect), (3, Liveness::Dead), (3, Liveness::Alive)]);
    assert!(d.view(at(3_200)).iter().all(|v| v.liveness == Liveness::Alive));
}

#[test]
fn a_peer_never_heard_is_judged_from_the_detectors_start() {
    let mut d = detector();
    let mut out = DetectorEffects::default();
    d.step(at(10_000), DetectorInput::Tick, &mut out).unwrap();
    assert!(out.verdicts.is_empty(), "no verdict before any time has passed");
    d.step(at(12_000), DetectorInput::Tick, &mut out).unwrap();
    assert_eq!(out.verdicts, vec![(2, Liveness::Dead), (3, Liveness::Dead)]);
}

#[test]
fn garbage_and_strangers_are_refused_without_changing_anything() {
    let mut d = detector();
    let mut out = DetectorEffects::default();
    let garbage = DetectorInput::Message { from: 2, bytes: Bytes::from_static(&[0xff; 12]) };
    assert!(matches!(d.step(at(0), garbage, &mut out), Err(StepError::Decode { from: 2, .. })));
    let stranger = DetectorInput::Message { from: 9, bytes: beat() };
    assert!(matches!(d.step(at(0), stranger, &mut out), Err(StepError::Rejected(_))));
    assert!(d.view(at(0)).iter().all(|v| v.silent_ms.is_none()), "nobody counts as heard");
}

#[test]
fn config_errors_name_the_key() {
    let bad = HeartbeatConfig { suspect_after_ms: 50, ..HeartbeatConfig::default() };
    assert_eq!(bad.validate().unwrap_err().key, "suspect_after_ms");
    let bad = HeartbeatConfig { dead_after_ms: 200, ..HeartbeatConfig::default() };
    assert_eq!(bad.validate().unwrap_err().key, "dead_after_ms");
    assert!(HeartbeatConfig::default().validate().is_ok());
}
