//! The discrete-event scheduler: a virtual clock, an event queue, and one single-server
//! mailbox per stage around the engine's [`StageCore`].
//!
//! *What it decides:* only **when** things happen. A message reaches a stage's mailbox
//! after the link's latency; the stage takes one message at a time; the core handles it at
//! once and the scheduler charges a service time drawn from the stage's model for what the
//! core did (`per_event` times the events handled or emitted, whichever is larger, plus
//! `per_batch` per batch received or `handle_demand` call); the messages the core produced
//! leave when that service ends. A service of 0 ns completes at once. With `cores = K`, at
//! most K services (and pool jobs) run at the same time; the others wait, first come first
//! served. Predicting the threads runtime (with [`crate::RuntimeCosts`]), a stage that
//! still has mail keeps its core for up to `POOL_BUDGET` messages, as on the worker pool.
//!
//! *What it must not do:* re-implement anything of the engine's semantics (demand,
//! dispatch, buffering, cancellation and accounting are the core's), read a clock, draw
//! from an unseeded RNG, or iterate a hash map.
//!
//! Choices, each documented in the README ("The simulator"):
//! - a crash at time T that finds the stage in the middle of a service takes effect when
//!   that service ends (its messages are already committed), so per-link FIFO holds;
//! - messages that reach a stopped stage are handed to its stopped core at once (at no
//!   cost): events are counted lost there, a late subscription is answered with a cancel;
//! - a restart builds a **fresh core** (`plan::core`) whose subscriptions are moved to the
//!   next generation with `reset_inputs_for_restart` (once per earlier incarnation), then
//!   starts it; the figures of earlier incarnations are summed into the stage's; a fresh
//!   accumulating producer whose `forward_at_us` has passed is switched to forward at once;
//! - a push source whose schedule is exhausted is shut down (`Input::Shutdown`) right
//!   after its last arrival, so the pipeline drains and the run ends.

use std::collections::VecDeque;
use std::ops::RangeInclusive;

use flowbench_engine::plan::{
    self, Crashes, Next, PlanOptions, PushSchedule, RunPlan, Runtime, ServiceModel,
};
use flowbench_engine::report::{LinkFigures, StageFigures};
use flowbench_engine::scenario::{CrashTrigger, Dist, Scenario};
use flowbench_engine::{
    Demand, Downstream, Effects, Input, Outgoing, StageCore, StageKind, StageStats, SubRef,
};

use crate::error::{DeadlockReport, SimError};
use crate::latency::Histogram;
use crate::outcome::{Ended, SimOutcome};
use crate::queue::EventQueue;
use crate::rng::{arrival_stream, link_stream, stage_stream, Stream};
use crate::series::{LinkSeries, Series, StageSeries, MAX_SAMPLES};
use crate::trace::{Kind, Tap};

type In = Input<u64, u64>;

/// Something due at a virtual time.
enum Ev {
    /// A message (or arrival, or switch) reaches a stage's mailbox.
    Deliver { to: u32, input: In },
    /// A stage's current service ends.
    Done { stage: u32 },
    /// A pool job may start (with `cores = K`).
    JobReady { stage: u32, sub: SubRef, event: u64 },
    /// A pool job ends.
    JobEnd { stage: u32, sub: SubRef, event: u64 },
    /// The next push arrival of a source.
    Arrival { stage: u32 },
    /// `crash_at_us` of fault `fault`.
    CrashAt { stage: u32, fault: u32 },
    /// A crashed stage comes back.
    Restart { stage: u32 },
}

/// What one step of the run did.
pub(crate) enum Step {
    /// Handled an item due at this time.
    Took(u64),
    /// Nothing is scheduled any more.
    Empty,
    /// The next item is past the run's `until`.
    Cut,
}

/// Messages a stage of the threads runtime's worker pool takes before it yields its
/// worker (`BUDGET` in the engine's `threads::sched`); the simulator slices the same way
/// when it predicts the threads runtime.
const POOL_BUDGET: u32 = 64;

/// Work waiting for a core (with `cores = K`).
#[derive(Clone, Copy)]
enum Task {
    Stage(u32),
    Job { stage: u32, sub: SubRef, event: u64 },
}

struct ArrivalRt {
    sched: PushSchedule,
    rng: Stream,
    next: Option<(u64, RangeInclusive<u64>)>,
}

#[derive(Clone, Copy)]
struct Snap {
    handled: u64,
    emitted: u64,
    batches: u64,
}

impl Snap {
    #[inline]
    fn of(s: &StageStats) -> Self {
        Snap {
            handled: s.handled,
            emitted: s.emitted,
            batches: s.batches_in + s.demand_calls,
        }
    }
}

struct StageRt {
    name: String,
    kind: StageKind,
    core: StageCore<u64, u64>,
    mailbox: VecDeque<In>,
    busy_until: Option<u64>,
    busy_ns: u64,
    job_ns: u64,
    slots: u64,
    in_ready: bool,
    service: ServiceModel,
    rng: Stream,
    crashes: Crashes,
    pending_crash: Option<usize>,
    restart_pending: bool,
    /// A restart was due but nobody could subscribe to the fresh incarnation.
    not_restarted: bool,
    incarnation: u32,
    retired: Option<StageFigures>,
    arrivals: Option<ArrivalRt>,
    /// First id of a `range` / `counter` source: the n-th event emitted is `base + n`.
    id_base: Option<u64>,
    /// With runtime costs: what dispatching one emitted event costs, picoseconds.
    dispatch_ps: u64,
    /// With runtime costs: messages taken in a row on the current core.
    slice: u32,
    held: u64,
    mailbox_peak: u64,
}

impl StageRt {
    fn new(sp: plan::StagePlan, core: StageCore<u64, u64>, seed: u64) -> Self {
        let arrivals = sp.push.map(|sched| ArrivalRt {
            sched,
            rng: Stream::named(seed, &arrival_stream(&sp.name)),
            next: None,
        });
        StageRt {
            kind: sp.kind,
            core,
            mailbox: VecDeque::new(),
            busy_until: None,
            busy_ns: 0,
            job_ns: 0,
            slots: sp.pool_width,
            in_ready: false,
            service: sp.service,
            rng: Stream::named(seed, &stage_stream(&sp.name)),
            crashes: sp.crashes,
            pending_crash: None,
            restart_pending: false,
            not_restarted: false,
            incarnation: 0,
            retired: None,
            arrivals,
            id_base: sp.id_base,
            dispatch_ps: 0,
            slice: 0,
            held: 0,
            mailbox_peak: 0,
            name: sp.name,
        }
    }

    #[inline]
    fn runnable(&self) -> bool {
        self.busy_until.is_none() && !self.mailbox.is_empty() && !self.core.is_stopped()
    }

    /// The service time of a step that handled or emitted `events` events and received
    /// `batches` batches or `handle_demand` calls, starting at `at` (the plan's rule).
    #[inline]
    fn service_ns(&mut self, events: u64, batches: u64, at: u64) -> u64 {
        self.service.step_ns(events, batches, at, &mut self.rng)
    }

    /// Events handled or emitted over every incarnation (for `crash_after_events`).
    fn progress(&self) -> u64 {
        let s = self.core.stats();
        let (h, e) = self
            .retired
            .as_ref()
            .map_or((0, 0), |r| (r.stats.handled, r.stats.emitted));
        (h + s.handled).max(e + s.emitted)
    }

    fn figures(&self) -> StageFigures {
        let mut f = StageFigures::capture(&self.name, &self.core);
        if let Some(old) = &self.retired {
            f = f.after(old);
        }
        f.mailbox_peak = self.mailbox_peak;
        f.busy_ns = self.busy_ns;
        if self.not_restarted {
            f.exit += " (not restarted: no consumer subscribes again)";
        }
        f
    }
}

struct LinkRt {
    producer: u32,
    consumer: u32,
    /// Its demand bounds (the scenario's, unless changed while the run goes on).
    demand: Demand,
    latency: Option<(Dist, Stream)>,
    last_up: u64,
    last_down: u64,
}

impl LinkRt {
    /// When a message sent at `t` arrives: after the latency, and never before an earlier
    /// message in the same direction (per-link FIFO).
    #[inline(always)]
    fn arrival(&mut self, t: u64, up: bool) -> u64 {
        let lat = match self.latency.as_mut() {
            Some((d, rng)) => rng.sample(d),
            None => 0,
        };
        let last = if up {
            &mut self.last_up
        } else {
            &mut self.last_down
        };
        let at = t.saturating_add(lat).max(*last);
        *last = at;
        at
    }
}

#[inline]
fn input_events(input: &In) -> u64 {
    match input {
        Input::Down(Downstream::Events { batch, .. }) => batch.len() as u64,
        Input::Arrive(ids) => ids.len() as u64,
        _ => 0,
    }
}

/// What the caller chose for this run (resolved from [`crate::SimOptions`]).
pub(crate) struct Setup {
    pub seed: u64,
    pub events: Option<u64>,
    pub until_ns: Option<u64>,
    pub sample_ns: u64,
    pub costs: Option<crate::RuntimeCosts>,
    /// Compute the trace hash.
    pub hash: bool,
}

pub(crate) struct Sim<'s, 'w> {
    scenario: &'s Scenario,
    popts: PlanOptions,
    until: Option<u64>,
    now: u64,
    queue: EventQueue<Ev>,
    stages: Vec<StageRt>,
    links: Vec<LinkRt>,
    limit: Option<u32>,
    busy_cores: u32,
    ready: VecDeque<Task>,
    fx: Effects<u64, u64>,
    jobs: Vec<(SubRef, u64)>,
    tap: Tap<'w>,
    hist: Histogram,
    series: Series,
    next_sample: u64,
    transit: u64,
    held_total: u64,
    mem_peak: u64,
    messages: u64,
    /// The first stage whose service would end past the end of virtual time.
    overflow: Option<usize>,
    /// The threads runtime's own costs, when predicting it.
    costs: Option<crate::RuntimeCosts>,
}

/// The source stages whose events can come down each link (walking up through
/// producer-consumers), in stage order. Linear in the size of the graph for a chain:
/// each stage's sources are found once and shared by its links.
fn link_sources(s: &Scenario) -> Vec<Vec<u32>> {
    let n = s.stages.len();
    let mut inputs: Vec<Vec<usize>> = vec![Vec::new(); n];
    for l in &s.links {
        inputs[l.consumer].push(l.producer);
    }
    // memo[i]: the sources of stage i, found by an explicit depth-first walk (no
    // recursion, so a deep chain cannot overflow the stack). A cycle, which validation
    // does not allow, would only be cut short.
    let mut memo: Vec<Option<Vec<u32>>> = vec![None; n];
    let mut entered = vec![false; n];
    for start in 0..n {
        let mut stack = vec![(start, false)];
        while let Some((i, expanded)) = stack.pop() {
            if memo[i].is_some() {
                continue;
            }
            if s.stages[i].kind == StageKind::Producer {
                memo[i] = Some(vec![i as u32]);
                continue;
            }
            if !expanded {
                if entered[i] {
                    continue;
                }
                entered[i] = true;
                stack.push((i, true));
                stack.extend(
                    inputs[i]
                        .iter()
                        .filter(|&&p| memo[p].is_none() && !entered[p])
                        .map(|&p| (p, false)),
                );
                continue;
            }
            let mut out: Vec<u32> = inputs[i]
                .iter()
                .flat_map(|&p| memo[p].iter().flatten().copied())
                .collect();
            out.sort_unstable();
            out.dedup();
            memo[i] = Some(out);
        }
    }
    s.links
        .iter()
        .map(|l| memo[l.producer].clone().unwrap_or_default())
        .collect()
}

impl<'s, 'w> Sim<'s, 'w> {
    pub(crate) fn new(
        scenario: &'s Scenario,
        setup: &Setup,
        trace: Option<Box<dyn std::io::Write + 'w>>,
    ) -> Result<Self, SimError> {
        let seed = setup.seed;
        let popts = PlanOptions {
            events: setup.events,
            seed,
            until_ns: setup.until_ns,
        };
        let plan =
            RunPlan::new(scenario, &popts, Runtime::Sim).map_err(|e| SimError::plan(seed, e))?;
        let mut stages: Vec<StageRt> = plan
            .stages
            .into_iter()
            .zip(plan::cores(scenario, &popts))
            .map(|(sp, core)| StageRt::new(sp, core, seed))
            .collect();
        if let Some(c) = &setup.costs {
            for (i, st) in stages.iter_mut().enumerate() {
                let outputs = scenario.links.iter().filter(|l| l.producer == i).count();
                st.dispatch_ps = c.dispatch_ps(&scenario.stages[i].dispatcher, outputs);
            }
        }
        let links = Self::links(scenario, seed);
        let names: Vec<String> = scenario.stages.iter().map(|s| s.name.clone()).collect();
        let ends = links.iter().map(|l| (l.producer, l.consumer)).collect();
        let mut tap = Tap::new(&names, ends, link_sources(scenario), trace);
        tap.hashing = setup.hash;
        for (i, st) in scenario.stages.iter().enumerate() {
            use flowbench_engine::scenario::{PushDef, SourceDef};
            let ascending = matches!(
                st.source,
                Some(
                    SourceDef::Range { .. }
                        | SourceDef::Counter { .. }
                        | SourceDef::Push(PushDef::Poisson { .. } | PushDef::Bursts { .. })
                )
            );
            if ascending {
                tap.births.expect_ascending(i);
            }
        }
        let series = Series {
            interval_ns: setup.sample_ns,
            t_ns: Vec::new(),
            stages: stages
                .iter()
                .map(|s| StageSeries {
                    name: s.name.clone(),
                    slots: s.slots,
                    ..StageSeries::default()
                })
                .collect(),
            links: scenario
                .links
                .iter()
                .map(|l| LinkSeries {
                    producer: names[l.producer].clone(),
                    consumer: names[l.consumer].clone(),
                    outstanding: Vec::new(),
                })
                .collect(),
        };
        Ok(Sim {
            scenario,
            popts,
            until: setup.until_ns,
            now: 0,
            queue: EventQueue::new(),
            stages,
            links,
            limit: scenario.cores.or(setup.costs.map(|c| c.cores.max(1))),
            // When stages outnumber cores, messages cost what a crowded machine charges.
            costs: setup.costs.map(|mut c| {
                if scenario.stages.len() > c.cores as usize {
                    c.message_ns = c.crowded_message_ns;
                }
                c
            }),
            busy_cores: 0,
            ready: VecDeque::new(),
            fx: Effects::default(),
            jobs: Vec::new(),
            tap,
            hist: Histogram::new(),
            series,
            next_sample: 0,
            transit: 0,
            held_total: 0,
            mem_peak: 0,
            messages: 0,
            overflow: None,
        })
    }

    /// The links of `scenario`, each with its latency stream.
    fn links(scenario: &Scenario, seed: u64) -> Vec<LinkRt> {
        let mut links = Vec::with_capacity(scenario.links.len());
        // How many earlier subscriptions join the same two stages (for the stream name).
        let mut seen: std::collections::BTreeMap<(usize, usize), usize> = Default::default();
        for l in &scenario.links {
            let count = seen.entry((l.producer, l.consumer)).or_insert(0);
            let repeat = *count;
            *count += 1;
            let name = link_stream(
                &scenario.stages[l.producer].name,
                &scenario.stages[l.consumer].name,
                repeat,
            );
            links.push(LinkRt {
                producer: l.producer as u32,
                consumer: l.consumer as u32,
                demand: l.demand,
                latency: l.latency.map(|d| (d, Stream::named(seed, &name))),
                last_up: 0,
                last_down: 0,
            });
        }
        links
    }

    /// Runs to the end; `wall` measures the elapsed wall time for the summary only.
    pub(crate) fn run(mut self, wall: impl FnOnce() -> f64) -> Result<SimOutcome, SimError> {
        self.init();
        let cut = loop {
            match self.step_one()? {
                Step::Took(_) => {}
                Step::Empty => break false,
                Step::Cut => break true,
            }
        };
        self.finish(cut, wall)
    }

    /// The time of the next scheduled item, if any (before the cut).
    pub(crate) fn next_time(&self) -> Option<u64> {
        self.queue
            .peek_time()
            .filter(|&t| self.until.is_none_or(|u| t <= u))
    }

    /// The virtual time now.
    pub(crate) fn now(&self) -> u64 {
        self.now
    }

    /// Takes and handles the next scheduled item.
    #[inline(always)]
    pub(crate) fn step_one(&mut self) -> Result<Step, SimError> {
        loop {
            let Some(t) = self.queue.peek_time() else {
                return Ok(Step::Empty);
            };
            if self.until.is_some_and(|u| t > u) {
                return Ok(Step::Cut);
            }
            let Some((t, ev)) = self.queue.pop() else {
                return Ok(Step::Empty);
            };
            if self.idle_timer(&ev) {
                // It can no longer change anything: it must not move the clock.
                continue;
            }
            self.sample_until(t);
            self.now = t;
            self.dispatch(ev);
            if let Some(s) = self.overflow {
                let name = self.stages[s].name.clone();
                return Err(SimError::time_overflow(self.popts.seed, &name, self.now));
            }
            return Ok(Step::Took(t));
        }
    }

    /// Ends the run (`cut`: at its `until`): last samples, the trace, the deadlock check
    /// and the outcome.
    #[inline(never)]
    pub(crate) fn finish(
        mut self,
        cut: bool,
        wall: impl FnOnce() -> f64,
    ) -> Result<SimOutcome, SimError> {
        let end = match (cut, self.until) {
            (true, Some(u)) => u,
            _ => self.now,
        };
        self.sample_until(end);
        if self.series.interval_ns > 0 && self.series.t_ns.last() != Some(&end) {
            self.take_sample(end);
        }
        self.now = end;
        let seed = self.popts.seed;
        if let Err(e) = self.tap.finish() {
            return Err(SimError::trace(seed, e));
        }
        let deadlock = (!cut).then(|| self.stuck()).flatten();
        let outcome = self.outcome(cut, wall());
        match deadlock {
            Some(report) => Err(SimError::deadlocked(seed, report, outcome)),
            None => Ok(outcome),
        }
    }

    /// What every stage and subscription holds now.
    #[inline(never)]
    pub(crate) fn snapshot(&self) -> crate::step::Snapshot {
        use crate::step::{LinkView, Snapshot, StageView};
        let stages = self
            .stages
            .iter()
            .map(|st| {
                let f = st.figures();
                StageView {
                    name: st.name.clone(),
                    mailbox: st.mailbox.len() as u64,
                    buffered: st.core.buffered(),
                    queued: st.core.dispatcher_queued() + st.core.input_queued(),
                    busy: st.busy_until.is_some(),
                    busy_ns: if st.kind == StageKind::ConsumerPool {
                        st.job_ns
                    } else {
                        let ahead = st.busy_until.map_or(0, |u| u.saturating_sub(self.now));
                        st.busy_ns.saturating_sub(ahead)
                    },
                    slots: st.slots.max(1),
                    emitted: f.stats.emitted,
                    handled: f.stats.handled,
                    dropped: f.stats.dropped,
                    lost: f.stats.lost_in + f.stats.lost_out,
                    exit: st.core.is_stopped().then(|| f.exit.clone()),
                }
            })
            .collect();
        let mut links: Vec<LinkView> = self
            .links
            .iter()
            .map(|l| LinkView {
                producer: self.stages[l.producer as usize].name.clone(),
                consumer: self.stages[l.consumer as usize].name.clone(),
                max_demand: l.demand.max(),
                min_demand: l.demand.min(),
                outstanding: 0,
            })
            .collect();
        for st in &self.stages {
            for l in st.core.in_links() {
                if let Some(v) = links.get_mut(l.link as usize) {
                    v.outstanding = l.pending;
                }
            }
        }
        Snapshot {
            t_ns: self.now,
            stages,
            links,
        }
    }

    /// A timer that finds nothing to act on: a crash of a stage that is down for good, a
    /// switch to forward of a stage that has stopped.
    fn idle_timer(&self, ev: &Ev) -> bool {
        let gone = |s: u32| {
            let st = &self.stages[s as usize];
            st.core.is_stopped() && !st.restart_pending && st.busy_until.is_none()
        };
        match ev {
            Ev::CrashAt { stage, .. } => gone(*stage),
            Ev::Deliver {
                to,
                input: Input::Forward,
            } => gone(*to),
            _ => false,
        }
    }

    #[inline(never)]
    pub(crate) fn init(&mut self) {
        for s in 0..self.stages.len() {
            self.stages[s].mailbox.push_back(Input::Start);
        }
        for s in 0..self.stages.len() {
            let sd = &self.scenario.stages[s];
            if let Some(t) = sd.forward_at_ns {
                self.queue.push(
                    t,
                    Ev::Deliver {
                        to: s as u32,
                        input: Input::Forward,
                    },
                );
            }
            for (i, t) in self.stages[s].crashes.timers() {
                self.queue.push(
                    t,
                    Ev::CrashAt {
                        stage: s as u32,
                        fault: i as u32,
                    },
                );
            }
            if let Some(a) = self.stages[s].arrivals.as_mut() {
                let ArrivalRt { sched, rng, next } = a;
                *next = match sched.next(&mut || rng.uniform()) {
                    Next::At(t, ids) => Some((t, ids)),
                    Next::End | Next::Limit => None,
                };
                match next {
                    Some((t, _)) => self.queue.push(*t, Ev::Arrival { stage: s as u32 }),
                    None => {
                        self.tap.at(0);
                        self.tap.delivery(&Input::Shutdown, s);
                        self.stages[s].mailbox.push_back(Input::Shutdown);
                    }
                }
            }
        }
        for s in 0..self.stages.len() {
            self.wake(s);
        }
    }

    #[inline(always)]
    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Deliver { to, input } => self.deliver(to as usize, input),
            Ev::Done { stage } => self.done(stage as usize),
            Ev::JobReady { stage, sub, event } => self.job_ready(stage, sub, event),
            Ev::JobEnd { stage, sub, event } => self.job_end(stage as usize, sub, event),
            Ev::Arrival { stage } => self.arrival(stage as usize),
            Ev::CrashAt { stage, fault } => self.crash_at(stage as usize, fault as usize),
            Ev::Restart { stage } => self.restart(stage as usize),
        }
    }

    // ---- delivering and serving -------------------------------------------------------

    #[inline(always)]
    fn deliver(&mut self, to: usize, input: In) {
        if matches!(input, Input::Up(_) | Input::Down(_)) {
            self.messages += 1;
        }
        self.tap.at(self.now);
        self.tap.delivery(&input, to);
        let st = &mut self.stages[to];
        if st.core.is_stopped() && st.busy_until.is_none() {
            self.transit -= input_events(&input);
            self.handle_stopped(to, input);
            return;
        }
        if self.limit.is_none() && st.mailbox.is_empty() && st.busy_until.is_none() {
            // An idle stage with an empty mailbox takes the message at once: the same as
            // queueing it and serving the queue, without moving it twice.
            st.mailbox_peak = st.mailbox_peak.max(1);
            self.transit -= input_events(&input);
            let d = self.step(to, input);
            self.after_step(to, d);
            return;
        }
        st.mailbox.push_back(input);
        st.mailbox_peak = st.mailbox_peak.max(st.mailbox.len() as u64);
        self.wake(to);
    }

    /// A stopped core takes a message at once and at no cost (it only counts losses and
    /// answers late subscriptions).
    fn handle_stopped(&mut self, s: usize, input: In) {
        self.tap.enter(s, false, self.now);
        self.stages[s]
            .core
            .handle(input, &mut self.fx, &mut self.tap);
        self.route(s, self.now);
        self.refresh_held(s);
    }

    fn drain_stopped(&mut self, s: usize) {
        while let Some(input) = self.stages[s].mailbox.pop_front() {
            self.transit -= input_events(&input);
            self.handle_stopped(s, input);
        }
    }

    /// Lets stage `s` take its next message if it can (now, or when a core frees up).
    fn wake(&mut self, s: usize) {
        if self.limit.is_none() {
            self.serve(s);
            return;
        }
        let st = &mut self.stages[s];
        if st.runnable() && !st.in_ready {
            st.in_ready = true;
            self.ready.push_back(Task::Stage(s as u32));
        }
        self.dispatch_ready();
    }

    fn dispatch_ready(&mut self) {
        let Some(k) = self.limit else { return };
        while self.busy_cores < k {
            let Some(task) = self.ready.pop_front() else {
                break;
            };
            match task {
                Task::Stage(s) => {
                    let st = &mut self.stages[s as usize];
                    st.in_ready = false;
                    // A fresh slice on the core it gets.
                    st.slice = 0;
                    self.serve(s as usize);
                }
                Task::Job { stage, sub, event } => self.start_job(stage, sub, event, self.now),
            }
        }
    }

    /// Handles messages of stage `s` until one takes time (or the mailbox is empty).
    /// With `cores = K` the caller has checked that a core is free.
    fn serve(&mut self, s: usize) {
        loop {
            let st = &mut self.stages[s];
            if !st.runnable() {
                return;
            }
            let Some(input) = st.mailbox.pop_front() else {
                return;
            };
            self.transit -= input_events(&input);
            let d = self.step(s, input);
            if !self.after_step(s, d) {
                return;
            }
        }
    }

    /// After a step of `d` ns: marks the stage busy until it ends, or, for a step that
    /// took no time, lets a stopped stage drain its mailbox. Returns `true` if the stage
    /// may take its next message now.
    #[inline]
    fn after_step(&mut self, s: usize, d: u64) -> bool {
        if d > 0 {
            let done = self.end_of(s, d);
            let st = &mut self.stages[s];
            st.busy_until = Some(done);
            st.busy_ns = st.busy_ns.saturating_add(d);
            if self.limit.is_some() {
                self.busy_cores += 1;
            }
            self.queue.push(done, Ev::Done { stage: s as u32 });
            return false;
        }
        if self.stages[s].core.is_stopped() {
            self.drain_stopped(s);
            return false;
        }
        true
    }

    /// The core handles one input now; returns the service time charged for it. The
    /// messages it produced leave when the service ends.
    fn step(&mut self, s: usize, input: In) -> u64 {
        let message = matches!(input, Input::Up(_) | Input::Down(_));
        let now = self.now;
        let st = &mut self.stages[s];
        let before = Snap::of(st.core.stats());
        self.tap.enter(s, st.kind == StageKind::Consumer, now);
        st.core.handle(input, &mut self.fx, &mut self.tap);
        let after = Snap::of(st.core.stats());
        let emitted = after.emitted - before.emitted;
        let events = (after.handled - before.handled).max(emitted);
        let mut d = st.service_ns(events, after.batches - before.batches, now);
        if let Some(c) = &self.costs {
            let dispatch = st.dispatch_ps.saturating_mul(emitted);
            d = d.saturating_add(c.step_ns(message, events, dispatch));
        }
        if emitted > 0 {
            if let Some(base) = st.id_base {
                let first = base.wrapping_add(before.emitted);
                self.tap
                    .births
                    .push(s, first, first.wrapping_add(emitted - 1), now);
            }
        }
        let done = self.end_of(s, d);
        if events > 0 {
            self.crash_after_events(s, done);
        }
        for (born, n) in self.tap.born.drain(..) {
            self.hist.record_n(done.saturating_sub(born), n);
        }
        self.route(s, done);
        self.refresh_held(s);
        d
    }

    /// When a service of `d` ns that starts now ends. Virtual time is a `u64` of ns; a
    /// service that would end past it (a huge service time or slowdown) fails the run.
    fn end_of(&mut self, s: usize, d: u64) -> u64 {
        // A draw or slowdown past the range saturates at u64::MAX: that is past the end too.
        match self.now.checked_add(d) {
            Some(t) if t < u64::MAX => t,
            _ => {
                self.overflow.get_or_insert(s);
                u64::MAX
            }
        }
    }

    /// Sends what the core produced: messages leave at `t` (plus link latency); pool jobs
    /// start at `t`.
    fn route(&mut self, from: usize, t: u64) {
        let Sim {
            fx,
            queue,
            links,
            transit,
            ..
        } = self;
        for o in fx.out.drain(..) {
            match o {
                Outgoing::Up(m) => {
                    let Some(link) = links.get_mut(m.sub().link as usize) else {
                        continue;
                    };
                    let to = link.producer;
                    // A producer's refund to itself does not travel.
                    let at = if to as usize == from {
                        t
                    } else {
                        link.arrival(t, true)
                    };
                    queue.push(
                        at,
                        Ev::Deliver {
                            to,
                            input: Input::Up(m),
                        },
                    );
                }
                Outgoing::Down(m) => {
                    let Some(link) = links.get_mut(m.sub().link as usize) else {
                        continue;
                    };
                    if let Downstream::Events { batch, .. } = &m {
                        *transit += batch.len() as u64;
                    }
                    let at = link.arrival(t, false);
                    queue.push(
                        at,
                        Ev::Deliver {
                            to: link.consumer,
                            input: Input::Down(m),
                        },
                    );
                }
            }
        }
        if fx.jobs.is_empty() {
            return;
        }
        std::mem::swap(&mut self.jobs, &mut self.fx.jobs);
        let mut jobs = std::mem::take(&mut self.jobs);
        let stage = from as u32;
        for (sub, event) in jobs.drain(..) {
            match self.limit {
                None => self.start_job(stage, sub, event, t),
                Some(_) if t == self.now => self.job_ready(stage, sub, event),
                Some(_) => self.queue.push(t, Ev::JobReady { stage, sub, event }),
            }
        }
        self.jobs = jobs;
    }

    fn refresh_held(&mut self, s: usize) {
        let st = &mut self.stages[s];
        let h = st.core.buffered() + st.core.dispatcher_queued() + st.core.input_queued();
        self.held_total = self.held_total - st.held + h;
        st.held = h;
        self.mem_peak = self.mem_peak.max(self.held_total + self.transit);
    }

    fn done(&mut self, s: usize) {
        self.stages[s].busy_until = None;
        if self.limit.is_some() {
            self.busy_cores -= 1;
        }
        if let Some(f) = self.stages[s].pending_crash.take() {
            self.apply_crash(s, f);
        }
        if self.stages[s].core.is_stopped() {
            self.drain_stopped(s);
        }
        if self.costs.is_some() {
            // Predicting the worker pool (costs always come with a core limit): a stage
            // keeps its worker for a slice of up to `POOL_BUDGET` messages instead of
            // queueing behind the others after each.
            let st = &mut self.stages[s];
            if st.runnable() && !st.in_ready && st.slice < POOL_BUDGET {
                st.slice += 1;
                self.serve(s);
                self.dispatch_ready();
                return;
            }
            st.slice = 0;
        }
        self.wake(s);
    }

    // ---- pool jobs ----------------------------------------------------------------------

    fn job_ready(&mut self, stage: u32, sub: SubRef, event: u64) {
        let free = self.limit.is_none_or(|k| self.busy_cores < k);
        if free && self.ready.is_empty() {
            self.start_job(stage, sub, event, self.now);
        } else {
            self.ready.push_back(Task::Job { stage, sub, event });
        }
    }

    fn start_job(&mut self, stage: u32, sub: SubRef, event: u64, t: u64) {
        let st = &mut self.stages[stage as usize];
        let d = st.service.job_ns(t, &mut st.rng);
        st.job_ns += d;
        if self.limit.is_some() {
            self.busy_cores += 1;
        }
        self.queue
            .push(t.saturating_add(d), Ev::JobEnd { stage, sub, event });
    }

    fn job_end(&mut self, s: usize, sub: SubRef, event: u64) {
        match self.tap.born_of(sub.link, event) {
            Some(born) => self.hist.record(self.now.saturating_sub(born)),
            None => self.tap.unmeasured += 1,
        }
        if self.limit.is_some() {
            self.busy_cores -= 1;
        }
        self.deliver(s, Input::JobDone { sub });
        self.dispatch_ready();
    }

    // ---- arrivals, faults, restarts -------------------------------------------------------

    fn arrival(&mut self, s: usize) {
        let now = self.now;
        let st = &mut self.stages[s];
        let gone = st.core.is_stopped() && !st.restart_pending;
        let Some(a) = st.arrivals.as_mut() else {
            return;
        };
        let Some((_, ids)) = a.next.take() else {
            return;
        };
        let ids: Vec<u64> = ids.collect();
        let mut exhausted = false;
        if !gone {
            let ArrivalRt { sched, rng, next } = a;
            match sched.next(&mut || rng.uniform()) {
                Next::At(t, ids) => {
                    *next = Some((t, ids));
                    self.queue.push(t.max(now), Ev::Arrival { stage: s as u32 });
                }
                Next::End => exhausted = true,
                Next::Limit => {}
            }
        }
        if let (Some(&first), Some(&last)) = (ids.first(), ids.last()) {
            self.tap.births.push(s, first, last, now);
        }
        self.transit += ids.len() as u64;
        self.mem_peak = self.mem_peak.max(self.held_total + self.transit);
        self.deliver(s, Input::Arrive(ids));
        if exhausted {
            self.deliver(s, Input::Shutdown);
        }
    }

    fn crash_at(&mut self, s: usize, fault: usize) {
        let st = &mut self.stages[s];
        if !st.crashes.fire_at(fault) || st.core.is_stopped() {
            return;
        }
        if st.busy_until.is_some() {
            st.pending_crash = Some(fault);
        } else {
            self.apply_crash(s, fault);
        }
    }

    /// A crash at time T (or at the end of the service that was running at T).
    fn apply_crash(&mut self, s: usize, fault: usize) {
        let now = self.now;
        let st = &mut self.stages[s];
        if st.core.is_stopped() {
            return;
        }
        let Some(c) = st.crashes.get(fault) else {
            return;
        };
        let reason = c.reason();
        let restart = c.restart_after_ns;
        self.tap.enter(s, false, now);
        self.tap.crash(s, &reason);
        st.core
            .handle(Input::Crash(reason), &mut self.fx, &mut self.tap);
        self.route(s, now);
        self.refresh_held(s);
        if let Some(delay) = restart {
            self.stages[s].restart_pending = true;
            self.queue
                .push(now.saturating_add(delay), Ev::Restart { stage: s as u32 });
        }
        self.drain_stopped(s);
    }

    /// `crash_after_events`: checked after each step that handled or emitted events; the
    /// crash is handled in the same step, so its cancels leave with the step's messages.
    fn crash_after_events(&mut self, s: usize, done: u64) {
        let st = &mut self.stages[s];
        if st.crashes.is_empty() || st.core.is_stopped() {
            return;
        }
        let progress = st.progress();
        let Some(c) = st
            .crashes
            .due_after_events(progress)
            .and_then(|i| st.crashes.get(i))
        else {
            return;
        };
        let reason = c.reason();
        let restart = c.restart_after_ns;
        self.tap.crash(s, &reason);
        st.core
            .handle(Input::Crash(reason), &mut self.fx, &mut self.tap);
        if let Some(delay) = restart {
            st.restart_pending = true;
            self.queue
                .push(done.saturating_add(delay), Ev::Restart { stage: s as u32 });
        }
    }

    /// Whether a consumer of stage `s` can still subscribe to it: only one that restarts
    /// (and so subscribes again with its original options) can — one whose restart is
    /// due, or a running one with a crash fault still to fire that restarts it.
    fn may_be_subscribed_again(&self, s: usize) -> bool {
        self.links
            .iter()
            .filter(|l| l.producer as usize == s)
            .any(|l| {
                let c = &self.stages[l.consumer as usize];
                c.restart_pending
                    || (!c.core.is_stopped()
                        && c.crashes
                            .get_all()
                            .any(|f| !f.fired() && f.restart_after_ns.is_some()))
            })
    }

    fn restart(&mut self, s: usize) {
        let st = &mut self.stages[s];
        if let Some(done) = st.busy_until {
            // Crashed during a service that has not ended yet: come back after it (its
            // end, scheduled earlier for the same time, goes first).
            self.queue.push(done, Ev::Restart { stage: s as u32 });
            return;
        }
        st.restart_pending = false;
        if !st.core.is_stopped() {
            return;
        }
        if st.kind.produces() && !self.may_be_subscribed_again(s) {
            // Its consumers do not resubscribe (only a restarted consumer does): a fresh
            // incarnation would wait for subscribers forever. It stays down, and says so.
            self.stages[s].not_restarted = true;
            return;
        }
        let st = &mut self.stages[s];
        st.incarnation += 1;
        let mut core = plan::core(self.scenario, s, &self.popts);
        for _ in 0..st.incarnation {
            core.reset_inputs_for_restart();
        }
        for (i, l) in self.links.iter().enumerate() {
            if l.consumer as usize == s && l.demand != self.scenario.links[i].demand {
                // Changed while the run went on: the fresh core subscribes with it.
                core.set_demand(i as u32, l.demand, &mut self.fx);
            }
        }
        let old = std::mem::replace(&mut st.core, core);
        let fig = StageFigures::capture(&st.name, &old);
        st.retired = Some(match st.retired.take() {
            Some(r) => fig.after(&r),
            None => fig,
        });
        if st.id_base.is_some() {
            // A fresh range or counter starts again from its first id.
            self.tap.births.ids_may_repeat(s);
        }
        self.tap.at(self.now);
        self.tap.simple(Kind::Restart, s);
        self.stages[s].mailbox.push_front(Input::Start);
        if self.scenario.stages[s]
            .forward_at_ns
            .is_some_and(|t| t <= self.now)
        {
            // The fresh core accumulates again, and its `forward_at_us` has passed (that
            // switch went to the earlier incarnation): it switches now, or never would.
            self.queue.push(
                self.now,
                Ev::Deliver {
                    to: s as u32,
                    input: Input::Forward,
                },
            );
        }
        self.refresh_held(s);
        self.wake(s);
    }

    // ---- changes made while the run goes on (a viewer's keys) -----------------------------

    /// Moves the clock to `t` (never back) without handling anything: a change made
    /// between two scheduled items happens at the time the viewer is at.
    pub(crate) fn move_clock(&mut self, t: u64) {
        if t > self.now {
            self.sample_until(t);
            self.now = t;
        }
    }

    /// Gives subscription `link` new demand bounds now; the consumer asks at once if its
    /// pending demand is at or below the new `min_demand`.
    pub(crate) fn retune(&mut self, link: usize, demand: Demand) -> bool {
        let Some(l) = self.links.get_mut(link) else {
            return false;
        };
        l.demand = demand;
        let (p, c) = (l.producer as usize, l.consumer as usize);
        self.tap.at(self.now);
        self.tap.retune(p, c, demand.max(), demand.min());
        self.stages[c]
            .core
            .set_demand(link as u32, demand, &mut self.fx);
        self.route(c, self.now);
        true
    }

    /// Multiplies stage `s`'s service times by `factor` from now on.
    pub(crate) fn slow(&mut self, s: usize, factor: f64) -> bool {
        if !self.stages[s].service.slow_from(self.now, factor) {
            return false;
        }
        self.tap.at(self.now);
        self.tap.slow(s, factor);
        true
    }

    /// The product of the slowdowns of stage `s` now.
    pub(crate) fn slowdown(&self, s: usize) -> f64 {
        self.stages[s].service.slowdown_at(self.now)
    }

    /// Crashes stage `s` now, as a `crash_at_us` fault at this time would (at the end of
    /// the service running now, if any). `false` if it is down or about to crash.
    pub(crate) fn crash_now(&mut self, s: usize) -> bool {
        let st = &mut self.stages[s];
        if st.core.is_stopped() || st.pending_crash.is_some() {
            return false;
        }
        let fault = st.crashes.push(CrashTrigger::AtNs(self.now), None);
        self.crash_at(s, fault);
        true
    }

    /// Restarts the crashed stage `s` now. `false` if it runs or a restart is due.
    pub(crate) fn restart_now(&mut self, s: usize) -> bool {
        let st = &mut self.stages[s];
        if !st.core.is_stopped() || st.restart_pending {
            return false;
        }
        st.restart_pending = true;
        st.not_restarted = false;
        self.queue.push(self.now, Ev::Restart { stage: s as u32 });
        true
    }

    /// Whether stage `s` is down (crashed, or finished) or about to crash.
    pub(crate) fn is_down(&self, s: usize) -> bool {
        let st = &self.stages[s];
        st.core.is_stopped() || st.pending_crash.is_some()
    }

    /// Hands the records written so far to the trace writer.
    pub(crate) fn flush_trace(&mut self) {
        self.tap.flush_out();
    }

    // ---- sampling -------------------------------------------------------------------------

    fn sample_until(&mut self, t: u64) {
        if self.series.interval_ns == 0 {
            return;
        }
        while self.next_sample <= t {
            let at = self.next_sample;
            self.take_sample(at);
            if self.series.t_ns.len() >= MAX_SAMPLES {
                self.series.thin();
            }
            let iv = self.series.interval_ns;
            self.next_sample = (at / iv + 1).saturating_mul(iv);
            if self.next_sample <= at {
                // The end of time: no further sample instant exists.
                self.next_sample = u64::MAX;
                break;
            }
        }
    }

    fn take_sample(&mut self, at: u64) {
        self.series.t_ns.push(at);
        for (st, ser) in self.stages.iter().zip(&mut self.series.stages) {
            ser.mailbox.push(st.mailbox.len() as u64);
            ser.buffered.push(st.core.buffered());
            ser.queued
                .push(st.core.dispatcher_queued() + st.core.input_queued());
            let busy = if st.kind == StageKind::ConsumerPool {
                st.job_ns
            } else {
                let ahead = st.busy_until.map_or(0, |u| u.saturating_sub(at));
                st.busy_ns.saturating_sub(ahead)
            };
            ser.busy_ns.push(busy);
            let (now, old) = (st.core.stats(), st.retired.as_ref().map(|r| &r.stats));
            ser.dropped.push(now.dropped + old.map_or(0, |o| o.dropped));
            ser.lost
                .push(now.lost_in + now.lost_out + old.map_or(0, |o| o.lost_in + o.lost_out));
        }
        let n = self.series.t_ns.len();
        for st in &self.stages {
            for l in st.core.in_links() {
                if let Some(ls) = self.series.links.get_mut(l.link as usize) {
                    ls.outstanding.push(l.pending);
                }
            }
        }
        for ls in &mut self.series.links {
            ls.outstanding.resize(n, 0);
        }
    }

    // ---- the end ----------------------------------------------------------------------------

    /// At a natural end: a deadlock report if events are still held somewhere or a live
    /// subscription waits for events from a producer that has not finished.
    pub(crate) fn stuck(&self) -> Option<DeadlockReport> {
        let held = self
            .stages
            .iter()
            .any(|s| s.held > 0 || !s.mailbox.is_empty());
        let unmet = self.stages.iter().any(|s| {
            s.core.in_links().any(|l| {
                l.live
                    && l.pending > 0
                    && self
                        .links
                        .get(l.link as usize)
                        .is_some_and(|k| !self.stages[k.producer as usize].core.is_stopped())
            })
        });
        if !held && !unmet {
            return None;
        }
        let figures: Vec<StageFigures> = self
            .stages
            .iter()
            .map(|s| StageFigures::capture(&s.name, &s.core))
            .collect();
        let mailboxes: Vec<u64> = self.stages.iter().map(|s| s.mailbox.len() as u64).collect();
        let links: Vec<(usize, usize)> = self
            .links
            .iter()
            .map(|l| (l.producer as usize, l.consumer as usize))
            .collect();
        Some(DeadlockReport::from_figures(
            self.now, &figures, &mailboxes, &links,
        ))
    }

    fn outcome(&mut self, cut: bool, wall_s: f64) -> SimOutcome {
        let mut links: Vec<LinkFigures> = self
            .links
            .iter()
            .map(|l| LinkFigures {
                producer: l.producer as usize,
                consumer: l.consumer as usize,
                undeliverable: 0,
                in_flight: 0,
            })
            .collect();
        if cut {
            let mut count = |input: &In| {
                if let Input::Down(Downstream::Events { sub, batch }) = input {
                    if let Some(l) = links.get_mut(sub.link as usize) {
                        l.in_flight += batch.len() as u64;
                    }
                }
            };
            for ev in self.queue.items() {
                if let Ev::Deliver { input, .. } = ev {
                    count(input);
                }
            }
            for st in &self.stages {
                st.mailbox.iter().for_each(&mut count);
            }
        }
        let t = self.now;
        // The threads runtime's start and stop, when predicting it.
        let virtual_ns = self
            .costs
            .map_or(t, |c| t.saturating_add(c.run_start_ns(self.stages.len())));
        let busy_fraction = self
            .stages
            .iter()
            .map(|s| {
                if t == 0 {
                    0.0
                } else if s.kind == StageKind::ConsumerPool {
                    (s.job_ns as f64 / (t as f64 * s.slots.max(1) as f64)).min(1.0)
                } else {
                    (s.busy_ns as f64 / t as f64).min(1.0)
                }
            })
            .collect();
        SimOutcome {
            scenario: self.scenario.name.clone(),
            seed: self.popts.seed,
            trace_hash: self.tap.hash(),
            hashed: self.tap.hashing,
            virtual_ns,
            wall_s,
            ended: if cut { Ended::Until } else { Ended::Drained },
            stages: self.stages.iter().map(StageRt::figures).collect(),
            links,
            busy_fraction,
            latency: std::mem::take(&mut self.hist),
            unmeasured: self.tap.unmeasured,
            memory_peak_events: self.mem_peak,
            messages: self.messages,
            records: self.tap.records(),
            duplicate_ids: self
                .tap
                .births
                .duplicates()
                .into_iter()
                .map(|(i, n)| (self.stages[i].name.clone(), n))
                .collect(),
            series: std::mem::take(&mut self.series),
        }
    }
}
