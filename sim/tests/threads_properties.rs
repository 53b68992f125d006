//! The swarm generator's scenarios (`common/scenario_gen.rs`) on the threads runtime:
//! every run ends (by itself, or — with faults — with a deadlock report, never a hang),
//! balances, and never panics. A live pipeline (no faults) drains by itself, as it does
//! on the simulator. Runs are cut at a generous wall-clock bound so that a bug shows as a
//! failed assertion, not a stuck suite.
//!
//! Cases: `FLOWBENCH_PROPTEST_CASES` (default 64; each case starts real threads).

#[path = "common/scenario_gen.rs"]
mod scenario_gen;

use std::time::Duration;

use flowbench_engine::scenario::parse_str;
use flowbench_engine::threads::scenario::{run_scenario, ScenarioRunOptions};
use flowbench_engine::threads::Scheduling;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use scenario_gen::{cases, Case, Profile};

/// A run that has not ended by itself after this long is cut and fails the property.
const BOUND: Duration = Duration::from_secs(20);

fn config() -> ProptestConfig {
    let cases = std::env::var("FLOWBENCH_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(64);
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/threads_properties.txt"
        )))),
        max_shrink_iters: 64,
        ..ProptestConfig::default()
    }
}

fn check(case: &Case, live: bool) -> Result<(), TestCaseError> {
    let s = parse_str(&case.text, "generated.toml")
        .map_err(|e| TestCaseError::fail(format!("generator bug: {e}")))?;
    let opts = ScenarioRunOptions {
        events: case.events,
        seed: case.sim_seed,
        until: Some(BOUND),
        record: false,
        // Both drivers, and pools of one to three workers, over the cases.
        scheduling: match case.sim_seed % 4 {
            0 => Scheduling::ThreadPerStage,
            w => Scheduling::Pool {
                workers: w as usize,
            },
        },
    };
    let run = run_scenario(&s, &opts).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    let o = &run.outcome;
    let text = || format!("{case:#?}\n{}", o.summary("generated").table());
    prop_assert!(!o.cut, "not ended within {BOUND:?}: {}", text());
    prop_assert!(o.failures.is_empty(), "a stage thread panicked: {}", text());
    prop_assert!(
        o.stages.iter().all(|st| st.stats.panics == 0),
        "built-in code panicked: {}",
        text()
    );
    prop_assert!(o.balanced(), "unbalanced: {}", text());
    if live {
        prop_assert!(
            o.deadlock.is_none(),
            "a live pipeline deadlocked: {}\n{}",
            text(),
            o.deadlock
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default()
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn every_generated_run_ends_balances_and_never_panics_on_threads(case in cases(Profile::Full)) {
        check(&case, false)?;
    }

    #[test]
    fn every_live_generated_pipeline_drains_on_threads(case in cases(Profile::Live)) {
        check(&case, true)?;
    }
}
