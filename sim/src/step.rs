//! A run driven one step at a time, for viewers (a terminal UI) and teaching: create a
//! [`Stepper`], [`step`](Stepper::step) one scheduled item or
//! [`advance_to`](Stepper::advance_to) a virtual time, read a [`Snapshot`] of every stage
//! and subscription, then [`finish`](Stepper::finish) for the same [`SimOutcome`] that
//! [`run`](crate::run) gives — the same trace hash however the run was stepped.

use std::time::Instant;

use flowbench_engine::scenario::Scenario;

use crate::sched::{Setup, Sim, Step};
use crate::{SimError, SimOptions, SimOutcome};

/// One stage at a moment of a stepped run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageView {
    /// Its name.
    pub name: String,
    /// Messages waiting in its mailbox.
    pub mailbox: u64,
    /// Events in its producer buffer.
    pub buffered: u64,
    /// Events in its partition queues and input queue.
    pub queued: u64,
    /// Whether it is serving something now.
    pub busy: bool,
    /// Events emitted so far (every incarnation).
    pub emitted: u64,
    /// Events handled so far (every incarnation).
    pub handled: u64,
    /// Events dropped so far.
    pub dropped: u64,
    /// Events lost at it so far.
    pub lost: u64,
    /// How it ended, once it has.
    pub exit: Option<String>,
}

/// One subscription at a moment of a stepped run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkView {
    /// The producing stage.
    pub producer: String,
    /// The consuming stage.
    pub consumer: String,
    /// Its `max_demand`.
    pub max_demand: u64,
    /// Its `min_demand`.
    pub min_demand: u64,
    /// Events asked for and not received yet.
    pub outstanding: u64,
}

/// Every stage and subscription at virtual time `t_ns`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The virtual time, ns.
    pub t_ns: u64,
    /// Per stage, in scenario order.
    pub stages: Vec<StageView>,
    /// Per subscription, in scenario order.
    pub links: Vec<LinkView>,
}

/// A simulated run driven step by step: [`step`](Stepper::step) one scheduled item or
/// [`advance_to`](Stepper::advance_to) a virtual time, read a [`Snapshot`], then
/// [`finish`](Stepper::finish) for the outcome [`run`](crate::run) gives — the same
/// trace hash however the run was stepped.
///
/// ```
/// use flowbench_engine::scenario::parse_str;
/// use flowbench_sim::{SimOptions, Stepper};
///
/// let s = parse_str("[[stage]]\nname = \"p\"\nkind = \"producer\"\nsource = { range = [1, 1000] }\n\
///     [[stage]]\nname = \"c\"\nkind = \"consumer\"\nper_event = { dist = \"fixed\", ns = 1000 }\n\
///     [[subscription]]\nproducer = \"p\"\nconsumer = \"c\"\nmax_demand = 100\n", "x.toml").unwrap();
/// let mut run = Stepper::new(&s, &SimOptions::default()).unwrap();
/// run.advance_to(50_000).unwrap();                  // 50 us of virtual time
/// let snap = run.snapshot();
/// assert_eq!(snap.t_ns, 50_000);
/// assert!(snap.stages[1].handled > 0 && snap.stages[1].handled < 1000);
/// assert!(snap.links[0].outstanding <= 100);
/// let out = run.finish().unwrap();
/// assert_eq!(out.trace_hash(), flowbench_sim::run(&s, &SimOptions::default(), None).unwrap().trace_hash());
/// ```
pub struct Stepper<'s> {
    sim: Sim<'s, 'static>,
    started: Instant,
    cut: Option<bool>,
    /// The time the viewer moved to (`advance_to`), which may lie between two items.
    view_time: u64,
}

impl<'s> Stepper<'s> {
    /// Sets up a run of `scenario` (as [`run`](crate::run) would, without a trace file).
    pub fn new(scenario: &'s Scenario, opts: &SimOptions) -> Result<Self, SimError> {
        let setup = Setup {
            seed: opts.seed_for(scenario),
            events: opts.events,
            until_ns: opts.until_ns,
            sample_ns: opts.sample_ns,
            costs: opts.costs,
        };
        let mut sim = Sim::new(scenario, &setup, None)?;
        sim.init();
        Ok(Stepper {
            sim,
            started: Instant::now(),
            cut: None,
            view_time: 0,
        })
    }

    /// Handles the next scheduled item; returns its virtual time, or `None` once the run
    /// has nothing left (or reached its `until`).
    pub fn step(&mut self) -> Result<Option<u64>, SimError> {
        if self.cut.is_some() {
            return Ok(None);
        }
        match self.sim.step_one()? {
            Step::Took(t) => Ok(Some(t)),
            Step::Empty => {
                self.cut = Some(false);
                Ok(None)
            }
            Step::Cut => {
                self.cut = Some(true);
                Ok(None)
            }
        }
    }

    /// Handles every item due at or before `t_ns`; the snapshot's time is then `t_ns`
    /// (or the end of the run, if that comes first). Returns whether the run goes on.
    pub fn advance_to(&mut self, t_ns: u64) -> Result<bool, SimError> {
        while self.cut.is_none() && self.sim.next_time().is_none_or(|t| t <= t_ns) {
            self.step()?;
        }
        if self.cut.is_none() {
            self.view_time = self.view_time.max(t_ns);
        }
        Ok(self.cut.is_none())
    }

    /// The virtual time of the last item handled.
    pub fn now(&self) -> u64 {
        self.sim.now()
    }

    /// What every stage and subscription holds now.
    pub fn snapshot(&self) -> Snapshot {
        let mut s = self.sim.snapshot();
        s.t_ns = s.t_ns.max(self.view_time);
        s
    }

    /// Runs what is left and returns the outcome [`run`](crate::run) gives.
    pub fn finish(mut self) -> Result<SimOutcome, SimError> {
        while self.cut.is_none() {
            self.step()?;
        }
        let started = self.started;
        self.sim
            .finish(self.cut == Some(true), || started.elapsed().as_secs_f64())
    }
}
