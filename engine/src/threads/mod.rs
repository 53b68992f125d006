//! The threads runtime: every stage has a mailbox and runs on real threads; time is wall
//! time.
//!
//! Build a [`Topology`] of typed stages, [`subscribe`](Topology::subscribe) consumers to
//! producers, then [`run`](Topology::run) it (or [`spawn`](Topology::spawn) it and read
//! [probes](Running::probes) while it runs). Each stage's driver is a thin layer around its
//! [`StageCore`]: it takes messages from its mailbox, lets the core handle them, and
//! carries the core's messages to the other stages' mailboxes.
//!
//! By default the stages are tasks on a pool of worker threads, one per core
//! ([`Scheduling`]): a stage runs when it has mail, on one worker at a time, for at most
//! 64 messages before it yields; idle workers steal work and then sleep. A stage whose
//! code blocks gets a thread of its own with [`Topology::own_thread`].
//!
//! The typed API knows nothing of scenario files. Besides the four stage kinds it offers
//! what a driver of timed behaviour needs: [push producers](Topology::push_producer) fed by
//! a schedule of timed arrivals, [timers](Topology::timer) that switch a producer to
//! forward, crash a stage or shut it down at a wall-clock time, and a [`StageHook`] called
//! after every step (to emulate a service time, or to crash the stage). Running a scenario
//! file on threads ([`scenario`], with the `scenario` feature) is an adapter that builds a
//! topology from the [plan](mod@crate::plan) with these.
//!
//! A [`Stage`] handle belongs to the topology that made it: passing it to another
//! topology is an error ([`RunError::ForeignStage`]), never a panic. A stage thread that
//! panics (a bug of the runtime; panics in user code are caught by the core and stop the
//! stage with an error) is reported in [`RunOutcome::failures`], and such a run never
//! counts as balanced.
//!
//! A three-stage pipeline:
//!
//! ```
//! use std::sync::{Arc, atomic::{AtomicU64, Ordering}};
//! use flowbench_engine::threads::{Topology, ProducerOptions};
//! use flowbench_engine::{Chunk, Ctx, Emit, SubRef, SubscribeOpts};
//!
//! let mut t = Topology::new();
//! let mut next = 1u64;
//! let numbers = t.producer("numbers", ProducerOptions::default(), move |n: u64, emit: &mut Emit<u64>| {
//!     let end = (next + n).min(1001);
//!     emit.extend(next..end);
//!     next = end;
//!     if next > 1000 { emit.finish(); }
//! });
//! let squares = t.producer_consumer("squares", ProducerOptions::default(),
//!     |events: Chunk<'_, u64>, _from: SubRef, emit: &mut Emit<u64>| emit.extend(events.map(|e| e * e)));
//! let total = Arc::new(AtomicU64::new(0));
//! let sum = Arc::clone(&total);
//! let sink = t.consumer("sum", move |events: Chunk<'_, u64>, _ctx: &mut Ctx| {
//!     sum.fetch_add(events.sum::<u64>(), Ordering::Relaxed);
//! });
//! t.subscribe(&numbers, &squares, SubscribeOpts::default()).unwrap();
//! t.subscribe(&squares, &sink, SubscribeOpts::default()).unwrap();
//! let outcome = t.run().unwrap();
//! assert!(outcome.balanced());
//! assert_eq!(total.load(Ordering::Relaxed), (1..=1000u64).map(|e| e * e).sum());
//! ```
//!
//! A partitioned one: events are routed by `e % 2` to two consumers.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use flowbench_engine::threads::{Topology, ProducerOptions};
//! use flowbench_engine::{Chunk, Ctx, DispatcherSpec, Emit, OnMissing, PartitionFn, SubscribeOpts};
//!
//! let mut t = Topology::new();
//! let mut next = 0u64;
//! let opts = ProducerOptions::default().dispatcher(DispatcherSpec::Partition {
//!     partitions: 2,
//!     hash: PartitionFn::new(|e: &u64| Some((e % 2) as u32)),
//!     on_missing: OnMissing::Hold,
//! });
//! let src = t.producer("src", opts, move |n: u64, emit: &mut Emit<u64>| {
//!     let end = (next + n).min(100);
//!     emit.extend(next..end);
//!     next = end;
//!     if next == 100 { emit.finish(); }
//! });
//! let seen: Vec<Arc<Mutex<Vec<u64>>>> = (0..2).map(|_| Arc::default()).collect();
//! for p in 0..2 {
//!     let got = Arc::clone(&seen[p]);
//!     let c = t.consumer(&format!("part-{p}"), move |events: Chunk<'_, u64>, _: &mut Ctx| {
//!         got.lock().unwrap().extend(events);
//!     });
//!     t.subscribe(&src, &c, SubscribeOpts::default().partition(p as u32)).unwrap();
//! }
//! t.run().unwrap();
//! assert_eq!(*seen[0].lock().unwrap(), (0..100).step_by(2).collect::<Vec<u64>>());
//! assert_eq!(*seen[1].lock().unwrap(), (1..100).step_by(2).collect::<Vec<u64>>());
//! ```

mod mailbox;
mod probe;
mod runner;
#[cfg(feature = "scenario")]
pub mod scenario;
mod sched;
mod watch;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use self::mailbox::Mailbox;
pub use self::probe::{ProbeReading, StageProbe};

use self::runner::{DownPort, Envelope, PoolSpec, PushFn, Runner, UpPort};
pub(crate) use self::sched::{guarded, panic_text};
use self::sched::{Sched, StageTask, Waker};
use crate::buffer::{Keep, DEFAULT_PRODUCER_BUFFER};
use crate::core::{
    DemandMode, InLinkConfig, Logic, OutLinkConfig, OutputConfig, StageCore, StageKind,
};
use crate::dispatcher::DispatcherSpec;
use crate::logic::{Consumer, Emit, Job, Producer, ProducerConsumer};
use crate::opts::SubscribeOpts;
use crate::protocol::{CancelReason, LinkId, StageId};
use crate::report::DeadlockReport;
use crate::report::{LinkFigures, RunSummary, StageFigures};
use crate::sync::{lock, thread, AtomicBool, AtomicU64, Mutex, Ordering};

/// A typed handle to a stage of a [`Topology`]: `I` is what it consumes, `O` what it
/// produces (`()` where it does not). It belongs to the topology that made it.
pub struct Stage<I, O> {
    topo: u64,
    id: StageId,
    mailbox: Arc<Mailbox<Envelope<I>>>,
    outs: Arc<Mutex<Vec<DownPort<O>>>>,
}

impl<I, O> Clone for Stage<I, O> {
    fn clone(&self) -> Self {
        Stage {
            topo: self.topo,
            id: self.id,
            mailbox: Arc::clone(&self.mailbox),
            outs: Arc::clone(&self.outs),
        }
    }
}

impl<I, O> fmt::Debug for Stage<I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Stage({})", self.id)
    }
}

impl<I, O> Stage<I, O> {
    /// The stage's index in its topology.
    pub fn id(&self) -> StageId {
        self.id
    }

    /// The stage's producing side, whatever it consumes.
    pub(crate) fn outlet(&self) -> Outlet<O> {
        Outlet {
            topo: self.topo,
            id: self.id,
            outs: Arc::clone(&self.outs),
        }
    }
}

/// The producing side of a stage, with the type of what it consumes forgotten: enough to
/// subscribe a consumer to it ([`Topology::subscribe_to`]).
pub(crate) struct Outlet<O> {
    topo: u64,
    id: StageId,
    outs: Arc<Mutex<Vec<DownPort<O>>>>,
}

/// Options of a producing stage: dispatcher, buffer and demand mode.
///
/// ```
/// use flowbench_engine::threads::ProducerOptions;
/// use flowbench_engine::{DispatcherSpec, Keep};
/// let o = ProducerOptions::<u64>::default()
///     .dispatcher(DispatcherSpec::Broadcast)
///     .buffer(Some(100), Keep::First);
/// ```
#[derive(Debug)]
pub struct ProducerOptions<O> {
    dispatcher: DispatcherSpec<O>,
    buffer_size: Option<Option<u64>>,
    buffer_keep: Keep,
    demand_mode: DemandMode,
    limit: Option<u64>,
    forward_when_subscribed: bool,
}

impl<O> Default for ProducerOptions<O> {
    fn default() -> Self {
        ProducerOptions {
            dispatcher: DispatcherSpec::default(),
            buffer_size: None,
            buffer_keep: Keep::Last,
            demand_mode: DemandMode::Forward,
            limit: None,
            forward_when_subscribed: false,
        }
    }
}

impl<O> ProducerOptions<O> {
    /// Sets the dispatcher (default: demand).
    pub fn dispatcher(mut self, d: DispatcherSpec<O>) -> Self {
        self.dispatcher = d;
        self
    }

    /// Sets `buffer_size` (`None`: unbounded) and `buffer_keep`. Default: 10 000 for
    /// producers, unbounded for producer-consumers; keep `last`.
    pub fn buffer(mut self, size: Option<u64>, keep: Keep) -> Self {
        self.buffer_size = Some(size);
        self.buffer_keep = keep;
        self
    }

    /// Holds demand until every subscription has been made, then forwards it (GenStage's
    /// `demand: :accumulate` followed by `GenStage.demand(stage, :forward)`).
    pub fn accumulate_until_subscribed(mut self) -> Self {
        self.demand_mode = DemandMode::Accumulate;
        self.forward_when_subscribed = true;
        self
    }

    /// Holds demand until a [`Control::Forward`] timer (or forever): GenStage's
    /// `demand: :accumulate`.
    pub fn accumulate(mut self) -> Self {
        self.demand_mode = DemandMode::Accumulate;
        self.forward_when_subscribed = false;
        self
    }

    /// Stops the producer after `n` events.
    pub fn limit(mut self, n: u64) -> Self {
        self.limit = Some(n);
        self
    }

    fn into_config(self, default_buffer: Option<u64>) -> OutputConfig<O> {
        OutputConfig {
            dispatcher: self.dispatcher,
            buffer_size: self.buffer_size.unwrap_or(default_buffer),
            buffer_keep: self.buffer_keep,
            demand_mode: self.demand_mode,
            limit: self.limit,
            forward_when_subscribed: self.forward_when_subscribed,
            links: Vec::new(),
        }
    }
}

/// Something a [timer](Topology::timer) does to a stage at its time.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Control {
    /// Switch an accumulating producer to forward (GenStage's `demand(stage, :forward)`).
    Forward,
    /// Crash the stage with this reason, as if its code had failed.
    Crash(CancelReason),
    /// Stop a producer in order: it stops creating events, hands out what it holds and
    /// cancels its subscriptions with reason `shutdown`.
    Shutdown,
}

/// What one step of a stage did, for a [`StageHook`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StepInfo {
    /// Events the step handled or emitted, whichever is larger.
    pub events: u64,
    /// Batches it received plus `handle_demand` calls it made.
    pub batches: u64,
    /// Events handled or emitted, whichever is larger, since the stage started.
    pub progress: u64,
    /// When the step began, from the start of the run.
    pub at: Duration,
}

/// Code the runtime calls on the stage's driver (its worker or its thread) after each step that handled or
/// emitted events or received a batch. Time spent in it is the stage's busy time, so a
/// hook can emulate a service time; a hook that returns a reason crashes the stage with
/// it (its cancels leave with the step's messages).
///
/// ```
/// use flowbench_engine::threads::{StageHook, StepInfo};
/// use flowbench_engine::CancelReason;
/// struct CrashAfter(u64);
/// impl StageHook for CrashAfter {
///     fn after_step(&mut self, step: &StepInfo) -> Option<CancelReason> {
///         (step.progress >= self.0).then(|| CancelReason::error("enough"))
///     }
/// }
/// ```
pub trait StageHook: Send {
    /// Called after a step; a returned reason crashes the stage.
    fn after_step(&mut self, step: &StepInfo) -> Option<CancelReason>;
}

/// A stage before it runs: its typed parts, behind a type-erased interface.
trait ErasedStage: Send {
    fn kind(&self) -> StageKind;
    fn name(&self) -> &str;
    fn add_input(&mut self, cfg: InLinkConfig);
    fn add_timer(&mut self, at: Duration, what: Control);
    fn set_hook(&mut self, hook: Box<dyn StageHook>);
    fn port(&self) -> Arc<dyn UpPort>;
    fn prepare(
        self: Box<Self>,
        own: StageId,
        shared: &Arc<Shared>,
        ports: &[Arc<dyn UpPort>],
        stop_after: Option<Duration>,
        pooled: bool,
    ) -> (Arc<StageProbe>, Box<dyn StageTask>);
}

/// What every stage thread shares.
pub(crate) struct Shared {
    pub links: Vec<(StageId, StageId)>,
    pub exits: Vec<Mutex<Option<CancelReason>>>,
    pub undeliverable: Vec<AtomicU64>,
    pub started: Instant,
    /// When every stage stops where it is (`Topology::until`).
    pub cut_at: Option<Duration>,
    /// Set once the run is cut (`Topology::until`) or halted (a deadlock): stages stop
    /// where they are, and events that cannot be delivered any more are in flight, not
    /// lost.
    pub halted: AtomicBool,
    /// Per link: events left in mailboxes when the run was cut.
    pub in_flight: Vec<AtomicU64>,
    /// What the deadlock watchdog reads (idle marks and wake-up counts).
    pub watch: watch::Watch,
    /// The thread waiting in `Running::join`, woken when a stage ends.
    pub joiner: Mutex<Option<std::thread::Thread>>,
    /// Stages that have ended.
    pub ended: AtomicU64,
    /// Per stage: its figures once it has ended, or what went wrong in its driver.
    pub results: Vec<Mutex<Option<Result<StageFigures, String>>>>,
    /// Whether a receiver spins before it sleeps: only while stages do not outnumber
    /// cores (else the spinning thread takes the core the sender needs).
    pub spin: bool,
}

impl Shared {
    /// Stops every stage where it is (a cut or a deadlock): marks the run halted and
    /// sends each stage a halt, which wakes it if it waits for mail.
    fn halt(&self, ports: &[Arc<dyn UpPort>]) {
        self.halted.store(true, Ordering::SeqCst);
        for port in ports {
            port.send_halt();
        }
    }

    /// Stage `i` ends with its figures (or a failure): count it and wake the joiner.
    pub(crate) fn stage_ended(&self, i: usize, result: Result<StageFigures, String>) {
        *lock(&self.results[i]) = Some(result);
        self.ended.fetch_add(1, Ordering::SeqCst);
        if let Some(t) = lock(&self.joiner).as_ref() {
            t.unpark();
        }
    }
}

impl Shared {
    pub fn exit_of(&self, stage: StageId) -> CancelReason {
        lock(&self.exits[stage as usize])
            .clone()
            .unwrap_or(CancelReason::Normal)
    }
}

struct TypedStage<I, O> {
    name: String,
    logic: Option<Logic<I, O>>,
    job: Option<Arc<dyn Job<I>>>,
    inputs: Vec<InLinkConfig>,
    output: Option<OutputConfig<O>>,
    mailbox: Arc<Mailbox<Envelope<I>>>,
    outs: Arc<Mutex<Vec<DownPort<O>>>>,
    push: Option<PushFn<O>>,
    timers: Vec<(Duration, Control)>,
    hook: Option<Box<dyn StageHook>>,
}

impl<I: Send + 'static, O: Clone + Send + 'static> TypedStage<I, O> {
    fn new(name: &str, logic: Option<Logic<I, O>>, output: Option<OutputConfig<O>>) -> Self {
        TypedStage {
            name: name.to_string(),
            logic,
            job: None,
            inputs: Vec::new(),
            output,
            mailbox: Arc::new(Mailbox::new()),
            outs: Arc::new(Mutex::new(Vec::new())),
            push: None,
            timers: Vec::new(),
            hook: None,
        }
    }
}

impl<I: Send + 'static, O: Clone + Send + 'static> ErasedStage for TypedStage<I, O> {
    fn kind(&self) -> StageKind {
        if self.job.is_some() {
            StageKind::ConsumerPool
        } else {
            self.logic.as_ref().map_or(StageKind::Consumer, Logic::kind)
        }
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn add_input(&mut self, cfg: InLinkConfig) {
        self.inputs.push(cfg);
    }

    fn add_timer(&mut self, at: Duration, what: Control) {
        self.timers.push((at, what));
    }

    fn set_hook(&mut self, hook: Box<dyn StageHook>) {
        self.hook = Some(hook);
    }

    fn port(&self) -> Arc<dyn UpPort> {
        self.mailbox.clone()
    }

    fn prepare(
        self: Box<Self>,
        own: StageId,
        shared: &Arc<Shared>,
        ports: &[Arc<dyn UpPort>],
        stop_after: Option<Duration>,
        pooled: bool,
    ) -> (Arc<StageProbe>, Box<dyn StageTask>) {
        let me = *self;
        let kind = me.kind();
        let mut output = me.output;
        let mut downs = std::mem::take(&mut *lock(&me.outs));
        downs.sort_by_key(|d| d.0);
        if let Some(out) = output.as_mut() {
            out.links = downs.iter().map(|d| d.2.clone()).collect();
        }
        let ups: Vec<(LinkId, Arc<dyn UpPort>)> = me
            .inputs
            .iter()
            .map(|c| {
                let producer = shared.links[c.link as usize].0;
                (c.link, ports[producer as usize].clone())
            })
            .collect();
        // A pool runs up to its largest `max_demand` jobs at once, as in the simulator.
        let width = me.inputs.iter().map(|c| c.demand.max()).max().unwrap_or(1);
        let mut timers = me.timers;
        if kind == StageKind::Producer {
            if let Some(d) = stop_after {
                timers.push((d, Control::Shutdown));
            }
        }
        // Stable: timers due at the same time go off in the order they were set.
        timers.sort_by_key(|t| t.0);
        let core = StageCore::new(crate::core::CoreConfig {
            id: own,
            logic: me.logic.unwrap_or(Logic::ConsumerPool),
            inputs: me.inputs,
            output,
        });
        let depth: Arc<dyn probe::Depth> = me.mailbox.clone();
        let probe = Arc::new(StageProbe::new(&me.name, &core, depth));
        let runner = Runner::new(runner::Parts {
            name: me.name,
            id: own,
            core,
            mailbox: me.mailbox,
            downs: downs.into_iter().map(|d| (d.0, d.1)).collect(),
            ups,
            shared: shared.clone(),
            probe: probe.clone(),
            pool: me.job.map(|job| PoolSpec {
                job,
                width: usize::try_from(width).unwrap_or(usize::MAX),
            }),
            push: me.push,
            timers: timers.into(),
            hook: me.hook,
            pooled,
        });
        (probe, Box::new(runner))
    }
}

/// A pipeline under construction: stages and the subscriptions between them.
pub struct Topology {
    id: u64,
    stages: Vec<Box<dyn ErasedStage>>,
    links: Vec<(StageId, StageId)>,
    stop_after: Option<Duration>,
    until: Option<Duration>,
    scheduling: Scheduling,
    /// Per stage: runs on a thread of its own even on the worker pool.
    own_thread: Vec<bool>,
}

/// How a topology's stages get threads.
///
/// On the worker pool, stages are tasks: a stage runs when it has mail, on one worker at
/// a time, for a bounded budget of messages before it yields; idle workers steal work
/// and sleep without spinning a core away. That is what holds up when stages outnumber
/// cores. A stage whose code blocks (a sleep, a lock held by another thread, I/O) keeps its
/// worker while it blocks; give such a stage a thread of its own with
/// [`Topology::own_thread`]. Code that merely computes for a long time (an emulated
/// service time) may stay on the pool: the others run on the remaining workers, and it
/// yields between messages.
///
/// ```
/// use flowbench_engine::threads::{Scheduling, Topology};
///
/// let mut t = Topology::new();
/// t.scheduling(Scheduling::Pool { workers: 2 });
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scheduling {
    /// The worker pool with one worker per core (measured faster than a thread per
    /// stage on every pipeline of the benches, even with fewer stages than cores).
    #[default]
    Auto,
    /// Stages as tasks on `workers` worker threads.
    Pool {
        /// Worker threads (at least one).
        workers: usize,
    },
    /// Every stage on a thread of its own, blocking on its mailbox when it has nothing to
    /// do (spinning briefly first while stages do not outnumber cores).
    ThreadPerStage,
}

impl Scheduling {
    /// The pool's worker threads on a machine with `cores` cores; `None` for a thread
    /// per stage.
    ///
    /// ```
    /// use flowbench_engine::threads::Scheduling;
    ///
    /// assert_eq!(Scheduling::Auto.workers(2), Some(2));
    /// assert_eq!(Scheduling::Pool { workers: 0 }.workers(2), Some(1));
    /// assert_eq!(Scheduling::ThreadPerStage.workers(2), None);
    /// ```
    pub fn workers(self, cores: usize) -> Option<usize> {
        match self {
            Scheduling::Auto => Some(cores.max(1)),
            Scheduling::Pool { workers } => Some(workers.max(1)),
            Scheduling::ThreadPerStage => None,
        }
    }
}

impl Default for Topology {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Topology")
            .field(
                "stages",
                &self.stages.iter().map(|s| s.name()).collect::<Vec<_>>(),
            )
            .field("links", &self.links)
            .finish()
    }
}

/// Why a topology could not run.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunError {
    /// A consuming stage has no subscription, or a producing stage no subscriber.
    Unconnected {
        /// The stage's name.
        stage: String,
    },
    /// Two stages share a name.
    DuplicateName {
        /// The name.
        name: String,
    },
    /// A stage handle of another topology was passed to this one.
    ForeignStage {
        /// The handle's stage index (in its own topology).
        stage: StageId,
    },
    /// A stage thread could not be started.
    Spawn(String),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Unconnected { stage } => {
                write!(
                    f,
                    "stage `{stage}` is not connected (it needs a subscription)"
                )
            }
            RunError::DuplicateName { name } => write!(f, "two stages are named `{name}`"),
            RunError::ForeignStage { stage } => write!(
                f,
                "stage handle {stage} belongs to another topology: use the handles this \
                 topology returned"
            ),
            RunError::Spawn(e) => write!(f, "could not start a stage thread: {e}"),
        }
    }
}

impl std::error::Error for RunError {}

/// How often `Running::join` looks for a deadlock while it waits.
const WATCHDOG_PERIOD: Duration = Duration::from_millis(20);

/// Each topology gets its own brand, so handles of one are refused by another.
static NEXT_TOPOLOGY: AtomicU64 = AtomicU64::new(1);

impl Topology {
    /// An empty topology.
    pub fn new() -> Self {
        Topology {
            id: NEXT_TOPOLOGY.fetch_add(1, Ordering::Relaxed),
            stages: Vec::new(),
            links: Vec::new(),
            stop_after: None,
            until: None,
            scheduling: Scheduling::Auto,
            own_thread: Vec::new(),
        }
    }

    /// How the stages get threads (default [`Scheduling::Auto`]).
    pub fn scheduling(&mut self, s: Scheduling) -> &mut Self {
        self.scheduling = s;
        self
    }

    /// Runs `stage` on a thread of its own even when the others share the worker pool:
    /// for a stage whose code blocks. See [`Scheduling`].
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use flowbench_engine::threads::{ProducerOptions, Scheduling, Topology};
    /// use flowbench_engine::{Chunk, Ctx, Emit, SubRef, SubscribeOpts};
    ///
    /// let mut t = Topology::new();
    /// t.scheduling(Scheduling::Pool { workers: 1 });
    /// let mut next = 0u64;
    /// let src = t.producer("src", ProducerOptions::default(), move |n: u64, emit: &mut Emit<u64>| {
    ///     let end = (next + n).min(10_000);
    ///     emit.extend(next..end);
    ///     next = end;
    ///     if next == 10_000 { emit.finish(); }
    /// });
    /// let threads = Arc::new(Mutex::new(Vec::new()));
    /// let seen = Arc::clone(&threads);
    /// let map = t.producer_consumer("map", ProducerOptions::default(),
    ///     move |events: Chunk<'_, u64>, _: SubRef, emit: &mut Emit<u64>| {
    ///         seen.lock().unwrap().push(std::thread::current().name().map(String::from));
    ///         emit.extend(events);
    ///     });
    /// let sum = Arc::new(Mutex::new((0u64, None)));
    /// let s = Arc::clone(&sum);
    /// let sink = t.consumer("sink", move |events: Chunk<'_, u64>, _: &mut Ctx| {
    ///     let mut g = s.lock().unwrap();
    ///     g.0 += events.sum::<u64>();
    ///     g.1 = std::thread::current().name().map(String::from);
    /// });
    /// t.subscribe(&src, &map, SubscribeOpts::default()).unwrap();
    /// t.subscribe(&map, &sink, SubscribeOpts::default()).unwrap();
    /// t.own_thread(&sink).unwrap();
    /// assert!(t.run().unwrap().balanced());
    /// let (total, sink_thread) = sum.lock().unwrap().clone();
    /// assert_eq!(total, (0..10_000u64).sum());
    /// assert_eq!(sink_thread.as_deref(), Some("stage-sink"));
    /// assert!(threads.lock().unwrap().iter().all(|n| n.as_deref() == Some("flowbench-worker-0")));
    /// ```
    pub fn own_thread<I, O>(&mut self, stage: &Stage<I, O>) -> Result<(), RunError> {
        let i = self.own(stage)?;
        self.own_thread[i] = true;
        Ok(())
    }

    fn add<I: Send + 'static, O: Clone + Send + 'static>(
        &mut self,
        st: TypedStage<I, O>,
    ) -> Stage<I, O> {
        let handle = Stage {
            topo: self.id,
            id: self.stages.len() as StageId,
            mailbox: Arc::clone(&st.mailbox),
            outs: Arc::clone(&st.outs),
        };
        self.stages.push(Box::new(st));
        self.own_thread.push(false);
        handle
    }

    fn own<I, O>(&self, s: &Stage<I, O>) -> Result<usize, RunError> {
        if s.topo == self.id && (s.id as usize) < self.stages.len() {
            Ok(s.id as usize)
        } else {
            Err(RunError::ForeignStage { stage: s.id })
        }
    }

    /// Adds a producer of `O` events.
    pub fn producer<O: Clone + Send + 'static>(
        &mut self,
        name: &str,
        opts: ProducerOptions<O>,
        logic: impl Producer<O> + 'static,
    ) -> Stage<(), O> {
        self.add(TypedStage::new(
            name,
            Some(Logic::Producer(Box::new(logic))),
            Some(opts.into_config(Some(DEFAULT_PRODUCER_BUFFER))),
        ))
    }

    /// Adds a producer whose events are pushed by a schedule rather than asked for:
    /// `schedule` returns the next arrival (its time from the start of the run, and the
    /// events), or `None` when there are no more — then the producer shuts down
    /// (reason `shutdown`) after handing out what it holds. Arrivals go through the
    /// dispatcher; what it cannot place goes to the buffer, and overflow is dropped and
    /// counted. `schedule` is called on the stage's thread.
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowbench_engine::threads::{ProducerOptions, Topology};
    /// use flowbench_engine::{Chunk, Ctx, SubscribeOpts};
    /// let mut t = Topology::new();
    /// let mut k = 0u64;
    /// let src = t.push_producer("ticks", ProducerOptions::default(), move || {
    ///     k += 1;
    ///     (k <= 3).then(|| (Duration::from_micros(k * 100), vec![k; 10]))
    /// });
    /// let sink = t.consumer("sink", |events: Chunk<'_, u64>, _: &mut Ctx| drop(events));
    /// t.subscribe(&src, &sink, SubscribeOpts::default()).unwrap();
    /// let out = t.run().unwrap();
    /// assert!(out.balanced());
    /// assert_eq!(out.stages[1].stats.handled, 30);
    /// ```
    pub fn push_producer<O: Clone + Send + 'static>(
        &mut self,
        name: &str,
        opts: ProducerOptions<O>,
        schedule: impl FnMut() -> Option<(Duration, Vec<O>)> + Send + 'static,
    ) -> Stage<(), O> {
        let mut st = TypedStage::new(
            name,
            Some(Logic::Producer(Box::new(|_n: u64, _emit: &mut Emit<O>| {}))),
            Some(opts.into_config(Some(DEFAULT_PRODUCER_BUFFER))),
        );
        st.push = Some(Box::new(schedule));
        self.add(st)
    }

    /// Adds a producer-consumer turning `I` events into `O` events.
    pub fn producer_consumer<I: Send + 'static, O: Clone + Send + 'static>(
        &mut self,
        name: &str,
        opts: ProducerOptions<O>,
        logic: impl ProducerConsumer<I, O> + 'static,
    ) -> Stage<I, O> {
        self.add(TypedStage::new(
            name,
            Some(Logic::ProducerConsumer(Box::new(logic))),
            Some(opts.into_config(None)),
        ))
    }

    /// Adds a consumer of `I` events.
    pub fn consumer<I: Send + 'static>(
        &mut self,
        name: &str,
        logic: impl Consumer<I> + 'static,
    ) -> Stage<I, ()> {
        self.add(TypedStage::<I, ()>::new(
            name,
            Some(Logic::Consumer(Box::new(logic))),
            None,
        ))
    }

    /// Adds a consumer pool: `job` runs once per event, on up to `max_demand` (the largest
    /// of its subscriptions') worker threads at once. Workers are started as the number of
    /// jobs in progress grows, so a pool that never runs many jobs at once never has many
    /// threads.
    pub fn consumer_pool<I: Send + 'static>(
        &mut self,
        name: &str,
        job: impl Job<I> + 'static,
    ) -> Stage<I, ()> {
        let mut st = TypedStage::<I, ()>::new(name, None, None);
        st.job = Some(Arc::new(job));
        self.add(st)
    }

    /// Subscribes `consumer` to `producer`; returns the subscription's link id. Handles of
    /// another topology are refused.
    pub fn subscribe<A, T: Clone + Send + 'static, B>(
        &mut self,
        producer: &Stage<A, T>,
        consumer: &Stage<T, B>,
        opts: SubscribeOpts<T>,
    ) -> Result<LinkId, RunError> {
        self.subscribe_to(&producer.outlet(), consumer, opts)
    }

    /// [`Topology::subscribe`] with the producer's outlet.
    pub(crate) fn subscribe_to<T: Clone + Send + 'static, B>(
        &mut self,
        producer: &Outlet<T>,
        consumer: &Stage<T, B>,
        opts: SubscribeOpts<T>,
    ) -> Result<LinkId, RunError> {
        if producer.topo != self.id || (producer.id as usize) >= self.stages.len() {
            return Err(RunError::ForeignStage { stage: producer.id });
        }
        let p = producer.id as usize;
        let c = self.own(consumer)?;
        let link = self.links.len() as LinkId;
        self.links.push((p as StageId, c as StageId));
        self.stages[c].add_input(InLinkConfig {
            link,
            demand: opts.demand,
            cancel: opts.cancel,
            mode: opts.mode,
        });
        let out = OutLinkConfig {
            link,
            consumer: c as StageId,
            partition: opts.partition,
            selector: opts.selector,
        };
        lock(&producer.outs).push((link, Arc::clone(&consumer.mailbox), out));
        Ok(link)
    }

    /// At `at` of wall time from the start of the run, does `what` to `stage`. Several
    /// timers of one stage go off in time order (ties in the order they were set).
    pub fn timer<I, O>(
        &mut self,
        stage: &Stage<I, O>,
        at: Duration,
        what: Control,
    ) -> Result<(), RunError> {
        let i = self.own(stage)?;
        self.stages[i].add_timer(at, what);
        Ok(())
    }

    /// Calls `hook` after each step of `stage` (see [`StageHook`]); replaces an earlier one.
    pub fn hook<I, O>(
        &mut self,
        stage: &Stage<I, O>,
        hook: impl StageHook + 'static,
    ) -> Result<(), RunError> {
        let i = self.own(stage)?;
        self.stages[i].set_hook(Box::new(hook));
        Ok(())
    }

    /// Stops producers in order (reason `shutdown`) after `d` of wall time, for
    /// pipelines with unbounded sources.
    pub fn stop_after(&mut self, d: Duration) {
        self.stop_after = Some(d);
    }

    /// Cuts the run at `d` of wall time: every stage stops where it is, as the
    /// simulator's `until` does. What is still in a mailbox then is reported in flight
    /// ([`LinkFigures::in_flight`]) and the outcome says it was cut
    /// ([`RunOutcome::cut`]). A stage inside its own code (a long job, a hook) stops when
    /// that code returns; a busy stage looks at the clock every 64 messages, so it may
    /// handle up to 63 more (microseconds' worth) before it stops.
    pub fn until(&mut self, d: Duration) {
        self.until = Some(d);
    }

    fn check(&self) -> Result<(), RunError> {
        let mut names: Vec<&str> = self.stages.iter().map(|s| s.name()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(RunError::DuplicateName {
                name: w[0].to_string(),
            });
        }
        let mut has_in = vec![false; self.stages.len()];
        let mut has_out = vec![false; self.stages.len()];
        for &(p, c) in &self.links {
            has_out[p as usize] = true;
            has_in[c as usize] = true;
        }
        for (i, s) in self.stages.iter().enumerate() {
            let kind = s.kind();
            if (kind.consumes() && !has_in[i]) || (kind.produces() && !has_out[i]) {
                return Err(RunError::Unconnected {
                    stage: s.name().to_string(),
                });
            }
        }
        Ok(())
    }

    /// Starts the stages: on the worker pool or on threads of their own, as
    /// [`Topology::scheduling`] says.
    pub fn spawn(self) -> Result<Running, RunError> {
        self.check()?;
        let n = self.stages.len();
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        let workers = self.scheduling.workers(cores);
        let started = Instant::now();
        let shared = Arc::new(Shared {
            links: self.links.clone(),
            exits: (0..n).map(|_| Mutex::new(None)).collect(),
            undeliverable: (0..self.links.len()).map(|_| AtomicU64::new(0)).collect(),
            started,
            cut_at: self.until,
            halted: AtomicBool::new(false),
            in_flight: (0..self.links.len()).map(|_| AtomicU64::new(0)).collect(),
            watch: watch::Watch::new(n),
            joiner: Mutex::new(None),
            ended: AtomicU64::new(0),
            results: (0..n).map(|_| Mutex::new(None)).collect(),
            // A stage on its own thread spins only while threads do not outnumber cores
            // (else the spinning thread takes the core the sender needs).
            spin: workers.is_none() && n <= cores,
        });
        let ports: Vec<Arc<dyn UpPort>> = self.stages.iter().map(|s| s.port()).collect();
        let names: Vec<String> = self.stages.iter().map(|s| s.name().to_string()).collect();
        let kinds: Vec<StageKind> = self.stages.iter().map(|s| s.kind()).collect();
        let pool = workers.map(|w| Sched::new(n, w, started, w <= cores));
        let mut probes = Vec::with_capacity(n);
        let mut own = Vec::new();
        for (i, st) in self.stages.into_iter().enumerate() {
            let pooled = pool.is_some() && !self.own_thread[i];
            let (probe, body) = st.prepare(i as StageId, &shared, &ports, self.stop_after, pooled);
            probes.push(probe);
            match &pool {
                Some((sched, _)) if pooled => {
                    sched.set_body(i, body);
                    ports[i].set_waker(Some(Waker {
                        task: Arc::clone(sched.task(i)),
                        sched: Arc::clone(sched),
                    }));
                }
                _ => own.push((i, body)),
            }
        }
        let mut threads = Vec::with_capacity(own.len());
        let mut sched = None;
        if let Some((sc, locals)) = pool {
            for (w, local) in locals.into_iter().enumerate() {
                let s = Arc::clone(&sc);
                let h = thread::Builder::new()
                    .name(format!("flowbench-worker-{w}"))
                    .spawn(move || s.work(w, local))
                    .map_err(|e| {
                        sc.shutdown();
                        RunError::Spawn(e.to_string())
                    })?;
                threads.push(h);
            }
            for i in (0..n).filter(|&i| !self.own_thread[i]) {
                // Its first slice starts it.
                sc.notify(sc.task(i));
            }
            sched = Some(sc);
        }
        for (i, mut body) in own {
            let h = thread::Builder::new()
                .name(format!("stage-{}", names[i]))
                .spawn(move || sched::drive_on_thread(body.as_mut()))
                .map_err(|e| RunError::Spawn(e.to_string()))?;
            threads.push(h);
        }
        // The cut is one timer for the whole run, not a clock read in every stage.
        let cutter = match self.until {
            None => None,
            Some(cut) => {
                let (sh, ports) = (Arc::clone(&shared), ports.clone());
                let h = thread::Builder::new()
                    .name("flowbench-cut".into())
                    .spawn(move || {
                        loop {
                            if sh.ended.load(Ordering::SeqCst) == n as u64 {
                                return;
                            }
                            let left = cut.saturating_sub(sh.started.elapsed());
                            if left.is_zero() {
                                break;
                            }
                            std::thread::park_timeout(left);
                        }
                        sh.halt(&ports);
                    })
                    .map_err(|e| RunError::Spawn(e.to_string()))?;
                Some(h)
            }
        };
        Ok(Running {
            threads,
            cutter,
            sched,
            ports,
            names,
            kinds,
            probes,
            shared,
        })
    }

    /// Runs the topology to the end and returns what happened.
    pub fn run(self) -> Result<RunOutcome, RunError> {
        self.spawn()?.join()
    }
}

/// A topology whose stages are running.
pub struct Running {
    /// Worker threads and the threads of stages that have their own.
    threads: Vec<thread::JoinHandle<()>>,
    /// The thread that cuts the run at `Topology::until`.
    cutter: Option<thread::JoinHandle<()>>,
    sched: Option<Arc<Sched>>,
    ports: Vec<Arc<dyn UpPort>>,
    names: Vec<String>,
    kinds: Vec<StageKind>,
    probes: Vec<Arc<StageProbe>>,
    shared: Arc<Shared>,
}

impl fmt::Debug for Running {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Running")
            .field("stages", &self.names)
            .finish_non_exhaustive()
    }
}

impl Running {
    /// The live probes, one per stage, in topology order.
    pub fn probes(&self) -> &[Arc<StageProbe>] {
        &self.probes
    }

    /// Asks every producer to stop in order: it stops creating events, hands out what it
    /// holds, and cancels its subscriptions with reason `shutdown`.
    pub fn shutdown(&self) {
        for (port, kind) in self.ports.iter().zip(&self.kinds) {
            if *kind == StageKind::Producer {
                port.send_shutdown();
            }
        }
    }

    /// `Some(the activity seen)` if no stage can make progress any more: every stage
    /// whose thread is still running waits for mail with nothing else pending, and no
    /// mailbox holds a message.
    fn quiescent(&self) -> Option<u64> {
        self.shared.watch.quiescent(
            |i| lock(&self.shared.results[i]).is_some(),
            |i| self.probes[i].read().mailbox_depth,
        )
    }

    /// Waits for every stage to stop. A run in which no stage can make progress any more
    /// (every stage waits for mail that will not come, and nothing is pending) is halted
    /// and reported in [`RunOutcome::deadlock`]; it never hangs.
    pub fn join(self) -> Result<RunOutcome, RunError> {
        *lock(&self.shared.joiner) = Some(std::thread::current());
        let mut seen: Option<u64> = None;
        let mut deadlock_at = None;
        let n = self.names.len() as u64;
        while self.shared.ended.load(Ordering::SeqCst) < n {
            // Deadlocked: quiescent twice in a row, with no input taken in between. Once
            // halted, the stages stop where they are: wait for them to report.
            match (deadlock_at.is_none().then(|| self.quiescent()), seen) {
                (Some(Some(a)), Some(b)) if a == b => {
                    deadlock_at = Some(self.shared.started.elapsed());
                    self.shared.halt(&self.ports);
                }
                (q, _) => seen = q.flatten(),
            }
            std::thread::park_timeout(WATCHDOG_PERIOD);
        }
        // Every stage has reported: the workers and the cut's timer can go.
        if let Some(sched) = &self.sched {
            sched.shutdown();
        }
        if let Some(h) = self.cutter {
            h.thread().unpark();
            let _ = h.join();
        }
        let mut failures = Vec::new();
        for h in self.threads {
            if let Err(panic) = h.join() {
                let what = sched::panic_text(panic.as_ref());
                failures.push(format!("a worker thread panicked: {what}"));
            }
        }
        let mut figures = Vec::with_capacity(self.names.len());
        for (i, (name, kind)) in self.names.iter().zip(&self.kinds).enumerate() {
            match lock(&self.shared.results[i]).take() {
                Some(Ok(f)) => figures.push(f),
                Some(Err(what)) => {
                    failures.push(format!("stage `{name}`: the runtime panicked: {what}"));
                    figures.push(StageFigures::unknown(name, *kind, "runtime panic"));
                }
                None => {
                    failures.push(format!("stage `{name}`: never reported"));
                    figures.push(StageFigures::unknown(name, *kind, "no report"));
                }
            }
        }
        let links = self
            .shared
            .links
            .iter()
            .enumerate()
            .map(|(i, &(p, c))| LinkFigures {
                producer: p as usize,
                consumer: c as usize,
                undeliverable: self.shared.undeliverable[i].load(Ordering::Relaxed),
                in_flight: self.shared.in_flight[i].load(Ordering::Relaxed),
            })
            .collect();
        let ends: Vec<(usize, usize)> = self
            .shared
            .links
            .iter()
            .map(|&(p, c)| (p as usize, c as usize))
            .collect();
        let deadlock = deadlock_at.map(|t| {
            let mailboxes = vec![0; figures.len()];
            let t_ns = u64::try_from(t.as_nanos()).unwrap_or(u64::MAX);
            DeadlockReport::from_figures(t_ns, &figures, &mailboxes, &ends)
        });
        Ok(RunOutcome {
            elapsed: self.shared.started.elapsed(),
            stages: figures,
            links,
            failures,
            cut: deadlock.is_none() && self.shared.halted.load(Ordering::SeqCst),
            deadlock,
        })
    }
}

/// The figures of a finished run.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RunOutcome {
    /// Wall time from start to the last stage's stop.
    pub elapsed: Duration,
    /// One entry per stage, in topology order.
    pub stages: Vec<StageFigures>,
    /// One entry per subscription.
    pub links: Vec<LinkFigures>,
    /// Stage threads that panicked (a runtime bug): their figures are unknown, and the run
    /// does not balance.
    pub failures: Vec<String>,
    /// The run was cut at its [`Topology::until`] time; what was queued is in flight.
    pub cut: bool,
    /// The run could make no progress and was halted: what every stage was doing.
    pub deadlock: Option<DeadlockReport>,
}

impl RunOutcome {
    /// The run summary (table or JSON).
    pub fn summary(&self, scenario: &str) -> RunSummary {
        let mut s = RunSummary::new(
            scenario,
            "threads",
            self.elapsed.as_secs_f64(),
            &self.stages,
            &self.links,
        );
        s.fail(&self.failures);
        s
    }

    /// `true` if no stage thread panicked and every producing stage's accounting
    /// balanced.
    pub fn balanced(&self) -> bool {
        self.failures.is_empty()
            && crate::report::account(&self.stages, &self.links)
                .iter()
                .all(|b| b.balanced)
    }
}
