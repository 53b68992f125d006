//! Running a scenario file on threads: an adapter from the [plan](mod@crate::plan) to a typed
//! [`Topology`].
//!
//! Every stage becomes a `u64` stage built with the typed API and ordinary closures: the
//! core's logic from [`plan::config`], a [`StageHook`] that turns the plan's
//! [`ServiceModel`] into busy work and fires its `crash_after_events` faults, timers for
//! `forward_at_us` and every `crash_at_us`, and a push schedule for push sources. The
//! rules themselves are the plan's; this module only wires them. What threads does not
//! model (restarts, link latency, `cores`) is in [`ScenarioOutcome::limitations`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Control, ProducerOptions, RunError, RunOutcome, Stage, StageHook, StepInfo, Topology};
use crate::core::{DemandMode, Logic, OutputConfig};
use crate::hash::{mix64, SplitMix64};
use crate::logic::{Chunk, Ctx};
use crate::plan::{
    self, Crashes, Limitation, Next, PlanError, PlanOptions, RunPlan, Runtime, ServiceModel,
    StagePlan,
};
use crate::protocol::{CancelReason, LinkId, SubRef};
use crate::scenario::model::Scenario;
use crate::sync::{lock, Mutex};

/// Choices for a threads run that are not in the scenario file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScenarioRunOptions {
    /// Stop each producer after this many events (`--events N`).
    pub events: Option<u64>,
    /// Root seed for the emulated service times and arrival gaps.
    pub seed: u64,
    /// Cut the run at this wall time (`--until`): every stage stops where it is, and what
    /// is queued is reported in flight, as in the simulator. Emulated service times are
    /// cut there too.
    pub until: Option<Duration>,
    /// Record every event each final stage (consumer, pool) handles, with the link it came
    /// on, and the size of every chunk, into [`ScenarioOutcome`]. For tests and
    /// equivalence checks; it costs a lock per chunk.
    pub record: bool,
    /// How the stages get threads (`--workers N`: the pool with N workers).
    pub scheduling: super::Scheduling,
}

/// What a scenario run on threads gives back.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ScenarioOutcome {
    /// The run's figures.
    pub outcome: RunOutcome,
    /// What the scenario says that threads did not model.
    pub limitations: Vec<Limitation>,
    /// Per stage, the events it handled with their link (when recording).
    pub received: Vec<Vec<(LinkId, u64)>>,
    /// Per stage, the size of every chunk a consumer handled (when recording).
    pub chunks: Vec<Vec<u64>>,
}

/// Why a scenario could not run on threads.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScenarioRunError {
    /// The plan refused it (an unbounded source without a limit, `cores = 0`).
    Plan(PlanError),
    /// The topology could not start.
    Run(RunError),
}

impl std::fmt::Display for ScenarioRunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScenarioRunError::Plan(e) => e.fmt(f),
            ScenarioRunError::Run(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ScenarioRunError {}

impl From<RunError> for ScenarioRunError {
    fn from(e: RunError) -> Self {
        ScenarioRunError::Run(e)
    }
}

/// Runs `scenario` on threads to the end.
pub fn run_scenario(
    scenario: &Scenario,
    opts: &ScenarioRunOptions,
) -> Result<ScenarioOutcome, ScenarioRunError> {
    let mut built = build(scenario, opts)?;
    built.topology.scheduling(opts.scheduling);
    let outcome = built.topology.run()?;
    let take = |r: &Arc<Records>| std::mem::take(&mut *lock(&r.events));
    let chunks = |r: &Arc<Records>| std::mem::take(&mut *lock(&r.chunks));
    Ok(ScenarioOutcome {
        outcome,
        limitations: built.limitations,
        received: built.records.iter().map(take).collect(),
        chunks: built.records.iter().map(chunks).collect(),
    })
}

/// Starts `scenario` on threads and returns at once, for a viewer that reads the live
/// probes ([`Running::probes`](super::Running::probes)) while it runs; `join` it for the
/// outcome. Also returns what the scenario says that threads do not model.
pub fn spawn_scenario(
    scenario: &Scenario,
    opts: &ScenarioRunOptions,
) -> Result<(super::Running, Vec<Limitation>), ScenarioRunError> {
    let mut built = build(scenario, opts)?;
    built.topology.scheduling(opts.scheduling);
    let running = built.topology.spawn()?;
    Ok((running, built.limitations))
}

/// Where a stage records what it handles.
#[derive(Default)]
struct Records {
    events: Mutex<Vec<(LinkId, u64)>>,
    chunks: Mutex<Vec<u64>>,
}

/// A scenario built as a topology, ready to run.
struct Built {
    topology: Topology,
    records: Vec<Arc<Records>>,
    limitations: Vec<Limitation>,
}

/// A handle of any of the three shapes a scenario stage has on threads.
enum Handle {
    Source(Stage<(), u64>),
    Middle(Stage<u64, u64>),
    Sink(Stage<u64, ()>),
}

fn build(s: &Scenario, opts: &ScenarioRunOptions) -> Result<Built, ScenarioRunError> {
    let popts = PlanOptions {
        events: opts.events,
        seed: opts.seed,
        until_ns: opts
            .until
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
    };
    let plan = RunPlan::new(s, &popts, Runtime::Threads).map_err(ScenarioRunError::Plan)?;
    let mut t = Topology::new();
    if let Some(d) = opts.until {
        t.until(d);
    }
    // Service times and timers count from here; the topology's clock starts a few
    // microseconds later, when it spawns.
    let epoch = Instant::now();
    let cut = opts.until.map(|d| epoch + d);
    let records: Vec<Arc<Records>> = s.stages.iter().map(|_| Arc::default()).collect();
    let mut handles = Vec::with_capacity(s.stages.len());
    for ((i, sp), cfg) in plan.stages.iter().enumerate().zip(plan::configs(s, &popts)) {
        let rec = opts.record.then(|| Arc::clone(&records[i]));
        let h = add_stage(&mut t, sp, cfg.logic, cfg.output, rec, epoch, cut)?;
        handles.push(h);
    }
    for l in &s.links {
        let o = crate::opts::SubscribeOpts::<u64> {
            demand: l.demand,
            cancel: l.cancel,
            partition: l.partition,
            selector: l
                .selector
                .map(|sel| crate::opts::Selector::new(move |e: &u64| sel.accepts(*e))),
            ..Default::default()
        };
        match (&handles[l.producer], &handles[l.consumer]) {
            (Handle::Source(p), Handle::Middle(c)) => t.subscribe(p, c, o)?,
            (Handle::Source(p), Handle::Sink(c)) => t.subscribe(p, c, o)?,
            (Handle::Middle(p), Handle::Middle(c)) => t.subscribe(p, c, o)?,
            (Handle::Middle(p), Handle::Sink(c)) => t.subscribe(p, c, o)?,
            // Validation only links producing stages to consuming ones.
            _ => continue,
        };
    }
    Ok(Built {
        topology: t,
        records,
        limitations: plan.limitations,
    })
}

/// Adds one scenario stage: its logic, hook, timers and push schedule.
fn add_stage(
    t: &mut Topology,
    sp: &StagePlan,
    logic: Logic<u64, u64>,
    output: Option<OutputConfig<u64>>,
    rec: Option<Arc<Records>>,
    epoch: Instant,
    cut: Option<Instant>,
) -> Result<Handle, RunError> {
    let opts = output.map(producer_options);
    let h = match (logic, opts) {
        (Logic::Producer(p), Some(o)) => match sp.push.clone() {
            Some(schedule) => Handle::Source(t.push_producer(
                &sp.name,
                o,
                push_schedule(schedule, plan::derive_seed(sp.seed, "arrivals")),
            )),
            None => Handle::Source(t.producer(&sp.name, o, p)),
        },
        (Logic::ProducerConsumer(p), Some(o)) => {
            Handle::Middle(t.producer_consumer(&sp.name, o, p))
        }
        (Logic::Consumer(c), _) => Handle::Sink(t.consumer(&sp.name, recording_consumer(c, rec))),
        _ => Handle::Sink(t.consumer_pool(&sp.name, pool_job(sp, rec, epoch, cut))),
    };
    let hook = Emulate {
        service: sp.service.clone(),
        crashes: sp.crashes.clone(),
        rng: SplitMix64::new(sp.seed),
        cut,
    };
    let mut timers: Vec<(u64, Control)> = sp
        .crashes
        .timers()
        .filter_map(|(i, at)| sp.crashes.get(i).map(|c| (at, Control::Crash(c.reason()))))
        .collect();
    if let Some(at) = sp.forward_at_ns {
        timers.push((at, Control::Forward));
    }
    match &h {
        Handle::Source(s) => wire(t, s, hook, timers)?,
        Handle::Middle(s) => wire(t, s, hook, timers)?,
        Handle::Sink(s) => wire(t, s, hook, timers)?,
    }
    Ok(h)
}

fn wire<I, O>(
    t: &mut Topology,
    s: &Stage<I, O>,
    hook: Emulate,
    timers: Vec<(u64, Control)>,
) -> Result<(), RunError> {
    if !hook.service.is_free() || !hook.crashes.is_empty() {
        t.hook(s, hook)?;
    }
    for (at, what) in timers {
        t.timer(s, Duration::from_nanos(at), what)?;
    }
    Ok(())
}

/// The typed producer options of a plan's output configuration.
fn producer_options(out: OutputConfig<u64>) -> ProducerOptions<u64> {
    let mut o = ProducerOptions::default()
        .dispatcher(out.dispatcher)
        .buffer(out.buffer_size, out.buffer_keep);
    if out.demand_mode == DemandMode::Accumulate {
        o = if out.forward_when_subscribed {
            o.accumulate_until_subscribed()
        } else {
            o.accumulate()
        };
    }
    if let Some(n) = out.limit {
        o = o.limit(n);
    }
    o
}

/// The plan's push schedule as the typed API's: wall-clock times, events as a `Vec`.
fn push_schedule(
    mut schedule: plan::PushSchedule,
    seed: u64,
) -> impl FnMut() -> Option<(Duration, Vec<u64>)> + Send {
    let mut rng = SplitMix64::new(seed);
    move || match schedule.next(&mut || plan::Variates::uniform(&mut rng)) {
        Next::At(t, ids) => Some((Duration::from_nanos(t), ids.collect())),
        Next::End | Next::Limit => None,
    }
}

/// A consumer that runs the plan's logic and, when asked, records what it handled.
fn recording_consumer(
    inner: Box<dyn crate::logic::Consumer<u64>>,
    rec: Option<Arc<Records>>,
) -> impl crate::logic::Consumer<u64> {
    struct Recording {
        inner: Box<dyn crate::logic::Consumer<u64>>,
        rec: Option<Arc<Records>>,
    }
    impl crate::logic::Consumer<u64> for Recording {
        fn handle_events(&mut self, events: Chunk<'_, u64>, ctx: &mut Ctx) {
            if let Some(r) = &self.rec {
                let link = ctx.from().link;
                lock(&r.chunks).push(events.len() as u64);
                lock(&r.events).extend(events.as_slice().iter().map(|&e| (link, e)));
            }
            self.inner.handle_events(events, ctx);
        }

        fn handle_subscribe(&mut self, ctx: &mut Ctx) {
            self.inner.handle_subscribe(ctx);
        }
    }
    Recording { inner, rec }
}

/// A pool job: records the event when asked, then takes its emulated time. Its draws are
/// seeded by the stage and the event id, so they need no shared state.
fn pool_job(
    sp: &StagePlan,
    rec: Option<Arc<Records>>,
    epoch: Instant,
    cut: Option<Instant>,
) -> impl crate::logic::Job<u64> {
    struct PoolJob {
        service: ServiceModel,
        seed: u64,
        rec: Option<Arc<Records>>,
        epoch: Instant,
        cut: Option<Instant>,
    }
    impl crate::logic::Job<u64> for PoolJob {
        fn run(&self, e: u64) {
            self.run_from(SubRef::first(0), e)
        }

        fn run_from(&self, from: SubRef, e: u64) {
            if let Some(r) = &self.rec {
                lock(&r.events).push((from.link, e));
            }
            let at = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
            let mut rng = SplitMix64::new(self.seed ^ mix64(e));
            busy_wait(self.service.job_ns(at, &mut rng), self.cut);
        }
    }
    PoolJob {
        service: sp.service.clone(),
        seed: sp.seed,
        rec,
        epoch,
        cut,
    }
}

/// The plan's service time as busy work, and its `crash_after_events` faults.
struct Emulate {
    service: ServiceModel,
    crashes: Crashes,
    rng: SplitMix64,
    cut: Option<Instant>,
}

impl StageHook for Emulate {
    fn after_step(&mut self, step: &StepInfo) -> Option<CancelReason> {
        let at = u64::try_from(step.at.as_nanos()).unwrap_or(u64::MAX);
        busy_wait(
            self.service
                .step_ns(step.events, step.batches, at, &mut self.rng),
            self.cut,
        );
        if step.events == 0 {
            return None;
        }
        let i = self.crashes.due_after_events(step.progress)?;
        self.crashes.get(i).map(|c| c.reason())
    }
}

/// Spins for `ns` of wall time (an emulated service time keeps its core busy), but not
/// past the run's cut.
fn busy_wait(ns: u64, cut: Option<Instant>) {
    if ns == 0 {
        return;
    }
    let now = Instant::now();
    let end = now
        .checked_add(Duration::from_nanos(ns))
        .into_iter()
        .chain(cut)
        .min()
        .unwrap_or(now);
    while Instant::now() < end {
        std::hint::spin_loop();
    }
}
