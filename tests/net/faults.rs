use std::sync::Arc;
use std::time::Duration;

use replab::net::{Delay, FaultTable, LinkFaults};

use crate::*;

const QUIET: Duration = Duration::from_millis(300);

#[tokio::test]
async fn cutting_a_to_b_stops_only_that_direction() {
    let faults = Arc::new(FaultTable::new(1));
    let mut nodes = start_cluster(2, &faults).await;
    faults.cut(1, 2);
    send_numbered(&nodes[0], 2, 0..50);
    send_numbered(&nodes[1], 1, 0..50);
    assert!(drain(&mut nodes[1], QUIET).await.is_empty(), "1 -> 2 is cut");
    assert_eq!(collect(&mut nodes[0]).await.len(), 50, "2 -> 1 still works");
    assert_eq!(nodes[0].net.stats()[&2].dropped_fault, 50);

    faults.heal();
    send_numbered(&nodes[0], 2, 50..60);
    let healed: Vec<u64> = collect(&mut nodes[1]).await.iter().map(number_of).collect();
    assert_eq!(healed, (50..60).collect::<Vec<_>>());
    shutdown(nodes).await;
}

#[tokio::test]
async fn full_drop_delivers_nothing_and_zero_drop_delivers_everything_in_order() {
    let faults = Arc::new(FaultTable::new(1));
    let mut nodes = start_cluster(2, &faults).await;
    faults.set(1, 2, LinkFaults { drop: 1.0, ..LinkFaults::default() }).unwrap();
    send_numbered(&nodes[0], 2, 0..200);
    assert!(drain(&mut nodes[1], QUIET).await.is_empty());

    faults.set(1, 2, LinkFaults { drop: 0.0, ..LinkFaults::default() }).unwrap();
    send_numbered(&nodes[0], 2, 200..400);
    let got: Vec<u64> = collect(&mut nodes[1]).await.iter().map(number_of).collect();
    assert_eq!(got, (200..400).collect::<Vec<_>>());
    shutdown(nodes).await;
}

#[tokio::test]
async fn isolating_a_node_cuts_it_off_both_ways() {
    let faults = Arc::new(FaultTable::new(1));
    let mut nodes = start_cluster(3, &faults).await;
    faults.isolate(3, &[1, 2, 3]);
    send_numbered(&nodes[0], 3, 0..10);
    send_numbered(&nodes[2], 1, 0..10);
    send_numbered(&nodes[0], 2, 0..10);
    assert!(drain(&mut nodes[2], QUIET).await.is_empty());
    assert!(drain(&mut nodes[0], QUIET).await.is_empty());
    assert_eq!(collect(&mut nodes[1]).await.len(), 10, "1 <-> 2 unaffected");
    shutdown(nodes).await;
}

#[tokio::test]
async fn duplication_is_observable() {
    let faults = Arc::new(FaultTable::new(5));
    let mut nodes = start_cluster(2, &faults).await;
    faults.set(1, 2, LinkFaults { duplicate: 0.5, ..LinkFaults::default() }).unwrap();
    send_numbered(&nodes[0], 2, 0..200);
    let got: Vec<u64> = collect(&mut nodes[1]).await.iter().map(number_of).collect();
    assert!(got.len() >= 200, "only {} of 200 messages arrived", got.len());
    let dupes = got.len() - 200;
    assert!((50..150).contains(&dupes), "{dupes} duplicates at p=0.5");
    let mut unique = got.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique, (0..200).collect::<Vec<_>>(), "nothing lost, only duplicated");
    assert_eq!(nodes[0].net.stats()[&2].duplicated as usize, dupes);
    shutdown(nodes).await;
}

#[tokio::test]
async fn reordering_is_observable() {
    let faults = Arc::new(FaultTable::new(5));
    let mut nodes = start_cluster(2, &faults).await;
    faults.set(1, 2, LinkFaults { reorder: 0.3, reorder_window_ms: 30.0, ..LinkFaults::default() }).unwrap();
    for i in 0..100 {
        send_numbered(&nodes[0], 2, i..i + 1);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let got: Vec<u64> = collect(&mut nodes[1]).await.iter().map(number_of).collect();
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(sorted, (0..100).collect::<Vec<_>>(), "every message arrives once");
    let inversions = got.windows(2).filter(|w| w[0] > w[1]).count();
    assert!(inversions > 5, "expected messages out of order, got {got:?}");
    shutdown(nodes).await;
}

#[tokio::test]
async fn delay_holds_messages_back() {
    let faults = Arc::new(FaultTable::new(5));
    let mut nodes = start_cluster(2, &faults).await;
    faults.set(1, 2, LinkFaults { delay: Delay::Fixed { ms: 200.0 }, ..LinkFaults::default() }).unwrap();
    let start = tokio::time::Instant::now();
    send_numbered(&nodes[0], 2, 0..5);
    let first = recv(&mut nodes[1], Duration::from_secs(5)).await.unwrap();
    assert!(start.elapsed() >= Duration::from_millis(200), "arrived after {:?}", start.elapsed());
    assert_eq!(number_of(&first), 0);
    let rest: Vec<u64> = collect(&mut nodes[1]).await.iter().map(number_of).collect();
    assert_eq!(rest, vec![1, 2, 3, 4], "a fixed delay keeps the order");
    shutdown(nodes).await;
}

#[tokio::test]
async fn a_full_queue_drops_the_oldest_frames() {
    let faults = Arc::new(FaultTable::new(5));
    let config = replab::net::NetConfig { outbound_queue_frames: 10, ..replab::net::NetConfig::default() };
    let mut nodes = start_cluster_with(2, &faults, &config).await;
    // A long delay keeps frames in the queue long enough to overflow it.
    faults.set(1, 2, LinkFaults { delay: Delay::Fixed { ms: 100.0 }, ..LinkFaults::default() }).unwrap();
    send_numbered(&nodes[0], 2, 0..25);
    let got: Vec<u64> = collect(&mut nodes[1]).await.iter().map(number_of).collect();
    assert!(got.ends_with(&[24]), "the newest frame survives: {got:?}");
    assert!(!got.contains(&0), "the oldest frame went: {got:?}");
    assert!(nodes[0].net.stats()[&2].dropped_queue > 0);
    shutdown(nodes).await;
}
