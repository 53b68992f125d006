//! Scenarios that once failed a property, kept as they were generated. Each must now run
//! to its natural end on the sim, drained and balanced.

use std::path::PathBuf;

use flowbench_engine::scenario;
use flowbench_sim::{run, SimOptions};

fn drains_balanced(file: &str, seed: u64) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/regressions")
        .join(file);
    let s = scenario::load(&path).expect("valid scenario");
    let opts = SimOptions {
        seed: Some(seed),
        ..SimOptions::default()
    };
    let outcome = run(&s, &opts, None).unwrap_or_else(|e| panic!("{file}: {e}"));
    let summary = outcome.summary();
    assert!(summary.base.balanced, "{file}: {}", outcome.table());
    assert!(
        summary.base.stages.iter().all(|st| st.exit != "running"),
        "{file}: every stage ends: {}",
        outcome.table()
    );
}

#[test]
fn producer_consumer_overshoot_is_not_counted_twice() {
    drains_balanced("pc-overshoot-counted-twice.toml", 902_063);
}

#[test]
fn partition_hash_drops_do_not_stall_a_bounded_pipeline() {
    drains_balanced("partition-hash-drop-stall.toml", 815_241);
}
