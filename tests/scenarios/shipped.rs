use crate::*;

/// Runs a shipped script and requires every check to pass.
fn passes(name: &str) {
    let r = run(&root().join("scripts").join(name), &[]);
    assert_eq!(r.code, Some(0), "{name} failed:\n{}", r.explain());
    let results = r.results.as_ref().expect("results.json written");
    let checks = results["checks"].as_array().unwrap();
    assert!(!checks.is_empty(), "{name} ends with checks");
    assert!(checks.iter().all(|c| c["status"] == "pass"), "{name}: {checks:?}");
    assert!(r.history_lines.unwrap_or(0) > 0, "{name} recorded a history");
}

macro_rules! shipped {
    ($($test:ident => $file:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                passes($file);
            }
        )*

        const SHIPPED: &[&str] = &[$($file),*];
    };
}

shipped! {
    quickstart => "quickstart.lua",
    leader_crash_and_restart => "leader-crash.lua",
    follower_restart_with_catch_up => "follower-restart.lua",
    wiped_follower_catches_up_under_load => "wiped-follower.lua",
    partition_with_the_leader_in_the_minority => "partition-minority-leader.lua",
    old_leader_steps_down_on_heal => "old-leader-steps-down.lua",
    one_way_partition => "one-way-partition.lua",
    flapping_partitions => "flapping-partitions.lua",
    rolling_restart => "rolling-restart.lua",
    client_retry_idempotency_across_failover => "client-retry-idempotency.lua",
    snapshot_catch_up_of_a_lagging_follower => "snapshot-catch-up.lua",
    lossy_duplicating_reordering_network => "lossy-network.lua",
    gossip_and_heartbeat_failure_detectors => "failure-detectors.lua",
    power_loss_under_the_default_fsync_policy => "power-loss.lua",
    zombie_leader_acknowledges_nothing_stale_and_steps_down => "zombie-leader.lua",
    minority_pinned_client_gets_nothing_acknowledged => "minority-pinned-client.lua",
    concurrent_writes_under_raft => "concurrent-writes.lua",
    clock_skew_under_raft => "clock-skew.lua",
    quorum_sweep_reads_nothing_stale_with_overlapping_quorums => "quorum-sweep.lua",
    anti_entropy_repairs_a_cut_off_replica_without_reads => "anti-entropy.lua",
}

/// Scripts that exist to contrast strategies: some strategy fails their
/// checks by design, so compare.rs runs each under every strategy it
/// compares and asserts the directions (their raft column must pass).
const COMPARED: &[&str] = &["leader-crash-compare.lua", "zombie-primary.lua"];

#[test]
fn every_script_in_scripts_has_a_test() {
    let mut on_disk: Vec<String> = std::fs::read_dir(root().join("scripts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".lua"))
        .collect();
    on_disk.sort();
    let mut tested: Vec<String> = SHIPPED.iter().chain(COMPARED).map(|s| s.to_string()).collect();
    tested.sort();
    assert_eq!(on_disk, tested, "add a test line for every new script");
}
