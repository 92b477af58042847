//! Staged sends: an `Outbox` holds a turn's messages until `flush`, then
//! they leave together, in order, under the same faults and queue bound as
//! direct sends.

use std::sync::Arc;
use std::time::Duration;

use replab::net::{FaultTable, Kind, LinkFaults, NetConfig};

use crate::*;

const QUIET: Duration = Duration::from_millis(300);

#[tokio::test]
async fn staged_messages_leave_only_at_flush_and_in_order() {
    let faults = Arc::new(FaultTable::new(1));
    let mut nodes = start_cluster(2, &faults).await;
    wait_connected(&nodes[0], 2).await;
    let mut outbox = nodes[0].net.outbox();
    for i in 0..100 {
        nodes[0].net.stage(&mut outbox, 2, Kind::Peer, numbered(i)).unwrap();
    }
    assert!(!outbox.is_empty());
    assert!(recv(&mut nodes[1], QUIET).await.is_none(), "nothing is written before the flush");
    nodes[0].net.flush(&mut outbox);
    assert!(outbox.is_empty());
    let got: Vec<u64> = collect(&mut nodes[1]).await.iter().map(number_of).collect();
    assert_eq!(got, (0..100).collect::<Vec<_>>());
    assert_eq!(nodes[0].net.stats()[&2].frames_out, 100);
    shutdown(nodes).await;
}

#[tokio::test]
async fn a_large_turn_is_written_as_it_goes_and_loses_nothing() {
    // A tiny write buffer: staging flushes itself many times mid-turn.
    let config = NetConfig { write_buffer_bytes: 4096, outbound_queue_frames: 100_000, ..NetConfig::default() };
    let faults = Arc::new(FaultTable::new(1));
    let mut nodes = start_cluster_with(2, &faults, &config).await;
    wait_connected(&nodes[0], 2).await;
    let mut outbox = nodes[0].net.outbox();
    for i in 0..20_000 {
        nodes[0].net.stage(&mut outbox, 2, Kind::Peer, numbered(i)).unwrap();
    }
    nodes[0].net.flush(&mut outbox);
    let got: Vec<u64> = collect(&mut nodes[1]).await.iter().map(number_of).collect();
    assert!(got == (0..20_000).collect::<Vec<_>>(), "got {} messages, first {:?}", got.len(), got.first());
    shutdown(nodes).await;
}

#[tokio::test]
async fn staged_messages_obey_the_fault_layer() {
    let faults = Arc::new(FaultTable::new(3));
    let mut nodes = start_cluster(3, &faults).await;
    wait_connected(&nodes[0], 2).await;
    wait_connected(&nodes[0], 3).await;
    faults.set(1, 2, LinkFaults { cut: true, ..LinkFaults::default() }).unwrap();
    faults.set(1, 3, LinkFaults { duplicate: 1.0, ..LinkFaults::default() }).unwrap();
    let mut outbox = nodes[0].net.outbox();
    for i in 0..10 {
        nodes[0].net.stage(&mut outbox, 2, Kind::Peer, numbered(i)).unwrap();
        nodes[0].net.stage(&mut outbox, 3, Kind::Peer, numbered(i)).unwrap();
    }
    nodes[0].net.flush(&mut outbox);
    assert!(drain(&mut nodes[1], QUIET).await.is_empty(), "a cut link delivers nothing");
    let to_3 = collect(&mut nodes[2]).await;
    assert_eq!(to_3.len(), 20, "every message to node 3 arrives twice");
    assert_eq!(nodes[0].net.stats()[&2].dropped_fault, 10);
    shutdown(nodes).await;
}

#[tokio::test]
async fn a_staged_turn_beyond_the_queue_bound_drops_its_oldest() {
    let config = NetConfig { outbound_queue_frames: 10, ..NetConfig::default() };
    let faults = Arc::new(FaultTable::new(1));
    // Node 2 is not started yet: the link cannot connect, so nothing drains.
    let (l1, a1) = bind().await;
    let (l2, a2) = bind().await;
    let addrs = std::collections::BTreeMap::from([(1, a1), (2, a2)]);
    let node = start_node(1, l1, &addrs, &faults, &config);
    let mut outbox = node.net.outbox();
    for i in 0..25 {
        node.net.stage(&mut outbox, 2, Kind::Peer, numbered(i)).unwrap();
    }
    node.net.flush(&mut outbox);
    assert_eq!(node.net.queued(2), 10, "the queue holds its bound");
    assert_eq!(node.net.stats()[&2].dropped_queue, 15);
    assert!(node.net.stage(&mut outbox, 9, Kind::Peer, numbered(0)).is_err(), "unknown peers are refused");
    // Node 2 comes up: the newest ten are what it gets.
    let mut node2 = start_node(2, l2, &addrs, &faults, &config);
    let got: Vec<u64> = collect(&mut node2).await.iter().map(number_of).collect();
    assert_eq!(got, (15..25).collect::<Vec<_>>(), "the oldest went, the newest survived in order");
    shutdown(vec![node, node2]).await;
}

#[tokio::test]
async fn a_large_turn_on_a_healthy_link_loses_nothing_to_the_queue_bound() {
    // The bound is on frames left queued: what the socket takes at once was
    // never queued, however many frames the turn staged.
    let config = NetConfig { outbound_queue_frames: 10, ..NetConfig::default() };
    let faults = Arc::new(FaultTable::new(1));
    let mut nodes = start_cluster_with(2, &faults, &config).await;
    wait_connected(&nodes[0], 2).await;
    let mut outbox = nodes[0].net.outbox();
    for i in 0..100 {
        nodes[0].net.stage(&mut outbox, 2, Kind::Peer, numbered(i)).unwrap();
    }
    nodes[0].net.flush(&mut outbox);
    let got: Vec<u64> = collect(&mut nodes[1]).await.iter().map(number_of).collect();
    assert_eq!(got, (0..100).collect::<Vec<_>>());
    assert_eq!(nodes[0].net.stats()[&2].dropped_queue, 0);
    shutdown(nodes).await;
}
