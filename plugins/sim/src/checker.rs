//! The invariant checker. The harness calls it on every effect a policy
//! pushes, before carrying the effect out, so a violation is reported at
//! the step that caused it. Each check is incremental (it looks only at
//! what the effect changes), which keeps thousands of seeds affordable.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use bytes::Bytes;
use replab_api::{Entry, EntryKind, HardState, LogIndex, NodeId, Term};

use crate::storage::LogStore;
use crate::violation::{Invariant, Violation};

/// What the checker needs to know about one node.
pub struct NodeView<'a> {
    pub id: NodeId,
    /// Whether the node is up (a crashed node's view is gone; only its
    /// durable store counts).
    pub up: bool,
    /// `Some(term)` if the node is up and believes it leads `term`.
    pub leading: Option<Term>,
    /// The log as the policy sees it (written, maybe not synced).
    pub log: &'a LogStore,
    pub durable: &'a LogStore,
}

/// A multiplicative hasher for the (index, term) keys: the default SipHash
/// costs more than the whole log-matching check.
#[derive(Default)]
struct PairHasher(u64);

impl Hasher for PairHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

struct EntryRecord {
    prev_term: Term,
    kind: EntryKind,
    data: Bytes,
}

pub struct Checker {
    seed: u64,
    replay: String,
    voters: usize,
    pub now_us: u64,
    leaders: BTreeMap<Term, NodeId>,
    /// Every (index, term) ever written anywhere, with what it must be.
    entries: HashMap<(LogIndex, Term), EntryRecord, BuildHasherDefault<PairHasher>>,
    /// `committed[i - 1]` is the term of the entry committed at index i.
    committed: Vec<Term>,
    /// `fingerprints[i - 1]`: state-machine digest after applying index i.
    fingerprints: Vec<Option<u64>>,
    /// Check [`Invariant::ElectableWithoutCommitted`] (on by default).
    pub check_electable: bool,
}

impl Checker {
    pub fn new(seed: u64, voters: usize, replay: String) -> Checker {
        Checker {
            seed,
            replay,
            voters,
            now_us: 0,
            leaders: BTreeMap::new(),
            entries: HashMap::default(),
            committed: Vec::new(),
            fingerprints: Vec::new(),
            check_electable: true,
        }
    }

    pub fn fail(&self, invariant: Invariant, node: Option<NodeId>, detail: String) -> Violation {
        Violation { invariant, seed: self.seed, time_us: self.now_us, node, detail, replay: self.replay.clone() }
    }

    fn check(
        &self,
        ok: bool,
        invariant: Invariant,
        node: NodeId,
        detail: impl FnOnce() -> String,
    ) -> Result<(), Violation> {
        if ok { Ok(()) } else { Err(self.fail(invariant, Some(node), detail())) }
    }

    pub fn max_committed(&self) -> LogIndex {
        self.committed.len() as LogIndex
    }

    pub fn committed_term(&self, index: LogIndex) -> Option<Term> {
        index.checked_sub(1).and_then(|i| self.committed.get(i as usize)).copied()
    }

    pub fn leaders(&self) -> &BTreeMap<Term, NodeId> {
        &self.leaders
    }

    fn majority(&self) -> usize {
        self.voters / 2 + 1
    }

    pub fn on_hard_state(&self, node: NodeId, old: HardState, new: HardState) -> Result<(), Violation> {
        self.check(new.term >= old.term, Invariant::VoteSafety, node, || {
            format!("term went back from {} to {}", old.term, new.term)
        })?;
        let same_vote = new.term > old.term || old.vote.is_none() || old.vote == new.vote;
        self.check(same_vote, Invariant::VoteSafety, node, || {
            format!("voted for {:?} and then for {:?} in term {}", old.vote, new.vote, new.term)
        })
    }

    /// Registers entries a node starts with (an initial state), so later
    /// writes are checked against them.
    pub fn register_log(&mut self, node: NodeId, log: &LogStore) -> Result<(), Violation> {
        let mut base = LogStore::default();
        if let Some(snapshot) = log.snapshot() {
            base.apply(&crate::storage::Op::InstallSnapshot(snapshot.clone())).expect("installing into an empty log");
        }
        let entries: Vec<Entry> = log.entries().iter().filter(|e| e.index > base.last_index()).cloned().collect();
        if entries.first().is_some_and(|e| e.index != base.last_index() + 1) {
            // The initial log was compacted without a snapshot; nothing to
            // anchor the prefix, so only the entries themselves are known.
            return Ok(());
        }
        self.on_append(node, &base, &entries)
    }

    /// Log matching, checked on every append: an (index, term) pair always
    /// names the same payload and the same previous term. By induction on
    /// the index, the same (index, term) then implies the same prefix.
    pub fn on_append(&mut self, node: NodeId, log: &LogStore, entries: &[Entry]) -> Result<(), Violation> {
        let mut prev = log.last_position();
        for entry in entries {
            self.check(entry.index == prev.index + 1, Invariant::EffectContract, node, || {
                format!("appended index {} after last index {}", entry.index, prev.index)
            })?;
            self.check(entry.term >= prev.term, Invariant::LogMatching, node, || {
                format!("entry {} of term {} follows term {}", entry.index, entry.term, prev.term)
            })?;
            match self.entries.get(&(entry.index, entry.term)) {
                Some(known) => {
                    let same = known.prev_term == prev.term && known.kind == entry.kind && known.data == entry.data;
                    self.check(same, Invariant::LogMatching, node, || {
                        format!(
                            "entry ({}, term {}) differs from the one other logs hold (prev term {} vs {}, \
                             data {:?} vs {:?})",
                            entry.index, entry.term, prev.term, known.prev_term, entry.data, known.data
                        )
                    })?;
                }
                None => {
                    let record = EntryRecord { prev_term: prev.term, kind: entry.kind, data: entry.data.clone() };
                    self.entries.insert((entry.index, entry.term), record);
                }
            }
            prev = entry.position();
        }
        Ok(())
    }

    /// A committed entry must never be truncated.
    pub fn on_truncate(&self, node: NodeId, log: &LogStore, from: LogIndex) -> Result<(), Violation> {
        self.check(from > log.snapshot_index(), Invariant::EffectContract, node, || {
            format!("truncation at {from} inside the snapshot (up to {})", log.snapshot_index())
        })?;
        let last = log.last_index().min(self.max_committed());
        for index in from..=last {
            let committed = self.committed_term(index);
            self.check(log.term_at(index) != committed, Invariant::CommittedEntryLost, node, || {
                format!("truncation at {from} deletes committed entry ({index}, term {committed:?})")
            })?;
        }
        Ok(())
    }

    /// A commit index reported by `node`, whose previous one (this
    /// incarnation) was `previous`. Checks monotonicity, agreement with
    /// other nodes' commits, durability on a quorum, and (for a new highest
    /// commit) that every leader of a later term holds it.
    pub fn on_committed(
        &mut self,
        node: NodeId,
        node_term: Term,
        previous: LogIndex,
        index: LogIndex,
        nodes: &[NodeView<'_>],
    ) -> Result<(), Violation> {
        self.check(index >= previous, Invariant::CommitMonotonic, node, || {
            format!("commit index went back from {previous} to {index}")
        })?;
        let log = nodes.iter().find(|n| n.id == node).expect("the node itself").log;
        if index <= log.snapshot_index() {
            // Learned with an installed snapshot, which only ever holds
            // committed state.
            return Ok(());
        }
        let Some(term) = log.term_at(index) else {
            return Err(self.fail(
                Invariant::EffectContract,
                Some(node),
                format!("committed index {index} beyond its log (last {})", log.last_index()),
            ));
        };
        // Every index this commit newly covers must agree with what other
        // nodes committed there.
        let from = previous.max(log.snapshot_index()) + 1;
        let overlap_end = index.min(self.max_committed());
        for i in from..=overlap_end {
            let ours = log.term_at(i);
            let theirs = self.committed_term(i);
            self.check(ours == theirs, Invariant::StateMachineSafety, node, || {
                format!("commits ({i}, term {ours:?}) where term {theirs:?} was committed")
            })?;
        }
        let durable = nodes.iter().filter(|n| n.durable.covers(index, term)).count();
        self.check(durable >= self.majority(), Invariant::CommitDurability, node, || {
            format!(
                "commit index {index} (term {term}) is durable on {durable} of {} nodes, a quorum needs {}",
                self.voters,
                self.majority()
            )
        })?;
        if index > self.max_committed() {
            for i in self.max_committed() + 1..=index {
                // A node's snapshot holds only entries some node committed
                // before, so indexes above the old maximum are in its log.
                let Some(term) = log.term_at(i) else {
                    return Err(self.fail(
                        Invariant::StateMachineSafety,
                        Some(node),
                        format!("commits {index}, but index {i} was never committed and is not in its log"),
                    ));
                };
                self.committed.push(term);
            }
            for leader in nodes.iter().filter(|n| n.leading.is_some_and(|t| t > node_term)) {
                self.check(leader.log.covers(index, term), Invariant::LeaderCompleteness, leader.id, || {
                    format!(
                        "leader of term {:?} lacks ({index}, term {term}), committed in term {node_term}",
                        leader.leading
                    )
                })?;
            }
            if self.check_electable {
                self.check_no_electable_node_lacks(index, term, nodes)?;
            }
        }
        Ok(())
    }

    /// When `(index, term)` is first committed, no node that lacks it may
    /// still be able to win an election. Raft's vote rule (§5.4.1): a voter
    /// grants its vote only to a candidate whose last log position is at
    /// least as up to date as its own (higher last term, or the same last
    /// term and an index at least as high). A node lacking the entry whose
    /// log is at least as up to date as the durable logs of enough others
    /// to make a majority (itself included) could be elected, and would
    /// overwrite the entry. Correct Raft never allows it: a majority stores
    /// the entry durably, and every log without it is less up to date than
    /// theirs. Committing an older-term entry by counting replicas (the
    /// paper's Figure 8) does: the replicas' last term is the old one, and
    /// a node holding a newer term's entry at that index outranks them.
    /// This sees the unsafe commit when it happens, whether or not the
    /// schedule then elects that node.
    fn check_no_electable_node_lacks(
        &self,
        index: LogIndex,
        term: Term,
        nodes: &[NodeView<'_>],
    ) -> Result<(), Violation> {
        let up_to_date = |p: replab_api::LogPosition| (p.term, p.index);
        for candidate in nodes {
            let holds = candidate.durable.covers(index, term) || (candidate.up && candidate.log.covers(index, term));
            if holds {
                continue;
            }
            // The most up-to-date log the candidate could campaign with.
            let mut best = up_to_date(candidate.durable.last_position());
            if candidate.up {
                best = best.max(up_to_date(candidate.log.last_position()));
            }
            let voters: Vec<NodeId> = nodes
                .iter()
                .filter(|v| v.id == candidate.id || up_to_date(v.durable.last_position()) <= best)
                .map(|v| v.id)
                .collect();
            if voters.len() >= self.majority() {
                return Err(self.fail(
                    Invariant::ElectableWithoutCommitted,
                    Some(candidate.id),
                    format!(
                        "lacks newly committed ({index}, term {term}), yet its log (last term {}, index {}) is at \
                         least as up to date as the durable logs of nodes {voters:?}, a majority: it could be \
                         elected and overwrite the entry",
                        best.0, best.1
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Election safety and leader completeness when `node` becomes leader.
    pub fn on_leader(&mut self, node: NodeId, term: Term, log: &LogStore) -> Result<(), Violation> {
        if let Some(&other) = self.leaders.get(&term) {
            self.check(other == node, Invariant::ElectionSafety, node, || {
                format!("became leader of term {term}, which node {other} already led")
            })?;
        }
        self.leaders.insert(term, node);
        let highest = self.max_committed();
        if let Some(committed) = self.committed_term(highest) {
            self.check(log.covers(highest, committed), Invariant::LeaderCompleteness, node, || {
                format!(
                    "leader of term {term} lacks committed entry ({highest}, term {committed}); its log ends at {:?}",
                    log.last_position()
                )
            })?;
        }
        Ok(())
    }

    /// An entry handed to the state machine of a node that has applied up
    /// to `last_applied` and committed up to `commit` in this incarnation.
    pub fn on_apply(
        &self,
        node: NodeId,
        last_applied: LogIndex,
        commit: LogIndex,
        entry: &Entry,
    ) -> Result<(), Violation> {
        self.check(entry.index == last_applied + 1, Invariant::StateMachineSafety, node, || {
            if entry.index <= last_applied {
                format!("applied index {} twice (already applied up to {last_applied})", entry.index)
            } else {
                format!("applied index {} after {last_applied}: a gap", entry.index)
            }
        })?;
        self.check(entry.index <= commit, Invariant::StateMachineSafety, node, || {
            format!("applied index {} above its commit index {commit}", entry.index)
        })?;
        let committed = self.committed_term(entry.index);
        self.check(committed == Some(entry.term), Invariant::StateMachineSafety, node, || {
            format!("applied ({}, term {}) where term {committed:?} was committed", entry.index, entry.term)
        })?;
        let known = self.entries.get(&(entry.index, entry.term));
        self.check(known.is_some_and(|k| k.data == entry.data), Invariant::StateMachineSafety, node, || {
            format!("applied entry {} carries a payload no log holds", entry.index)
        })
    }

    /// The state machine's digest after applying `index` (or restoring a
    /// snapshot of it) must be the same on every node.
    pub fn on_fingerprint(&mut self, node: NodeId, index: LogIndex, fingerprint: Option<u64>) -> Result<(), Violation> {
        let Some(fingerprint) = fingerprint else { return Ok(()) };
        if index == 0 {
            return Ok(());
        }
        let slot = (index - 1) as usize;
        if self.fingerprints.len() <= slot {
            self.fingerprints.resize(slot + 1, None);
        }
        match self.fingerprints[slot] {
            None => {
                self.fingerprints[slot] = Some(fingerprint);
                Ok(())
            }
            Some(known) => self.check(known == fingerprint, Invariant::StateMachineSafety, node, || {
                format!("state after index {index} has digest {fingerprint:#x}, other nodes had {known:#x}")
            }),
        }
    }

    pub fn on_read_ready(&self, node: NodeId, index: LogIndex, min_index: LogIndex) -> Result<(), Violation> {
        self.check(index >= min_index, Invariant::StaleRead, node, || {
            format!("read served at index {index}, but index {min_index} was committed before the read started")
        })
    }

    /// Every committed entry is still on a quorum of durable stores (run
    /// after restarts and at the end of a run).
    pub fn check_nothing_lost(&self, durables: &[&LogStore]) -> Result<(), Violation> {
        for (i, &term) in self.committed.iter().enumerate() {
            let index = i as LogIndex + 1;
            let holders = durables.iter().filter(|d| d.covers(index, term)).count();
            if holders < self.majority() {
                return Err(self.fail(
                    Invariant::CommittedEntryLost,
                    None,
                    format!("committed entry ({index}, term {term}) survives on only {holders} durable stores"),
                ));
            }
        }
        Ok(())
    }
}
