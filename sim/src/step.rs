//! A run driven one step at a time, for viewers (a terminal UI) and teaching: create a
//! [`Stepper`], [`step`](Stepper::step) one scheduled item or
//! [`advance_to`](Stepper::advance_to) a virtual time, read a [`Snapshot`] of every stage
//! and subscription, then [`finish`](Stepper::finish) for the same [`SimOutcome`] that
//! [`run`](crate::run) gives — the same trace hash however the run was stepped.

use std::fmt;
use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use flowbench_engine::scenario::Scenario;
use flowbench_engine::Demand;

use crate::sched::{Setup, Sim, Step};
use crate::{Record, SimError, SimOptions, SimOutcome};

/// A change made to a stepped run while it goes on (a viewer's "what if"). Each one is
/// recorded in the trace (and so changes the trace hash): the run stays reproducible from
/// the seed and the list of changes with their times ([`Stepper::changes`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// Subscription `link` (its index in the scenario) gets new demand bounds; the
    /// consumer asks at once if its pending demand is at or below the new `min_demand`.
    /// Recorded as `retune`.
    Demand {
        /// The subscription's index, in scenario order.
        link: usize,
        /// The new `max_demand`.
        max_demand: u64,
        /// The new `min_demand` (below `max_demand`).
        min_demand: u64,
    },
    /// Stage `stage`'s service times are multiplied by `factor` from now on (below 1
    /// speeds it up again), as a `slow_at_us` fault at this time would. Recorded as `slow`.
    Slow {
        /// The stage's index.
        stage: usize,
        /// The factor, finite and greater than 0.
        factor: f64,
    },
    /// Stage `stage` crashes now, as a `crash_at_us` fault at this time would (at the end
    /// of its current service, if it is serving). Recorded as `crash`.
    Crash {
        /// The stage's index.
        stage: usize,
    },
    /// The crashed stage `stage` comes back now. Recorded as `restart`.
    Restart {
        /// The stage's index.
        stage: usize,
    },
}

/// A change and the virtual time it was made at.
#[derive(Clone, Debug, PartialEq)]
pub struct Applied {
    /// When, ns.
    pub t_ns: u64,
    /// What.
    pub change: Change,
}

/// Why a [`Change`] was not made (nothing changed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeRefused(pub String);

impl fmt::Display for ChangeRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ChangeRefused {}

/// The trace records written since the last read ([`Stepper::take_records`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Records {
    /// Records before `records` that were not kept (beyond the number asked for).
    pub skipped: u64,
    /// The newest records, oldest first.
    pub records: Vec<Record>,
}

/// The trace of a stepped run, shared between the run and its reader.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        // A panic while the buffer was held leaves plain bytes: still usable.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.lock().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

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
    /// Virtual time spent serving so far, ns (for a consumer pool: its jobs' time, over
    /// every slot).
    pub busy_ns: u64,
    /// Service slots (1, or a consumer pool's width).
    pub slots: u64,
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
    trace: Option<Shared>,
    changes: Vec<Applied>,
    links: usize,
    stages: usize,
}

impl<'s> Stepper<'s> {
    /// Sets up a run of `scenario` (as [`run`](crate::run) would, without a trace file).
    pub fn new(scenario: &'s Scenario, opts: &SimOptions) -> Result<Self, SimError> {
        Self::build(scenario, opts, false)
    }

    /// As [`new`](Stepper::new), and keeps the trace records for
    /// [`take_records`](Stepper::take_records) (the trace hash is the same either way).
    pub fn with_records(scenario: &'s Scenario, opts: &SimOptions) -> Result<Self, SimError> {
        Self::build(scenario, opts, true)
    }

    fn build(scenario: &'s Scenario, opts: &SimOptions, records: bool) -> Result<Self, SimError> {
        let trace = records.then(Shared::default);
        let setup = Setup {
            seed: opts.seed_for(scenario),
            events: opts.events,
            until_ns: opts.until_ns,
            sample_ns: opts.sample_ns,
            costs: opts.costs,
            hash: opts.trace_hash,
        };
        let writer = trace
            .clone()
            .map(|t| Box::new(t) as Box<dyn Write + 'static>);
        let mut sim = Sim::new(scenario, &setup, writer)?;
        sim.init();
        Ok(Stepper {
            sim,
            started: Instant::now(),
            cut: None,
            view_time: 0,
            trace,
            changes: Vec::new(),
            links: scenario.links.len(),
            stages: scenario.stages.len(),
        })
    }

    /// Whether the run has ended: nothing is left to do (until a [`Change`] gives it
    /// something), or its `until` is reached.
    pub fn ended(&self) -> bool {
        self.cut.is_some()
    }

    /// The records written since the last call, at most the newest `keep` of them (the
    /// others are only counted); empty unless made [`with_records`](Stepper::with_records).
    /// Lines are parsed only for the records kept.
    pub fn take_records(&mut self, keep: usize) -> Records {
        let Some(trace) = &self.trace else {
            return Records::default();
        };
        self.sim.flush_trace();
        let bytes = std::mem::take(&mut *trace.lock());
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(keep);
        Records {
            skipped: from as u64,
            records: lines[from..]
                .iter()
                .filter_map(|l| Record::parse(l).ok())
                .collect(),
        }
    }

    /// Makes `change` now (at the time the viewer is at). It is recorded in the trace and
    /// in [`changes`](Stepper::changes).
    ///
    /// ```
    /// use flowbench_engine::scenario::parse_str;
    /// use flowbench_sim::{Change, SimOptions, Stepper};
    /// let s = parse_str("[[stage]]\nname = \"p\"\nkind = \"producer\"\nsource = { range = [1, 1000] }\n\
    ///     [[stage]]\nname = \"c\"\nkind = \"consumer\"\nper_event = { dist = \"fixed\", ns = 1000 }\n\
    ///     [[subscription]]\nproducer = \"p\"\nconsumer = \"c\"\nmax_demand = 10\n", "x.toml").unwrap();
    /// let mut run = Stepper::new(&s, &SimOptions::default()).unwrap();
    /// run.advance_to(20_000).unwrap();
    /// run.apply(Change::Demand { link: 0, max_demand: 100, min_demand: 50 }).unwrap();
    /// assert_eq!(run.snapshot().links[0].max_demand, 100);
    /// assert!(run.apply(Change::Restart { stage: 1 }).is_err()); // it is running
    /// run.apply(Change::Crash { stage: 1 }).unwrap();
    /// let out = run.finish().unwrap();
    /// assert!(out.stages()[1].stats.handled < 1000);
    /// ```
    pub fn apply(&mut self, change: Change) -> Result<(), ChangeRefused> {
        let refuse = |m: String| Err(ChangeRefused(m));
        if self.cut == Some(true) {
            return refuse("the run has reached its end time".into());
        }
        let stage_ok = |s: usize| s < self.stages;
        self.sim.move_clock(self.view_time);
        match change {
            Change::Demand {
                link,
                max_demand,
                min_demand,
            } => {
                if link >= self.links {
                    return refuse(format!("no subscription {link}"));
                }
                let d = match Demand::new(max_demand, Some(min_demand)) {
                    Ok(d) => d,
                    Err(e) => return refuse(e.to_string()),
                };
                self.sim.retune(link, d);
            }
            Change::Slow { stage, factor } => {
                if !stage_ok(stage) {
                    return refuse(format!("no stage {stage}"));
                }
                if !self.sim.slow(stage, factor) {
                    return refuse(format!(
                        "a slowdown factor must be a finite number greater than 0, not {factor}"
                    ));
                }
            }
            Change::Crash { stage } => {
                if !stage_ok(stage) {
                    return refuse(format!("no stage {stage}"));
                }
                if !self.sim.crash_now(stage) {
                    return refuse("it is down already".into());
                }
            }
            Change::Restart { stage } => {
                if !stage_ok(stage) {
                    return refuse(format!("no stage {stage}"));
                }
                if !self.sim.restart_now(stage) {
                    return refuse("it is not down (or its restart is due already)".into());
                }
            }
        }
        // A run that had nothing left to do may have something now (a restart, an ask).
        self.cut = None;
        self.changes.push(Applied {
            t_ns: self.sim.now(),
            change,
        });
        Ok(())
    }

    /// Once the run has nothing left to do: why it cannot go on, if events are still held
    /// somewhere or a live subscription waits on a producer that has not finished (what
    /// [`finish`](Stepper::finish) would report as a deadlock). `None` while it runs,
    /// when it drained, or when it reached its `until`.
    pub fn deadlock(&self) -> Option<crate::DeadlockReport> {
        (self.cut == Some(false))
            .then(|| self.sim.stuck())
            .flatten()
    }

    /// Every change made so far, in order.
    pub fn changes(&self) -> &[Applied] {
        &self.changes
    }

    /// The product of the slowdowns of `stage` now (1 when it runs at its model's speed).
    pub fn slowdown(&self, stage: usize) -> f64 {
        if stage < self.stages {
            self.sim.slowdown(stage)
        } else {
            1.0
        }
    }

    /// Whether `stage` is down (crashed or finished) or about to crash.
    pub fn is_down(&self, stage: usize) -> bool {
        stage < self.stages && self.sim.is_down(stage)
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
