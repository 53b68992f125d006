//! # flowbench-sim
//!
//! A seeded discrete-event simulator for flowbench pipelines: the engine's stage cores,
//! driven in virtual time.
//!
//! **Should I be using this crate?** Use it to run a [`Scenario`] reproducibly — to
//! measure latency, queue depths and busy time under a service-time model, to inject
//! faults, or to check a property over many seeds — from Rust code (tests, sweeps, a TUI,
//! reports). To run a scenario file from the command line, use the `flowbench` binary
//! (`flowbench run FILE --runtime sim`), which calls [`run`]. To run real code on real
//! threads, use `flowbench_engine::threads`. To build pipelines of your own stage types,
//! use the engine; this crate runs scenarios, whose events are `u64` ids.
//!
//! The simulator decides only *when* things happen; *what* happens (demand, dispatch,
//! buffering, cancellation, accounting) is the engine's `StageCore`, so a scenario means
//! the same on both runtimes. Every run is a function of the scenario, the options and
//! one root seed: same inputs, same [trace hash](SimOutcome::trace_hash), on any machine.
//!
//! ```
//! use flowbench_engine::scenario::parse_str;
//! use flowbench_sim::{run, SimOptions};
//!
//! let scenario = parse_str(r#"
//! [[stage]]
//! name = "source"
//! kind = "producer"
//! source = { range = [1, 100] }
//!
//! [[stage]]
//! name = "sink"
//! kind = "consumer"
//! per_event = { dist = "exp", mean_ns = 1000 }
//!
//! [[subscription]]
//! producer = "source"
//! consumer = "sink"
//! max_demand = 10
//! "#, "tiny.toml").unwrap();
//!
//! let mut trace = Vec::new();
//! let out = run(&scenario, &SimOptions { seed: Some(7), ..SimOptions::default() }, Some(&mut trace)).unwrap();
//! assert!(out.balanced());
//! assert_eq!(out.events_delivered(), 100);
//!
//! // Same seed, same trace hash; the trace is JSON lines (see the README, "The trace format").
//! let again = run(&scenario, &SimOptions { seed: Some(7), ..SimOptions::default() }, None).unwrap();
//! assert_eq!(out.trace_hash(), again.trace_hash());
//! let first = String::from_utf8(trace).unwrap().lines().next().unwrap().to_string();
//! assert_eq!(first, r#"{"t_ns":0,"seq":0,"kind":"subscribe","from":"sink","to":"source"}"#);
//!
//! // Service times are drawn from the seed: another seed, another run.
//! let other = run(&scenario, &SimOptions { seed: Some(8), ..SimOptions::default() }, None).unwrap();
//! assert_ne!(out.trace_hash(), other.trace_hash());
//! ```
//!
//! Modules, from the outside in: [`run`] and [`SimOptions`] here; `sched` (the
//! scheduler: clock, event queue, mailboxes, cores, faults); `trace` (the observer that
//! hashes and writes the trace); `births`, [`Histogram`] and [`Series`] (measurements);
//! [`SimOutcome`] / [`SimSummary`] (what a run reports) and [`SimError`].
//!
//! *Architecture invariant:* nothing in a run reads the wall clock (except to report how
//! long the simulation took), iterates a hash map, or draws from an unseeded RNG.

mod births;
mod error;
mod latency;
mod outcome;
mod queue;
mod record;
mod rng;
mod sched;
mod series;
mod step;
mod trace;

use std::io::Write;
use std::time::Instant;

use flowbench_engine::scenario::Scenario;

pub use crate::error::{DeadlockReport, LinkState, SimError, StageState};
pub use crate::latency::{Histogram, LatencySummary};
pub use crate::outcome::{Ended, SimOutcome, SimSummary};
pub use crate::record::{Record, RecordError};
pub use crate::series::{LinkSeries, Series, StageSeries, MAX_SAMPLES};
pub use crate::step::{
    Applied, Change, ChangeRefused, LinkView, Records, Snapshot, StageView, Stepper,
};

/// The root seed when neither the options nor the scenario give one.
pub const DEFAULT_SEED: u64 = 0;

/// The default sampling interval of the time series: 1 ms of virtual time.
pub const DEFAULT_SAMPLE_NS: u64 = 1_000_000;

/// Choices for a simulated run that are not in the scenario file.
///
/// ```
/// use flowbench_sim::{SimOptions, DEFAULT_SAMPLE_NS};
/// let o = SimOptions { seed: Some(3), events: Some(10_000), ..SimOptions::default() };
/// assert_eq!(o.until_ns, None);
/// assert_eq!(o.sample_ns, DEFAULT_SAMPLE_NS);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimOptions {
    /// The root seed (`--seed`); `None`: the scenario's `seed`, else [`DEFAULT_SEED`].
    pub seed: Option<u64>,
    /// Stop each producer after this many events (`--events N`).
    pub events: Option<u64>,
    /// Stop at this virtual time, ns (`--until`); what is in flight then is reported as
    /// in flight.
    pub until_ns: Option<u64>,
    /// Sample the time series every this many ns of virtual time; 0 turns sampling off.
    pub sample_ns: u64,
    /// The threads runtime's own costs on a machine ([`RuntimeCosts`], from
    /// `flowbench calibrate`), charged on top of the scenario's service times so that
    /// the simulator predicts the threads runtime; `None`: the runtime is free.
    pub costs: Option<RuntimeCosts>,
    /// Compute the trace hash (`true`, the default). A sweep that compares figures, not
    /// runs, turns it off to save the work of folding every delivery and handled chunk;
    /// the outcome then says `trace hash off`. A trace file is written either way.
    pub trace_hash: bool,
}

/// What the threads runtime itself costs on one machine, measured by `flowbench
/// calibrate`: the simulator charges it to every stage, and limits how many stages run at
/// once to the machine's cores (unless the scenario sets `cores`).
///
/// ```
/// use flowbench_sim::RuntimeCosts;
/// let c = RuntimeCosts { message_ns: 2000, event_ps: 2500, route_ps: 8000, cores: 2, ..RuntimeCosts::default() };
/// // A message and 1000 events, 400 of them emitted through a partition dispatcher.
/// assert_eq!(c.step_ns(true, 1000, 400 * c.route_ps), 2000 + 2500 + 3200);
/// assert_eq!(c.step_ns(false, 0, 0), 0);
/// ```
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct RuntimeCosts {
    /// Per protocol message a stage takes from its mailbox (ask, events, subscribe,
    /// cancel), ns: the mailbox, the wake-up, the driver's step.
    pub message_ns: u64,
    /// The same when stages outnumber cores: a receiver then sleeps and is woken by the
    /// kernel instead of spinning, and every message pays for it.
    pub crowded_message_ns: u64,
    /// Per event handled or emitted, picoseconds: moving it through a batch.
    pub event_ps: u64,
    /// Per event a partition dispatcher routes, picoseconds, on top of `event_ps`:
    /// hashing it and queueing it for its partition.
    #[serde(default)]
    pub route_ps: u64,
    /// Per copy a broadcast dispatcher hands to a subscriber, picoseconds, on top of
    /// `event_ps`.
    #[serde(default)]
    pub copy_ps: u64,
    /// Starting and stopping a run, ns: spawning the workers, the first slices, joining
    /// them. Added to the run's virtual time.
    #[serde(default)]
    pub start_ns: u64,
    /// The same for each stage of the run, ns.
    #[serde(default)]
    pub stage_start_ns: u64,
    /// Cores of the machine: at most this many stages run at once.
    pub cores: u32,
}

impl RuntimeCosts {
    /// The runtime's cost of a step that took a message (`message`), moved `events` and
    /// routed or copied events worth `dispatch_ps` picoseconds.
    pub fn step_ns(&self, message: bool, events: u64, dispatch_ps: u64) -> u64 {
        let m = if message { self.message_ns } else { 0 };
        let ps = self
            .event_ps
            .saturating_mul(events)
            .saturating_add(dispatch_ps);
        m.saturating_add(ps / 1000)
    }

    /// The dispatching cost per event emitted by a stage with `dispatcher` and `outputs`
    /// subscribers, picoseconds.
    pub fn dispatch_ps(
        &self,
        dispatcher: &flowbench_engine::scenario::DispatcherDef,
        outputs: usize,
    ) -> u64 {
        use flowbench_engine::scenario::DispatcherDef;
        match dispatcher {
            DispatcherDef::Partition { .. } => self.route_ps,
            DispatcherDef::Broadcast => self.copy_ps.saturating_mul(outputs as u64),
            DispatcherDef::Demand { .. } => 0,
        }
    }

    /// Starting and stopping a run of `stages` stages, ns.
    pub fn run_start_ns(&self, stages: usize) -> u64 {
        self.start_ns
            .saturating_add(self.stage_start_ns.saturating_mul(stages as u64))
    }
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            seed: None,
            events: None,
            until_ns: None,
            sample_ns: DEFAULT_SAMPLE_NS,
            costs: None,
            trace_hash: true,
        }
    }
}

impl SimOptions {
    /// The root seed a run of `scenario` with these options uses.
    ///
    /// ```
    /// use flowbench_engine::scenario::{parse_str, DEFAULT_SCENARIO, DEFAULT_SCENARIO_FILE};
    /// use flowbench_sim::SimOptions;
    /// let s = parse_str(DEFAULT_SCENARIO, DEFAULT_SCENARIO_FILE).unwrap();
    /// assert_eq!(SimOptions::default().seed_for(&s), 42);
    /// assert_eq!(SimOptions { seed: Some(1), ..SimOptions::default() }.seed_for(&s), 1);
    /// ```
    pub fn seed_for(&self, scenario: &Scenario) -> u64 {
        self.seed.or(scenario.seed).unwrap_or(DEFAULT_SEED)
    }
}

/// Simulates `scenario` to its end (every source finished and every event handled,
/// dropped or lost), or to `until_ns`.
///
/// `trace`, when given, receives the trace as JSON lines (format: the README, "The trace format"); it is
/// buffered internally and flushed before `run` returns. The trace hash is computed
/// either way and does not depend on it.
///
/// Errors: a deadlock (with the state of every stage), a source that never ends without
/// a limit, `cores = 0`, or a trace write failure. A run whose accounting does not
/// balance is not an error: see [`SimOutcome::balanced`].
pub fn run(
    scenario: &Scenario,
    opts: &SimOptions,
    trace: Option<&mut dyn Write>,
) -> Result<SimOutcome, SimError> {
    let started = Instant::now();
    let setup = sched::Setup {
        seed: opts.seed_for(scenario),
        events: opts.events,
        until_ns: opts.until_ns,
        sample_ns: opts.sample_ns,
        costs: opts.costs,
        hash: opts.trace_hash,
    };
    let trace = trace.map(|w| Box::new(w) as Box<dyn Write + '_>);
    sched::Sim::new(scenario, &setup, trace)?.run(|| started.elapsed().as_secs_f64())
}
