//! `flowbench calibrate`: what the threads runtime itself costs on this machine, so that
//! the simulator can predict it.
//!
//! Short fixed scenarios on threads, each run `reps` times (the trimmed mean counts: [`trimmed_mean`]), give one
//! equation each, solved in order:
//!
//! - **start**: producer → consumer and an 8-stage chain with one event: what starting and
//!   stopping a run costs (spawning the workers, the first slices, joining them), fixed
//!   and per stage;
//! - **event**: producer → consumer with `max_demand = 10 000` (a message carries 5 000
//!   events): one event takes `event`;
//! - **message**: producer → consumer with `max_demand = 1`: every event is an ask and a
//!   batch, each stage takes one message per event, so one event takes `message + event`;
//! - **crowded**: a chain of more stages than cores at `max_demand = 1`, where the cores
//!   share the stages' messages;
//! - **route**: a producer with a 4-partition dispatcher and four consumers: the producer
//!   pays `event + route` per event;
//! - **copy**: a producer with a broadcast dispatcher and three consumers: the producer
//!   pays `event + 3 × copy` per event.
//!
//! The time of each run, less its start, over its events gives the figure. The simulator
//! then charges `message_ns` per protocol message a stage takes, `event_ps` per event it
//! moves, `route_ps` or `copy_ps` per event its dispatcher hands out, adds the start to
//! the run's virtual time, and runs at most `cores` stages at once.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use flowbench_engine::scenario::{parse_str, Scenario};
use flowbench_engine::threads::scenario::{run_scenario, ScenarioRunOptions};
use flowbench_sim::RuntimeCosts;

use crate::baseline::{utc_now, Machine};
use crate::metric::trimmed_mean;

/// A calibration profile, as `flowbench calibrate` writes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Calibration {
    /// The costs the simulator charges.
    pub costs: RuntimeCosts,
    /// Where they were measured.
    pub machine: Machine,
    /// When, UTC.
    pub date: String,
    /// Producer → consumer at `max_demand = 1`, events/s (trimmed mean).
    pub one_by_one_eps: u64,
    /// Producer → consumer at `max_demand = 10 000`, events/s (trimmed mean).
    pub batched_eps: u64,
    /// A chain of more stages than cores at `max_demand = 1`, events/s (trimmed mean).
    pub crowded_eps: u64,
    /// A producer with a 4-partition dispatcher and four consumers, events/s (trimmed mean).
    #[serde(default)]
    pub partition_eps: u64,
    /// A producer with a broadcast dispatcher and three consumers, events/s (trimmed mean).
    #[serde(default)]
    pub broadcast_eps: u64,
}

/// How the last stage of a calibration scenario hands events to its consumers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fan {
    /// The demand dispatcher (the default).
    Demand,
    /// A partition dispatcher with one partition per consumer, the `mix` hash.
    Partition,
    /// A broadcast dispatcher.
    Broadcast,
}

/// One of the fixed calibration scenarios, as scenario text: a `range` source of
/// `events` events, then `middles` pass-through stages, then `consumers` consumers fed
/// by the last stage through `fan`, every subscription with `max`/`min` demand.
pub fn pipeline_text(
    events: u64,
    middles: usize,
    consumers: usize,
    fan: Fan,
    max: u64,
    min: u64,
) -> String {
    let mut t = String::from("name = \"calibration\"\n");
    let stage = |t: &mut String, name: &str, kind: &str, extra: &str| {
        let _ = write!(
            t,
            "\n[[stage]]\nname = \"{name}\"\nkind = \"{kind}\"\n{extra}"
        );
    };
    let dispatch = match fan {
        Fan::Partition => {
            format!("dispatcher = \"partition\"\npartitions = {consumers}\nhash = \"mix\"\n")
        }
        Fan::Broadcast => "dispatcher = \"broadcast\"\n".to_string(),
        Fan::Demand => String::new(),
    };
    let last_dispatch = |i: usize| if i == middles { dispatch.as_str() } else { "" };
    stage(
        &mut t,
        "s0",
        "producer",
        &format!(
            "source = {{ range = [1, {}] }}\n{}",
            events.max(1),
            last_dispatch(0)
        ),
    );
    for i in 1..=middles {
        stage(
            &mut t,
            &format!("s{i}"),
            "producer_consumer",
            last_dispatch(i),
        );
    }
    for c in 0..consumers.max(1) {
        stage(&mut t, &format!("c{c}"), "consumer", "");
    }
    let link = |t: &mut String, p: &str, c: &str, extra: &str| {
        let _ = write!(
            t,
            "\n[[subscription]]\nproducer = \"{p}\"\nconsumer = \"{c}\"\nmax_demand = {max}\nmin_demand = {min}\n{extra}"
        );
    };
    for i in 1..=middles {
        link(&mut t, &format!("s{}", i - 1), &format!("s{i}"), "");
    }
    for c in 0..consumers.max(1) {
        let part = if fan == Fan::Partition {
            format!("partition = {c}\n")
        } else {
            String::new()
        };
        link(&mut t, &format!("s{middles}"), &format!("c{c}"), &part);
    }
    t
}

/// Seconds a threads run of `scenario` takes: the trimmed mean of `reps` runs (runs of
/// the worker pool fall into modes, by where the stages land; each counts).
fn seconds(scenario: &Scenario, reps: usize) -> Result<f64, String> {
    let opts = ScenarioRunOptions::default();
    let runs = (0..reps.max(1))
        .map(|_| {
            run_scenario(scenario, &opts)
                .map(|o| o.outcome.elapsed.as_secs_f64())
                .map_err(|e| format!("a calibration run failed on threads: {e}"))
        })
        .collect::<Result<Vec<f64>, String>>()?;
    Ok(trimmed_mean(&runs))
}

/// Measures this machine (`reps` runs of each scenario; about two seconds in all at 15).
/// Fails only if the threads runtime cannot run (a worker thread that cannot start).
pub fn calibrate(reps: usize) -> Result<Calibration, String> {
    let machine = Machine::this();
    let time = |events: u64, middles: usize, consumers: usize, fan: Fan, max: u64| {
        let text = pipeline_text(events, middles, consumers, fan, max, max / 2);
        let s = parse_str(&text, "calibration.toml").map_err(|e| e.to_string())?;
        seconds(&s, reps)
    };
    // Start and stop: a run of one event, two stages and eight.
    let start_2 = time(1, 0, 1, Fan::Demand, 1000)? * 1e9;
    let start_8 = time(1, 6, 1, Fan::Demand, 1000)? * 1e9;
    let stage_start = ((start_8 - start_2) / 6.0).max(0.0);
    let start = (start_2 - 2.0 * stage_start).max(0.0);
    let start_of = |stages: usize| start + stage_start * stages as f64;
    // Nanoseconds an event of a run of `events` events over `stages` stages, less the start.
    let per_event = |secs: f64, events: u64, stages: usize| {
        ((secs * 1e9 - start_of(stages)) / events as f64).max(0.0)
    };
    let batched_events = 5_000_000;
    let batched = time(batched_events, 0, 1, Fan::Demand, 10_000)?;
    let event_ns = per_event(batched, batched_events, 2).max(1e-3);
    let one_events = 20_000;
    let one = time(one_events, 0, 1, Fan::Demand, 1)?;
    let message_ns = (per_event(one, one_events, 2) - event_ns).max(0.0);
    // A chain of more stages than cores at `max_demand = 1`: each inner stage takes two
    // messages an event (the batch, and its consumer's ask), the ends one; the cores
    // share that work.
    let n = 2 * machine.cores + 2;
    let crowded_events = 4_000;
    let crowded = time(crowded_events, n - 2, 1, Fan::Demand, 1)?;
    let per_event_work = per_event(crowded, crowded_events, n) * machine.cores as f64;
    let crowded_ns = (per_event_work / (2 * n - 2) as f64 - event_ns).max(message_ns);
    // A fan-out's producer is its bottleneck: it pays the event and the dispatching.
    let fan_events = 5_000_000;
    let partition = time(fan_events, 0, 4, Fan::Partition, 10_000)?;
    let route_ns = (per_event(partition, fan_events, 5) - event_ns).max(0.0);
    let broadcast = time(fan_events, 0, 3, Fan::Broadcast, 10_000)?;
    let copy_ns = ((per_event(broadcast, fan_events, 4) - event_ns) / 3.0).max(0.0);
    let eps = |events: u64, secs: f64| (events as f64 / secs.max(1e-9)).round() as u64;
    Ok(Calibration {
        costs: RuntimeCosts {
            message_ns: message_ns.round() as u64,
            crowded_message_ns: crowded_ns.round() as u64,
            event_ps: (event_ns * 1000.0).round() as u64,
            route_ps: (route_ns * 1000.0).round() as u64,
            copy_ps: (copy_ns * 1000.0).round() as u64,
            start_ns: start.round() as u64,
            stage_start_ns: stage_start.round() as u64,
            cores: u32::try_from(machine.cores).unwrap_or(u32::MAX),
        },
        machine,
        date: utc_now(),
        one_by_one_eps: eps(one_events, one),
        batched_eps: eps(batched_events, batched),
        crowded_eps: eps(crowded_events, crowded),
        partition_eps: eps(fan_events, partition),
        broadcast_eps: eps(fan_events, broadcast),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_calibration_pipeline_parses() {
        for (middles, consumers, fan) in [
            (0, 1, Fan::Demand),
            (6, 1, Fan::Demand),
            (0, 4, Fan::Partition),
            (0, 3, Fan::Broadcast),
        ] {
            let text = pipeline_text(10, middles, consumers, fan, 1, 0);
            let s = parse_str(&text, "c.toml").unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(s.stages.len(), 1 + middles + consumers, "{text}");
            assert_eq!(s.links.len(), middles + consumers, "{text}");
        }
    }
}
