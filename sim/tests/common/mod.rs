//! Helpers shared by the simulator's integration tests: build a scenario from TOML, run it
//! with a trace, and read the trace records back.

// Each test file uses its own subset of these helpers.
#![allow(dead_code)]

use flowbench_engine::scenario::{parse_str, Scenario};
use flowbench_sim::{run, SimError, SimOptions, SimOutcome};
use serde_json::Value;

/// A scenario from TOML text (the test's own, so it must be valid).
pub fn scenario(text: &str) -> Scenario {
    parse_str(text, "test.toml").expect("the test scenario is valid")
}

/// A finished run and its trace, one JSON value per record.
pub struct Traced {
    pub outcome: SimOutcome,
    pub records: Vec<Value>,
}

/// Runs `s` with a trace; fails the test if the run fails.
pub fn run_traced(s: &Scenario, opts: &SimOptions) -> Traced {
    try_traced(s, opts).expect("the simulation runs")
}

/// Runs `s` with a trace.
pub fn try_traced(s: &Scenario, opts: &SimOptions) -> Result<Traced, SimError> {
    let mut buf = Vec::new();
    let outcome = run(s, opts, Some(&mut buf))?;
    let text = String::from_utf8(buf).expect("the trace is UTF-8");
    let records = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each trace line is JSON"))
        .collect();
    Ok(Traced { outcome, records })
}

/// Runs `s` without a trace; fails the test if the run fails.
pub fn run_plain(s: &Scenario, opts: &SimOptions) -> SimOutcome {
    run(s, opts, None).expect("the simulation runs")
}

pub fn field<'a>(r: &'a Value, key: &str) -> &'a Value {
    &r[key]
}

pub fn kind(r: &Value) -> &str {
    r["kind"].as_str().expect("every record has a kind")
}

pub fn num(r: &Value, key: &str) -> u64 {
    r[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is a number in {r}"))
}

pub fn text<'a>(r: &'a Value, key: &str) -> &'a str {
    r[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is a string in {r}"))
}

/// The ids of a record's `events` ranges, expanded.
pub fn ids(r: &Value) -> Vec<u64> {
    r["events"]
        .as_array()
        .expect("events is an array")
        .iter()
        .flat_map(|range| {
            let a = range[0].as_u64().expect("range start");
            let b = range[1].as_u64().expect("range end");
            a..=b
        })
        .collect()
}

/// The `n` of every `ask` record delivered to `producer`, in order.
pub fn asks_to(records: &[Value], producer: &str) -> Vec<u64> {
    records
        .iter()
        .filter(|r| kind(r) == "ask" && text(r, "to") == producer)
        .map(|r| num(r, "n"))
        .collect()
}

/// The `n` of every `handle` record of `stage`, in order.
pub fn chunks_of(records: &[Value], stage: &str) -> Vec<u64> {
    records
        .iter()
        .filter(|r| kind(r) == "handle" && text(r, "stage") == stage)
        .map(|r| num(r, "n"))
        .collect()
}

/// The ids of every `events` delivery to `consumer`, batch by batch.
pub fn batches_to(records: &[Value], consumer: &str) -> Vec<Vec<u64>> {
    records
        .iter()
        .filter(|r| kind(r) == "events" && text(r, "to") == consumer)
        .map(ids)
        .collect()
}

/// Every scenario file of the repository's `scenarios/` directory, sorted by name.
pub fn corpus() -> Vec<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the scenarios directory exists")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}
