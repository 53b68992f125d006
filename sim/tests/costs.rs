//! The threads runtime's costs (`RuntimeCosts`, from `flowbench calibrate`) are charged
//! where they belong: dispatching costs only on stages with that dispatcher, the start
//! and stop once per run.

use flowbench_engine::scenario::{load, Scenario};
use flowbench_sim::{run, RuntimeCosts, SimOptions, SimOutcome};

fn scenario(name: &str) -> Scenario {
    let path = format!("{}/../scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    load(std::path::Path::new(&path)).unwrap_or_else(|e| panic!("{e}"))
}

fn base() -> RuntimeCosts {
    RuntimeCosts {
        message_ns: 600,
        crowded_message_ns: 600,
        event_ps: 1_700,
        cores: 2,
        ..RuntimeCosts::default()
    }
}

fn charged(s: &Scenario, costs: RuntimeCosts) -> SimOutcome {
    let opts = SimOptions {
        events: Some(20_000),
        costs: Some(costs),
        ..SimOptions::default()
    };
    run(s, &opts, None).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_start_and_stop_is_added_once_to_the_virtual_time() {
    let s = scenario("log-pipeline");
    let without = charged(&s, base());
    let with = charged(
        &s,
        RuntimeCosts {
            start_ns: 500_000,
            stage_start_ns: 7_000,
            ..base()
        },
    );
    assert_eq!(
        with.trace_hash(),
        without.trace_hash(),
        "the run itself is the same"
    );
    assert_eq!(
        with.virtual_ns() - without.virtual_ns(),
        500_000 + 7_000 * s.stages.len() as u64
    );
}

/// `costs` slows `slowed` and leaves every run of `others` exactly as it was.
fn only_slows(costs: RuntimeCosts, slowed: &str, others: [&str; 2]) {
    let s = scenario(slowed);
    assert!(
        charged(&s, costs).virtual_ns() > charged(&s, base()).virtual_ns(),
        "{slowed}"
    );
    for name in others {
        let s = scenario(name);
        let (a, b) = (charged(&s, costs), charged(&s, base()));
        assert_eq!(
            (a.virtual_ns(), a.trace_hash()),
            (b.virtual_ns(), b.trace_hash()),
            "{name}"
        );
    }
}

#[test]
fn routing_costs_only_slow_partition_dispatchers() {
    let routed = RuntimeCosts {
        route_ps: 20_000,
        ..base()
    };
    only_slows(routed, "log-pipeline", ["demand-3", "broadcast-3"]);
}

#[test]
fn copy_costs_only_slow_broadcast_dispatchers() {
    let copied = RuntimeCosts {
        copy_ps: 20_000,
        ..base()
    };
    only_slows(copied, "broadcast-3", ["demand-3", "log-pipeline"]);
}

/// Predicting the worker pool, a stage keeps its core for a slice of messages instead of
/// queueing behind the others after each: on the default scenario with two cores, the
/// bottleneck `parse` is then never left waiting for `lines` behind an aggregator.
#[test]
fn a_stage_keeps_its_core_for_a_slice_like_the_pool() {
    let s = scenario("log-pipeline");
    let parse = s
        .stages
        .iter()
        .position(|st| st.name == "parse")
        .expect("parse");
    let o = charged(&s, base());
    let busy = o.busy_fractions()[parse];
    assert!(busy > 0.95, "parse busy {busy}");
}
