//! The reference driver: a scenario's stage cores wired through one FIFO message queue,
//! with no clock and no threads.
//!
//! It is the simplest runtime that obeys the [plan](mod@crate::plan): every message goes to
//! the back of one queue and is handled in turn; pool jobs finish in the order they
//! started; service times take no time. Timed things — push arrivals, `forward_at_us`,
//! `crash_at_us` — happen in time order, each once the queue has settled, so their times
//! order them but do not interleave with messages. `crash_after_events` faults fire as
//! the plan says. Restarts and link latency are not modelled.
//!
//! It exists so that the worked examples of SEMANTICS.md (the shared corpus in
//! `engine/testdata/`) can be checked without any timing at all, against the same
//! expectations the simulator and the threads runtime meet; and so that a reader can see
//! the whole protocol run in a hundred lines.
//!
//! ```
//! use flowbench_engine::fifo;
//! use flowbench_engine::plan::PlanOptions;
//! use flowbench_engine::scenario::parse_str;
//! let s = parse_str(r#"
//! [[stage]]
//! name = "source"
//! kind = "producer"
//! source = { range = [1, 100] }
//! [[stage]]
//! name = "sink"
//! kind = "consumer"
//! [[subscription]]
//! producer = "source"
//! consumer = "sink"
//! max_demand = 10
//! min_demand = 5
//! "#, "x.toml").unwrap();
//! let out = fifo::run(&s, &PlanOptions::default()).unwrap();
//! assert_eq!(out.asks[1][0], 10);
//! assert!(out.asks[1][1..].iter().all(|&n| n == 5));
//! assert!(out.chunks[1].iter().all(|(_, c)| c.len() == 5));
//! assert!(out.balanced());
//! ```

use std::collections::VecDeque;
use std::fmt;

use crate::core::{Effects, Input, StageCore};
use crate::hash::SplitMix64;
use crate::observe::Observer;
use crate::plan::{self, Next, PlanError, PlanOptions, PushSchedule, RunPlan, Runtime, Variates};
use crate::protocol::{LinkId, Outgoing, StageId, SubRef, Upstream};
use crate::report::{account, LinkFigures, StageFigures};
use crate::scenario::model::Scenario;

/// The most messages one run may handle before it is declared runaway.
pub const MAX_STEPS: u64 = 50_000_000;

/// What a FIFO run saw.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct FifoOutcome {
    /// Per stage, in scenario order.
    pub stages: Vec<StageFigures>,
    /// Per subscription.
    pub links: Vec<LinkFigures>,
    /// Per stage, every chunk it handled, with the link it came on.
    pub chunks: Vec<Vec<(LinkId, Vec<u64>)>>,
    /// Per stage, every ask it sent upstream, in order.
    pub asks: Vec<Vec<u64>>,
}

impl FifoOutcome {
    /// `true` if every producing stage's accounting balanced.
    pub fn balanced(&self) -> bool {
        account(&self.stages, &self.links)
            .iter()
            .all(|b| b.balanced)
    }
}

/// Why a FIFO run could not finish.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FifoError {
    /// The plan refused the scenario.
    Plan(PlanError),
    /// More than [`MAX_STEPS`] messages were handled.
    Runaway,
}

impl fmt::Display for FifoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FifoError::Plan(e) => e.fmt(f),
            FifoError::Runaway => write!(f, "the run handled more than {MAX_STEPS} messages"),
        }
    }
}

impl std::error::Error for FifoError {}

/// Records what a core handled.
struct Chunks<'a>(&'a mut Vec<(LinkId, Vec<u64>)>);

impl Observer<u64, u64> for Chunks<'_> {
    fn handled(&mut self, from: SubRef, events: &[u64]) {
        self.0.push((from.link, events.to_vec()));
    }
}

/// A timed thing waiting for the queue to settle.
enum Timed {
    Arrive(usize),
    Forward(usize),
    Crash(usize, usize),
}

struct Fifo<'p> {
    plan: &'p mut RunPlan,
    cores: Vec<StageCore<u64, u64>>,
    links: Vec<(StageId, StageId)>,
    queue: VecDeque<(usize, Input<u64, u64>)>,
    out: FifoOutcome,
    steps: u64,
}

/// Runs `s` to its end on the FIFO driver.
pub fn run(s: &Scenario, opts: &PlanOptions) -> Result<FifoOutcome, FifoError> {
    let mut plan = RunPlan::new(s, opts, Runtime::Sim).map_err(FifoError::Plan)?;
    let n = s.stages.len();
    let mut f = Fifo {
        cores: plan::cores(s, opts),
        plan: &mut plan,
        links: s
            .links
            .iter()
            .map(|l| (l.producer as StageId, l.consumer as StageId))
            .collect(),
        queue: VecDeque::new(),
        out: FifoOutcome {
            stages: Vec::new(),
            links: Vec::new(),
            chunks: vec![Vec::new(); n],
            asks: vec![Vec::new(); n],
        },
        steps: 0,
    };
    for i in 0..n {
        f.deliver(i, Input::Start);
    }
    let mut rngs: Vec<SplitMix64> = f
        .plan
        .stages
        .iter()
        .map(|sp| SplitMix64::new(plan::derive_seed(sp.seed, "arrivals")))
        .collect();
    let mut arrivals: Vec<Option<(u64, Vec<u64>)>> = vec![None; n];
    for i in 0..n {
        f.next_arrival(i, &mut rngs[i], &mut arrivals[i]);
    }
    let mut timers: Vec<(u64, Timed)> = Vec::new();
    for (i, sp) in f.plan.stages.iter().enumerate() {
        if let Some(t) = sp.forward_at_ns {
            timers.push((t, Timed::Forward(i)));
        }
        timers.extend(sp.crashes.timers().map(|(k, t)| (t, Timed::Crash(i, k))));
    }
    // Stable: ties keep their order.
    timers.sort_by_key(|t| t.0);
    let mut timers: VecDeque<(u64, Timed)> = timers.into();
    loop {
        f.settle()?;
        let next_arrival = arrivals
            .iter()
            .enumerate()
            .filter_map(|(i, a)| a.as_ref().map(|(t, _)| (*t, i)))
            .min();
        let what = match (timers.front(), next_arrival) {
            (Some((tt, _)), Some((ta, _))) if *tt <= ta => timers.pop_front().map(|t| t.1),
            (_, Some((_, i))) => Some(Timed::Arrive(i)),
            (Some(_), None) => timers.pop_front().map(|t| t.1),
            (None, None) => None,
        };
        match what {
            None => break,
            Some(Timed::Arrive(i)) => {
                if let Some((_, ids)) = arrivals[i].take() {
                    f.deliver(i, Input::Arrive(ids));
                    f.next_arrival(i, &mut rngs[i], &mut arrivals[i]);
                }
            }
            Some(Timed::Forward(i)) => f.deliver(i, Input::Forward),
            Some(Timed::Crash(i, k)) => {
                if f.plan.stages[i].crashes.fire_at(k) {
                    if let Some(c) = f.plan.stages[i].crashes.get(k) {
                        let reason = c.reason();
                        f.deliver(i, Input::Crash(reason));
                    }
                }
            }
        }
    }
    let names: Vec<String> = s.stages.iter().map(|st| st.name.clone()).collect();
    let mut out = f.out;
    out.stages = f
        .cores
        .iter()
        .zip(&names)
        .map(|(c, name)| StageFigures::capture(name, c))
        .collect();
    out.links = f
        .links
        .iter()
        .map(|&(p, c)| LinkFigures {
            producer: p as usize,
            consumer: c as usize,
            ..LinkFigures::default()
        })
        .collect();
    Ok(out)
}

impl Fifo<'_> {
    fn next_arrival(&mut self, i: usize, rng: &mut SplitMix64, slot: &mut Option<(u64, Vec<u64>)>) {
        if !self.cores[i].takes_arrivals() {
            return;
        }
        let Some(schedule) = self.plan.stages[i].push.as_mut() else {
            return;
        };
        match PushSchedule::next(schedule, &mut || rng.uniform()) {
            Next::At(t, ids) => *slot = Some((t, ids.collect())),
            Next::End => {
                self.plan.stages[i].push = None;
                self.deliver(i, Input::Shutdown);
            }
            Next::Limit => self.plan.stages[i].push = None,
        }
    }

    fn settle(&mut self) -> Result<(), FifoError> {
        while let Some((to, input)) = self.queue.pop_front() {
            self.steps += 1;
            if self.steps > MAX_STEPS {
                return Err(FifoError::Runaway);
            }
            self.deliver(to, input);
        }
        Ok(())
    }

    fn deliver(&mut self, to: usize, input: Input<u64, u64>) {
        let mut fx = Effects::default();
        let core = &mut self.cores[to];
        let before = core.stats();
        let before = before.handled.max(before.emitted);
        core.handle(input, &mut fx, &mut Chunks(&mut self.out.chunks[to]));
        let after = core.stats().handled.max(core.stats().emitted);
        if after > before && !core.is_stopped() {
            if let Some(k) = self.plan.stages[to].crashes.due_after_events(after) {
                if let Some(c) = self.plan.stages[to].crashes.get(k) {
                    core.handle(
                        Input::Crash(c.reason()),
                        &mut fx,
                        &mut Chunks(&mut self.out.chunks[to]),
                    );
                }
            }
        }
        for o in fx.out.drain(..) {
            match o {
                Outgoing::Up(m) => {
                    if let Upstream::Ask { n, .. } = &m {
                        self.out.asks[to].push(*n);
                    }
                    let p = self.links[m.sub().link as usize].0;
                    self.queue.push_back((p as usize, Input::Up(m)));
                }
                Outgoing::Down(m) => {
                    let c = self.links[m.sub().link as usize].1;
                    self.queue.push_back((c as usize, Input::Down(m)));
                }
            }
        }
        for (sub, _event) in fx.jobs.drain(..) {
            self.queue.push_back((to, Input::JobDone { sub }));
        }
    }
}
