//! Reads: only the primary answers; in quorum and sync mode only after a
//! majority confirmed it is still primary, in async mode at once.

mod support;

use replab_api::{NodeId, ReadId, RejectReason};
use replab_primary_backup::{Mode, PrimaryBackup};
use replab_sim::{ReadStatus, Sim};
use support::*;

fn read_status(sim: &Sim<PrimaryBackup>, id: ReadId) -> ReadStatus {
    sim.read_record(id).expect("a read").status.clone()
}

/// Isolates the primary, fails over, and commits a write at the new one.
fn depose(mode: Mode, seed: u64) -> (Sim<PrimaryBackup>, NodeId, NodeId) {
    let (mut sim, old) = steady(seed, 3, config(mode));
    propose(&mut sim, old, 1);
    sim.run_for(200 * MS).unwrap();
    sim.network_mut().isolate(old);
    declare_dead(&mut sim, old);
    sim.run_for(300 * MS).unwrap();
    let new = others(&sim, old).into_iter().find(|&n| sim.role(n) == Some(replab_api::Role::Leader));
    let new = new.expect("a successor");
    let write = propose(&mut sim, new, 1);
    sim.run_for(200 * MS).unwrap();
    assert!(is_committed(&sim, write), "{mode}");
    (sim, old, new)
}

#[test]
fn the_primary_confirms_reads_with_a_majority_round() {
    for mode in [Mode::Quorum, Mode::Sync] {
        let (mut sim, primary) = steady(30, 3, config(mode));
        propose(&mut sim, primary, 2);
        sim.run_for(100 * MS).unwrap();
        let committed = sim.commit_index(primary);
        let read = sim.read(primary).unwrap();
        assert_eq!(read_status(&sim, read), ReadStatus::Submitted, "{mode}: waits for the round");
        sim.run_for(20 * MS).unwrap();
        assert_eq!(read_status(&sim, read), ReadStatus::Ready { index: committed }, "{mode}");
        assert_eq!(sim.policy(primary).unwrap().stats().reads_confirmed, 1);
        let backup = others(&sim, primary)[0];
        let refused = sim.read(backup).unwrap();
        let hint = RejectReason::NotLeader { leader_hint: Some(primary) };
        assert_eq!(read_status(&sim, refused), ReadStatus::Rejected(hint), "{mode}: only the primary reads");
    }
}

#[test]
fn a_deposed_quorum_primary_serves_no_read_without_a_majority() {
    for (mode, seed) in [(Mode::Quorum, 31), (Mode::Sync, 32)] {
        let (mut sim, old, _new) = if mode == Mode::Sync {
            // Sync's new primary cannot commit with the old one cut off;
            // the read question is the same without that write.
            let (mut sim, old) = steady(seed, 3, config(mode));
            sim.network_mut().isolate(old);
            declare_dead(&mut sim, old);
            sim.run_for(300 * MS).unwrap();
            let new = others(&sim, old)[0];
            (sim, old, new)
        } else {
            depose(mode, seed)
        };
        assert_eq!(sim.role(old), Some(replab_api::Role::Leader), "{mode}: it still believes it leads");
        let read = sim.read(old).unwrap();
        sim.run_for(SECOND).unwrap();
        assert_eq!(read_status(&sim, read), ReadStatus::Submitted, "{mode}: no majority echoes its round");
        sim.network_mut().heal();
        sim.run_for(SECOND).unwrap();
        assert_eq!(read_status(&sim, read), ReadStatus::Rejected(RejectReason::LeadershipLost), "{mode}");
    }
}

#[test]
fn async_answers_at_once_even_a_deposed_primary_with_stale_data() {
    let (mut sim, old, new) = depose(Mode::Async, 33);
    let read = sim.read(old).unwrap();
    let ReadStatus::Ready { index } = read_status(&sim, read) else {
        panic!("async reads are answered in the same step: {:?}", read_status(&sim, read));
    };
    assert_eq!(index, sim.commit_index(old));
    assert!(
        index < sim.commit_index(new) || sim.log(old).term_at(index) != sim.log(new).term_at(index),
        "the answer misses what the new primary committed: not linearizable across a failover"
    );
    assert_eq!(sim.policy(old).unwrap().stats().reads_confirmed, 0, "no confirmation round");
}
