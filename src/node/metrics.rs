//! What a node publishes about itself while it runs, and its Prometheus
//! text exposition.
//!
//! Two sources, by cost. The few values that change on the hot path or
//! must be read without asking the node's loop (role, term, leader, commit
//! and applied index, up and paused, client reply latencies, fdatasync
//! latencies) live in atomics the loop and the log thread update in place:
//! a store or an add, no allocation, no lock. Everything else (counters,
//! the failure detector's suspicion, per-peer traffic) comes from the
//! node's status and link counters at scrape time, so scraping costs one
//! status request and the loop pays nothing between scrapes.
//!
//! The exposition format is Prometheus's text format 0.0.4: `# HELP` and
//! `# TYPE` lines, then samples `name{label="value"} number`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use replab_api::{NodeId, Role};

use crate::client::protocol::{NodeStatus, ResponseBody};
use crate::histogram::{BUCKET_BOUNDS_US, HistogramSnapshot, LatencyHistogram};
use crate::net::LinkStats;

/// Roles in the order of their codes in [`NodeMetrics`].
const ROLES: [(Role, &str); 5] = [
    (Role::Follower, "follower"),
    (Role::PreCandidate, "pre_candidate"),
    (Role::Candidate, "candidate"),
    (Role::Leader, "leader"),
    (Role::Peer, "peer"),
];

/// How a client request ended, as the node answered it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyClass {
    /// Written, read, registered.
    Ok,
    /// Sent to the leader instead.
    Redirect,
    /// Refused, timed out, unavailable, busy.
    Error,
}

const REPLY_CLASSES: [(ReplyClass, &str); 3] =
    [(ReplyClass::Ok, "ok"), (ReplyClass::Redirect, "redirect"), (ReplyClass::Error, "error")];

impl ReplyClass {
    /// `None` for a status answer, which is no client operation.
    pub fn of(body: &ResponseBody) -> Option<ReplyClass> {
        match body {
            ResponseBody::Status(_) | ResponseBody::AdminDone | ResponseBody::Dump(_) | ResponseBody::Replicas(_) => {
                None
            }
            ResponseBody::Redirect { .. } => Some(ReplyClass::Redirect),
            ResponseBody::Error { .. } => Some(ReplyClass::Error),
            _ => Some(ReplyClass::Ok),
        }
    }
}

#[derive(Debug)]
pub struct NodeMetrics {
    pub id: NodeId,
    up: AtomicBool,
    paused: AtomicBool,
    role: AtomicU8,
    term: AtomicU64,
    /// 0: no known leader (ids start at 1).
    leader: AtomicU64,
    commit_index: AtomicU64,
    applied_index: AtomicU64,
    replies: [AtomicU64; REPLY_CLASSES.len()],
    /// From a request's arrival at the loop to its answer.
    pub client_latency: LatencyHistogram,
    /// The node's log thread's group fdatasyncs.
    pub sync_latency: Arc<LatencyHistogram>,
}

/// The values the leader watch needs, read together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoleView {
    /// Running and not paused: it answers.
    pub serving: bool,
    pub role: Role,
    pub term: u64,
    pub leader: Option<NodeId>,
}

impl NodeMetrics {
    pub fn new(id: NodeId, role: Role, sync_latency: Arc<LatencyHistogram>) -> NodeMetrics {
        let metrics = NodeMetrics {
            id,
            up: AtomicBool::new(true),
            paused: AtomicBool::new(false),
            role: AtomicU8::new(0),
            term: AtomicU64::new(0),
            leader: AtomicU64::new(0),
            commit_index: AtomicU64::new(0),
            applied_index: AtomicU64::new(0),
            replies: Default::default(),
            client_latency: LatencyHistogram::default(),
            sync_latency,
        };
        metrics.set_role(role, 0, None);
        metrics
    }

    pub fn set_role(&self, role: Role, term: u64, leader: Option<NodeId>) {
        let code = ROLES.iter().position(|(r, _)| *r == role).unwrap_or(0);
        self.role.store(code as u8, Ordering::Relaxed);
        self.term.store(term, Ordering::Relaxed);
        self.leader.store(leader.unwrap_or(0), Ordering::Relaxed);
    }

    pub fn set_commit_index(&self, index: u64) {
        self.commit_index.store(index, Ordering::Relaxed);
    }

    pub fn set_applied_index(&self, index: u64) {
        self.applied_index.store(index, Ordering::Relaxed);
    }

    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::Relaxed);
    }

    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Relaxed);
    }

    pub fn client_replied(&self, class: ReplyClass, latency: Duration) {
        let slot = REPLY_CLASSES.iter().position(|(c, _)| *c == class).unwrap_or(0);
        self.replies[slot].fetch_add(1, Ordering::Relaxed);
        self.client_latency.record(latency);
    }

    pub fn role_view(&self) -> RoleView {
        let leader = self.leader.load(Ordering::Relaxed);
        RoleView {
            serving: self.up.load(Ordering::Relaxed) && !self.paused.load(Ordering::Relaxed),
            role: ROLES[usize::from(self.role.load(Ordering::Relaxed)).min(ROLES.len() - 1)].0,
            term: self.term.load(Ordering::Relaxed),
            leader: (leader != 0).then_some(leader),
        }
    }
}

/// Prometheus text for one node: its atomics, and, when the node answered
/// its status request in time, its counters, links and detector view.
pub fn render(metrics: &NodeMetrics, status: Option<&NodeStatus>, links: &BTreeMap<NodeId, LinkStats>) -> String {
    let mut out = Exposition::default();
    let view = metrics.role_view();
    let node = metrics.id.to_string();
    let id = [("node", node.as_str())];
    out.family("replab_node_up", "gauge", "1 while the node's loop runs and is not paused.");
    out.sample("replab_node_up", &id, f64::from(u8::from(view.serving)));
    out.family("replab_node_role", "gauge", "1 for the node's current role, 0 for the others.");
    for (role, name) in ROLES {
        out.sample(
            "replab_node_role",
            &[("node", node.as_str()), ("role", name)],
            f64::from(u8::from(view.role == role)),
        );
    }
    out.family("replab_node_term", "gauge", "The node's current term (generation).");
    out.sample("replab_node_term", &id, view.term as f64);
    out.family("replab_node_leader", "gauge", "The leader this node knows of (0: none).");
    out.sample("replab_node_leader", &id, view.leader.unwrap_or(0) as f64);
    out.family("replab_node_commit_index", "gauge", "The highest log index known committed.");
    out.sample("replab_node_commit_index", &id, metrics.commit_index.load(Ordering::Relaxed) as f64);
    out.family("replab_node_applied_index", "gauge", "The highest log index applied to the store.");
    out.sample("replab_node_applied_index", &id, metrics.applied_index.load(Ordering::Relaxed) as f64);

    out.family("replab_client_requests_total", "counter", "Client requests answered, by how they ended.");
    for (slot, (_, name)) in REPLY_CLASSES.iter().enumerate() {
        let n = metrics.replies[slot].load(Ordering::Relaxed);
        out.sample("replab_client_requests_total", &[("node", node.as_str()), ("result", *name)], n as f64);
    }
    out.histogram(
        "replab_client_request_duration_seconds",
        "From a client request's arrival at the node's loop to its answer.",
        &node,
        &metrics.client_latency.snapshot(),
    );
    out.histogram(
        "replab_wal_fdatasync_duration_seconds",
        "How long each group fdatasync of the log took.",
        &node,
        &metrics.sync_latency.snapshot(),
    );

    out.family("replab_peer_messages_sent_total", "counter", "Frames written to the link to each peer.");
    for (peer, link) in links {
        out.sample("replab_peer_messages_sent_total", &peer_labels(&node, *peer), link.frames_out as f64);
    }
    out.family("replab_peer_bytes_sent_total", "counter", "Bytes written to the link to each peer.");
    for (peer, link) in links {
        out.sample("replab_peer_bytes_sent_total", &peer_labels(&node, *peer), link.bytes_out as f64);
    }

    out.family("replab_node_status_ok", "gauge", "1 if the node answered the status request of this scrape.");
    out.sample("replab_node_status_ok", &id, f64::from(u8::from(status.is_some())));
    if let Some(status) = status {
        render_status(&mut out, &node, status);
    }
    out.text
}

fn peer_labels(node: &str, peer: NodeId) -> [(&'static str, String); 2] {
    [("node", node.to_string()), ("peer", peer.to_string())]
}

fn render_status(out: &mut Exposition, node: &str, status: &NodeStatus) {
    let id = [("node", node)];
    let s = &status.stats;
    let counters = [
        ("replab_proposals_total", "Client batches handed to the policy.", s.proposals),
        ("replab_proposed_entries_total", "Client requests in those batches.", s.proposed_entries),
        ("replab_applied_entries_total", "Log entries applied to the store.", s.applied_entries),
        ("replab_wal_fdatasyncs_total", "fdatasyncs of the log (hard state and snapshots included).", s.fdatasyncs),
        ("replab_wal_records_total", "Records written to the log.", s.log_records),
        ("replab_elections_won_total", "Times this node became leader.", s.became_leader),
        ("replab_messages_sent_total", "Policy messages sent to peers.", s.messages_sent),
        ("replab_message_bytes_sent_total", "Bytes of policy messages sent to peers.", s.message_bytes_sent),
    ];
    for (name, help, value) in counters {
        out.family(name, "counter", help);
        out.sample(name, &id, value as f64);
    }
    let per_sync = |n: u64| if s.fdatasyncs == 0 { 0.0 } else { n as f64 / s.fdatasyncs as f64 };
    out.family("replab_entries_per_fdatasync", "gauge", "Log records written per fdatasync, since the start.");
    out.sample("replab_entries_per_fdatasync", &id, per_sync(s.log_records));
    out.family("replab_proposals_per_fdatasync", "gauge", "Client batches proposed per fdatasync, since the start.");
    out.sample("replab_proposals_per_fdatasync", &id, per_sync(s.proposals));
    out.family(
        "replab_peer_suspicion",
        "gauge",
        "The failure detector's doubt about each peer: phi (gossip) or ms of silence (heartbeat).",
    );
    for view in &status.liveness {
        out.sample("replab_peer_suspicion", &peer_labels(node, view.peer), view.suspicion);
    }
    out.family("replab_peer_alive", "gauge", "1 if the failure detector holds the peer alive.");
    for view in &status.liveness {
        let alive = view.liveness == replab_api::Liveness::Alive;
        out.sample("replab_peer_alive", &peer_labels(node, view.peer), f64::from(u8::from(alive)));
    }
}

/// A Prometheus text document being written.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample<K: AsRef<str>, V: AsRef<str>>(&mut self, name: &str, labels: &[(K, V)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                // Label values here are ids and fixed words: nothing to escape.
                let _ = write!(self.text, "{}=\"{}\"", k.as_ref(), v.as_ref());
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    fn histogram(&mut self, name: &str, help: &str, node: &str, h: &HistogramSnapshot) {
        self.family(name, "histogram", help);
        let bucket = format!("{name}_bucket");
        for (bound_us, count) in BUCKET_BOUNDS_US.iter().zip(&h.cumulative) {
            let le = format!("{}", *bound_us as f64 / 1e6);
            self.sample(&bucket, &[("node", node), ("le", &le)], *count as f64);
        }
        self.sample(&bucket, &[("node", node), ("le", "+Inf")], h.count as f64);
        self.sample(&format!("{name}_sum"), &[("node", node)], h.sum_us as f64 / 1e6);
        self.sample(&format!("{name}_count"), &[("node", node)], h.count as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_has_one_type_line_per_family_and_cumulative_buckets_ending_in_the_count() {
        let m = NodeMetrics::new(2, Role::Follower, Arc::default());
        m.set_role(Role::Leader, 3, Some(2));
        m.client_replied(ReplyClass::Ok, Duration::from_micros(700));
        m.client_replied(ReplyClass::Redirect, Duration::from_micros(20));
        let text = render(&m, None, &BTreeMap::new());
        assert!(text.contains("replab_node_role{node=\"2\",role=\"leader\"} 1\n"), "{text}");
        assert!(text.contains("replab_node_role{node=\"2\",role=\"follower\"} 0\n"), "{text}");
        assert!(text.contains("replab_node_term{node=\"2\"} 3\n"), "{text}");
        assert!(text.contains("replab_client_requests_total{node=\"2\",result=\"ok\"} 1\n"), "{text}");
        assert!(text.contains("replab_client_request_duration_seconds_bucket{node=\"2\",le=\"0.0005\"} 1\n"));
        assert!(text.contains("replab_client_request_duration_seconds_bucket{node=\"2\",le=\"0.001\"} 2\n"));
        assert!(text.contains("replab_client_request_duration_seconds_count{node=\"2\"} 2\n"));
        assert!(text.contains("replab_node_status_ok{node=\"2\"} 0\n"));
        let mut types = std::collections::BTreeSet::new();
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            assert!(types.insert(line.to_string()), "one TYPE line per family: {line}");
        }
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "every sample ends in a number: {line}");
        }
    }
}
