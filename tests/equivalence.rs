//! The same deterministic scenario gives every consumer the same events on the threads
//! runtime and on the simulator. (Deterministic: routing does not depend on timing — a
//! partition hash, or a broadcast whose producer waits for every subscriber.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use flowbench_engine::scenario;
use flowbench_engine::threads::scenario::{run_scenario, ScenarioRunOptions};

/// Events each consumer handled on the simulator, read from the trace's `handle` records.
fn on_sim(s: &scenario::Scenario, events: u64) -> BTreeMap<String, BTreeSet<u64>> {
    let opts = flowbench_sim::SimOptions {
        events: Some(events),
        ..flowbench_sim::SimOptions::default()
    };
    let mut trace = Vec::new();
    let outcome = flowbench_sim::run(s, &opts, Some(&mut trace)).expect("sim runs");
    assert!(outcome.summary().base.balanced);
    let mut got: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for line in String::from_utf8(trace).expect("utf-8").lines() {
        let r: serde_json::Value = serde_json::from_str(line).expect("JSON line");
        if r["kind"] != "handle" {
            continue;
        }
        let stage = r["stage"].as_str().expect("stage").to_string();
        let set = got.entry(stage).or_default();
        for range in r["events"].as_array().expect("ranges") {
            let first = range[0].as_u64().expect("first");
            let last = range[1].as_u64().expect("last");
            set.extend(first..=last);
        }
    }
    got
}

/// Events each consumer handled on threads.
fn on_threads(s: &scenario::Scenario, events: u64) -> BTreeMap<String, BTreeSet<u64>> {
    let opts = ScenarioRunOptions {
        events: Some(events),
        seed: 0,
        stop_after: None,
        record: true,
    };
    let run = run_scenario(s, &opts).expect("threads run");
    assert!(run.outcome.balanced());
    s.stages
        .iter()
        .zip(&run.received)
        .filter(|(st, _)| !st.kind.produces())
        .map(|(st, got)| (st.name.clone(), got.iter().map(|&(_, e)| e).collect()))
        .collect()
}

#[test]
fn deterministic_scenarios_deliver_the_same_sets_on_threads_and_sim() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    for file in [
        "partition-rem3.toml",
        "broadcast-3.toml",
        "log-pipeline.toml",
    ] {
        let s = scenario::load(&dir.join(file)).expect("valid scenario");
        let sim = on_sim(&s, 20_000);
        let threads = on_threads(&s, 20_000);
        let consumers: Vec<&String> = threads.keys().collect();
        assert!(!consumers.is_empty());
        for name in consumers {
            let t = &threads[name];
            let m = sim
                .get(name)
                .expect("the consumer handled events on the sim");
            assert!(!t.is_empty(), "{file}: {name} got nothing");
            assert_eq!(
                t, m,
                "{file}: {name} got different events on threads and sim"
            );
        }
    }
}
