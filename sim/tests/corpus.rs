//! Every scenario of the repository's corpus runs on the simulator and balances.

mod common;

use common::*;
use flowbench_engine::scenario::load;
use flowbench_sim::{Ended, SimOptions};

#[test]
fn every_corpus_scenario_runs_on_the_sim_drains_and_balances() {
    let files = corpus();
    assert!(files.len() >= 6, "the corpus has its scenarios");
    for path in files {
        let s = load(&path).expect("corpus scenarios are valid");
        let out = run_plain(&s, &SimOptions::default());
        let name = path.display();
        let summary = out.summary();
        assert!(
            summary.base.balanced,
            "{name} does not balance:\n{}",
            out.table()
        );
        assert_eq!(out.ended(), Ended::Drained, "{name}");
        assert!(out.events_delivered() > 0, "{name}");
        for st in out.stages() {
            assert_ne!(
                st.exit, "running",
                "{name}: stage {} never stopped",
                st.name
            );
        }
        let json = serde_json::to_value(&summary).expect("the summary serialises");
        assert_eq!(json["runtime"], "sim", "{name}");
        assert_eq!(
            json["trace_hash"].as_str().map(str::len),
            Some(16),
            "{name}"
        );
        assert!(json["latency_us"]["p99"].is_number(), "{name}");
        assert!(
            json["stages"]
                .as_array()
                .is_some_and(|a| a.iter().all(|r| r["busy_fraction"].is_number())),
            "{name}"
        );
    }
}

#[test]
fn bursty_overflow_drops_what_the_full_buffer_cannot_keep() {
    let path = corpus()
        .into_iter()
        .find(|p| p.ends_with("bursty-overflow.toml"))
        .expect("scenarios/bursty-overflow.toml exists");
    let s = load(&path).expect("valid");
    let out = run_plain(&s, &SimOptions::default());
    let src = &out.stages()[0];
    assert_eq!(src.stats.emitted, 100_000);
    assert!(src.stats.dropped > 50_000, "{}", src.stats.dropped);
    assert_eq!(src.stats.buffer_peak, 1_000);
    assert!(out.memory_peak_events() >= 1_000);
    assert!(out.balanced());
}

#[test]
fn the_default_scenario_routes_a_quarter_to_each_aggregator() {
    let s = flowbench_engine::scenario::parse_str(
        flowbench_engine::scenario::DEFAULT_SCENARIO,
        flowbench_engine::scenario::DEFAULT_SCENARIO_FILE,
    )
    .expect("the default scenario is valid");
    let out = run_plain(
        &s,
        &SimOptions {
            events: Some(40_000),
            ..SimOptions::default()
        },
    );
    assert_eq!(out.events_delivered(), 40_000);
    for agg in &out.stages()[2..] {
        assert!(
            (9_000..=11_000).contains(&agg.stats.handled),
            "{} handled {}",
            agg.name,
            agg.stats.handled
        );
    }
    // parse (50 ns/event) is the bottleneck: busy almost all the time.
    assert!(out.busy_fractions()[1] > 0.95, "{:?}", out.busy_fractions());
    assert!(out.busy_fractions()[2] < 0.2, "{:?}", out.busy_fractions());
}
