//! Faults, time and cores: deadlock detection, crashes with each cancel mode, restarts,
//! slowdowns, `cores = K`, link latency, `forward_at_us`, limits, latency and sampling.

mod common;

use common::*;
use flowbench_sim::{run, Ended, SimOptions};

fn opts() -> SimOptions {
    SimOptions::default()
}

#[test]
fn deadlock_is_reported_with_the_state_of_each_stage() {
    // p1 crashes for good; the events hashed to partition 1 wait for a subscriber that
    // never comes, so the producer never finishes and p0 waits for it forever.
    let s = scenario(
        r#"
seed = 77
[[stage]]
name = "source"
kind = "producer"
source = { range = [1, 200] }
dispatcher = "partition"
partitions = 2
hash = "rem"

[[stage]]
name = "p0"
kind = "consumer"

[[stage]]
name = "p1"
kind = "consumer"

[[stage.fault]]
crash_after_events = 10

[[subscription]]
producer = "source"
consumer = "p0"
partition = 0
max_demand = 10

[[subscription]]
producer = "source"
consumer = "p1"
partition = 1
max_demand = 10
"#,
    );
    let err = run(&s, &opts(), None).expect_err("the run deadlocks");
    let report = err.deadlock().expect("a deadlock report");
    assert_eq!(err.seed(), 77);
    let names: Vec<&str> = report.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["source", "p0", "p1"]);
    let source = &report.stages[0];
    assert_eq!(source.status, "running");
    assert!(source.queued > 0, "{source:?}");
    assert_eq!(source.outputs.len(), 2);
    assert!(!source.outputs[1].live);
    let p0 = &report.stages[1];
    assert_eq!(p0.status, "running");
    assert!(p0.inputs[0].live && p0.inputs[0].demand > 0, "{p0:?}");
    assert_eq!(
        report.stages[2].status,
        "error: injected crash after 10 events"
    );
    let text = err.to_string();
    assert!(text.starts_with("deadlock at "), "{text}");
    assert!(text.contains("source (producer): running"), "{text}");
    assert_eq!(
        err.replay_hint("x.toml"),
        "replay: flowbench run x.toml --runtime sim --seed 77"
    );
    // The figures up to the deadlock still balance: the stuck events are buffered.
    let out = err.outcome().expect("the outcome at the deadlock");
    assert!(out.balanced(), "{}", out.table());
}

/// Two producers feed one consumer; `a` crashes after 100 events; the subscription from
/// `a` uses `cancel`.
fn two_sources(cancel: &str) -> Traced {
    let s = scenario(&format!(
        r#"
[[stage]]
name = "a"
kind = "producer"
source = {{ range = [1, 1000] }}

[[stage.fault]]
crash_after_events = 100

[[stage]]
name = "b"
kind = "producer"
source = {{ range = [1001, 2000] }}

[[stage]]
name = "sink"
kind = "consumer"
per_event = {{ dist = "fixed", ns = 100 }}

[[subscription]]
producer = "a"
consumer = "sink"
max_demand = 10
cancel = "{cancel}"

[[subscription]]
producer = "b"
consumer = "sink"
max_demand = 10
"#
    ));
    run_traced(&s, &opts())
}

#[test]
fn crash_of_a_producer_stops_a_permanent_consumer() {
    let t = two_sources("permanent");
    let sink = &t.outcome.stages()[2];
    assert_eq!(sink.exit, "error: injected crash after 100 events");
    assert!(sink.stats.handled < 400, "{}", sink.stats.handled);
    assert_eq!(
        t.outcome.stages()[0].exit,
        "error: injected crash after 100 events"
    );
    assert!(t
        .records
        .iter()
        .any(|r| kind(r) == "crash" && r["stage"] == "a"));
    assert!(t.outcome.balanced(), "{}", t.outcome.table());
}

#[test]
fn crash_of_a_producer_stops_a_transient_consumer_because_an_error_is_not_orderly() {
    let t = two_sources("transient");
    let sink = &t.outcome.stages()[2];
    assert_eq!(sink.exit, "error: injected crash after 100 events");
    assert!(t.outcome.balanced(), "{}", t.outcome.table());
}

#[test]
fn crash_of_a_producer_spares_a_temporary_consumer() {
    let t = two_sources("temporary");
    let sink = &t.outcome.stages()[2];
    assert_eq!(sink.exit, "normal");
    // All of b, and what a handed out before it crashed.
    let from_b = sink.in_links[1].handled;
    assert_eq!(from_b, 1000);
    assert_eq!(sink.in_links[0].handled, 100);
    assert!(t.outcome.balanced(), "{}", t.outcome.table());
}

#[test]
fn restart_resubscribes_with_the_original_options_and_balances() {
    // The example of docs/scenario-format.md, shortened.
    let s = scenario(
        r#"
[[stage]]
name = "lines"
kind = "producer"
source = { range = [1, 100000] }

[[stage]]
name = "parse"
kind = "producer_consumer"
dispatcher = "partition"
partitions = 2
hash = "mix"
per_event = { dist = "fixed", ns = 50 }

[[stage]]
name = "agg-0"
kind = "consumer"
per_event = { dist = "fixed", ns = 20 }

[[stage]]
name = "agg-1"
kind = "consumer"
per_event = { dist = "fixed", ns = 20 }

[[stage.fault]]
crash_after_events = 5000
restart_after_us = 1000

[[subscription]]
producer = "lines"
consumer = "parse"
max_demand = 1000

[[subscription]]
producer = "parse"
consumer = "agg-0"
partition = 0

[[subscription]]
producer = "parse"
consumer = "agg-1"
partition = 1
max_demand = 300
min_demand = 100
"#,
    );
    let t = run_traced(&s, &opts());
    let out = &t.outcome;
    assert!(out.balanced(), "{}", out.table());
    let subs: Vec<u64> = t
        .records
        .iter()
        .filter(|r| kind(r) == "subscribe" && r["from"] == "agg-1")
        .map(|r| num(r, "t_ns"))
        .collect();
    assert_eq!(subs.len(), 2, "agg-1 subscribes again after its restart");
    let crash_t = t
        .records
        .iter()
        .find(|r| kind(r) == "crash")
        .map(|r| num(r, "t_ns"))
        .expect("a crash record");
    let restart_t = t
        .records
        .iter()
        .find(|r| kind(r) == "restart")
        .map(|r| num(r, "t_ns"))
        .expect("a restart record");
    assert!(restart_t >= crash_t + 1_000_000);
    assert_eq!(subs[1], restart_t);
    // The resubscription asks max_demand again, as the first one did.
    let agg1_asks: Vec<(u64, u64)> = t
        .records
        .iter()
        .filter(|r| kind(r) == "ask" && r["from"] == "agg-1")
        .map(|r| (num(r, "t_ns"), num(r, "n")))
        .collect();
    assert_eq!(agg1_asks[0].1, 300);
    let after = agg1_asks
        .iter()
        .find(|(t, _)| *t >= restart_t)
        .expect("asks after restart");
    assert_eq!(after.1, 300);
    let agg1 = &out.stages()[3];
    assert_eq!(agg1.exit, "normal");
    assert!(agg1.stats.handled > 5_000, "it went on after the restart");
    let summary = out.summary();
    let parse = summary
        .base
        .accounting
        .iter()
        .find(|b| b.stage == "parse")
        .expect("parse is accounted");
    assert_eq!(parse.emitted, 100_000);
}

#[test]
fn a_producer_nobody_resubscribes_to_stays_down() {
    let s = scenario(
        r#"
[[stage]]
name = "src"
kind = "producer"
source = { range = [1, 1000] }

[[stage.fault]]
crash_after_events = 50
restart_after_us = 10

[[stage]]
name = "sink"
kind = "consumer"
per_event = { dist = "fixed", ns = 100 }

[[subscription]]
producer = "src"
consumer = "sink"
max_demand = 10
cancel = "temporary"
"#,
    );
    let t = run_traced(&s, &opts());
    let out = &t.outcome;
    assert!(out.balanced(), "{}", out.table());
    // Nobody would subscribe to a fresh `src` (only a restarted consumer resubscribes),
    // so it is not restarted: it stays down, and its exit says why, rather than showing
    // a `running` producer in a drained run.
    assert!(!t.records.iter().any(|r| kind(r) == "restart"));
    let src = &out.stages()[0];
    assert_eq!(src.stats.emitted, 50);
    assert_eq!(
        src.exit,
        "error: injected crash after 50 events (not restarted: no consumer subscribes again)"
    );
    assert_eq!(out.stages()[1].exit, "normal");
}

#[test]
fn crash_at_a_time_during_a_service_takes_effect_when_the_service_ends() {
    let s = scenario(
        r#"
[[stage]]
name = "src"
kind = "producer"
source = { range = [1, 100] }

[[stage]]
name = "sink"
kind = "consumer"
per_event = { dist = "fixed", ns = 1000 }

[[stage.fault]]
crash_at_us = 5

[[subscription]]
producer = "src"
consumer = "sink"
max_demand = 10
"#,
    );
    let t = run_traced(&s, &opts());
    let crash = t
        .records
        .iter()
        .find(|r| kind(r) == "crash")
        .expect("a crash record");
    // The first batch of 10 takes 10 us from t = 0; the crash at 5 us waits for it.
    assert_eq!(num(crash, "t_ns"), 10_000);
    assert_eq!(t.outcome.stages()[1].stats.handled, 10);
    assert!(t.outcome.balanced(), "{}", t.outcome.table());
}

#[test]
fn restart_without_delay_waits_for_the_service_that_crashed() {
    let s = scenario(
        r#"
[[stage]]
name = "src"
kind = "producer"
source = { range = [1, 100] }

[[stage]]
name = "sink"
kind = "consumer"
per_event = { dist = "fixed", ns = 1000 }

[[stage.fault]]
crash_after_events = 10
restart_after_us = 0

[[subscription]]
producer = "src"
consumer = "sink"
max_demand = 10
"#,
    );
    let t = run_traced(&s, &opts());
    let at = |k: &str| {
        t.records
            .iter()
            .filter(|r| kind(r) == k)
            .map(|r| num(r, "t_ns"))
            .collect::<Vec<u64>>()
    };
    // The crash is decided in the first service (0..10 us) and the restart follows its end.
    assert_eq!(at("crash"), [0]);
    assert_eq!(at("restart"), [10_000]);
    assert_eq!(at("subscribe"), [0, 10_000]);
    assert!(t.outcome.balanced(), "{}", t.outcome.table());
}

/// Bursts of 100 events every 100 us; the sink takes 100 ns per event, slowed from the
/// start by `factor` when given.
fn bursts_busy(factor: Option<f64>) -> f64 {
    let slow = factor.map_or(String::new(), |f| {
        format!("[[stage.fault]]\nslow_at_us = 0\nfactor = {f}\n")
    });
    let s = scenario(&format!(
        r#"
[[stage]]
name = "bursts"
kind = "producer"
source = {{ bursts = {{ every_us = 100, size = 100, count = 50 }} }}

[[stage]]
name = "sink"
kind = "consumer"
per_event = {{ dist = "fixed", ns = 100 }}
{slow}
[[subscription]]
producer = "bursts"
consumer = "sink"
"#
    ));
    let out = run_plain(&s, &opts());
    assert!(out.balanced());
    out.busy_fractions()[1]
}

#[test]
fn slowdown_multiplies_busy_fraction() {
    let normal = bursts_busy(None);
    let slowed = bursts_busy(Some(4.0));
    assert!((0.09..0.12).contains(&normal), "{normal}");
    assert!((0.37..0.45).contains(&slowed), "{slowed}");
}

fn two_pipelines(cores: Option<u32>) -> u64 {
    let cores = cores.map_or(String::new(), |k| format!("cores = {k}\n"));
    let s = scenario(&format!(
        r#"{cores}
[[stage]]
name = "src-1"
kind = "producer"
source = {{ range = [1, 1000] }}

[[stage]]
name = "src-2"
kind = "producer"
source = {{ range = [1, 1000] }}

[[stage]]
name = "work-1"
kind = "consumer"
per_event = {{ dist = "fixed", ns = 1000 }}

[[stage]]
name = "work-2"
kind = "consumer"
per_event = {{ dist = "fixed", ns = 1000 }}

[[subscription]]
producer = "src-1"
consumer = "work-1"

[[subscription]]
producer = "src-2"
consumer = "work-2"
"#
    ));
    let out = run_plain(&s, &opts());
    assert!(out.balanced());
    out.virtual_ns()
}

#[test]
fn cores_one_serialises_two_independent_busy_stages() {
    let free = two_pipelines(None);
    let one = two_pipelines(Some(1));
    let two = two_pipelines(Some(2));
    assert_eq!(free, 1_000_000);
    assert_eq!(two, free);
    let ratio = one as f64 / free as f64;
    assert!((1.95..=2.05).contains(&ratio), "{one} vs {free}");
}

#[test]
fn cores_limit_pool_jobs_too() {
    let s = |cores: &str| {
        scenario(&format!(
            r#"{cores}
[[stage]]
name = "src"
kind = "producer"
source = {{ range = [1, 800] }}

[[stage]]
name = "pool"
kind = "consumer_pool"
per_event = {{ dist = "fixed", ns = 1000 }}

[[subscription]]
producer = "src"
consumer = "pool"
max_demand = 8
min_demand = 0
"#
        ))
    };
    let free = run_plain(&s(""), &opts());
    let one = run_plain(&s("cores = 1"), &opts());
    // 8 jobs at once: 100 rounds of 1 us; on one core: 800 us.
    assert_eq!(free.virtual_ns(), 100_000);
    assert_eq!(one.virtual_ns(), 800_000);
    assert!(free.busy_fractions()[1] > 0.99);
    assert!(one.balanced() && free.balanced());
}

#[test]
fn link_latency_delays_every_delivery() {
    let s = scenario(
        r#"
[[stage]]
name = "src"
kind = "producer"
source = { range = [1, 20] }

[[stage]]
name = "sink"
kind = "consumer"

[[subscription]]
producer = "src"
consumer = "sink"
max_demand = 10
latency = { dist = "fixed", ns = 5000 }
"#,
    );
    let t = run_traced(&s, &opts());
    let times: Vec<(String, u64)> = t
        .records
        .iter()
        .filter(|r| matches!(kind(r), "subscribe" | "ask" | "events"))
        .map(|r| (kind(r).to_string(), num(r, "t_ns")))
        .take(3)
        .collect();
    assert_eq!(
        times,
        [
            ("subscribe".to_string(), 5_000),
            ("ask".to_string(), 5_000),
            ("events".to_string(), 10_000)
        ]
    );
}

#[test]
fn accumulate_holds_demand_until_forward_at() {
    let s = scenario(
        r#"
[[stage]]
name = "src"
kind = "producer"
source = { range = [1, 20] }
demand = "accumulate"
forward_at_us = 50

[[stage]]
name = "sink"
kind = "consumer"

[[subscription]]
producer = "src"
consumer = "sink"
max_demand = 10
"#,
    );
    let t = run_traced(&s, &opts());
    let first_events = t
        .records
        .iter()
        .find(|r| kind(r) == "events")
        .map(|r| num(r, "t_ns"));
    assert_eq!(first_events, Some(50_000));
    assert!(t
        .records
        .iter()
        .any(|r| kind(r) == "forward" && num(r, "t_ns") == 50_000));
}

#[test]
fn until_cuts_the_run_and_reports_what_is_in_flight() {
    let s = scenario(
        r#"
[[stage]]
name = "ticks"
kind = "producer"
source = { counter = 0 }

[[stage]]
name = "sink"
kind = "consumer"
per_event = { dist = "fixed", ns = 100 }

[[subscription]]
producer = "ticks"
consumer = "sink"
latency = { dist = "fixed", ns = 3000 }
"#,
    );
    let out = run_plain(
        &s,
        &SimOptions {
            until_ns: Some(1_000_000),
            ..opts()
        },
    );
    assert_eq!(out.ended(), Ended::Until);
    assert_eq!(out.virtual_ns(), 1_000_000);
    assert!(out.balanced(), "{}", out.table());
    assert!(out.events_delivered() > 9_000);
}

#[test]
fn events_limit_stops_an_unbounded_producer() {
    let s = scenario(
        r#"
[[stage]]
name = "ticks"
kind = "producer"
source = { counter = 0 }

[[stage]]
name = "sink"
kind = "consumer"

[[subscription]]
producer = "ticks"
consumer = "sink"
max_demand = 7
"#,
    );
    let out = run_plain(
        &s,
        &SimOptions {
            events: Some(500),
            ..opts()
        },
    );
    assert_eq!(out.events_delivered(), 500);
    assert_eq!(out.ended(), Ended::Drained);
    assert!(out.balanced());
}

#[test]
fn latency_is_measured_from_birth_to_the_end_of_consumption() {
    // One event at a time: born when the producer emits it, consumed 100 ns later.
    let s = scenario(
        r#"
[[stage]]
name = "src"
kind = "producer"
source = { range = [1, 50] }

[[stage]]
name = "sink"
kind = "consumer"
per_event = { dist = "fixed", ns = 100 }

[[subscription]]
producer = "src"
consumer = "sink"
max_demand = 1
"#,
    );
    let out = run_plain(&s, &opts());
    let h = out.latency();
    assert_eq!(h.count(), 50);
    assert_eq!(h.max(), 100);
    assert_eq!(h.quantile(0.5), 100);
    let sum = out.summary();
    assert_eq!(sum.latency_us.p99, 0.1);
    assert_eq!(out.latency_unmeasured(), 0);
}

#[test]
fn series_samples_depths_and_busy_time_every_interval() {
    let s = scenario(
        r#"
[[stage]]
name = "src"
kind = "producer"
source = { range = [1, 10000] }

[[stage]]
name = "slow"
kind = "consumer"
per_event = { dist = "fixed", ns = 100 }

[[subscription]]
producer = "src"
consumer = "slow"
max_demand = 100
"#,
    );
    let out = run_plain(
        &s,
        &SimOptions {
            sample_ns: 10_000,
            ..opts()
        },
    );
    let series = out.series();
    assert_eq!(out.virtual_ns(), 1_000_000);
    assert_eq!(series.len(), 101);
    assert!(series
        .t_ns
        .iter()
        .enumerate()
        .all(|(i, t)| *t == i as u64 * 10_000));
    for st in &series.stages {
        assert_eq!(st.mailbox.len(), series.len());
        assert_eq!(st.busy_ns.len(), series.len());
    }
    assert_eq!(series.links[0].outstanding.len(), series.len());
    assert!((1..series.len()).all(|i| series.busy_fraction(1, i) > 0.99));
    assert!(series.links[0].outstanding.iter().all(|d| *d <= 100));
    let off = run_plain(
        &s,
        &SimOptions {
            sample_ns: 0,
            ..opts()
        },
    );
    assert!(off.series().is_empty());
}
