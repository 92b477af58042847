//! Replication under a hostile network, and flow control.

mod support;

use replab_api::{Effect, LogIndex, NodeId};
use replab_raft::{ProgressState, RaftConfig};
use replab_sim::{LinkConfig, SimOptions};
use support::*;

/// Acceptance 9: with messages reordered, duplicated and dropped, the
/// commit index never goes back on any node (within an incarnation) and no
/// entry is applied twice.
#[test]
fn reordered_and_duplicated_messages_never_move_commit_back_or_apply_twice() {
    let mut options = SimOptions::new(9, 5);
    options.record_effects = true;
    options.link = LinkConfig {
        delay_min_us: 100,
        delay_max_us: 3_000,
        drop_probability: 0.05,
        duplicate_probability: 0.3,
        reorder_probability: 0.4,
        reorder_extra_max_us: 30_000,
    };
    let mut sim = cluster_with(options, |_| RaftConfig { max_entries_per_append: 4, ..RaftConfig::default() });
    for round in 0..400 {
        if let Some(leader) = sim.leader() {
            sim.propose_commands(leader, 1 + round % 3).unwrap();
        }
        sim.run_for(20 * MS).unwrap();
    }
    sim.run_for(2 * SECOND).unwrap();

    let network = sim.network_stats();
    assert!(network.duplicated > 1_000 && network.reordered > 1_000, "the network was not hostile: {network:?}");
    assert!(sim.committed_commands() > 500, "little got through: {}", sim.committed_commands());
    let mut last_commit = [0 as LogIndex; 6];
    let mut last_applied = [0 as LogIndex; 6];
    for record in sim.effect_log() {
        let node = record.node as usize;
        match &record.effect {
            Effect::Committed { index } => {
                assert!(*index >= last_commit[node], "node {node}: commit went back to {index}");
                last_commit[node] = *index;
            }
            Effect::Apply { entries } => {
                for entry in entries {
                    assert_eq!(entry.index, last_applied[node] + 1, "node {node}: applied out of order or twice");
                    last_applied[node] = entry.index;
                }
            }
            _ => {}
        }
    }
    for id in 1..=5 as NodeId {
        let applied: Vec<LogIndex> = sim.applied(id).iter().map(|p| p.index).collect();
        assert_eq!(applied, (1..=sim.last_applied(id)).collect::<Vec<_>>(), "node {id} applied each entry once");
    }
    assert!(sim.step_errors().is_empty(), "well-formed duplicates are not errors: {:?}", &sim.step_errors()[..1]);
}

fn window_config() -> RaftConfig {
    RaftConfig { max_entries_per_append: 1, max_inflight_appends: 4, ..RaftConfig::default() }
}

/// Acceptance 11: a burst larger than the in-flight window fills it; the
/// leader then waits (never exceeding it), acknowledgements free it, and
/// replication runs to the end without stalling, also when acks are lost.
#[test]
fn inflight_window_fills_and_replication_resumes_without_stalling() {
    for drop_probability in [0.0, 0.2] {
        let mut options = SimOptions::new(12, 3);
        // Slow links: an append is in flight for 5-10 ms.
        options.link = LinkConfig { delay_min_us: 5_000, delay_max_us: 10_000, drop_probability, ..LinkConfig::BENIGN };
        let mut sim = cluster_with(options, |_| window_config());
        let leader = elect(&mut sim);
        let burst = sim.propose_commands(leader, 200).unwrap();

        let mut max_inflight = 0;
        let mut full_observed = 0;
        let deadline = sim.now_us() + 60 * SECOND;
        while sim.now_us() < deadline && sim.committed_commands() < 200 {
            sim.step().unwrap();
            let Some(raft) = sim.policy(leader) else { continue };
            for peer in (1..=3).filter(|&p| p != leader) {
                let Some(progress) = raft.progress(peer) else { continue };
                max_inflight = max_inflight.max(progress.inflight_messages);
                if progress.state == ProgressState::Replicate && progress.inflight_messages == 4 {
                    full_observed += 1;
                }
            }
        }
        assert_eq!(sim.leader(), Some(leader), "drop {drop_probability}: the leader stayed");
        assert!(
            matches!(sim.proposal(burst).unwrap().status, replab_sim::ProposalStatus::Committed { .. }),
            "drop {drop_probability}: replication stalled at commit {}",
            sim.status(leader).unwrap().commit_index
        );
        assert_eq!(max_inflight, 4, "drop {drop_probability}: the window is bounded and was filled");
        assert!(full_observed > 10, "drop {drop_probability}: the leader rarely waited on a full window");
        assert!(wait_applied_everywhere(&mut sim, 201, 10 * SECOND), "drop {drop_probability}: followers caught up");
    }
}

/// The window is also bounded in bytes: big entries fill it sooner.
#[test]
fn inflight_window_is_bounded_in_bytes() {
    let mut options = SimOptions::new(13, 3);
    options.link = LinkConfig { delay_min_us: 5_000, delay_max_us: 10_000, ..LinkConfig::BENIGN };
    let config = RaftConfig { max_entries_per_append: 1, max_inflight_bytes: 2_500, ..RaftConfig::default() };
    let mut sim = cluster_with(options, move |_| config.clone());
    let leader = elect(&mut sim);
    let big = bytes::Bytes::from(vec![7u8; 983]);
    sim.propose(leader, vec![big; 30]).unwrap();
    let mut max_bytes = 0;
    let mut max_messages = 0;
    while sim.committed_commands() < 30 {
        sim.step().unwrap();
        let raft = sim.policy(leader).unwrap();
        for peer in (1..=3).filter(|&p| p != leader) {
            let progress = raft.progress(peer).unwrap();
            max_bytes = max_bytes.max(progress.inflight_bytes);
            max_messages = max_messages.max(progress.inflight_messages);
        }
    }
    // 1,000-byte entries: the third one reaches the 2,500-byte bound.
    assert_eq!(max_messages, 3);
    assert!(max_bytes < 2_500 + 1_000, "{max_bytes}");
}

/// A follower commits only what the append proved to match: an append that
/// carries fewer entries than the follower holds says nothing about the
/// follower's tail, even if the leader's commit index reaches into it.
#[test]
fn follower_commits_only_the_prefix_an_append_proved() {
    use std::borrow::Cow;

    use replab_api::{Effects, Entry, EntryKind, Input, Instant, LogPosition, PolicyContext, ReplicationPolicy};
    use replab_raft::message::AppendRequest;
    use replab_raft::{Message, Raft};

    // Node 1 holds a stale entry of term 2 at index 3.
    let ctx = PolicyContext { id: 1, members: vec![1, 2, 3], seed: 1 };
    let mut raft = Raft::new(ctx, RaftConfig::default(), recovered(2, None, &[1, 1, 2]));
    let entry = |index, term| Entry { index, term, kind: EntryKind::Command, data: bytes::Bytes::from("x") };
    let append = |prev: (u64, u64), entries: Vec<Entry>| {
        let message = Message::Append(AppendRequest {
            term: 3,
            prev: LogPosition { index: prev.0, term: prev.1 },
            commit: 3,
            entries: Cow::Owned(entries),
        });
        Input::Message { from: 2, bytes: message.encode() }
    };
    let mut out = Effects::new();
    // The leader of term 3 (whose index 3 is of term 3, committed) sends a
    // short batch: entry 2 only.
    raft.step(Instant::ZERO, append((1, 1), vec![entry(2, 1)]), &mut out).unwrap();
    assert_eq!(raft.status().commit_index, 2, "index 3 was not proved to match the leader's");
    raft.step(Instant::ZERO, append((2, 1), vec![entry(3, 3)]), &mut out).unwrap();
    assert_eq!(raft.status().commit_index, 3);
    assert_eq!(terms_of(raft.log_entries()), vec![1, 1, 3], "the stale entry was replaced, not committed");
}
