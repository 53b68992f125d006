//! The one plan: everything a validated [`Scenario`] means, decided once for both runtimes.
//!
//! A [`RunPlan`] holds, per stage, the stage core's configuration ([`config`]: source,
//! dispatcher, buffer, subscriptions), its service-time model ([`ServiceModel`]), its
//! crash faults ([`Crashes`]), its push arrivals ([`PushSchedule`]), when it switches to
//! forward, and how many jobs a pool runs at once. The simulator turns this into virtual
//! time; the threads runtime's scenario adapter into busy work and timers. Neither reads
//! these rules from the scenario on its own. What a runtime cannot honour is listed in
//! [`RunPlan::limitations`], and the CLI prints it once.
//!
//! *Architecture invariant:* a rule a scenario implies beyond the stage core lives here
//! (or in the core), never in a runtime; a runtime only decides *when* things happen.

mod arrivals;
mod faults;
mod service;

use std::fmt;
use std::ops::RangeInclusive;

pub use self::arrivals::{Arrivals, Next, PushSchedule, MAX_ARRIVAL};
pub use self::faults::{CrashFault, Crashes};
pub use self::service::{sample, sample_sum, ServiceModel, Variates};

use crate::core::{
    CoreConfig, DemandMode, InLinkConfig, Logic, OutLinkConfig, OutputConfig, StageCore, StageKind,
};
use crate::dispatcher::{DispatcherSpec, PartitionFn};
use crate::hash::{fnv1a64, mix64};
use crate::logic::{Chunk, Ctx, Emit};
use crate::opts::{AskMode, Selector};
use crate::protocol::{LinkId, StageId, SubRef};
use crate::scenario::model::{DispatcherDef, PushDef, Scenario, SourceDef};

/// Choices that are not in the scenario file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Stop each producer after this many events (`--events N`).
    pub events: Option<u64>,
    /// The root seed; a stage's own seed is derived from it and the stage's name.
    pub seed: u64,
    /// Stop the run at this time, ns (`--until`): virtual time in the simulator, wall time
    /// on threads.
    pub until_ns: Option<u64>,
}

/// The runtimes a plan can be run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Runtime {
    /// The seeded discrete-event simulator (`flowbench-sim`).
    Sim,
    /// Real threads ([`crate::threads`]).
    Threads,
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Runtime::Sim => "sim",
            Runtime::Threads => "threads",
        })
    }
}

/// Something a scenario says that a runtime does not model. The run goes on without it;
/// the CLI prints each one once, before the summary.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Limitation {
    /// `restart_after_us`: on threads a crashed stage stays down.
    Restart {
        /// The stage.
        stage: String,
    },
    /// A subscription's `latency`: on threads messages take the time they take.
    LinkLatency {
        /// The producing stage.
        producer: String,
        /// The consuming stage.
        consumer: String,
    },
    /// `cores = K`: on threads the operating system decides how many stages run at once.
    Cores {
        /// The scenario's `cores`.
        cores: u32,
    },
}

impl fmt::Display for Limitation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limitation::Restart { stage } => write!(
                f,
                "threads does not restart stages: `{stage}` stays down after its crash \
                 (restart_after_us is honoured by the simulator only)"
            ),
            Limitation::LinkLatency { producer, consumer } => write!(
                f,
                "threads does not add link latency: the subscription `{producer}` -> \
                 `{consumer}` delivers as fast as the machine does (latency is honoured by \
                 the simulator only)"
            ),
            Limitation::Cores { cores } => write!(
                f,
                "threads does not limit concurrency: `cores = {cores}` is honoured by the \
                 simulator only; on threads the machine's cores decide"
            ),
        }
    }
}

/// Why a scenario cannot be run as asked.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlanError {
    /// A source never ends and the run has neither an event nor a time limit.
    Unbounded {
        /// The stage.
        stage: String,
        /// What kind of source it is.
        source: &'static str,
    },
    /// `cores = 0`.
    NoCores,
    /// A `counter` source whose events reach a consumer through stages and links that all
    /// take no time: in virtual time the run never gets past its first instant, so only
    /// an event limit can end it.
    Timeless {
        /// The source stage.
        stage: String,
    },
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::Unbounded { stage, source } => write!(
                f,
                "stage `{stage}` has an unbounded source ({source}): give an event limit \
                 (`--events N`) or a time limit (`--until T`) so the run can end"
            ),
            PlanError::NoCores => f.write_str("cores must be at least 1, got 0"),
            PlanError::Timeless { stage } => write!(
                f,
                "stage `{stage}` is a counter whose events reach a consumer through stages \
                 and links that take no time, so virtual time never advances and `--until` \
                 cannot end the run: give an event limit (`--events N`), or a service time \
                 (`per_event`) to a stage on the way"
            ),
        }
    }
}

impl std::error::Error for PlanError {}

/// What the plan says of one stage beyond its core's configuration.
#[derive(Clone, Debug)]
pub struct StagePlan {
    /// The stage's name.
    pub name: String,
    /// Its kind.
    pub kind: StageKind,
    /// How long its steps (and a pool's jobs) take.
    pub service: ServiceModel,
    /// Its crash faults, in the scenario's order.
    pub crashes: Crashes,
    /// A push source's arrivals, cut at the run's event limit.
    pub push: Option<PushSchedule>,
    /// When an accumulating producer switches to forward, ns.
    pub forward_at_ns: Option<u64>,
    /// How many jobs a consumer pool runs at once: the largest `max_demand` of its
    /// subscriptions (1 for every other kind).
    pub pool_width: u64,
    /// The first id of a `range` or `counter` source: its n-th event is `id_base + n`.
    pub id_base: Option<u64>,
    /// The stage's own seed, derived from the root seed and its name.
    pub seed: u64,
}

/// A scenario, decided for one runtime. See the module documentation.
///
/// ```
/// use flowbench_engine::plan::{Limitation, PlanOptions, RunPlan, Runtime};
/// use flowbench_engine::scenario::parse_str;
/// let s = parse_str(r#"
/// [[stage]]
/// name = "src"
/// kind = "producer"
/// source = { range = [1, 100] }
/// [[stage.fault]]
/// crash_after_events = 50
/// restart_after_us = 10
/// [[stage]]
/// name = "pool"
/// kind = "consumer_pool"
/// [[subscription]]
/// producer = "src"
/// consumer = "pool"
/// max_demand = 200
/// "#, "x.toml").unwrap();
/// let sim = RunPlan::new(&s, &PlanOptions::default(), Runtime::Sim).unwrap();
/// assert!(sim.limitations.is_empty());
/// assert_eq!(sim.stages[1].pool_width, 200);
/// let threads = RunPlan::new(&s, &PlanOptions::default(), Runtime::Threads).unwrap();
/// assert_eq!(threads.limitations, vec![Limitation::Restart { stage: "src".into() }]);
/// ```
#[derive(Clone, Debug)]
pub struct RunPlan {
    /// One entry per stage, in scenario order.
    pub stages: Vec<StagePlan>,
    /// What the chosen runtime does not model, in scenario order.
    pub limitations: Vec<Limitation>,
    /// The options the plan was made with.
    pub options: PlanOptions,
}

impl RunPlan {
    /// Decides `s` for `runtime`. Refuses a source that never ends when the run has no
    /// event or time limit, and `cores = 0`.
    pub fn new(s: &Scenario, opts: &PlanOptions, runtime: Runtime) -> Result<Self, PlanError> {
        if s.cores == Some(0) {
            return Err(PlanError::NoCores);
        }
        if opts.events.is_none() && opts.until_ns.is_none() {
            if let Some((stage, source)) = s.stages.iter().find_map(|st| {
                unbounded_source(st.source.as_ref()).map(|what| (st.name.clone(), what))
            }) {
                return Err(PlanError::Unbounded { stage, source });
            }
        }
        let adj = Adjacency::of(s);
        let stages: Vec<StagePlan> = (0..s.stages.len())
            .map(|i| stage_plan(s, i, opts, &adj))
            .collect();
        if runtime == Runtime::Sim && opts.events.is_none() {
            if let Some(i) = timeless_counter(s, &stages, &adj) {
                return Err(PlanError::Timeless {
                    stage: s.stages[i].name.clone(),
                });
            }
        }
        let limitations = match runtime {
            Runtime::Sim => Vec::new(),
            Runtime::Threads => threads_limitations(s),
        };
        Ok(RunPlan {
            stages,
            limitations,
            options: *opts,
        })
    }
}

/// What kind of never-ending source `src` is, if it is one.
fn unbounded_source(src: Option<&SourceDef>) -> Option<&'static str> {
    match src {
        Some(SourceDef::Counter { .. }) => Some("counter"),
        Some(SourceDef::Push(PushDef::Poisson { total: None, .. })) => {
            Some("poisson without total")
        }
        Some(SourceDef::Push(PushDef::Bursts { count: None, .. })) => Some("bursts without count"),
        _ => None,
    }
}

/// A counter source with a path to a consuming stage on which no stage and no link takes
/// time, if there is one.
fn timeless_counter(s: &Scenario, stages: &[StagePlan], adj: &Adjacency) -> Option<usize> {
    // A walk over free stages and links (explicit stack: a deep chain cannot overflow);
    // each stage is visited once over all counters, since what a visited stage reaches
    // has already been found.
    let mut seen = vec![false; s.stages.len()];
    s.stages.iter().enumerate().find_map(|(i, st)| {
        if !matches!(st.source, Some(SourceDef::Counter { .. })) {
            return None;
        }
        let mut stack = vec![i];
        while let Some(j) = stack.pop() {
            if seen[j] || !stages[j].service.is_free() {
                continue;
            }
            seen[j] = true;
            if !s.stages[j].kind.produces() {
                return Some(i);
            }
            stack.extend(
                adj.outputs[j]
                    .iter()
                    .map(|&l| &s.links[l])
                    .filter(|l| l.latency.is_none())
                    .map(|l| l.consumer),
            );
        }
        None
    })
}

fn stage_plan(s: &Scenario, i: usize, opts: &PlanOptions, adj: &Adjacency) -> StagePlan {
    let st = &s.stages[i];
    let (id_base, push) = match &st.source {
        Some(SourceDef::Range { first, .. }) => (Some(*first), None),
        Some(SourceDef::Counter { start }) => (Some(*start), None),
        Some(SourceDef::Push(def)) => (None, Some(PushSchedule::new(def.clone(), opts.events))),
        None => (None, None),
    };
    let pool_width = if st.kind == StageKind::ConsumerPool {
        adj.inputs[i]
            .iter()
            .map(|&l| s.links[l].demand.max())
            .max()
            .unwrap_or(1)
    } else {
        1
    };
    StagePlan {
        name: st.name.clone(),
        kind: st.kind,
        service: ServiceModel::of(st),
        crashes: Crashes::of(st),
        push,
        forward_at_ns: st.forward_at_ns,
        pool_width,
        id_base,
        seed: derive_seed(opts.seed, &st.name),
    }
}

fn threads_limitations(s: &Scenario) -> Vec<Limitation> {
    let mut out = Vec::new();
    if let Some(cores) = s.cores {
        out.push(Limitation::Cores { cores });
    }
    for st in &s.stages {
        if Crashes::of(st)
            .get_all()
            .any(|c| c.restart_after_ns.is_some())
        {
            out.push(Limitation::Restart {
                stage: st.name.clone(),
            });
        }
    }
    for l in &s.links {
        if l.latency.is_some() {
            out.push(Limitation::LinkLatency {
                producer: s.stages[l.producer].name.clone(),
                consumer: s.stages[l.consumer].name.clone(),
            });
        }
    }
    out
}

/// The seed of a stream named `name` under the root seed `root`: adding or renaming
/// another stage does not change it.
pub fn derive_seed(root: u64, name: &str) -> u64 {
    mix64(root ^ mix64(fnv1a64(name.as_bytes())))
}

/// The subscriptions of every stage, found once: `inputs[i]` and `outputs[i]` are the
/// link ids whose consumer (producer) is stage `i`, in link order.
pub(crate) struct Adjacency {
    pub inputs: Vec<Vec<usize>>,
    pub outputs: Vec<Vec<usize>>,
}

impl Adjacency {
    pub(crate) fn of(s: &Scenario) -> Self {
        let mut inputs = vec![Vec::new(); s.stages.len()];
        let mut outputs = vec![Vec::new(); s.stages.len()];
        for (i, l) in s.links.iter().enumerate() {
            inputs[l.consumer].push(i);
            outputs[l.producer].push(i);
        }
        Adjacency { inputs, outputs }
    }
}

/// Builds one core per stage, in scenario order (index = [`StageId`]).
pub fn cores(s: &Scenario, opts: &PlanOptions) -> Vec<StageCore<u64, u64>> {
    configs(s, opts).into_iter().map(StageCore::new).collect()
}

/// The configuration of every stage's core, in scenario order.
pub fn configs(s: &Scenario, opts: &PlanOptions) -> Vec<CoreConfig<u64, u64>> {
    let adj = Adjacency::of(s);
    (0..s.stages.len())
        .map(|i| config_in(s, i, opts, &adj))
        .collect()
}

/// Builds the core of stage `id`.
pub fn core(s: &Scenario, id: usize, opts: &PlanOptions) -> StageCore<u64, u64> {
    StageCore::new(config(s, id, opts))
}

/// The configuration of stage `id`'s core.
pub fn config(s: &Scenario, id: usize, opts: &PlanOptions) -> CoreConfig<u64, u64> {
    config_in(s, id, opts, &Adjacency::of(s))
}

fn config_in(s: &Scenario, id: usize, opts: &PlanOptions, adj: &Adjacency) -> CoreConfig<u64, u64> {
    let st = &s.stages[id];
    let logic: Logic<u64, u64> = match st.kind {
        StageKind::Producer => match &st.source {
            Some(SourceDef::Range { first, last }) => range_logic(*first..=*last),
            Some(SourceDef::Counter { start }) => counter_logic(*start),
            Some(SourceDef::Push(_)) | None => Logic::Producer(Box::new(push_logic)),
        },
        StageKind::ProducerConsumer => Logic::ProducerConsumer(Box::new(pass_through)),
        StageKind::Consumer => Logic::Consumer(Box::new(discard)),
        StageKind::ConsumerPool => Logic::ConsumerPool,
    };
    let inputs = adj.inputs[id]
        .iter()
        .map(|&l| (l, &s.links[l]))
        .map(|(l, d)| InLinkConfig {
            link: l as LinkId,
            demand: d.demand,
            cancel: d.cancel,
            mode: AskMode::Automatic,
        })
        .collect();
    let output = st.kind.produces().then(|| {
        let seed = derive_seed(opts.seed, &st.name);
        let dispatcher = match st.dispatcher {
            DispatcherDef::Demand { shuffle } => DispatcherSpec::Demand {
                max_demand: None,
                shuffle_seed: shuffle.then_some(seed),
            },
            DispatcherDef::Broadcast => DispatcherSpec::Broadcast,
            DispatcherDef::Partition {
                partitions,
                hash,
                on_missing,
            } => DispatcherSpec::Partition {
                on_missing,
                partitions,
                hash: PartitionFn::new(move |e: &u64| hash.partition(*e, partitions)),
            },
        };
        OutputConfig {
            dispatcher,
            buffer_size: st.buffer_size,
            buffer_keep: st.buffer_keep,
            demand_mode: st.demand_mode,
            limit: (st.kind == StageKind::Producer)
                .then_some(opts.events)
                .flatten(),
            forward_when_subscribed: st.demand_mode == DemandMode::Accumulate
                && st.forward_at_ns.is_none(),
            links: adj.outputs[id]
                .iter()
                .map(|&l| (l, &s.links[l]))
                .map(|(l, d)| OutLinkConfig {
                    link: l as LinkId,
                    consumer: d.consumer as StageId,
                    partition: d.partition,
                    selector: d
                        .selector
                        .map(|sel| Selector::new(move |e: &u64| sel.accepts(*e))),
                })
                .collect(),
        }
    });
    CoreConfig {
        id: id as StageId,
        logic,
        inputs,
        output,
    }
}

fn range_logic(ids: RangeInclusive<u64>) -> Logic<u64, u64> {
    let (mut next, last) = ids.into_inner();
    let mut done = next > last;
    Logic::Producer(Box::new(move |n: u64, emit: &mut Emit<u64>| {
        if done {
            emit.finish();
            return;
        }
        let end = last.min(next.saturating_add(n - 1));
        emit.extend(next..=end);
        if end == last {
            done = true;
            emit.finish();
        } else {
            next = end + 1;
        }
    }))
}

/// A counter from `start`; at the top of the id space it ends (each id once) rather
/// than stalling or repeating `u64::MAX`.
fn counter_logic(start: u64) -> Logic<u64, u64> {
    let mut next = start;
    let mut spent = false;
    Logic::Producer(Box::new(move |n: u64, emit: &mut Emit<u64>| {
        if spent || n == 0 {
            if spent {
                emit.finish();
            }
            return;
        }
        let end = next.saturating_add(n - 1);
        emit.extend(next..=end);
        if end == u64::MAX {
            spent = true;
            emit.finish();
        } else {
            next = end + 1;
        }
    }))
}

fn push_logic(_n: u64, _emit: &mut Emit<u64>) {}

fn pass_through(events: Chunk<'_, u64>, _from: SubRef, emit: &mut Emit<u64>) {
    emit.forward(events);
}

fn discard(events: Chunk<'_, u64>, _ctx: &mut Ctx) {
    drop(events);
}
