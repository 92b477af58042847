//! The log against a plain in-memory model, under random operation
//! sequences that include crashes losing unsynced writes.

use proptest::prelude::*;
use replab::wal::{RecordRef, Wal};

use crate::opts;

#[derive(Clone, Debug)]
enum Op {
    /// Append records of these payload lengths in one call.
    Append(Vec<usize>),
    /// Truncate at a point chosen as a fraction of the log.
    Truncate(f64),
    /// Compact below a point chosen as a fraction of the log.
    Compact(f64),
    Sync,
    /// Clean close and reopen.
    Reopen,
    /// Close without sync, cut the open segment somewhere in its unsynced
    /// tail (what a power loss can leave), reopen.
    Crash(f64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => proptest::collection::vec(0usize..600, 1..8).prop_map(Op::Append),
        1 => (0.0..1.0f64).prop_map(Op::Truncate),
        1 => (0.0..1.0f64).prop_map(Op::Compact),
        2 => Just(Op::Sync),
        1 => Just(Op::Reopen),
        2 => (0.0..=1.0f64).prop_map(Op::Crash),
    ]
}

struct Model {
    first: u64,
    /// (kind, payload) of records first..
    records: Vec<(u8, Vec<u8>)>,
    /// Records up to here are certainly durable.
    durable_last: u64,
}

impl Model {
    fn last(&self) -> u64 {
        self.first + self.records.len() as u64 - 1
    }
}

fn check(wal: &Wal, model: &Model) -> Result<(), TestCaseError> {
    prop_assert_eq!(wal.first_index(), model.first);
    prop_assert_eq!(wal.last_index(), model.last());
    let all = wal.read_range(model.first..model.last() + 1).unwrap();
    prop_assert_eq!(all.len(), model.records.len());
    for (record, (kind, payload)) in all.iter().zip(&model.records) {
        prop_assert_eq!(record.kind, *kind);
        prop_assert_eq!(&record.payload, payload);
    }
    if let Some((kind, payload)) = model.records.last() {
        let last = wal.read(model.last()).unwrap();
        prop_assert_eq!((last.kind, &last.payload), (*kind, payload));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_an_in_memory_model_under_appends_truncations_compactions_and_crashes(
        ops in proptest::collection::vec(op(), 1..60)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let o = opts(4096);
        let (mut wal, _) = Wal::open(dir.path(), o.clone()).unwrap();
        let mut model = Model { first: 1, records: Vec::new(), durable_last: 0 };
        let mut counter = 0u8;
        for op in ops {
            match op {
                Op::Append(lens) => {
                    let payloads: Vec<Vec<u8>> = lens.iter().map(|len| {
                        counter = counter.wrapping_add(1);
                        vec![counter; *len]
                    }).collect();
                    let refs: Vec<RecordRef<'_>> = payloads.iter().map(|p| RecordRef { kind: p.len() as u8, payload: p }).collect();
                    let range = wal.append(refs.iter().copied()).unwrap();
                    prop_assert_eq!(range.start, model.last() + 1);
                    for p in payloads {
                        model.records.push((p.len() as u8, p));
                    }
                }
                Op::Truncate(at) => {
                    let keep = (model.records.len() as f64 * at) as usize;
                    wal.truncate_suffix(model.first + keep as u64).unwrap();
                    model.records.truncate(keep);
                    model.durable_last = model.last();
                }
                Op::Compact(at) => {
                    let upto = model.first + (model.records.len() as f64 * at) as u64;
                    wal.compact_prefix(upto).unwrap();
                    let new_first = wal.first_index();
                    prop_assert!(new_first >= model.first && new_first <= upto.max(model.first - 1) + 1,
                        "compaction to {} moved first index from {} to {}", upto, model.first, new_first);
                    model.records.drain(..(new_first - model.first) as usize);
                    model.first = new_first;
                }
                Op::Sync => {
                    wal.sync().unwrap();
                    model.durable_last = model.last();
                }
                Op::Reopen => {
                    wal.sync().unwrap();
                    drop(wal);
                    wal = Wal::open(dir.path(), o.clone()).unwrap().0;
                    model.durable_last = model.last();
                }
                Op::Crash(at) => {
                    let (path, synced, len) = wal.open_segment_sync_state();
                    drop(wal);
                    let cut = synced + ((len - synced) as f64 * at) as u64;
                    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(cut).unwrap();
                    wal = Wal::open(dir.path(), o.clone()).unwrap().0;
                    let last = wal.last_index();
                    prop_assert!(last >= model.durable_last.max(model.first - 1),
                        "crash lost durable records: recovered up to {}, durable up to {}", last, model.durable_last);
                    prop_assert!(last <= model.last(), "crash invented records");
                    model.records.truncate((last + 1 - model.first) as usize);
                    model.durable_last = model.last();
                }
            }
            check(&wal, &model)?;
        }
    }
}
