//! Histories generated from a linearizable simulation (overlapping
//! clients, counters, Fail and Unknown operations) always pass.

use replab::check::simulate::{SimulationParams, simulate_history};

use crate::{assert_linearizable, check};

#[test]
fn generated_histories_pass_across_seeds_and_shapes() {
    let shapes = [
        // (clients, ops, keys, unknown_rate)
        (2, 200, 1, 0.0),
        (5, 500, 3, 0.02),
        (10, 2_000, 20, 0.01),
        (20, 1_000, 2, 0.01),
        (10, 3_000, 100, 0.05),
    ];
    for seed in 1..=6u64 {
        for &(clients, ops, keys, unknown_rate) in &shapes {
            let params = SimulationParams { seed, clients, ops, keys, unknown_rate, ..SimulationParams::default() };
            let history = simulate_history(&params);
            assert!(history.validate().is_ok());
            let report = check(&history);
            assert!(
                report.verdict.is_linearizable(),
                "seed {seed}, shape {clients}x{ops}x{keys}, unknown {unknown_rate}:\n{report}"
            );
            assert_eq!(report.keys_linearizable, report.keys_total);
        }
    }
}

#[test]
fn generated_histories_really_overlap_and_include_every_outcome() {
    let history = simulate_history(&SimulationParams {
        ops: 2_000,
        keys: 10,
        unknown_rate: 0.02,
        fail_rate: 0.02,
        ..SimulationParams::default()
    });
    let overlapping =
        history.ops.windows(2).filter(|pair| pair[1].invoke_us < pair[0].complete_us.unwrap_or(u64::MAX)).count();
    assert!(overlapping > history.len() / 2, "only {overlapping} overlapping neighbours");
    assert!(history.count_unknown() > 0);
    assert!(history.iter().any(|op| op.outcome.is_fail()));
    let kinds: std::collections::BTreeSet<&str> = history.iter().map(|op| op.kind.name()).collect();
    assert_eq!(kinds.len(), 5, "{kinds:?}");
    assert_linearizable(&history);
}

#[test]
fn generation_is_deterministic_per_seed() {
    let params = SimulationParams { ops: 500, ..SimulationParams::default() };
    assert_eq!(simulate_history(&params), simulate_history(&params));
    let other = SimulationParams { seed: 2, ..params };
    assert_ne!(simulate_history(&other), simulate_history(&SimulationParams { ops: 500, ..Default::default() }));
}
