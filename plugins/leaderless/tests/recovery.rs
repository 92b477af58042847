//! Persistence: a node rebuilt from its records (and checkpoint) keeps
//! every version it acknowledged; what does not decode is refused, never
//! skipped.

mod support;

use bytes::Bytes;
use replab_api::{KeyedFactory, KeyedPolicy, KeyedRecovered, PolicyContext};
use replab_leaderless::{Leaderless, LeaderlessConfig, LeaderlessFactory};
use replab_version_vector::VersionVectors;
use support::{Net, config, context, is_written, values};

/// Writes with siblings, deletes and overwrites on three nodes.
fn busy(config: LeaderlessConfig) -> Net<VersionVectors> {
    let mut net = Net::new(3, config);
    for i in 0..6 {
        net.put(1 + i % 3, &format!("k{i}"), Some(&format!("v{i}")), Bytes::new());
    }
    net.partition(&[1], &[2, 3]);
    net.put(1, "k0", Some("left"), Bytes::new());
    net.put(2, "k0", Some("right"), Bytes::new());
    net.heal();
    let read = net.get(3, "k0");
    net.put(3, "k1", None, Bytes::new());
    net.put(2, "k2", Some("again"), context(&read));
    net.deliver_all();
    net
}

#[test]
fn a_restarted_node_keeps_every_version_from_its_records() {
    let mut net = busy(config(3, 1, 3));
    for id in [1, 2, 3] {
        let before = net.node(id).replica_state();
        let status = net.node(id).status();
        net.crash(id);
        net.restart(id);
        assert_eq!(net.node(id).replica_state(), before, "node {id}");
        assert_eq!(net.node(id).status().last_index, status.last_index);
        assert_eq!(net.node(id).status().durable_index, status.last_index, "recovered records are durable");
    }
    // Blind writes: v0 stays a sibling of the two partitioned writes.
    assert_eq!(values(&net.get(1, "k0")), vec!["left", "right", "v0"]);
    // The next record continues the numbering.
    let last = net.node(1).status().last_index;
    net.put(1, "k5", Some("after"), Bytes::new());
    assert_eq!(net.node(1).status().last_index, last + 1);
}

#[test]
fn recovery_from_a_checkpoint_and_the_records_after_it() {
    let mut net = busy(LeaderlessConfig { checkpoint_every_records: 4, ..config(3, 1, 3) });
    let disk = net.nodes[&1].disk.clone();
    assert!(disk.checkpoint.is_some());
    assert!(disk.records.len() < 4, "the checkpoint replaced the records before it");
    assert!(net.counter(1, "checkpoints") >= 1);
    let status = net.node(1).status();
    assert_eq!(status.first_index, disk.last_seq - disk.records.len() as u64 + 1);
    let before = net.node(1).replica_state();
    net.crash(1);
    net.restart(1);
    assert_eq!(net.node(1).replica_state(), before);
    assert_eq!(net.node(1).status().first_index, status.first_index);
}

#[test]
fn records_replayed_over_a_checkpoint_that_covers_them_change_nothing() {
    let net = busy(LeaderlessConfig { checkpoint_every_records: 4, ..config(3, 1, 3) });
    let disk = net.nodes[&2].disk.clone();
    let mut all_records = disk.records.clone();
    all_records.extend(disk.records.iter().cloned());
    let recovered =
        KeyedRecovered { checkpoint: disk.checkpoint.clone(), records: all_records, last_seq: 1_000, incarnation: 0 };
    let ctx = PolicyContext { id: 2, members: vec![1, 2, 3], seed: 1 };
    let node = Leaderless::<VersionVectors>::recover(ctx, net.config.clone(), recovered).unwrap();
    assert_eq!(node.replica_state(), net.node(2).replica_state());
}

#[test]
fn a_crash_before_the_coordinators_record_is_durable_leaks_no_version() {
    let mut net = Net::<VersionVectors>::new(3, config(3, 2, 2));
    net.auto_persist = false;
    let lost = net.put_request(1, "k", Some("lost"), Bytes::new());
    net.deliver_all();
    assert!(net.queue.is_empty(), "the Stores wait for the coordinator's record");
    net.crash(1);
    net.restart(1);
    assert_eq!(net.reply(1, lost), None, "never acknowledged");
    net.auto_persist = true;
    // The restarted node generates the same dot again, for another value:
    // harmless, because nobody saw the first.
    assert!(is_written(&net.put(1, "k", Some("second"), Bytes::new())));
    assert_eq!(values(&net.get(2, "k")), vec!["second"]);
}

#[test]
fn a_write_acknowledged_by_w_replicas_survives_their_crash() {
    let mut net = Net::<VersionVectors>::new(3, config(3, 2, 2));
    net.auto_persist = false;
    let id = net.put_request(1, "k", Some("v"), Bytes::new());
    net.flush(1);
    net.deliver_all(); // the Stores reach 2 and 3; their acks wait for durability
    assert_eq!(net.reply(1, id), None);
    net.crash(2); // its record and its ack are lost
    net.flush(3);
    net.deliver_all();
    assert!(is_written(&net.reply(1, id).expect("1 and 3 hold it durably")));
    for node in [1, 3] {
        net.crash(node);
        net.restart(node);
    }
    net.restart(2);
    net.auto_persist = true;
    assert_eq!(net.values_at(1, "k"), vec!["v"]);
    assert_eq!(net.values_at(3, "k"), vec!["v"]);
    assert_eq!(net.values_at(2, "k"), Vec::<String>::new(), "node 2 never acknowledged it");
    assert_eq!(values(&net.get(2, "k")), vec!["v"]);
}

#[test]
fn a_record_or_checkpoint_that_does_not_decode_is_a_recovery_error_naming_it() {
    let ctx = PolicyContext { id: 1, members: vec![1, 2, 3], seed: 1 };
    let garbage = Bytes::from_static(&[0xff, 0xff, 0xff]);
    let bad_record = KeyedRecovered { checkpoint: None, records: vec![garbage.clone()], last_seq: 7, incarnation: 0 };
    let err = Leaderless::<VersionVectors>::recover(ctx.clone(), config(3, 2, 2), bad_record.clone()).err().unwrap();
    assert!(err.contains("record 7"), "{err}");
    let bad_checkpoint = KeyedRecovered { checkpoint: Some(garbage), records: vec![], last_seq: 7, incarnation: 0 };
    let err = Leaderless::<VersionVectors>::recover(ctx.clone(), config(3, 2, 2), bad_checkpoint).err().unwrap();
    assert!(err.contains("checkpoint"), "{err}");
    let impossible = KeyedRecovered { checkpoint: None, records: vec![Bytes::new(); 3], last_seq: 2, incarnation: 0 };
    assert!(Leaderless::<VersionVectors>::recover(ctx.clone(), config(3, 2, 2), impossible).is_err());

    // The factory returns the error, and the engine refuses to start.
    let err = LeaderlessFactory::build::<VersionVectors>(ctx, config(3, 2, 2), bad_record).err().unwrap();
    assert!(err.contains("record 7"), "{err}");
}

#[test]
fn a_node_that_is_not_a_member_or_has_an_invalid_config_does_not_start() {
    let ctx = PolicyContext { id: 4, members: vec![1, 2, 3], seed: 1 };
    let err = Leaderless::<VersionVectors>::recover(ctx, config(3, 2, 2), KeyedRecovered::default()).err().unwrap();
    assert!(err.contains("not among the members"), "{err}");
    let ctx = PolicyContext { id: 1, members: vec![1, 2, 3], seed: 1 };
    let err = Leaderless::<VersionVectors>::recover(ctx, config(4, 2, 2), KeyedRecovered::default()).err().unwrap();
    assert!(err.contains("replicas"), "{err}");
}
