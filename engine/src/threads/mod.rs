//! The threads runtime: every stage is an OS thread with a mailbox; time is wall time.
//!
//! Build a [`Topology`] of typed stages, [`subscribe`](Topology::subscribe) consumers to
//! producers, then [`run`](Topology::run) it (or [`spawn`](Topology::spawn) it and read
//! [probes](Running::probes) while it runs). Each thread is a thin driver around its
//! stage's [`StageCore`]: it takes messages from its mailbox, lets the core handle them,
//! and carries the core's messages to the other stages' mailboxes.
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
//! t.subscribe(numbers, squares, SubscribeOpts::default());
//! t.subscribe(squares, sink, SubscribeOpts::default());
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
//! use flowbench_engine::{Chunk, Ctx, DispatcherSpec, Emit, PartitionFn, SubscribeOpts};
//!
//! let mut t = Topology::new();
//! let mut next = 0u64;
//! let opts = ProducerOptions::default().dispatcher(DispatcherSpec::Partition {
//!     partitions: 2,
//!     hash: PartitionFn::new(|e: &u64| Some((e % 2) as u32)),
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
//!     t.subscribe(src, c, SubscribeOpts::default().partition(p as u32));
//! }
//! t.run().unwrap();
//! assert_eq!(*seen[0].lock().unwrap(), (0..100).step_by(2).collect::<Vec<u64>>());
//! assert_eq!(*seen[1].lock().unwrap(), (1..100).step_by(2).collect::<Vec<u64>>());
//! ```

mod mailbox;
mod probe;
mod scenario;

use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

pub use self::mailbox::Mailbox;
pub use self::probe::{ProbeReading, StageProbe};
pub use self::scenario::{run_scenario, ScenarioRunOptions};

use crate::buffer::{Keep, DEFAULT_PRODUCER_BUFFER};
use crate::core::{
    CoreConfig, DemandMode, Effects, InLinkConfig, Input, Logic, OutLinkConfig, OutputConfig,
    StageCore, StageKind,
};
use crate::dispatcher::DispatcherSpec;
use crate::hash::SplitMix64;
use crate::logic::{Consumer, Job, Producer, ProducerConsumer};
use crate::observe::NoObserver;
use crate::opts::SubscribeOpts;
use crate::plan::Arrivals;
use crate::protocol::{CancelReason, Downstream, LinkId, Outgoing, StageId, SubRef, Upstream};
use crate::report::{LinkFigures, RunSummary, StageFigures};
use crate::scenario::model::Dist;
use std::sync::Arc;

use crate::sync::{lock, thread, AtomicU64, Mutex, Ordering};

/// A typed handle to a stage of a [`Topology`]: `I` is what it consumes, `O` what it
/// produces (`()` where it does not).
pub struct Stage<I, O> {
    id: StageId,
    _types: PhantomData<fn(I) -> O>,
}

impl<I, O> Clone for Stage<I, O> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<I, O> Copy for Stage<I, O> {}

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

/// Work the threads runtime does on a stage's behalf: emulated service times, push
/// arrivals, timed switches and injected faults (from a scenario).
#[derive(Clone, Debug, Default)]
pub(crate) struct Extras {
    pub per_event: Option<Dist>,
    pub per_batch: Option<Dist>,
    pub arrivals: Option<Arrivals>,
    pub forward_at: Option<Duration>,
    pub crash_after_events: Option<u64>,
    pub crash_at: Option<Duration>,
    pub slow: Option<(Duration, f64)>,
    pub seed: u64,
}

enum Envelope<I> {
    Up(Upstream),
    Down(Downstream<I>),
    JobDone(SubRef),
    Shutdown,
    Crash(CancelReason),
}

/// Sends upstream messages to a producer whatever its input type.
trait UpPort: Send + Sync {
    fn send_up(&self, m: Upstream) -> bool;
    fn send_shutdown(&self) -> bool;
}

impl<I: Send> UpPort for Mailbox<Envelope<I>> {
    fn send_up(&self, m: Upstream) -> bool {
        self.send(Envelope::Up(m)).is_ok()
    }

    fn send_shutdown(&self) -> bool {
        self.send(Envelope::Shutdown).is_ok()
    }
}

struct Shared {
    links: Vec<(StageId, StageId)>,
    exits: Vec<Mutex<Option<CancelReason>>>,
    undeliverable: Vec<AtomicU64>,
    started: Instant,
}

impl Shared {
    fn exit_of(&self, stage: StageId) -> CancelReason {
        lock(&self.exits[stage as usize])
            .clone()
            .unwrap_or(CancelReason::Normal)
    }
}

/// What a stage needs from its neighbours once every mailbox exists.
struct Wiring {
    mailboxes: Vec<Arc<dyn Any + Send + Sync>>,
    ports: Vec<Arc<dyn UpPort>>,
    shared: Arc<Shared>,
    stop_after: Option<Duration>,
}

trait ErasedStage: Send {
    fn kind(&self) -> StageKind;
    fn name(&self) -> &str;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn add_input(&mut self, cfg: InLinkConfig);
    /// Creates the mailbox; returns it erased, and as a port for upstream messages.
    fn mailbox(&self) -> (Arc<dyn Any + Send + Sync>, Arc<dyn UpPort>);
    fn prepare(
        self: Box<Self>,
        own: StageId,
        wiring: &Wiring,
    ) -> (Arc<StageProbe>, Box<dyn FnOnce() -> StageFigures + Send>);
}

struct TypedStage<I, O> {
    name: String,
    logic: Option<Logic<I, O>>,
    job: Option<Arc<dyn Job<I>>>,
    inputs: Vec<InLinkConfig>,
    output: Option<OutputConfig<O>>,
    extras: Extras,
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

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn add_input(&mut self, cfg: InLinkConfig) {
        self.inputs.push(cfg);
    }

    fn mailbox(&self) -> (Arc<dyn Any + Send + Sync>, Arc<dyn UpPort>) {
        let mb: Arc<Mailbox<Envelope<I>>> = Arc::new(Mailbox::new());
        (mb.clone(), mb)
    }

    fn prepare(
        self: Box<Self>,
        own: StageId,
        wiring: &Wiring,
    ) -> (Arc<StageProbe>, Box<dyn FnOnce() -> StageFigures + Send>) {
        let me = *self;
        let mailbox = wiring.mailboxes[own as usize]
            .clone()
            .downcast::<Mailbox<Envelope<I>>>()
            .unwrap_or_else(|_| unreachable_types());
        let mut downs = Vec::new();
        if let Some(out) = &me.output {
            for l in &out.links {
                let mb = wiring.mailboxes[l.consumer as usize]
                    .clone()
                    .downcast::<Mailbox<Envelope<O>>>()
                    .unwrap_or_else(|_| unreachable_types());
                downs.push((l.link, mb));
            }
        }
        downs.sort_by_key(|(l, _)| *l);
        let ups: Vec<(LinkId, Arc<dyn UpPort>)> = me
            .inputs
            .iter()
            .map(|c| {
                let producer = wiring.shared.links[c.link as usize].0;
                (c.link, wiring.ports[producer as usize].clone())
            })
            .collect();
        let pool_size = me
            .inputs
            .iter()
            .map(|c| c.demand.max())
            .max()
            .unwrap_or(1)
            .min(MAX_POOL_WORKERS);
        let logic = me.logic.unwrap_or(Logic::ConsumerPool);
        let core = StageCore::new(CoreConfig {
            id: own,
            logic,
            inputs: me.inputs,
            output: me.output,
        });
        let depth: Arc<dyn probe::Depth> = mailbox.clone();
        let probe = Arc::new(StageProbe::new(&me.name, &core, depth));
        let runner = Runner {
            name: me.name,
            id: own,
            core,
            mailbox,
            downs,
            ups,
            shared: wiring.shared.clone(),
            probe: probe.clone(),
            job: me.job.map(|j| (j, pool_size as usize)),
            extras: me.extras,
            stop_after: wiring.stop_after,
        };
        (probe, Box::new(move || runner.run()))
    }
}

fn unreachable_types<T>() -> T {
    // `subscribe` only links a producer of `T` to a consumer of `T`, so every downcast of a
    // mailbox finds the type it expects.
    panic!("flowbench: mailbox type mismatch (a bug in Topology::subscribe)")
}

/// On threads a consumer pool runs at most this many jobs at once (and at most its
/// `max_demand`), to keep thread counts sane.
pub const MAX_POOL_WORKERS: u64 = 64;

/// A pipeline under construction: stages and the subscriptions between them.
#[derive(Default)]
pub struct Topology {
    stages: Vec<Box<dyn ErasedStage>>,
    links: Vec<(StageId, StageId)>,
    stop_after: Option<Duration>,
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
            RunError::Spawn(e) => write!(f, "could not start a stage thread: {e}"),
        }
    }
}

impl std::error::Error for RunError {}

impl Topology {
    /// An empty topology.
    pub fn new() -> Self {
        Self::default()
    }

    fn add<I: Send + 'static, O: Clone + Send + 'static>(
        &mut self,
        st: TypedStage<I, O>,
    ) -> Stage<I, O> {
        self.stages.push(Box::new(st));
        Stage {
            id: (self.stages.len() - 1) as StageId,
            _types: PhantomData,
        }
    }

    /// Adds a producer of `O` events.
    pub fn producer<O: Clone + Send + 'static>(
        &mut self,
        name: &str,
        opts: ProducerOptions<O>,
        logic: impl Producer<O> + 'static,
    ) -> Stage<(), O> {
        self.add(TypedStage {
            name: name.to_string(),
            logic: Some(Logic::Producer(Box::new(logic))),
            job: None,
            inputs: Vec::new(),
            output: Some(opts.into_config(Some(DEFAULT_PRODUCER_BUFFER))),
            extras: Extras::default(),
        })
    }

    /// Adds a producer-consumer turning `I` events into `O` events.
    pub fn producer_consumer<I: Send + 'static, O: Clone + Send + 'static>(
        &mut self,
        name: &str,
        opts: ProducerOptions<O>,
        logic: impl ProducerConsumer<I, O> + 'static,
    ) -> Stage<I, O> {
        self.add(TypedStage {
            name: name.to_string(),
            logic: Some(Logic::ProducerConsumer(Box::new(logic))),
            job: None,
            inputs: Vec::new(),
            output: Some(opts.into_config(None)),
            extras: Extras::default(),
        })
    }

    /// Adds a consumer of `I` events.
    pub fn consumer<I: Send + 'static>(
        &mut self,
        name: &str,
        logic: impl Consumer<I> + 'static,
    ) -> Stage<I, ()> {
        self.add(TypedStage::<I, ()> {
            name: name.to_string(),
            logic: Some(Logic::Consumer(Box::new(logic))),
            job: None,
            inputs: Vec::new(),
            output: None,
            extras: Extras::default(),
        })
    }

    /// Adds a consumer pool: `job` runs once per event, on up to
    /// `min(max_demand, MAX_POOL_WORKERS)` worker threads at once.
    pub fn consumer_pool<I: Send + 'static>(
        &mut self,
        name: &str,
        job: impl Job<I> + 'static,
    ) -> Stage<I, ()> {
        self.add(TypedStage::<I, ()> {
            name: name.to_string(),
            logic: None,
            job: Some(Arc::new(job)),
            inputs: Vec::new(),
            output: None,
            extras: Extras::default(),
        })
    }

    /// Subscribes `consumer` to `producer`; returns the subscription's link id.
    pub fn subscribe<A: 'static, T: Clone + Send + 'static, B: 'static>(
        &mut self,
        producer: Stage<A, T>,
        consumer: Stage<T, B>,
        opts: SubscribeOpts<T>,
    ) -> LinkId {
        let link = self.links.len() as LinkId;
        self.links.push((producer.id, consumer.id));
        self.stages[consumer.id as usize].add_input(InLinkConfig {
            link,
            demand: opts.demand,
            cancel: opts.cancel,
            mode: opts.mode,
        });
        let out_cfg = OutLinkConfig {
            link,
            consumer: consumer.id,
            partition: opts.partition,
            selector: opts.selector,
        };
        let any = self.stages[producer.id as usize].as_any_mut();
        if let Some(ts) = any.downcast_mut::<TypedStage<A, T>>() {
            if let Some(out) = ts.output.as_mut() {
                out.links.push(out_cfg);
            }
        }
        link
    }

    /// Stops producers in order (reason `shutdown`) after `d` of wall time, for
    /// pipelines with unbounded sources.
    pub fn stop_after(&mut self, d: Duration) {
        self.stop_after = Some(d);
    }

    fn check(&self) -> Result<(), RunError> {
        for (i, s) in self.stages.iter().enumerate() {
            if self.stages[..i].iter().any(|o| o.name() == s.name()) {
                return Err(RunError::DuplicateName {
                    name: s.name().to_string(),
                });
            }
            let id = i as StageId;
            let has_in = self.links.iter().any(|l| l.1 == id);
            let has_out = self.links.iter().any(|l| l.0 == id);
            let kind = s.kind();
            if (kind.consumes() && !has_in) || (kind.produces() && !has_out) {
                return Err(RunError::Unconnected {
                    stage: s.name().to_string(),
                });
            }
        }
        Ok(())
    }

    /// Starts every stage on its own thread.
    pub fn spawn(self) -> Result<Running, RunError> {
        self.check()?;
        let n = self.stages.len();
        let shared = Arc::new(Shared {
            links: self.links.clone(),
            exits: (0..n).map(|_| Mutex::new(None)).collect(),
            undeliverable: (0..self.links.len()).map(|_| AtomicU64::new(0)).collect(),
            started: Instant::now(),
        });
        let (mailboxes, ports): (Vec<_>, Vec<_>) = self.stages.iter().map(|s| s.mailbox()).unzip();
        let wiring = Wiring {
            mailboxes,
            ports,
            shared: shared.clone(),
            stop_after: self.stop_after,
        };
        let names: Vec<String> = self.stages.iter().map(|s| s.name().to_string()).collect();
        let mut probes = Vec::with_capacity(n);
        let mut bodies = Vec::with_capacity(n);
        for (i, st) in self.stages.into_iter().enumerate() {
            let (probe, body) = st.prepare(i as StageId, &wiring);
            probes.push(probe);
            bodies.push(body);
        }
        let mut handles = Vec::with_capacity(n);
        for (name, body) in names.iter().zip(bodies) {
            let h = thread::Builder::new()
                .name(format!("stage-{name}"))
                .spawn(body)
                .map_err(|e| RunError::Spawn(e.to_string()))?;
            handles.push(h);
        }
        Ok(Running {
            handles,
            ports: wiring.ports,
            names,
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
    handles: Vec<thread::JoinHandle<StageFigures>>,
    ports: Vec<Arc<dyn UpPort>>,
    names: Vec<String>,
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
        for (port, probe) in self.ports.iter().zip(&self.probes) {
            if probe.read().kind == StageKind::Producer {
                port.send_shutdown();
            }
        }
    }

    /// Waits for every stage to stop.
    pub fn join(self) -> Result<RunOutcome, RunError> {
        let mut figures = Vec::with_capacity(self.handles.len());
        for (h, name) in self.handles.into_iter().zip(&self.names) {
            let f = h.join().unwrap_or_else(|_| StageFigures {
                name: name.clone(),
                kind: StageKind::Consumer,
                stats: Default::default(),
                buffered: 0,
                dispatcher_queued: 0,
                input_queued: 0,
                excess: 0,
                in_links: Vec::new(),
                out_links: Vec::new(),
                mailbox_peak: 0,
                busy_ns: 0,
                exit: "runtime panic".to_string(),
            });
            figures.push(f);
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
                in_flight: 0,
            })
            .collect();
        Ok(RunOutcome {
            elapsed: self.shared.started.elapsed(),
            stages: figures,
            links,
            received: Vec::new(),
        })
    }
}

/// The figures of a finished run.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    /// Wall time from start to the last stage's stop.
    pub elapsed: Duration,
    /// One entry per stage, in topology order.
    pub stages: Vec<StageFigures>,
    /// One entry per subscription.
    pub links: Vec<LinkFigures>,
    /// Per stage, the events it handled with their link, when the scenario run was asked
    /// to record them ([`ScenarioRunOptions::record`]); empty otherwise.
    pub received: Vec<Vec<(LinkId, u64)>>,
}

impl RunOutcome {
    /// The run summary (table or JSON).
    pub fn summary(&self, scenario: &str) -> RunSummary {
        RunSummary::new(
            scenario,
            "threads",
            self.elapsed.as_secs_f64(),
            &self.stages,
            &self.links,
        )
    }

    /// `true` if every producing stage's accounting balanced.
    pub fn balanced(&self) -> bool {
        crate::report::account(&self.stages, &self.links)
            .iter()
            .all(|b| b.balanced)
    }
}

type DownPort<O> = (LinkId, Arc<Mailbox<Envelope<O>>>);

struct Runner<I, O> {
    name: String,
    id: StageId,
    core: StageCore<I, O>,
    mailbox: Arc<Mailbox<Envelope<I>>>,
    downs: Vec<DownPort<O>>,
    ups: Vec<(LinkId, Arc<dyn UpPort>)>,
    shared: Arc<Shared>,
    probe: Arc<StageProbe>,
    job: Option<(Arc<dyn Job<I>>, usize)>,
    extras: Extras,
    stop_after: Option<Duration>,
}

/// A uniform variate in `(0, 1]` from a SplitMix64 stream.
fn uniform(rng: &mut SplitMix64) -> f64 {
    ((rng.next() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
}

fn busy_wait(ns: u64) {
    if ns == 0 {
        return;
    }
    let end = Instant::now() + Duration::from_nanos(ns);
    while Instant::now() < end {
        std::hint::spin_loop();
    }
}

struct Pool<I> {
    jobs: Arc<Mailbox<(SubRef, I)>>,
    workers: Vec<thread::JoinHandle<()>>,
}

impl<I: Send + 'static, O: Clone + Send + 'static> Runner<I, O> {
    fn run(mut self) -> StageFigures {
        let started = self.shared.started;
        let mut fx: Effects<I, O> = Effects::default();
        let mut rng = SplitMix64::new(self.extras.seed);
        let pool = self.job.take().map(|(job, n)| self.start_pool(job, n));
        let mut arrivals = self.extras.arrivals.take();
        let mut next_arrival = arrivals
            .as_mut()
            .and_then(|a| a.next(&mut || uniform(&mut rng)));
        let mut forward_at = self.extras.forward_at;
        let mut crash_at = self.extras.crash_at;
        let mut stop_at = self
            .stop_after
            .filter(|_| self.core.kind() == StageKind::Producer);
        let mut busy_ns = 0u64;
        let mut local: VecDeque<Envelope<I>> = VecDeque::new();

        self.step(Input::Start, &mut fx, &pool, &mut rng, &mut busy_ns);
        while !self.core.is_stopped() {
            let now = started.elapsed();
            // Timed inputs whose time has come, the stop first. Each pass of the loop
            // handles at most one of them and then looks at the mailbox, so a source
            // whose arrivals outpace the stage cannot starve its mail or its stop.
            if stop_at.is_some_and(|t| t <= now) {
                stop_at = None;
                next_arrival = None;
                self.step(Input::Shutdown, &mut fx, &pool, &mut rng, &mut busy_ns);
            } else if crash_at.is_some_and(|t| t <= now) {
                crash_at = None;
                let reason = CancelReason::error("injected crash (crash_at_us)");
                self.step(Input::Crash(reason), &mut fx, &pool, &mut rng, &mut busy_ns);
            } else if forward_at.is_some_and(|t| t <= now) {
                forward_at = None;
                self.step(Input::Forward, &mut fx, &pool, &mut rng, &mut busy_ns);
            } else if let Some((at, ids)) = next_arrival.clone() {
                if Duration::from_nanos(at) <= now {
                    let events: Vec<u64> = ids.collect();
                    self.arrive(events, &mut fx, &pool, &mut rng, &mut busy_ns);
                    next_arrival = if self.core.takes_arrivals() {
                        arrivals
                            .as_mut()
                            .and_then(|a| a.next(&mut || uniform(&mut rng)))
                    } else {
                        None
                    };
                }
            }
            if self.core.is_stopped() {
                break;
            }
            if local.is_empty() {
                let deadline = [
                    next_arrival
                        .as_ref()
                        .map(|(at, _)| Duration::from_nanos(*at)),
                    forward_at,
                    crash_at,
                    stop_at,
                ]
                .into_iter()
                .flatten()
                .min()
                .map(|d| started + d);
                let got = if deadline.is_some_and(|d| d <= Instant::now()) {
                    // Something is already due: take what mail there is, do not wait.
                    self.mailbox.try_recv_all(&mut local)
                } else {
                    self.mailbox.recv_all(&mut local, deadline)
                };
                if !got {
                    continue;
                }
            }
            let Some(env) = local.pop_front() else {
                continue;
            };
            self.mailbox.processed(1);
            let input = match env {
                Envelope::Up(m) => Input::Up(m),
                Envelope::Down(m) => Input::Down(m),
                Envelope::JobDone(sub) => Input::JobDone { sub },
                Envelope::Shutdown => Input::Shutdown,
                Envelope::Crash(r) => Input::Crash(r),
            };
            self.step(input, &mut fx, &pool, &mut rng, &mut busy_ns);
        }
        // Stopped: refuse new mail, and let the stopped core account for what is left
        // (events are counted lost, late subscriptions are answered with a cancel).
        let exit = match self.core.status() {
            crate::core::Status::Stopped(r) => r.clone(),
            _ => CancelReason::Normal,
        };
        *lock(&self.shared.exits[self.id as usize]) = Some(exit);
        let rest = self.mailbox.close();
        let n = (local.len() + rest.len()) as u64;
        for env in local.into_iter().chain(rest) {
            let input = match env {
                Envelope::Up(m) => Input::Up(m),
                Envelope::Down(m) => Input::Down(m),
                _ => continue,
            };
            self.core.handle(input, &mut fx, &mut NoObserver);
            self.route(&mut fx, &pool);
        }
        self.mailbox.processed(n);
        if let Some(p) = pool {
            p.jobs.close();
            for w in p.workers {
                let _ = w.join();
            }
        }
        self.probe.publish(&self.core, busy_ns);
        let mut f = StageFigures::capture(&self.name, &self.core);
        f.mailbox_peak = self.mailbox.peak();
        f.busy_ns = busy_ns;
        f
    }

    fn arrive(
        &mut self,
        events: Vec<u64>,
        fx: &mut Effects<I, O>,
        pool: &Option<Pool<I>>,
        rng: &mut SplitMix64,
        busy_ns: &mut u64,
    ) {
        // Arrivals exist only on `u64` producers built from scenarios.
        let any: Box<dyn Any> = Box::new(events);
        if let Ok(events) = any.downcast::<Vec<O>>() {
            self.step(Input::Arrive(*events), fx, pool, rng, busy_ns);
        }
    }

    fn step(
        &mut self,
        input: Input<I, O>,
        fx: &mut Effects<I, O>,
        pool: &Option<Pool<I>>,
        rng: &mut SplitMix64,
        busy_ns: &mut u64,
    ) {
        let t0 = Instant::now();
        // What this input did, for the emulated service time: events handled or emitted
        // (a producer-consumer pays once per event it passes on, as in the simulator) and
        // batches received or `handle_demand` calls.
        let work =
            |s: &crate::core::StageStats| (s.handled, s.emitted, s.batches_in + s.demand_calls);
        let (h0, e0, b0) = work(self.core.stats());
        self.core.handle(input, fx, &mut NoObserver);
        let after = self.core.stats();
        let (h1, e1, b1) = work(after);
        let events = (h1 - h0).max(e1 - e0);
        let batches = b1 - b0;
        self.emulate(events, batches, rng);
        if let Some(n) = self.extras.crash_after_events {
            if events > 0 && after.handled.max(after.emitted) >= n {
                self.extras.crash_after_events = None;
                let reason = CancelReason::error(format!("injected crash after {n} events"));
                self.core.handle(Input::Crash(reason), fx, &mut NoObserver);
            }
        }
        self.route(fx, pool);
        *busy_ns += t0.elapsed().as_nanos() as u64;
        self.probe.publish(&self.core, *busy_ns);
    }

    fn emulate(&self, events: u64, batches: u64, rng: &mut SplitMix64) {
        if self.extras.per_event.is_none() && self.extras.per_batch.is_none() {
            return;
        }
        let mut ns = 0u64;
        if let Some(d) = self.extras.per_batch {
            for _ in 0..batches {
                ns = ns.saturating_add(d.sample_with(uniform(rng), uniform(rng)));
            }
        }
        if let (Some(d), false) = (
            self.extras.per_event,
            self.core.kind() == StageKind::ConsumerPool,
        ) {
            ns = ns.saturating_add(sample_sum(&d, events, rng));
        }
        if let Some((at, factor)) = self.extras.slow {
            if self.shared.started.elapsed() >= at {
                ns = (ns as f64 * factor) as u64;
            }
        }
        busy_wait(ns);
    }

    fn route(&mut self, fx: &mut Effects<I, O>, pool: &Option<Pool<I>>) {
        for o in fx.out.drain(..) {
            match o {
                Outgoing::Up(m) => {
                    let link = m.sub().link;
                    let producer = self.shared.links[link as usize].0;
                    if producer == self.id {
                        // A refund the producer sends itself.
                        let _ = self.mailbox.send(Envelope::Up(m));
                        continue;
                    }
                    let Some((_, port)) = self.ups.iter().find(|(l, _)| *l == link) else {
                        continue;
                    };
                    let subscribe = match &m {
                        Upstream::Subscribe { sub } => Some(*sub),
                        _ => None,
                    };
                    if !port.send_up(m) {
                        if let Some(sub) = subscribe {
                            // Subscribing to a stage that is gone: answer like a monitor.
                            let reason = self.shared.exit_of(producer);
                            let _ = self
                                .mailbox
                                .send(Envelope::Down(Downstream::Cancel { sub, reason }));
                        }
                    }
                }
                Outgoing::Down(m) => {
                    let link = m.sub().link;
                    let Ok(i) = self.downs.binary_search_by_key(&link, |(l, _)| *l) else {
                        continue;
                    };
                    if let Err(Envelope::Down(Downstream::Events { batch, .. })) =
                        self.downs[i].1.send(Envelope::Down(m))
                    {
                        self.shared.undeliverable[link as usize]
                            .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    }
                }
            }
        }
        if let Some(p) = pool {
            for job in fx.jobs.drain(..) {
                let _ = p.jobs.send(job);
            }
        }
        fx.clear();
    }

    fn start_pool(&self, job: Arc<dyn Job<I>>, n: usize) -> Pool<I> {
        let jobs: Arc<Mailbox<(SubRef, I)>> = Arc::new(Mailbox::new());
        let workers = (0..n.max(1))
            .filter_map(|w| {
                let jobs = jobs.clone();
                let job = job.clone();
                let back = self.mailbox.clone();
                let per_event = self.extras.per_event;
                let mut rng = SplitMix64::new(self.extras.seed ^ (w as u64 + 1));
                thread::Builder::new()
                    .name(format!("{}-worker-{w}", self.name))
                    .spawn(move || loop {
                        let Some((sub, e)) = jobs.recv_one() else {
                            break;
                        };
                        let r = catch_unwind(AssertUnwindSafe(|| job.run_from(sub, e)));
                        if let Some(d) = per_event {
                            busy_wait(d.sample_with(uniform(&mut rng), uniform(&mut rng)));
                        }
                        let msg = match r {
                            Ok(()) => Envelope::JobDone(sub),
                            Err(_) => Envelope::Crash(CancelReason::error("panic in a pool job")),
                        };
                        let _ = back.send(msg);
                    })
                    .ok()
            })
            .collect();
        Pool { jobs, workers }
    }
}

fn sample_sum(d: &Dist, n: u64, rng: &mut SplitMix64) -> u64 {
    match *d {
        Dist::Fixed { ns } => ns.saturating_mul(n),
        _ => (0..n).fold(0u64, |acc, _| {
            acc.saturating_add(d.sample_with(uniform(rng), uniform(rng)))
        }),
    }
}
