//! Parity: every scenario of `scenarios/` means the same on the simulator and on threads.
//!
//! Each runs with no `--events` and no `--until`, so each must end by itself on both
//! runtimes. Scenarios whose routing does not depend on timing (a partition hash, a
//! broadcast, a single consumer) give every consumer the same events on both; the others
//! agree on what each producer emitted and on the accounting.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use flowbench_engine::scenario::{self, Scenario};
use flowbench_engine::threads::scenario::{run_scenario, ScenarioRunOptions};
use flowbench_engine::DispatcherSpec;

fn corpus() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("scenarios/ exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

type PerConsumer = BTreeMap<String, BTreeSet<u64>>;

fn sim(s: &Scenario) -> (flowbench_sim::SimOutcome, PerConsumer) {
    let mut trace = Vec::new();
    let out = flowbench_sim::run(s, &flowbench_sim::SimOptions::default(), Some(&mut trace))
        .expect("the simulation ends by itself");
    let mut got = PerConsumer::new();
    for line in String::from_utf8(trace).expect("UTF-8").lines() {
        let r: serde_json::Value = serde_json::from_str(line).expect("JSON");
        if r["kind"] != "handle" {
            continue;
        }
        let set = got
            .entry(r["stage"].as_str().expect("stage").to_string())
            .or_default();
        for p in r["events"].as_array().expect("ranges") {
            set.extend(p[0].as_u64().expect("a")..=p[1].as_u64().expect("b"));
        }
    }
    (out, got)
}

fn threads(s: &Scenario) -> (flowbench_engine::threads::RunOutcome, PerConsumer) {
    let opts = ScenarioRunOptions {
        scheduling: Default::default(),
        seed: s.seed.unwrap_or(0),
        record: true,
        ..ScenarioRunOptions::default()
    };
    let run = run_scenario(s, &opts).expect("the threads run starts");
    let got = s
        .stages
        .iter()
        .zip(&run.received)
        .filter(|(st, _)| !st.kind.produces())
        .map(|(st, r)| (st.name.clone(), r.iter().map(|&(_, e)| e).collect()))
        .collect();
    (run.outcome, got)
}

/// Routing that timing cannot change: every producing stage partitions or broadcasts, or
/// has a single subscriber.
fn deterministic(s: &Scenario) -> bool {
    s.stages.iter().enumerate().all(|(i, st)| {
        !st.kind.produces()
            || s.outputs_of(i).count() <= 1
            || !matches!(
                flowbench_engine::plan::config(s, i, &Default::default())
                    .output
                    .map(|o| o.dispatcher),
                Some(DispatcherSpec::Demand { .. })
            )
    })
}

#[test]
fn every_scenario_ends_on_both_runtimes_and_they_agree() {
    let files = corpus();
    assert!(files.len() >= 6);
    for path in files {
        let name = path.display().to_string();
        let s = scenario::load(&path).expect("valid");
        let (so, sg) = sim(&s);
        let (to, tg) = threads(&s);
        assert!(so.balanced(), "{name}: sim does not balance");
        assert!(to.balanced(), "{name}: threads does not balance");
        for (a, b) in so.stages().iter().zip(&to.stages) {
            assert_ne!(
                b.exit, "running",
                "{name}: {} still running on threads",
                b.name
            );
            if a.kind.produces() && a.kind != flowbench_engine::StageKind::ProducerConsumer {
                assert_eq!(
                    a.stats.emitted, b.stats.emitted,
                    "{name}: {} emitted differently",
                    a.name
                );
            }
        }
        let drops: u64 = so.stages().iter().map(|st| st.stats.dropped).sum();
        if drops == 0 {
            let delivered = |st: &[flowbench_engine::report::StageFigures]| -> u64 {
                st.iter()
                    .filter(|x| !x.kind.produces())
                    .map(|x| x.stats.handled)
                    .sum()
            };
            assert_eq!(
                delivered(so.stages()),
                delivered(&to.stages),
                "{name}: delivered totals differ"
            );
        }
        // Which events a full buffer drops depends on timing; without drops, routing that
        // timing cannot change gives every consumer the same events.
        if drops == 0 && deterministic(&s) {
            for (consumer, events) in &tg {
                let same = sg.get(consumer) == Some(events);
                assert!(
                    same,
                    "{name}: {consumer} got other events on threads ({} vs {} on the sim)",
                    events.len(),
                    sg.get(consumer).map_or(0, BTreeSet::len)
                );
            }
        }
    }
}

/// Regression (one plan): threads once kept only the last slowdown and the last crash
/// fault of a stage, and counted `crash_after_events` differently from the simulator.
#[test]
fn two_slowdowns_and_two_crashes_on_one_stage_mean_the_same_on_both() {
    let s = scenario::parse_str(
        r#"
[[stage]]
name = "source"
kind = "producer"
source = { range = [1, 10000] }

[[stage]]
name = "c"
kind = "consumer"
per_event = { dist = "fixed", ns = 1000 }

[[stage.fault]]
slow_at_us = 0
factor = 2.0

[[stage.fault]]
slow_at_us = 0
factor = 3.0

[[stage.fault]]
crash_after_events = 2000

[[stage.fault]]
crash_after_events = 3000

[[subscription]]
producer = "source"
consumer = "c"
max_demand = 100
"#,
        "two-faults.toml",
    )
    .expect("valid");
    let (so, _) = sim(&s);
    let (to, _) = threads(&s);
    let (a, b) = (&so.stages()[1], &to.stages[1]);
    assert_eq!(a.exit, "error: injected crash after 2000 events");
    assert_eq!(b.exit, a.exit);
    assert_eq!(a.stats.handled, 2000);
    assert_eq!(b.stats.handled, a.stats.handled);
    // Both slowdowns apply: 2000 events at 1 us x 2 x 3. Busy work spins at least that
    // long, so the threads figure is at least the simulator's exact one.
    assert_eq!(a.busy_ns, 2000 * 6000);
    assert!(b.busy_ns >= a.busy_ns, "threads busy {} ns", b.busy_ns);
    assert!(so.balanced() && to.balanced());
}
