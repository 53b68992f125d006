//! Same scenario and seed, same trace hash; the hash moves only with what the seed drives.

mod common;

use common::*;
use flowbench_engine::scenario::load;
use flowbench_sim::{run, SimOptions};

fn seeded(seed: u64) -> SimOptions {
    SimOptions {
        seed: Some(seed),
        ..SimOptions::default()
    }
}

#[test]
fn same_scenario_and_seed_give_the_same_trace_hash_with_or_without_a_trace_file() {
    for path in corpus() {
        let s = load(&path).expect("corpus scenarios are valid");
        let opts = SimOptions {
            events: Some(20_000),
            ..seeded(11)
        };
        let a = run_plain(&s, &opts);
        let b = run_traced(&s, &opts).outcome;
        assert_eq!(a.trace_hash(), b.trace_hash(), "{}", path.display());
        assert_eq!(a.trace_records(), b.trace_records(), "{}", path.display());
        assert_eq!(a.virtual_ns(), b.virtual_ns(), "{}", path.display());
    }
}

#[test]
fn a_different_seed_changes_the_hash_of_a_scenario_that_draws_service_times() {
    let path = corpus()
        .into_iter()
        .find(|p| p.ends_with("pool.toml"))
        .expect("scenarios/pool.toml exists");
    let s = load(&path).expect("valid");
    let opts = |seed| SimOptions {
        events: Some(2_000),
        ..seeded(seed)
    };
    let a = run_plain(&s, &opts(1));
    let b = run_plain(&s, &opts(2));
    let a2 = run_plain(&s, &opts(1));
    assert_ne!(a.trace_hash(), b.trace_hash());
    assert_eq!(a.trace_hash(), a2.trace_hash());
}

#[test]
fn a_different_seed_changes_the_hash_of_poisson_arrivals() {
    let s = scenario(
        r#"
[[stage]]
name = "arrivals"
kind = "producer"
source = { poisson = { rate_per_s = 1000000.0, total = 500 } }

[[stage]]
name = "sink"
kind = "consumer"
per_event = { dist = "fixed", ns = 100 }

[[subscription]]
producer = "arrivals"
consumer = "sink"
"#,
    );
    let a = run_plain(&s, &seeded(1));
    let b = run_plain(&s, &seeded(2));
    assert_ne!(a.trace_hash(), b.trace_hash());
    assert_ne!(a.virtual_ns(), b.virtual_ns());
    assert!(a.balanced() && b.balanced());
    assert_eq!(a.events_delivered(), 500);
}

#[test]
fn the_seed_does_not_change_a_scenario_without_randomness() {
    let path = corpus()
        .into_iter()
        .find(|p| p.ends_with("log-pipeline.toml"))
        .expect("scenarios/log-pipeline.toml exists");
    let s = load(&path).expect("valid");
    let opts = |seed| SimOptions {
        events: Some(10_000),
        ..seeded(seed)
    };
    assert_eq!(
        run_plain(&s, &opts(1)).trace_hash(),
        run_plain(&s, &opts(99)).trace_hash()
    );
}

#[test]
fn the_seed_in_the_outcome_is_the_option_then_the_scenario_then_the_default() {
    let with_seed = scenario(
        r#"
seed = 5
[[stage]]
name = "s"
kind = "producer"
source = { range = [1, 3] }
[[stage]]
name = "c"
kind = "consumer"
[[subscription]]
producer = "s"
consumer = "c"
"#,
    );
    assert_eq!(run_plain(&with_seed, &SimOptions::default()).seed(), 5);
    assert_eq!(run_plain(&with_seed, &seeded(6)).seed(), 6);
    let mut without = with_seed.clone();
    without.seed = None;
    assert_eq!(
        run_plain(&without, &SimOptions::default()).seed(),
        flowbench_sim::DEFAULT_SEED
    );
}

/// The records that mention only the stages `names`, without `seq`.
fn records_of(t: &Traced, names: &[&str]) -> Vec<String> {
    t.records
        .iter()
        .filter(|r| {
            ["stage", "from", "to"]
                .iter()
                .filter_map(|k| r[*k].as_str())
                .all(|n| names.contains(&n))
        })
        .map(|r| {
            let mut r = r.clone();
            r.as_object_mut()
                .expect("a record is an object")
                .remove("seq");
            r.to_string()
        })
        .collect()
}

#[test]
fn adding_a_stage_does_not_change_the_draws_of_the_others() {
    let one = r#"
[[stage]]
name = "src"
kind = "producer"
source = { range = [1, 300] }

[[stage]]
name = "sink"
kind = "consumer"
per_event = { dist = "exp", mean_ns = 500 }
per_batch = { dist = "lognormal", median_ns = 200, sigma = 0.5 }

[[subscription]]
producer = "src"
consumer = "sink"
max_demand = 20
latency = { dist = "uniform", min_ns = 10, max_ns = 900 }
"#;
    let two = format!(
        "{one}{}",
        r#"
[[stage]]
name = "other"
kind = "producer"
source = { range = [1, 300] }

[[stage]]
name = "other-sink"
kind = "consumer"
per_event = { dist = "exp", mean_ns = 700 }

[[subscription]]
producer = "other"
consumer = "other-sink"
max_demand = 20
latency = { dist = "exp", mean_ns = 300 }
"#
    );
    let a = run_traced(&scenario(one), &seeded(3));
    let b = run_traced(&scenario(&two), &seeded(3));
    let ra = records_of(&a, &["src", "sink"]);
    let rb = records_of(&b, &["src", "sink"]);
    assert!(ra.len() > 30);
    assert_eq!(ra, rb);
    assert_ne!(a.outcome.trace_hash(), b.outcome.trace_hash());
}

#[test]
fn trace_records_are_numbered_in_time_order() {
    let path = corpus()
        .into_iter()
        .find(|p| p.ends_with("pool.toml"))
        .expect("scenarios/pool.toml exists");
    let s = load(&path).expect("valid");
    let t = run_traced(
        &s,
        &SimOptions {
            events: Some(500),
            ..SimOptions::default()
        },
    );
    let mut last = 0;
    for (i, r) in t.records.iter().enumerate() {
        assert_eq!(num(r, "seq"), i as u64);
        let t_ns = num(r, "t_ns");
        assert!(t_ns >= last, "record {i} goes back in time");
        last = t_ns;
    }
    assert_eq!(t.records.len() as u64, t.outcome.trace_records());
}

#[test]
fn a_failing_trace_writer_is_an_error() {
    struct Broken;
    impl std::io::Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk full"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let s = scenario(
        r#"
[[stage]]
name = "s"
kind = "producer"
source = { range = [1, 10] }
[[stage]]
name = "c"
kind = "consumer"
[[subscription]]
producer = "s"
consumer = "c"
"#,
    );
    let err = run(&s, &seeded(4), Some(&mut Broken)).expect_err("the writer fails");
    assert!(err.is_trace_write());
    assert_eq!(err.to_string(), "cannot write the trace");
    let cause = std::error::Error::source(&err).map(ToString::to_string);
    assert!(cause.is_some_and(|c| c.contains("disk full")));
    assert_eq!(err.seed(), 4);
}

/// Turning the trace hash off (a sweep's runs) changes no figure of any run, says so in
/// the summary, and still writes the whole trace when one is asked for.
#[test]
fn the_trace_hash_off_changes_no_figure_and_no_trace_file() {
    for path in corpus() {
        let s = load(&path).expect("corpus scenarios are valid");
        let on = SimOptions {
            events: Some(20_000),
            ..seeded(5)
        };
        let off = SimOptions {
            trace_hash: false,
            ..on
        };
        let (a, b) = (run_plain(&s, &on), run_plain(&s, &off));
        assert!(a.hashed() && !b.hashed(), "{}", path.display());
        assert_eq!(b.trace_hash_hex(), "off");
        assert_eq!(b.trace_records(), 0, "{}: nothing recorded", path.display());
        assert_eq!(b.summary().trace_hash, "off");
        // Everything but the hash and the wall-clock figures.
        let figures = |o: &flowbench_sim::SimOutcome| {
            let mut v = serde_json::to_value(o.summary()).expect("json");
            if let Some(m) = v.as_object_mut() {
                for k in ["trace_hash", "elapsed_s", "throughput_eps"] {
                    m.remove(k);
                }
            }
            v
        };
        assert_eq!(figures(&a), figures(&b), "{}", path.display());
        let traced = run_traced(&s, &off);
        assert_eq!(
            traced.records.len() as u64,
            a.trace_records(),
            "{}",
            path.display()
        );
    }
}
