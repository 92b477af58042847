use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use replab::net::{FaultTable, NetConfig};
use tokio::net::TcpListener;

use crate::*;

#[tokio::test]
async fn link_reconnects_by_itself_after_the_peer_restarts_on_the_same_port() {
    let faults = Arc::new(FaultTable::new(1));
    let config = NetConfig { reconnect_backoff_min_ms: 5, reconnect_backoff_max_ms: 50, ..NetConfig::default() };
    let (l1, a1) = bind().await;
    let (l2, a2) = bind().await;
    let addrs = BTreeMap::from([(1, a1), (2, a2)]);
    let n1 = start_node(1, l1, &addrs, &faults, &config);
    let mut n2 = start_node(2, l2, &addrs, &faults, &config);
    send_numbered(&n1, 2, 0..10);
    assert_eq!(collect(&mut n2).await.len(), 10);

    // Node 2 goes away, then comes back on the same port.
    n2.net.shutdown().await;
    drop(n2); // its inbound connections close with it, as a dead node's do
    tokio::time::sleep(Duration::from_millis(100)).await;
    let l2 = TcpListener::bind(a2).await.expect("rebind the same port");
    let mut n2 = start_node(2, l2, &addrs, &faults, &config);

    // Messages sent from now on arrive without anyone telling the link.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut delivered = Vec::new();
    let mut next = 100;
    while delivered.is_empty() && tokio::time::Instant::now() < deadline {
        send_numbered(&n1, 2, next..next + 1);
        next += 1;
        delivered = drain(&mut n2, Duration::from_millis(50)).await;
    }
    assert!(!delivered.is_empty(), "link never reconnected");
    send_numbered(&n1, 2, 1_000..1_010);
    let later: Vec<u64> = collect(&mut n2).await.iter().map(number_of).collect();
    assert!(later.ends_with(&(1_000..1_010).collect::<Vec<_>>()), "{later:?}");
    assert!(n1.net.stats()[&2].reconnects >= 1);
    shutdown(vec![n1, n2]).await;
}
