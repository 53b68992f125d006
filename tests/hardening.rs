//! Regressions of "every run ends, no number overflows, no valid input crashes the
//! process": each example that once hung, wrapped or aborted, named after the rule it
//! broke, on the simulator and (where it applies) on threads.

mod common;

use flowbench_engine::scenario::{parse_str, Scenario};
use flowbench_engine::threads::scenario::{run_scenario, ScenarioRunOptions};
use flowbench_sim::{run, SimOptions};

fn scenario(text: &str) -> Scenario {
    parse_str(text, "hardening.toml").unwrap_or_else(|e| panic!("{e}"))
}

fn pipeline(source: &str, consumer_extra: &str, sub_extra: &str) -> Scenario {
    scenario(&format!(
        r#"
[[stage]]
name = "p"
kind = "producer"
source = {source}

[[stage]]
name = "c"
kind = "consumer"
{consumer_extra}

[[subscription]]
producer = "p"
consumer = "c"
{sub_extra}
"#
    ))
}

/// The error of a run that must fail (without printing a whole outcome if it did not).
fn fails(
    r: Result<flowbench_sim::SimOutcome, flowbench_sim::SimError>,
    what: &str,
) -> flowbench_sim::SimError {
    match r {
        Ok(o) => panic!(
            "{what}: the run succeeded (virtual time {} ns)",
            o.virtual_ns()
        ),
        Err(e) => e,
    }
}

fn sim(
    s: &Scenario,
    events: Option<u64>,
    until_ns: Option<u64>,
) -> Result<flowbench_sim::SimOutcome, flowbench_sim::SimError> {
    run(
        s,
        &SimOptions {
            events,
            until_ns,
            ..SimOptions::default()
        },
        None,
    )
}

#[test]
fn a_timeless_counter_needs_an_event_limit_not_a_time_limit() {
    let s = pipeline("{ counter = 0 }", "", "");
    let err = fails(sim(&s, None, Some(1_000_000)), "refused, not spun forever");
    assert!(err.is_bad_input() && err.is_unbounded(), "{err}");
    assert!(err.to_string().contains("--events"), "{err}");
    // With a cost on the way, virtual time advances and `--until` ends it.
    let s = pipeline(
        "{ counter = 0 }",
        "per_event = { dist = \"fixed\", ns = 100 }",
        "",
    );
    let out = sim(&s, None, Some(1_000_000)).expect("runs");
    assert_eq!(out.virtual_ns(), 1_000_000);
    assert!(out.balanced());
}

#[test]
fn a_fault_after_the_drain_does_not_extend_virtual_time() {
    let s = pipeline(
        "{ range = [1, 1000] }",
        "per_event = { dist = \"fixed\", ns = 1000 }\n[[stage.fault]]\ncrash_at_us = 3600000000",
        "",
    );
    let out = sim(&s, None, None).expect("runs");
    // 1000 events of 1 us: the run ends when the pipeline drains, about 1 ms in.
    assert!(
        out.virtual_ns() < 2_000_000,
        "virtual time {} ns",
        out.virtual_ns()
    );
    assert_eq!(out.stages()[1].exit, "normal");
    assert!(out.balanced());
}

#[test]
fn virtual_time_never_wraps() {
    // A slowdown so large that one service passes the end of virtual time fails the run.
    let slow = |factor: &str| {
        pipeline(
            "{ range = [1, 1000] }",
            &format!(
                "per_event = {{ dist = \"fixed\", ns = 1000 }}\n[[stage.fault]]\nslow_at_us = 0\nfactor = {factor}"
            ),
            "",
        )
    };
    let err = fails(sim(&slow("1e17"), None, None), "past the end of time");
    assert!(
        err.to_string().contains("virtual time would pass its end"),
        "{err}"
    );
    // Below that, a larger factor is a longer run, never a shorter one.
    let a = sim(&slow("2e12"), None, None).expect("runs").virtual_ns();
    let b = sim(&slow("1e13"), None, None).expect("runs").virtual_ns();
    assert!(b > a, "{b} <= {a}");
    // Busy time of a huge per-event cost is not wrapped either.
    let s = pipeline(
        "{ range = [1, 10000] }",
        "per_event = { dist = \"fixed\", ns = 10000000000000000 }",
        "",
    );
    let err = fails(
        sim(&s, None, None),
        "10^16 ns x 10^4 events is past the end",
    );
    assert!(err.to_string().contains("stage `c`"), "{err}");
}

#[test]
fn push_sources_whose_ids_do_not_fit_are_refused() {
    let err = parse_str(
        r#"
[[stage]]
name = "p"
kind = "producer"
source = { poisson = { rate_per_s = 1000, first_id = 18446744073709551613, total = 10 } }
[[stage]]
name = "c"
kind = "consumer"
[[subscription]]
producer = "p"
consumer = "c"
"#,
        "ids.toml",
    )
    .expect_err("ids would repeat");
    assert_eq!(err.field(), "stage[0].source.poisson.total");
    assert!(err.message().contains("would not fit"), "{err}");
    assert_eq!(err.line(), 5);
    // An unbounded source near the top ends its schedule at u64::MAX, each id once.
    let s = pipeline(
        "{ bursts = { every_us = 1, size = 4, first_id = 18446744073709551610 } }",
        "",
        "",
    );
    let out = sim(&s, Some(100), None).expect("runs");
    assert_eq!(out.stages()[0].stats.emitted, 6);
    assert!(out.balanced());
}

#[test]
fn huge_demand_and_huge_arrivals_stay_in_bounded_memory() {
    let cases = [
        ("{ counter = 0 }", "max_demand = 18446744073709551615"),
        ("{ range = [1, 10000000000] }", "max_demand = 10000000000"),
        (
            "{ bursts = { every_us = 1000, size = 1000000000000, count = 1 } }",
            "",
        ),
        (
            "{ script = [{ at_us = 0, first = 0, last = 1000000000000 }] }",
            "",
        ),
    ];
    for (source, sub) in cases {
        let s = pipeline(source, "", sub);
        let out = sim(&s, Some(300_000), None).unwrap_or_else(|e| panic!("{source}: {e}"));
        assert!(out.balanced(), "{source}");
        let p = &out.stages()[0];
        assert_eq!(p.stats.panics, 0, "{source}: {}", p.exit);
        assert!(
            p.stats.emitted >= 300_000,
            "{source}: emitted {}",
            p.stats.emitted
        );
        let t = run_scenario(
            &s,
            &ScenarioRunOptions {
                scheduling: Default::default(),
                events: Some(300_000),
                ..ScenarioRunOptions::default()
            },
        )
        .unwrap_or_else(|e| panic!("{source}: {e}"));
        assert!(
            t.outcome.balanced(),
            "{source}: {}",
            t.outcome.summary("x").table()
        );
        assert_eq!(t.outcome.stages[0].stats.panics, 0, "{source}");
    }
}

#[test]
fn partition_starvation_is_reported_with_its_partition_and_cause() {
    let s = scenario(&common::starving_partitions(""));
    let err = fails(sim(&s, None, None), "the other partition starves");
    let text = err.to_string();
    assert!(err.deadlock().is_some(), "{text}");
    assert!(
        text.contains("wait in `p`'s partition queue for `c1`"),
        "{text}"
    );
    assert!(text.contains("injected crash after 10 events"), "{text}");
    assert!(text.contains("on_missing_partition = \"drop\""), "{text}");
}

#[test]
fn on_missing_partition_drop_counts_the_events_lost_and_keeps_the_rest_running() {
    let s = scenario(&common::starving_partitions(
        "on_missing_partition = \"drop\"",
    ));
    let out = sim(&s, None, None).expect("no deadlock");
    assert!(out.balanced());
    let [p, c0, c1] = [&out.stages()[0], &out.stages()[1], &out.stages()[2]];
    // Every event of partition 0 reaches c0; partition 1's after the crash are lost.
    assert_eq!(c0.stats.handled, 500);
    assert!(c1.stats.handled >= 10);
    assert!(p.stats.lost_out > 0);
    assert_eq!(p.stats.emitted, 1000);
    let t = run_scenario(&s, &ScenarioRunOptions::default()).expect("runs");
    assert!(t.outcome.balanced(), "{}", t.outcome.summary("x").table());
    assert_eq!(t.outcome.stages[1].stats.handled, 500);
    // Only a partition dispatcher has the option.
    let err = parse_str(
        &common::starving_partitions("on_missing_partition = \"drop\"").replace(
            "dispatcher = \"partition\"\npartitions = 2\nhash = \"rem\"\n",
            "",
        ),
        "x.toml",
    )
    .expect_err("not a partition dispatcher");
    assert_eq!(err.field(), "stage[0].on_missing_partition");
}

/// Regression: threads had no stall detection, and `--until` stopped producers only, so
/// a stage inside a long emulated service time kept the run alive.
#[test]
fn threads_until_cuts_the_run_even_inside_an_emulated_service() {
    let s = pipeline(
        "{ range = [1, 10000] }",
        "per_event = { dist = \"fixed\", ns = 100000000 }",
        "",
    );
    let run = run_scenario(
        &s,
        &ScenarioRunOptions {
            scheduling: Default::default(),
            until: Some(std::time::Duration::from_millis(100)),
            ..ScenarioRunOptions::default()
        },
    )
    .expect("runs");
    let o = &run.outcome;
    assert!(o.cut, "the run was cut");
    assert!(o.deadlock.is_none());
    assert!(o.balanced(), "{}", o.summary("x").table());
    // 10 000 events of 100 ms each cannot all have been handled.
    assert!(o.stages[1].stats.handled < 10_000);
}

#[test]
fn threads_report_a_deadlock_like_the_simulator() {
    let s = scenario(&common::starving_partitions(""));
    let run = run_scenario(&s, &ScenarioRunOptions::default()).expect("runs");
    let report = run
        .outcome
        .deadlock
        .as_ref()
        .expect("a deadlock, not a hang");
    let text = report.to_string();
    assert!(
        text.contains("wait in `p`'s partition queue for `c1`"),
        "{text}"
    );
    assert_eq!(report.stages.len(), 3);
    assert!(!run.outcome.cut);
    // The same scenario on the simulator is the same kind of failure.
    assert!(fails(sim(&s, None, None), "sim deadlock")
        .deadlock()
        .is_some());
}

/// A chain of `n` stages listed from the sink up (the order that once made the sim's
/// set-up cubic and a recursive walk deep).
fn chain(n: usize) -> String {
    let mut out = vec![format!(
        "[[stage]]\nname = \"s{}\"\nkind = \"consumer\"\n",
        n - 1
    )];
    for i in (1..n - 1).rev() {
        out.push(format!(
            "[[stage]]\nname = \"s{i}\"\nkind = \"producer_consumer\"\n"
        ));
    }
    out.push(
        "[[stage]]\nname = \"s0\"\nkind = \"producer\"\nsource = { range = [1, 10] }\n".into(),
    );
    for i in 0..n - 1 {
        out.push(format!(
            "[[subscription]]\nproducer = \"s{i}\"\nconsumer = \"s{}\"\n",
            i + 1
        ));
    }
    out.join("\n")
}

/// Regression: the simulator's set-up grew with the cube of chain depth, and `check` and
/// the summary with its square. Thousands of stages now run in the test suite.
#[test]
fn thousands_of_stages_in_a_chain_check_and_run() {
    let s = scenario(&chain(3000));
    assert_eq!(s.stages.len(), 3000);
    let out = sim(&s, None, None).expect("runs");
    assert!(out.balanced());
    assert_eq!(out.events_delivered(), 10);
    assert_eq!(out.summary().base.stages.len(), 3000);
}

/// Regression: the `lost` column counted a consumer's lost input on consumer rows but not
/// on producer-consumer rows, so it double-counted on some scenarios and missed on others.
#[test]
fn the_lost_column_counts_each_lost_event_once() {
    let s = scenario(
        r#"
[[stage]]
name = "p"
kind = "producer"
source = { range = [1, 5000] }

[[stage]]
name = "mid"
kind = "producer_consumer"

[[stage.fault]]
crash_after_events = 1000

[[stage]]
name = "c"
kind = "consumer"
per_event = { dist = "fixed", ns = 1000 }

[[subscription]]
producer = "p"
consumer = "mid"
max_demand = 100

[[subscription]]
producer = "mid"
consumer = "c"
max_demand = 10
cancel = "temporary"
"#,
    );
    let out = sim(&s, None, None).expect("runs");
    let sum = out.summary();
    assert!(sum.base.balanced);
    let rows: u64 = sum.base.stages.iter().map(|r| r.lost).sum();
    let balances: u64 = sum.base.accounting.iter().map(|b| b.lost).sum();
    assert!(rows > 0, "the crash loses what mid held");
    assert_eq!(rows, balances, "every lost event on exactly one row");
}

/// Regression: restarts left contradictory end states — a restarted producer nobody
/// subscribes to again showed `running` in a drained run, stopped `normal` short of its
/// range, or (a push source) made the run a deadlock.
#[test]
fn a_producer_nobody_can_subscribe_to_again_is_not_restarted() {
    for (source, cancel) in [
        ("{ range = [1, 10000] }", "permanent"),
        ("{ range = [1, 10000] }", "temporary"),
        (
            "{ bursts = { every_us = 10, size = 100, count = 100 } }",
            "temporary",
        ),
    ] {
        let s = scenario(&format!(
            r#"
[[stage]]
name = "p"
kind = "producer"
source = {source}

[[stage.fault]]
crash_after_events = 4000
restart_after_us = 10

[[stage]]
name = "c"
kind = "consumer"
per_event = {{ dist = "fixed", ns = 100 }}

[[subscription]]
producer = "p"
consumer = "c"
max_demand = 100
cancel = "{cancel}"
"#
        ));
        let out = sim(&s, None, None).unwrap_or_else(|e| panic!("{source} {cancel}: {e}"));
        let p = &out.stages()[0];
        assert!(out.balanced(), "{source} {cancel}");
        assert!(
            p.exit.starts_with("error: injected crash")
                && p.exit
                    .ends_with("(not restarted: no consumer subscribes again)"),
            "{source} {cancel}: {}",
            p.exit
        );
        assert!(out.stages().iter().all(|st| st.exit != "running"));
    }
}

/// Regression: a counter near the top of the id space stalled (the run deadlocked)
/// once it reached `u64::MAX`; it now ends there, each id once.
#[test]
fn a_counter_at_the_top_of_the_id_space_ends_there() {
    let s = pipeline("{ counter = 18446744073709551610 }", "", "");
    let out = sim(&s, Some(100), None).expect("ends");
    assert_eq!(out.stages()[0].stats.emitted, 6);
    assert_eq!(out.stages()[0].exit, "normal");
    assert!(out.balanced() && out.duplicate_ids().is_empty());
    let t = run_scenario(
        &s,
        &ScenarioRunOptions {
            scheduling: Default::default(),
            events: Some(100),
            ..ScenarioRunOptions::default()
        },
    )
    .expect("runs");
    assert!(t.outcome.deadlock.is_none());
    assert_eq!(t.outcome.stages[1].stats.handled, 6);
}
