//! The shared corpus: SEMANTICS.md's worked examples as data (`engine/testdata/semantics/`),
//! each run on three drivers — the engine's FIFO reference driver, the simulator and the
//! threads runtime — against the same expectations.
//!
//! A case is a scenario plus `[[expect]]` tables, each naming a stage and what it must
//! see: `events` (inclusive ranges, in order unless `unordered = true`), `chunks` (the size
//! of each `handle_events` call) and `asks` (what it asked upstream, in order); a number
//! may be written `"NxK"` for K times N. An expectation holds on every driver unless it
//! names its `drivers`. Asks are not observable on threads and are checked on the other
//! two. On every driver, whatever the expectations, the run must balance and the events
//! handled by all named stages together must be the union of every expectation's events,
//! with no event twice at one stage.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use flowbench_engine::fifo;
use flowbench_engine::plan::PlanOptions;
use flowbench_engine::scenario::{parse_str, Scenario};
use flowbench_engine::threads::scenario::{run_scenario, ScenarioRunOptions};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    rule: String,
    doc: String,
    scenario: String,
    #[serde(default)]
    expect: Vec<Expect>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    stage: String,
    drivers: Option<Vec<Driver>>,
    events: Option<Vec<[u64; 2]>>,
    #[serde(default)]
    unordered: bool,
    chunks: Option<Vec<Num>>,
    asks: Option<Vec<Num>>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Driver {
    Fifo,
    Sim,
    Threads,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Num {
    One(u64),
    Repeat(String),
}

fn expand(ns: &[Num]) -> Vec<u64> {
    let mut out = Vec::new();
    for n in ns {
        match n {
            Num::One(v) => out.push(*v),
            Num::Repeat(s) => {
                let (v, k) = s.split_once('x').expect("a repeat is written NxK");
                let v: u64 = v.trim().parse().expect("N is a number");
                let k: usize = k.trim().parse().expect("K is a number");
                out.extend(std::iter::repeat_n(v, k));
            }
        }
    }
    out
}

fn ranges(rs: &[[u64; 2]]) -> Vec<u64> {
    rs.iter().flat_map(|[a, b]| *a..=*b).collect()
}

/// What one driver saw, per stage name.
#[derive(Default)]
struct Seen {
    events: BTreeMap<String, Vec<u64>>,
    chunks: BTreeMap<String, Vec<u64>>,
    asks: Option<BTreeMap<String, Vec<u64>>>,
    balanced: bool,
}

fn on_fifo(s: &Scenario) -> Seen {
    let out = fifo::run(s, &PlanOptions::default()).expect("the FIFO driver runs");
    let mut seen = Seen {
        balanced: out.balanced(),
        asks: Some(BTreeMap::new()),
        ..Seen::default()
    };
    for (i, st) in s.stages.iter().enumerate() {
        let chunks = &out.chunks[i];
        seen.events.insert(
            st.name.clone(),
            chunks.iter().flat_map(|(_, c)| c.iter().copied()).collect(),
        );
        seen.chunks.insert(
            st.name.clone(),
            chunks.iter().map(|(_, c)| c.len() as u64).collect(),
        );
        if let Some(a) = seen.asks.as_mut() {
            a.insert(st.name.clone(), out.asks[i].clone());
        }
    }
    seen
}

fn on_sim(s: &Scenario) -> Seen {
    let mut trace = Vec::new();
    let out = flowbench_sim::run(s, &flowbench_sim::SimOptions::default(), Some(&mut trace))
        .expect("the simulation runs");
    let mut seen = Seen {
        balanced: out.balanced(),
        asks: Some(BTreeMap::new()),
        ..Seen::default()
    };
    for line in String::from_utf8(trace).expect("UTF-8").lines() {
        let r: serde_json::Value = serde_json::from_str(line).expect("JSON");
        let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
        match r["kind"].as_str() {
            Some("handle") => {
                let ids: Vec<u64> = r["events"]
                    .as_array()
                    .expect("events")
                    .iter()
                    .flat_map(|p| p[0].as_u64().expect("a")..=p[1].as_u64().expect("b"))
                    .collect();
                seen.chunks
                    .entry(s("stage"))
                    .or_default()
                    .push(ids.len() as u64);
                seen.events.entry(s("stage")).or_default().extend(ids);
            }
            Some("ask") => {
                if let Some(a) = seen.asks.as_mut() {
                    a.entry(s("from"))
                        .or_default()
                        .push(r["n"].as_u64().expect("n"));
                }
            }
            _ => {}
        }
    }
    seen
}

fn on_threads(s: &Scenario) -> Seen {
    let opts = ScenarioRunOptions {
        scheduling: Default::default(),
        record: true,
        ..ScenarioRunOptions::default()
    };
    let run = run_scenario(s, &opts).expect("the threads run starts");
    let mut seen = Seen {
        balanced: run.outcome.balanced(),
        ..Seen::default()
    };
    for (i, st) in s.stages.iter().enumerate() {
        seen.events.insert(
            st.name.clone(),
            run.received[i].iter().map(|&(_, e)| e).collect(),
        );
        seen.chunks.insert(st.name.clone(), run.chunks[i].clone());
    }
    seen
}

fn check(path: &Path, case: &Case, s: &Scenario, driver: Driver, seen: &Seen) {
    let at = format!("{} ({}) on {driver:?}", path.display(), case.rule);
    assert!(seen.balanced, "{at}: the run did not balance");
    let mut want_all = BTreeSet::new();
    let mut named = BTreeSet::new();
    for e in &case.expect {
        assert!(
            s.stage(&e.stage).is_some(),
            "{at}: no stage named {}",
            e.stage
        );
        named.insert(e.stage.clone());
        let empty = Vec::new();
        let events = seen.events.get(&e.stage).unwrap_or(&empty);
        if let Some(want) = &e.events {
            want_all.extend(ranges(want));
        }
        if e.drivers.as_ref().is_some_and(|d| !d.contains(&driver)) {
            continue;
        }
        if let Some(want) = &e.events {
            let mut got = events.clone();
            let mut want = ranges(want);
            if e.unordered {
                got.sort_unstable();
                want.sort_unstable();
            }
            assert_eq!(got, want, "{at}: events of {}", e.stage);
        }
        if let Some(want) = &e.chunks {
            let got = seen.chunks.get(&e.stage).unwrap_or(&empty);
            assert_eq!(got, &expand(want), "{at}: chunks of {}", e.stage);
        }
        if let (Some(want), Some(asks)) = (&e.asks, &seen.asks) {
            let got = asks.get(&e.stage).unwrap_or(&empty);
            assert_eq!(got, &expand(want), "{at}: asks of {}", e.stage);
        }
    }
    let got_all: BTreeSet<u64> = named
        .iter()
        .filter_map(|n| seen.events.get(n))
        .flatten()
        .copied()
        .collect();
    for n in &named {
        let ev = seen.events.get(n).map_or(&[][..], Vec::as_slice);
        let distinct: BTreeSet<u64> = ev.iter().copied().collect();
        assert_eq!(distinct.len(), ev.len(), "{at}: {n} handled an event twice");
    }
    assert_eq!(got_all, want_all, "{at}: the union of the events");
}

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("engine/testdata/semantics");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("engine/testdata/semantics exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_worked_example_holds_on_fifo_sim_and_threads() {
    let files = cases();
    assert!(files.len() >= 9, "the corpus has its cases");
    for path in files {
        let text = std::fs::read_to_string(&path).expect("readable");
        let case: Case = toml::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not a corpus case: {e}", path.display()));
        assert!(!case.doc.is_empty() && !case.expect.is_empty());
        let s = parse_str(&case.scenario, &path.display().to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        check(&path, &case, &s, Driver::Fifo, &on_fifo(&s));
        check(&path, &case, &s, Driver::Sim, &on_sim(&s));
        // Threads: several runs, as the interleaving differs from run to run.
        for _ in 0..3 {
            check(&path, &case, &s, Driver::Threads, &on_threads(&s));
        }
    }
}
