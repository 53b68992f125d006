//! `flowbench calibrate`: what the threads runtime itself costs on this machine, so that
//! the simulator can predict it.
//!
//! Two short pipelines on threads give two equations. Producer → consumer with
//! `max_demand = 1`: every event is an ask and a batch, each stage takes one message per
//! event, so one event takes `message + event`. With `max_demand = 10 000` a message
//! carries 5 000 events, so one event takes `event` (plus a negligible share of a
//! message). The simulator then charges `message_ns` per protocol message a stage takes
//! and `event_ps` per event it moves, and runs at most `cores` stages at once.

use serde::{Deserialize, Serialize};

use flowbench_engine::Demand;
use flowbench_sim::RuntimeCosts;

use crate::baseline::{utc_now, Machine};
use crate::metric::median;
use crate::pipelines;

/// A calibration profile, as `flowbench calibrate` writes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Calibration {
    /// The costs the simulator charges.
    pub costs: RuntimeCosts,
    /// Where they were measured.
    pub machine: Machine,
    /// When, UTC.
    pub date: String,
    /// Producer → consumer at `max_demand = 1`, events/s (median).
    pub one_by_one_eps: u64,
    /// Producer → consumer at `max_demand = 10 000`, events/s (median).
    pub batched_eps: u64,
    /// A chain of more stages than cores at `max_demand = 1`, events/s (median).
    pub crowded_eps: u64,
}

/// Measures this machine (`reps` runs of each pipeline; about a second in all).
pub fn calibrate(reps: usize) -> Calibration {
    let rate = |stages: usize, events: u64, max: u64, min: u64| {
        let d = match Demand::new(max, Some(min)) {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        };
        let rates: Vec<f64> = (0..reps.max(1))
            .map(|_| events as f64 / pipelines::flowbench_chain(stages, events, d).as_secs_f64())
            .collect();
        median(&rates)
    };
    let machine = Machine::this();
    let one = rate(2, 20_000, 1, 0);
    let batched = rate(2, 5_000_000, 10_000, 5_000);
    let event_ns = 1e9 / batched.max(1.0);
    let message_ns = (1e9 / one.max(1.0) - event_ns).max(0.0);
    // A chain of more stages than cores at `max_demand = 1`: each inner stage takes two
    // messages an event (the batch, and its consumer's ask), the ends one; the cores
    // share that work.
    let n = 2 * machine.cores + 2;
    let crowded = rate(n, 4_000, 1, 0);
    let per_event_work = 1e9 * machine.cores as f64 / crowded.max(1.0);
    let crowded_ns = (per_event_work / (2 * n - 2) as f64 - event_ns).max(message_ns);
    Calibration {
        costs: RuntimeCosts {
            message_ns: message_ns.round() as u64,
            crowded_message_ns: crowded_ns.round() as u64,
            event_ps: (event_ns * 1000.0).round() as u64,
            cores: u32::try_from(machine.cores).unwrap_or(u32::MAX),
        },
        machine,
        date: utc_now(),
        one_by_one_eps: one.round() as u64,
        batched_eps: batched.round() as u64,
        crowded_eps: crowded.round() as u64,
    }
}
