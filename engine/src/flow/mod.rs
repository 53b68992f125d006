//! Flow: parallel collections on the stage engine, after Elixir's `Flow`.
//!
//! A [`Flow`] is a plan, not a run: sources, then *layers* of identical stages, each
//! layer's operations (`map`, `flat_map`, `filter`, …, one `reduce`) fused into one
//! function per stage. Nothing runs until the flow is collected, iterated or run; then
//! the plan becomes a [`Topology`] on the threads runtime: one producer per source, a
//! producer-consumer per layer stage, one consumer (the sink) at the end.
//!
//! - [`Flow::from_iter`], [`Flow::from_iters`], [`Flow::from_producer`]: sources. An
//!   iterator is pulled as GenStage's streamer does: `max_demand` items first, then
//!   `max_demand - min_demand` at a time. An endless iterator is an unbounded source;
//!   stop it with [`Flow::limit`], [`Flow::stop_after`] or a [`StopHandle`].
//! - The first layer subscribes to every source with the demand dispatcher. Its size is
//!   [`Flow::stages`] (default: the available cores); its subscription's demand
//!   [`Flow::demand`] (default 1000 / 500, as in Flow).
//! - [`Flow::partition`] starts a new layer fed by a partition dispatcher on the layer
//!   before: equal keys ([`Partition::by_key`]) meet in the same stage, which is what a
//!   per-key reduce needs. [`Flow::shuffle`] starts one fed by the demand dispatcher.
//! - [`Flow::reduce`] (per stage, per [`Window`]) then emits events, states or both, or
//!   what [`Reducer::on_trigger`] makes of them; [`Reducer::departition`] merges the
//!   partitions' states in one stage.
//! - [`Flow::collect`], [`Flow::for_each`], [`Flow::run`], [`Flow::run_into`] and
//!   [`Flow::iter`] run it. The sink's demand is explicit: [`Flow::sink_demand`]
//!   (default 1000 / 500).
//!
//! **Order.** Events on one link keep their order. With one stage per layer
//! (`.stages(1)` and partitions of 1) the output keeps the source's order; with more
//! stages it does not, as in Flow: sort the result if order matters.
//!
//! **Ending.** Every subscription of a flow is `transient`, as in Flow: a stage ends when
//! all the stages it consumes from have finished (then it hands out what its reduce
//! holds), and stops at once when one of them fails.
//!
//! **Errors.** A panic in a user closure, or an `Err` from [`Flow::try_map`], ends the
//! flow: every stage stops and the run returns [`FlowError::Stage`] naming the stage and
//! its operations. It never hangs, and a flow that can make no progress is an error too.
//!
//! **Blocking.** Stages run on the threads runtime's worker pool. A closure that blocks
//! (I/O on a slow device, a lock held elsewhere) holds a worker while it blocks; with as
//! many workers as cores the others still run, but a flow whose every stage blocks
//! should raise [`Flow::workers`].
//!
//! The word count, three ways in one: `flat_map` → `partition` → `reduce`.
//!
//! ```
//! use std::collections::HashMap;
//! use flowbench_engine::flow::{Flow, Partition};
//!
//! let lines = vec!["the cat", "the dog", "a cat"];
//! let mut counts = Flow::from_iter(lines)
//!     .flat_map(|line: &str| line.split_whitespace().map(String::from).collect::<Vec<_>>())
//!     .partition_with(Partition::by_key(|w: &String| w.clone()))
//!     .reduce(HashMap::new, |acc: &mut HashMap<String, u64>, w| *acc.entry(w).or_default() += 1)
//!     .emit_events()
//!     .collect()
//!     .unwrap();
//! counts.sort();
//! assert_eq!(counts, [("a".into(), 1), ("cat".into(), 2), ("dog".into(), 1), ("the".into(), 2)]);
//! ```

mod ops;
mod window;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::Hash;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

pub use self::window::{Clock, ManualClock, TriggerInfo, TriggerKind, Window, WindowId};

use self::ops::{each, identity, then, Batch, OpFactory, Out, Uniq};
use self::window::{EmitFn, FoldFn, InitFn, Reduce};
use crate::dispatcher::{DispatcherSpec, OnMissing, PartitionFn};
use crate::hash::stable_hash;
use crate::logic::{Chunk, Consumer, Ctx, Emit, Producer, ProducerConsumer};
use crate::opts::{CancelMode, Demand, SubscribeOpts};
use crate::protocol::SubRef;
use crate::threads::{
    panic_text, Outlet, ProducerOptions, RunOutcome, Running, Scheduling, Topology,
};

/// Why a flow failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlowError {
    /// A user closure panicked or returned an error: the flow stopped.
    Stage {
        /// The stage (`source-0`, `layer1-3`, `sink`).
        stage: String,
        /// What the stage runs (its operations).
        ops: String,
        /// The panic message or the error.
        message: String,
    },
    /// The plan is not valid (a demand, a stage count, two reduces in one layer).
    Plan(String),
    /// The runtime could not run it, or it could make no progress.
    Run(String),
}

impl fmt::Display for FlowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlowError::Stage {
                stage,
                ops,
                message,
            } => write!(f, "stage {stage} ({ops}) failed: {message}"),
            FlowError::Plan(m) => write!(f, "invalid flow: {m}"),
            FlowError::Run(m) => write!(f, "flow did not run to the end: {m}"),
        }
    }
}

impl std::error::Error for FlowError {}

/// Stops an unbounded flow from another thread: every source finishes at its next
/// demand, and what is in the stages is handed out as at the end of the data.
///
/// ```
/// use flowbench_engine::flow::Flow;
///
/// let flow = Flow::from_iter(0u64..).stages(1);
/// let stop = flow.stop_handle();
/// let seen = flow.inspect(move |&e: &u64| if e == 10_000 { stop.stop() }).run().unwrap();
/// assert!(seen.stages[0].stats.emitted >= 10_000);
/// ```
#[derive(Clone, Debug, Default)]
pub struct StopHandle(Arc<AtomicBool>);

impl StopHandle {
    /// Asks the flow to stop.
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether [`StopHandle::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// What a stage's operations are told about it.
pub(crate) struct StageInfo {
    /// Its index in its layer.
    pub(crate) index: usize,
    /// Its layer's number of stages.
    pub(crate) total: usize,
    /// The stages it subscribes to.
    pub(crate) upstreams: usize,
}

/// What the stages of one run share: the first error, the stop flag, the limit.
struct RunShared {
    error: Mutex<Option<FlowError>>,
    stop: StopHandle,
    budget: Option<AtomicU64>,
}

/// A panic payload that says "the error is recorded already".
struct Abort;

impl RunShared {
    fn fail(&self, stage: &str, ops: &str, message: String) {
        let mut e = self.error.lock().unwrap_or_else(|p| p.into_inner());
        if e.is_none() {
            *e = Some(FlowError::Stage {
                stage: stage.to_string(),
                ops: ops.to_string(),
                message,
            });
        }
    }

    /// Runs user code; a panic is recorded (first one wins) and goes on unwinding, so the
    /// stage stops.
    fn user<R>(&self, stage: &str, ops: &str, f: impl FnOnce() -> R) -> R {
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(r) => r,
            Err(p) => {
                if !p.is::<Abort>() {
                    self.fail(stage, ops, format!("panic: {}", panic_text(&*p)));
                }
                resume_unwind(p)
            }
        }
    }

    /// Takes up to `n` events of the limit; `n` when there is none.
    fn take(&self, n: u64) -> u64 {
        match &self.budget {
            None => n,
            Some(b) => {
                let mut got = 0;
                let _ = b.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                    got = left.min(n);
                    Some(left - got)
                });
                got
            }
        }
    }

    fn exhausted(&self) -> bool {
        self.stop.is_stopped()
            || self
                .budget
                .as_ref()
                .is_some_and(|b| b.load(Ordering::SeqCst) == 0)
    }
}

/// A layer stage as errors name it.
struct Label {
    run: Arc<RunShared>,
    name: String,
    ops: String,
}

thread_local! {
    /// Where `try_map` reports an `Err`: the stage running on this thread.
    static CURRENT: std::cell::RefCell<Option<Arc<Label>>> =
        const { std::cell::RefCell::new(None) };
}

/// Records `message` as the flow's error for the stage running on this thread, and stops
/// the stage.
fn abort(message: String) -> ! {
    CURRENT.with(|c| {
        if let Some(l) = c.borrow().as_ref() {
            l.run.fail(&l.name, &l.ops, message);
        }
    });
    resume_unwind(Box::new(Abort))
}

/// Flow-wide settings, carried from layer to layer.
#[derive(Clone)]
struct Settings {
    sink: Demand,
    limit: Option<u64>,
    stop_after: Option<Duration>,
    stop: StopHandle,
    scheduling: Scheduling,
}

/// One stage as built, for `Flow::to_scenario`.
#[cfg_attr(not(feature = "scenario"), allow(dead_code))]
struct StageDesc {
    name: String,
    kind: &'static str,
    dispatcher: Option<u32>,
    subs: Vec<(String, Demand, Option<u32>)>,
}

/// A plan being turned into a topology.
struct Build {
    topo: Topology,
    run: Arc<RunShared>,
    layers: usize,
    descs: Vec<StageDesc>,
}

impl Build {
    fn partitions_of<T>(d: &DispatcherSpec<T>) -> Option<u32> {
        match d {
            DispatcherSpec::Partition { partitions, .. } => Some(*partitions),
            _ => None,
        }
    }
}

/// Makes a source's producer logic once the run's shared state exists.
type MakeSource<T> = Box<dyn FnOnce(Arc<RunShared>, String) -> Box<dyn Producer<T>> + Send>;
/// Picks a partition of `n` for an event.
type Route<T> = Arc<dyn Fn(&T, usize) -> usize + Send + Sync>;
type Outlets<T> = Vec<(Outlet<T>, String)>;
type Upstream<T> =
    Box<dyn FnOnce(&mut Build, DispatcherSpec<T>) -> Result<Outlets<T>, FlowError> + Send>;

/// How a layer is fed by the one before.
enum Inbound<T> {
    Demand,
    Partition(PartitionFn<T>, String),
}

struct LayerSpec<T> {
    stages: usize,
    demand: Demand,
    inbound: Inbound<T>,
    ops: Vec<String>,
    reduced: bool,
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |c| c.get())
}

impl<T> LayerSpec<T> {
    fn new(stages: usize, inbound: Inbound<T>) -> Self {
        LayerSpec {
            stages,
            demand: Demand::default(),
            inbound,
            ops: Vec::new(),
            reduced: false,
        }
    }

    fn describe(&self, number: usize) -> String {
        let feed = match &self.inbound {
            Inbound::Demand => String::new(),
            Inbound::Partition(_, how) => format!(", partitioned {how}"),
        };
        let ops = if self.ops.is_empty() {
            "no operations".to_string()
        } else {
            self.ops.join(" -> ")
        };
        format!(
            "layer {number}: {} stage{}{feed}: {ops}; subscribes with max_demand {}, min_demand {}",
            self.stages,
            if self.stages == 1 { "" } else { "s" },
            self.demand.max(),
            self.demand.min()
        )
    }
}

/// A parallel collection of `T` events: a plan of sources and layers (see the
/// [module](self)). `In` is what the current layer's stages receive; it is `T` for a
/// layer that has no operations yet.
pub struct Flow<T, In = T> {
    up: Upstream<In>,
    ops: OpFactory<In, T>,
    layer: LayerSpec<In>,
    settings: Settings,
    plan: Vec<String>,
    error: Option<String>,
}

impl<T: Clone + Send + 'static> Flow<T, T> {
    /// A flow of one source: `iter`'s items, pulled on demand by one producer stage.
    ///
    /// ```
    /// use flowbench_engine::flow::Flow;
    /// let mut v = Flow::from_iter(1..=5u64).map(|x| x * 10).collect().unwrap();
    /// v.sort();
    /// assert_eq!(v, [10, 20, 30, 40, 50]);
    /// ```
    #[allow(clippy::should_implement_trait)]
    pub fn from_iter<I>(iter: I) -> Self
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
    {
        Self::from_iters(vec![iter])
    }

    /// A flow of several sources, one producer stage each; the first layer subscribes to
    /// all of them. Splitting a big input this way keeps one source from being the
    /// bottleneck.
    ///
    /// ```
    /// use flowbench_engine::flow::Flow;
    /// let total: u64 = Flow::from_iters(vec![0..50u64, 50..100]).collect().unwrap().iter().sum();
    /// assert_eq!(total, (0..100).sum());
    /// ```
    pub fn from_iters<I>(iters: impl IntoIterator<Item = I>) -> Self
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
    {
        let iters: Vec<I::IntoIter> = iters.into_iter().map(IntoIterator::into_iter).collect();
        let n = iters.len();
        let producers: Vec<MakeSource<T>> = iters
            .into_iter()
            .map(|mut it| {
                Box::new(move |run: Arc<RunShared>, name: String| {
                    Box::new(move |n: u64, emit: &mut Emit<T>| {
                        let take = run.take(n);
                        run.user(&name, "from_iter", || {
                            for _ in 0..take {
                                match it.next() {
                                    Some(x) => emit.push(x),
                                    None => {
                                        emit.finish();
                                        return;
                                    }
                                }
                            }
                            if run.exhausted() {
                                emit.finish();
                            }
                        });
                    }) as Box<dyn Producer<T>>
                }) as MakeSource<T>
            })
            .collect();
        let desc = format!(
            "source: {n} stage{} (from_iter), demand dispatcher",
            if n == 1 { "" } else { "s" }
        );
        let error = (n == 0).then(|| "a flow needs at least one source".to_string());
        Self::sources(producers, desc, error)
    }

    /// A flow from an engine producer: `producer` is called with the demand, as a
    /// [`Topology::producer`] stage is.
    ///
    /// ```
    /// use flowbench_engine::flow::Flow;
    /// use flowbench_engine::Emit;
    /// let mut next = 0u64;
    /// let v = Flow::from_producer(move |n: u64, emit: &mut Emit<u64>| {
    ///     let end = (next + n).min(100);
    ///     emit.extend(next..end);
    ///     next = end;
    ///     if next == 100 { emit.finish(); }
    /// })
    /// .collect()
    /// .unwrap();
    /// assert_eq!(v.len(), 100);
    /// ```
    pub fn from_producer(producer: impl Producer<T> + 'static) -> Self {
        let mut producer = producer;
        let make = Box::new(move |run: Arc<RunShared>, name: String| {
            Box::new(move |n: u64, emit: &mut Emit<T>| {
                let take = run.take(n);
                if take > 0 {
                    run.user(&name, "from_producer", || {
                        producer.handle_demand(take, emit)
                    });
                }
                if run.exhausted() {
                    emit.finish();
                }
            }) as Box<dyn Producer<T>>
        }) as MakeSource<T>;
        Self::sources(
            vec![make],
            "source: 1 stage (from_producer), demand dispatcher".to_string(),
            None,
        )
    }

    fn sources(producers: Vec<MakeSource<T>>, desc: String, error: Option<String>) -> Self {
        let up: Upstream<T> = Box::new(move |b: &mut Build, disp: DispatcherSpec<T>| {
            let mut outs = Vec::new();
            for (i, make) in producers.into_iter().enumerate() {
                let name = format!("source-{i}");
                let logic = make(Arc::clone(&b.run), name.clone());
                // The limit counts what sources emit; their own buffers stay GenStage's.
                let stage = b.topo.producer(
                    &name,
                    ProducerOptions::default().dispatcher(disp.clone()),
                    logic,
                );
                b.descs.push(StageDesc {
                    name: name.clone(),
                    kind: "producer",
                    dispatcher: Build::partitions_of(&disp),
                    subs: Vec::new(),
                });
                outs.push((stage.outlet(), name));
            }
            Ok(outs)
        });
        Flow {
            up,
            ops: identity(),
            layer: LayerSpec::new(cores(), Inbound::Demand),
            settings: Settings {
                sink: Demand::default(),
                limit: None,
                stop_after: None,
                stop: StopHandle::default(),
                scheduling: Scheduling::Auto,
            },
            plan: vec![desc],
            error,
        }
    }
}

/// How [`Flow::partition_with`] routes events to the new layer's stages.
///
/// ```
/// use flowbench_engine::flow::Partition;
/// let by_word = Partition::by_key(|e: &(String, u64)| e.0.clone()).stages(4).demand(500, 250);
/// let by_value = Partition::<u64>::hashed();
/// let explicit = Partition::by_index(|e: &u64| (*e % 3) as usize).stages(3);
/// # let _ = (by_word, by_value, explicit);
/// ```
pub struct Partition<T> {
    route: Route<T>,
    how: &'static str,
    stages: Option<usize>,
    demand: Option<(u64, Option<u64>)>,
}

impl<T: 'static> Partition<T> {
    /// By a key of each event: events with equal keys go to the same stage
    /// (`stable_hash(key) % stages`, the same on every run and machine).
    pub fn by_key<K: Hash>(key: impl Fn(&T) -> K + Send + Sync + 'static) -> Self {
        Partition {
            route: Arc::new(move |e, n| (stable_hash(&key(e)) % n as u64) as usize),
            how: "by key",
            stages: None,
            demand: None,
        }
    }

    /// By the event itself (`stable_hash(event) % stages`).
    pub fn hashed() -> Self
    where
        T: Hash,
    {
        Partition {
            route: Arc::new(|e, n| (stable_hash(e) % n as u64) as usize),
            how: "by hash",
            stages: None,
            demand: None,
        }
    }

    /// By a stage index the function picks (taken modulo the number of stages).
    pub fn by_index(f: impl Fn(&T) -> usize + Send + Sync + 'static) -> Self {
        Partition {
            route: Arc::new(move |e, n| f(e) % n),
            how: "by index",
            stages: None,
            demand: None,
        }
    }

    /// The new layer's number of stages (default: the available cores).
    pub fn stages(mut self, n: usize) -> Self {
        self.stages = Some(n);
        self
    }

    /// The new layer's subscription demand (default 1000 / 500).
    pub fn demand(mut self, max: u64, min: u64) -> Self {
        self.demand = Some((max, Some(min)));
        self
    }
}

/// A flow with a window chosen for its next [`reduce`](Windowed::reduce).
pub struct Windowed<T, In> {
    flow: Flow<T, In>,
    window: Window<T>,
}

/// A reduce waiting to be told what it emits at each trigger.
pub struct Reducer<T, In, A> {
    flow: Flow<T, In>,
    window: Window<T>,
    init: InitFn<A>,
    fold: FoldFn<T, A>,
}

/// What [`Reducer::emit_both`] emits: the events of an accumulator, then the
/// accumulator itself.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Emitted<E, A> {
    /// One event of the accumulator.
    Event(E),
    /// The accumulator.
    State(A),
}

/// What a departitioned reduce's stages hand to the departition stage at each trigger.
#[derive(Clone, Debug)]
pub struct Partial<A> {
    window: WindowId,
    done: bool,
    state: A,
}

impl<T, In> Flow<T, In>
where
    T: Clone + Send + 'static,
    In: Clone + Send + 'static,
{
    fn push_op<U: Send + 'static>(self, label: String, op: OpFactory<T, U>) -> Flow<U, In> {
        let mut layer = self.layer;
        layer.ops.push(label);
        Flow {
            up: self.up,
            ops: then(self.ops, op),
            layer,
            settings: self.settings,
            plan: self.plan,
            error: self.error,
        }
    }

    fn fail_plan(mut self, message: String) -> Self {
        self.error.get_or_insert(message);
        self
    }

    /// `f` on every event.
    ///
    /// ```
    /// use flowbench_engine::flow::Flow;
    /// assert_eq!(Flow::from_iter([1u64, 2]).stages(1).map(|x| x + 1).collect().unwrap(), [2, 3]);
    /// ```
    pub fn map<U: Clone + Send + 'static>(
        self,
        f: impl Fn(T) -> U + Send + Sync + 'static,
    ) -> Flow<U, In> {
        self.push_op("map".into(), each(move |e, out: Out<'_, U>| out(f(e))))
    }

    /// `f` on every event; an `Err` ends the flow with [`FlowError::Stage`] carrying the
    /// error's text.
    ///
    /// ```
    /// use flowbench_engine::flow::{Flow, FlowError};
    /// let r = Flow::from_iter(["1", "2", "x"]).try_map(|s: &str| s.parse::<u64>()).collect();
    /// match r {
    ///     Err(FlowError::Stage { ops, message, .. }) => {
    ///         assert_eq!(ops, "try_map");
    ///         assert!(message.contains("invalid digit"));
    ///     }
    ///     other => panic!("{other:?}"),
    /// }
    /// ```
    pub fn try_map<U: Clone + Send + 'static, E: fmt::Display>(
        self,
        f: impl Fn(T) -> Result<U, E> + Send + Sync + 'static,
    ) -> Flow<U, In> {
        self.push_op(
            "try_map".into(),
            each(move |e, out: Out<'_, U>| match f(e) {
                Ok(u) => out(u),
                Err(err) => abort(err.to_string()),
            }),
        )
    }

    /// Every event becomes the items of `f(event)`, in order.
    ///
    /// ```
    /// use flowbench_engine::flow::Flow;
    /// let v = Flow::from_iter([2u64, 3]).stages(1).flat_map(|n| 0..n).collect().unwrap();
    /// assert_eq!(v, [0, 1, 0, 1, 2]);
    /// ```
    pub fn flat_map<U, I>(self, f: impl Fn(T) -> I + Send + Sync + 'static) -> Flow<U, In>
    where
        U: Clone + Send + 'static,
        I: IntoIterator<Item = U>,
    {
        self.push_op(
            "flat_map".into(),
            each(move |e, out: Out<'_, U>| {
                for u in f(e) {
                    out(u)
                }
            }),
        )
    }

    /// Keeps the events `p` accepts.
    ///
    /// ```
    /// use flowbench_engine::flow::Flow;
    /// let v = Flow::from_iter(0..10u64).stages(1).filter(|x| x % 3 == 0).collect().unwrap();
    /// assert_eq!(v, [0, 3, 6, 9]);
    /// ```
    pub fn filter(self, p: impl Fn(&T) -> bool + Send + Sync + 'static) -> Flow<T, In> {
        self.push_op(
            "filter".into(),
            each(move |e, out: Out<'_, T>| {
                if p(&e) {
                    out(e)
                }
            }),
        )
    }

    /// Drops the events `p` accepts.
    ///
    /// ```
    /// use flowbench_engine::flow::Flow;
    /// let v = Flow::from_iter(0..10u64).stages(1).reject(|x| x % 3 == 0).collect().unwrap();
    /// assert_eq!(v, [1, 2, 4, 5, 7, 8]);
    /// ```
    pub fn reject(self, p: impl Fn(&T) -> bool + Send + Sync + 'static) -> Flow<T, In> {
        self.push_op(
            "reject".into(),
            each(move |e, out: Out<'_, T>| {
                if !p(&e) {
                    out(e)
                }
            }),
        )
    }

    /// Calls `f` on every event and passes it on (Flow's `each`).
    ///
    /// ```
    /// use std::sync::{Arc, atomic::{AtomicU64, Ordering}};
    /// use flowbench_engine::flow::Flow;
    /// let seen = Arc::new(AtomicU64::new(0));
    /// let s = Arc::clone(&seen);
    /// let v = Flow::from_iter(0..100u64).inspect(move |_| { s.fetch_add(1, Ordering::Relaxed); }).collect().unwrap();
    /// assert_eq!((v.len(), seen.load(Ordering::Relaxed)), (100, 100));
    /// ```
    pub fn inspect(self, f: impl Fn(&T) + Send + Sync + 'static) -> Flow<T, In> {
        self.push_op(
            "inspect".into(),
            each(move |e, out: Out<'_, T>| {
                f(&e);
                out(e)
            }),
        )
    }

    /// Drops events whose key this stage has already seen: duplicates go away per stage,
    /// so partition by the same key first for a flow-wide `uniq`. The set of keys grows
    /// with the data.
    ///
    /// ```
    /// use flowbench_engine::flow::Flow;
    /// let v = Flow::from_iter([1u64, 2, 1, 3, 2]).stages(1).uniq_by(|x| *x).collect().unwrap();
    /// assert_eq!(v, [1, 2, 3]);
    /// ```
    pub fn uniq_by<K>(self, key: impl Fn(&T) -> K + Send + Sync + 'static) -> Flow<T, In>
    where
        K: Hash + Eq + Send + 'static,
    {
        let key = Arc::new(key);
        let op: OpFactory<T, T> = Arc::new(move |_: &StageInfo| {
            Box::new(Uniq {
                key: Arc::clone(&key),
                seen: std::collections::HashSet::new(),
            }) as Box<dyn ops::Op<T, T>>
        });
        self.push_op("uniq".into(), op)
    }

    /// [`Flow::uniq_by`] the event itself.
    ///
    /// ```
    /// use flowbench_engine::flow::Flow;
    /// let v = Flow::from_iter(["a", "b", "a"]).stages(1).uniq().collect().unwrap();
    /// assert_eq!(v, ["a", "b"]);
    /// ```
    pub fn uniq(self) -> Flow<T, In>
    where
        T: Hash + Eq,
    {
        self.uniq_by(T::clone)
    }

    /// `f` on each batch a stage receives (its size is set by the demand: at most
    /// `max_demand - min_demand`). Only as the first operation of a layer.
    ///
    /// ```
    /// use flowbench_engine::flow::Flow;
    /// let sizes = Flow::from_iter(0..1000u64).stages(1).demand(100, 50)
    ///     .map_batch(|batch: Vec<u64>| vec![batch.len()])
    ///     .collect().unwrap();
    /// assert_eq!(sizes.iter().sum::<usize>(), 1000);
    /// assert!(sizes.iter().all(|&s| s <= 50));
    /// ```
    pub fn map_batch<U: Clone + Send + 'static>(
        self,
        f: impl Fn(Vec<T>) -> Vec<U> + Send + Sync + 'static,
    ) -> Flow<U, In> {
        let first = self.layer.ops.is_empty();
        let f = Arc::new(f);
        let op: OpFactory<T, U> = Arc::new(move |_: &StageInfo| {
            Box::new(Batch(Arc::clone(&f))) as Box<dyn ops::Op<T, U>>
        });
        let flow = self.push_op("map_batch".into(), op);
        if first {
            flow
        } else {
            flow.fail_plan("map_batch must be the first operation of a layer".into())
        }
    }

    /// The current layer's number of stages (default: the available cores).
    ///
    /// ```
    /// use flowbench_engine::flow::Flow;
    /// let out = Flow::from_iter(0..100u64).stages(3).run().unwrap();
    /// // source, three layer stages, sink
    /// assert_eq!(out.stages.len(), 5);
    /// ```
    pub fn stages(mut self, n: usize) -> Self {
        if n == 0 {
            return self.fail_plan("a layer needs at least one stage".into());
        }
        self.layer.stages = n;
        self
    }

    /// The demand the current layer's stages subscribe with (default 1000 / 500).
    ///
    /// ```
    /// use flowbench_engine::flow::{Flow, FlowError};
    /// assert!(matches!(Flow::from_iter([1u64]).demand(10, 10).collect(), Err(FlowError::Plan(_))));
    /// ```
    pub fn demand(mut self, max: u64, min: u64) -> Self {
        match Demand::new(max, Some(min)) {
            Ok(d) => self.layer.demand = d,
            Err(e) => return self.fail_plan(e.to_string()),
        }
        self
    }

    /// The demand the sink subscribes with (default 1000 / 500: Elixir's `Enum` always
    /// asks that, whatever the flow says; here it is yours to set).
    ///
    /// ```
    /// use flowbench_engine::flow::Flow;
    /// let out = Flow::from_iter(0..100u64).stages(1).sink_demand(10, 5).run().unwrap();
    /// // 10 first, then 5 each time 5 have been handled: about 20 asks for 100 events.
    /// assert!(out.stages.last().unwrap().stats.asks_sent >= 19);
    /// ```
    pub fn sink_demand(mut self, max: u64, min: u64) -> Self {
        match Demand::new(max, Some(min)) {
            Ok(d) => self.settings.sink = d,
            Err(e) => return self.fail_plan(format!("sink demand: {e}")),
        }
        self
    }

    /// The worker threads the flow runs on (default: one per core).
    ///
    /// ```
    /// use flowbench_engine::flow::Flow;
    /// assert_eq!(Flow::from_iter(0..1000u64).workers(1).collect().unwrap().len(), 1000);
    /// ```
    pub fn workers(mut self, n: usize) -> Self {
        self.settings.scheduling = Scheduling::Pool { workers: n.max(1) };
        self
    }

    /// Sources stop after `n` events in all (unbounded sources need a limit, a time or
    /// a [`StopHandle`]).
    ///
    /// ```
    /// use flowbench_engine::flow::Flow;
    /// assert_eq!(Flow::from_iter(0u64..).limit(2500).collect().unwrap().len(), 2500);
    /// ```
    pub fn limit(mut self, n: u64) -> Self {
        self.settings.limit = Some(n);
        self
    }

    /// Sources stop after `d` of wall time; what the stages hold is handed out as at the
    /// end of the data.
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowbench_engine::flow::Flow;
    /// let v = Flow::from_iter(0u64..).stop_after(Duration::from_millis(20)).collect().unwrap();
    /// assert!(!v.is_empty());
    /// ```
    pub fn stop_after(mut self, d: Duration) -> Self {
        self.settings.stop_after = Some(d);
        self
    }

    /// A handle that stops the flow's sources from any thread (see [`StopHandle`]).
    pub fn stop_handle(&self) -> StopHandle {
        self.settings.stop.clone()
    }

    /// Closes the current layer: its stages hand their output out with `dispatcher`.
    fn close(self, b: &mut Build, dispatcher: DispatcherSpec<T>) -> Result<Outlets<T>, FlowError> {
        if let Some(e) = self.error {
            return Err(FlowError::Plan(e));
        }
        let stages = self.layer.stages;
        let (feed, partitioned) = match self.layer.inbound {
            Inbound::Partition(hash, _) if stages > 1 => (
                DispatcherSpec::Partition {
                    partitions: stages as u32,
                    hash,
                    on_missing: OnMissing::Hold,
                },
                true,
            ),
            _ => (DispatcherSpec::default(), false),
        };
        let ups = (self.up)(b, feed)?;
        b.layers += 1;
        let label = if self.layer.ops.is_empty() {
            "pass".to_string()
        } else {
            self.layer.ops.join(", ")
        };
        let mut outs = Vec::with_capacity(stages);
        for i in 0..stages {
            let name = format!("layer{}-{i}", b.layers);
            let info = StageInfo {
                index: i,
                total: stages,
                upstreams: ups.len(),
            };
            let op = (self.ops)(&info);
            let logic = LayerStage {
                op,
                label: Arc::new(Label {
                    run: Arc::clone(&b.run),
                    name: name.clone(),
                    ops: label.clone(),
                }),
            };
            let stage = b.topo.producer_consumer(
                &name,
                ProducerOptions::default().dispatcher(dispatcher.clone()),
                logic,
            );
            let mut subs = Vec::new();
            for (u, uname) in &ups {
                let mut o = SubscribeOpts::default()
                    .demand(self.layer.demand)
                    .cancel(CancelMode::Transient);
                if partitioned {
                    o = o.partition(i as u32);
                }
                b.topo
                    .subscribe_to(u, &stage, o)
                    .map_err(|e| FlowError::Run(e.to_string()))?;
                subs.push((
                    uname.clone(),
                    self.layer.demand,
                    partitioned.then_some(i as u32),
                ));
            }
            b.descs.push(StageDesc {
                name: name.clone(),
                kind: "producer_consumer",
                dispatcher: Build::partitions_of(&dispatcher),
                subs,
            });
            outs.push((stage.outlet(), name));
        }
        Ok(outs)
    }

    fn next_layer(
        self,
        stages: usize,
        inbound: Inbound<T>,
        demand: Option<(u64, Option<u64>)>,
    ) -> Flow<T, T> {
        let mut plan = self.plan.clone();
        plan.push(self.layer.describe(plan.len()));
        let settings = self.settings.clone();
        let mut error = self.error.clone();
        let mut layer = LayerSpec::new(stages, inbound);
        if stages == 0 {
            error.get_or_insert("a layer needs at least one stage".into());
        }
        if let Some((max, min)) = demand {
            match Demand::new(max, min) {
                Ok(d) => layer.demand = d,
                Err(e) => {
                    error.get_or_insert(e.to_string());
                }
            }
        }
        Flow {
            up: Box::new(move |b, d| self.close(b, d)),
            ops: identity(),
            layer,
            settings,
            plan,
            error,
        }
    }

    /// Starts a new layer fed by a partition dispatcher hashing each event
    /// ([`Partition::hashed`]), with as many stages as cores.
    ///
    /// ```
    /// use flowbench_engine::flow::Flow;
    /// let mut v = Flow::from_iter(0..100u64).partition().collect().unwrap();
    /// v.sort();
    /// assert_eq!(v, (0..100).collect::<Vec<_>>());
    /// ```
    pub fn partition(self) -> Flow<T, T>
    where
        T: Hash,
    {
        self.partition_with(Partition::hashed())
    }

    /// Starts a new layer fed by a partition dispatcher on this one: each event goes to
    /// the stage `p` picks. With one stage the demand dispatcher is used.
    ///
    /// ```
    /// use flowbench_engine::flow::{Flow, Partition};
    /// let v = Flow::from_iter(0..100u64)
    ///     .partition_with(Partition::by_index(|e: &u64| (*e % 2) as usize).stages(2))
    ///     .map(|e| e % 2)
    ///     .collect()
    ///     .unwrap();
    /// assert_eq!(v.iter().filter(|&&r| r == 0).count(), 50);
    /// ```
    pub fn partition_with(self, p: Partition<T>) -> Flow<T, T> {
        let stages = p.stages.unwrap_or_else(cores);
        let route = Arc::clone(&p.route);
        let n = stages.max(1);
        let hash = PartitionFn::new(move |e: &T| Some(route(e, n) as u32));
        self.next_layer(
            stages,
            Inbound::Partition(hash, p.how.to_string()),
            p.demand,
        )
    }

    /// Starts a new layer of `stages` stages fed by the demand dispatcher (the stage
    /// with the most open demand gets the next events).
    ///
    /// ```
    /// use flowbench_engine::flow::Flow;
    /// assert_eq!(Flow::from_iter(0..100u64).shuffle(3).collect().unwrap().len(), 100);
    /// ```
    pub fn shuffle(self, stages: usize) -> Flow<T, T> {
        self.next_layer(stages, Inbound::Demand, None)
    }

    /// Chooses the window of the next reduce (default [`Window::global`]).
    pub fn window(self, window: Window<T>) -> Windowed<T, In> {
        Windowed { flow: self, window }
    }

    /// Folds the events of each stage into an accumulator made by `init`, per window
    /// (the global window here; see [`Flow::window`]). Nothing is emitted until a
    /// trigger: say what with [`Reducer::emit_events`], [`Reducer::emit_state`],
    /// [`Reducer::emit_both`] or [`Reducer::on_trigger`]. One reduce per layer.
    ///
    /// ```
    /// use flowbench_engine::flow::Flow;
    /// let sums = Flow::from_iter(1..=100u64).stages(1)
    ///     .reduce(|| 0u64, |acc: &mut u64, e| *acc += e)
    ///     .emit_state()
    ///     .collect()
    ///     .unwrap();
    /// assert_eq!(sums, [5050]);
    /// ```
    pub fn reduce<A: Send + 'static>(
        self,
        init: impl Fn() -> A + Send + Sync + 'static,
        fold: impl Fn(&mut A, T) + Send + Sync + 'static,
    ) -> Reducer<T, In, A> {
        self.window(Window::global()).reduce(init, fold)
    }

    /// The plan: sources, layers with their stages, operations, routing and demand, and
    /// the sink.
    ///
    /// ```
    /// use flowbench_engine::flow::Flow;
    /// let plan = Flow::from_iter(0..10u64).stages(2).map(|x| x + 1).partition().stages(3).explain();
    /// assert!(plan.contains("layer 1: 2 stages: map"));
    /// assert!(plan.contains("layer 2: 3 stages, partitioned by hash"));
    /// ```
    pub fn explain(&self) -> String {
        let mut lines = self.plan.clone();
        lines.push(self.layer.describe(lines.len()));
        lines.push(format!(
            "sink: 1 stage; subscribes with max_demand {}, min_demand {}",
            self.settings.sink.max(),
            self.settings.sink.min()
        ));
        let mut s = lines.join("\n");
        s.push('\n');
        s
    }

    /// Builds the topology with `sink` at the end and starts it.
    fn launch<C: Consumer<T> + 'static>(
        self,
        sink: C,
        own_thread: bool,
    ) -> Result<(Running, Arc<RunShared>, Vec<StageDesc>), FlowError> {
        let settings = self.settings.clone();
        let run = Arc::new(RunShared {
            error: Mutex::new(None),
            stop: settings.stop.clone(),
            budget: settings.limit.map(AtomicU64::new),
        });
        let mut topo = Topology::new();
        topo.scheduling(settings.scheduling);
        if let Some(d) = settings.stop_after {
            topo.stop_after(d);
        }
        let mut b = Build {
            topo,
            run: Arc::clone(&run),
            layers: 0,
            descs: Vec::new(),
        };
        let outs = self.close(&mut b, DispatcherSpec::default())?;
        let sink_run = Arc::clone(&run);
        let sink = b.topo.consumer(
            "sink",
            SinkStage {
                inner: sink,
                run: sink_run,
            },
        );
        let mut subs = Vec::new();
        for (u, uname) in &outs {
            b.topo
                .subscribe_to(
                    u,
                    &sink,
                    SubscribeOpts::default()
                        .demand(settings.sink)
                        .cancel(CancelMode::Transient),
                )
                .map_err(|e| FlowError::Run(e.to_string()))?;
            subs.push((uname.clone(), settings.sink, None));
        }
        b.descs.push(StageDesc {
            name: "sink".into(),
            kind: "consumer",
            dispatcher: None,
            subs,
        });
        if own_thread {
            b.topo
                .own_thread(&sink)
                .map_err(|e| FlowError::Run(e.to_string()))?;
        }
        let running = b.topo.spawn().map_err(|e| FlowError::Run(e.to_string()))?;
        Ok((running, run, b.descs))
    }

    /// Runs the flow, handing every result to `sink` (an engine consumer) in the sink
    /// stage; returns what the run measured.
    ///
    /// ```
    /// use flowbench_engine::flow::Flow;
    /// use flowbench_engine::{Chunk, Ctx};
    /// let mut total = 0u64;
    /// let out = Flow::from_iter(1..=10u64)
    ///     .run_into(move |events: Chunk<'_, u64>, _: &mut Ctx| { total += events.sum::<u64>(); })
    ///     .unwrap();
    /// assert_eq!(out.stages.last().unwrap().stats.handled, 10);
    /// ```
    pub fn run_into(self, sink: impl Consumer<T> + 'static) -> Result<RunOutcome, FlowError> {
        let (running, run, _) = self.launch(sink, false)?;
        finish(running, &run)
    }

    /// Runs the flow and returns every result (in no particular order unless every
    /// layer has one stage).
    pub fn collect(self) -> Result<Vec<T>, FlowError> {
        let got = Arc::new(Mutex::new(Vec::new()));
        let into = Arc::clone(&got);
        self.run_into(move |events: Chunk<'_, T>, _: &mut Ctx| {
            into.lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(events)
        })?;
        let mut g = got.lock().unwrap_or_else(|p| p.into_inner());
        Ok(std::mem::take(&mut *g))
    }

    /// Runs the flow, calling `f` on every result in the sink stage.
    ///
    /// ```
    /// use flowbench_engine::flow::Flow;
    /// let mut n = 0;
    /// let total = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    /// let t = total.clone();
    /// Flow::from_iter(1..=10u64).for_each(move |e| { t.fetch_add(e, std::sync::atomic::Ordering::Relaxed); }).unwrap();
    /// assert_eq!(total.load(std::sync::atomic::Ordering::Relaxed), 55);
    /// # n += 1; let _ = n;
    /// ```
    pub fn for_each(self, mut f: impl FnMut(T) + Send + 'static) -> Result<RunOutcome, FlowError> {
        self.run_into(move |events: Chunk<'_, T>, _: &mut Ctx| events.for_each(&mut f))
    }

    /// Runs the flow for its side effects; the results are dropped.
    ///
    /// ```
    /// use flowbench_engine::flow::Flow;
    /// let out = Flow::from_iter(0..1000u64).stages(2).run().unwrap();
    /// assert_eq!(out.stages.last().unwrap().stats.handled, 1000);
    /// ```
    pub fn run(self) -> Result<RunOutcome, FlowError> {
        self.run_into(|events: Chunk<'_, T>, _: &mut Ctx| drop(events))
    }

    /// Starts the flow and returns its results as they come: a live iterator of
    /// `Ok(result)`, then one `Err` if the flow failed. The sink runs on a thread of its
    /// own and waits while the iterator is not read (back-pressure all the way to the
    /// sources); dropping the iterator stops the flow.
    ///
    /// ```
    /// use flowbench_engine::flow::Flow;
    /// let first: Vec<u64> = Flow::from_iter(0u64..).stages(1).sink_demand(10, 5)
    ///     .iter()
    ///     .take(100)
    ///     .map(Result::unwrap)
    ///     .collect();
    /// assert_eq!(first, (0..100).collect::<Vec<_>>());
    /// ```
    pub fn iter(self) -> FlowIter<T> {
        let cap = self.settings.sink.max() as usize;
        let stop = self.settings.stop.clone();
        let (tx, rx) = mpsc::sync_channel(cap.max(1));
        let (done_tx, done_rx) = mpsc::channel();
        let sink = move |events: Chunk<'_, T>, _: &mut Ctx| {
            for e in events {
                if tx.send(e).is_err() {
                    break;
                }
            }
        };
        match self.launch(sink, true) {
            Ok((running, run, _)) => {
                std::thread::spawn(move || {
                    let _ = done_tx.send(finish(running, &run));
                });
            }
            Err(e) => {
                let _ = done_tx.send(Err(e));
            }
        }
        FlowIter {
            rx,
            done: Some(done_rx),
            stop,
        }
    }

    /// Runs the flow (limit it first for a sample) and writes it as a scenario file:
    /// its stages, subscriptions, dispatchers and demand, with each stage's measured
    /// busy time per event as a fixed `per_event` cost, so `flowbench tune` can tune its
    /// demand. The simulator moves ids, not values: a layer that makes more or fewer
    /// events than it receives (`flat_map`, `filter`, a reduce) is modelled one to one,
    /// and the file's comments give each stage's measured counts.
    ///
    /// ```
    /// use flowbench_engine::flow::Flow;
    /// let toml = Flow::from_iter(0..10_000u64).stages(2).map(|x| x * 2).to_scenario("doubling").unwrap();
    /// let s = flowbench_engine::scenario::parse_str(&toml, "doubling.toml").unwrap();
    /// assert_eq!(s.stages.len(), 4);
    /// ```
    #[cfg(feature = "scenario")]
    pub fn to_scenario(self, name: &str) -> Result<String, FlowError> {
        let (running, run, descs) =
            self.launch(|events: Chunk<'_, T>, _: &mut Ctx| drop(events), false)?;
        let outcome = finish(running, &run)?;
        Ok(scenario_text(name, &descs, &outcome))
    }
}

#[cfg(feature = "scenario")]
fn scenario_text(name: &str, descs: &[StageDesc], outcome: &RunOutcome) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Exported from a flow: each stage's per_event cost is its busy time per event\n\
         # measured on the threads runtime ({:.3} s of wall time). The simulator moves ids\n\
         # one to one, so stages that make more or fewer events than they get are\n\
         # approximated; the measured counts are in the comments.\n",
        outcome.elapsed.as_secs_f64()
    );
    let _ = writeln!(s, "name = {}", toml_str(name));
    for (d, f) in descs.iter().zip(&outcome.stages) {
        let per = if d.kind == "producer" {
            f.stats.emitted
        } else {
            f.stats.handled
        };
        let _ = writeln!(
            s,
            "\n# received {}, emitted {}, busy {} us",
            f.stats.handled,
            f.stats.emitted,
            f.busy_ns / 1000
        );
        let _ = writeln!(
            s,
            "[[stage]]\nname = {}\nkind = \"{}\"",
            toml_str(&d.name),
            d.kind
        );
        if d.kind == "producer" {
            let _ = writeln!(s, "source = {{ range = [1, {}] }}", f.stats.emitted.max(1));
        }
        if per > 0 && f.busy_ns > 0 {
            let _ = writeln!(
                s,
                "per_event = {{ dist = \"fixed\", ns = {} }}",
                (f.busy_ns / per).max(1)
            );
        }
        if let Some(p) = d.dispatcher {
            let _ = writeln!(
                s,
                "dispatcher = \"partition\"\npartitions = {p}\nhash = \"mix\""
            );
        }
    }
    for d in descs {
        for (producer, demand, partition) in &d.subs {
            let _ = writeln!(
                s,
                "\n[[subscription]]\nproducer = {}\nconsumer = {}\nmax_demand = {}\nmin_demand = {}",
                toml_str(producer),
                toml_str(&d.name),
                demand.max(),
                demand.min()
            );
            let _ = writeln!(s, "cancel = \"transient\"");
            if let Some(p) = partition {
                let _ = writeln!(s, "partition = {p}");
            }
        }
    }
    s
}

#[cfg(feature = "scenario")]
fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl<K, V, In> Flow<(K, V), In>
where
    K: Hash + Eq + Clone + Send + 'static,
    V: Clone + Send + 'static,
    In: Clone + Send + 'static,
{
    /// Groups `(key, value)` events into a map of the values per key, per stage (in
    /// arrival order); partition by the key first to group flow-wide.
    ///
    /// ```
    /// use flowbench_engine::flow::Flow;
    /// let mut groups = Flow::from_iter([("a", 1u64), ("b", 2), ("a", 3)]).stages(1)
    ///     .group_by_key()
    ///     .emit_events()
    ///     .collect()
    ///     .unwrap();
    /// groups.sort();
    /// assert_eq!(groups, [("a", vec![1, 3]), ("b", vec![2])]);
    /// ```
    pub fn group_by_key(self) -> Reducer<(K, V), In, HashMap<K, Vec<V>>> {
        self.reduce(HashMap::new, |acc: &mut HashMap<K, Vec<V>>, (k, v)| {
            acc.entry(k).or_default().push(v)
        })
    }
}

/// Waits for the run and turns what went wrong into a [`FlowError`].
fn finish(running: Running, run: &RunShared) -> Result<RunOutcome, FlowError> {
    let joined = running.join();
    if let Some(e) = run.error.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Err(e);
    }
    let outcome = joined.map_err(|e| FlowError::Run(e.to_string()))?;
    if let Some(d) = &outcome.deadlock {
        return Err(FlowError::Run(format!("no stage could make progress: {d}")));
    }
    if let Some(f) = outcome.failures.first() {
        return Err(FlowError::Run(f.clone()));
    }
    if let Some(st) = outcome.stages.iter().find(|s| s.exit.starts_with("error")) {
        return Err(FlowError::Stage {
            stage: st.name.clone(),
            ops: String::new(),
            message: st.exit.clone(),
        });
    }
    Ok(outcome)
}

/// The live results of [`Flow::iter`].
pub struct FlowIter<T> {
    rx: mpsc::Receiver<T>,
    done: Option<mpsc::Receiver<Result<RunOutcome, FlowError>>>,
    stop: StopHandle,
}

impl<T> Iterator for FlowIter<T> {
    type Item = Result<T, FlowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Ok(e) = self.rx.recv() {
            return Some(Ok(e));
        }
        let done = self.done.take()?;
        match done.recv() {
            Ok(Err(e)) => Some(Err(e)),
            _ => None,
        }
    }
}

impl<T> Drop for FlowIter<T> {
    fn drop(&mut self) {
        self.stop.stop();
    }
}

impl<T, In> Windowed<T, In>
where
    T: Clone + Send + 'static,
    In: Clone + Send + 'static,
{
    /// [`Flow::reduce`] in this window.
    ///
    /// ```
    /// use flowbench_engine::flow::{Flow, Window};
    /// let sums = Flow::from_iter(1..=100u64).stages(1)
    ///     .window(Window::global().trigger_every(10))
    ///     .reduce(|| 0u64, |acc: &mut u64, e| *acc += e)
    ///     .emit_state()
    ///     .collect()
    ///     .unwrap();
    /// assert_eq!(sums, [55, 210, 465, 820, 1275, 1830, 2485, 3240, 4095, 5050, 5050]);
    /// ```
    pub fn reduce<A: Send + 'static>(
        self,
        init: impl Fn() -> A + Send + Sync + 'static,
        fold: impl Fn(&mut A, T) + Send + Sync + 'static,
    ) -> Reducer<T, In, A> {
        Reducer {
            flow: self.flow,
            window: self.window,
            init: Arc::new(init),
            fold: Arc::new(fold),
        }
    }
}

impl<T, In, A> Reducer<T, In, A>
where
    T: Clone + Send + 'static,
    In: Clone + Send + 'static,
    A: Send + 'static,
{
    /// At each trigger, `f` turns the window's accumulator into events (Flow's
    /// `on_trigger`). `f` may change the accumulator: what it leaves is what the window
    /// goes on with (after a `Done` trigger it is dropped).
    ///
    /// ```
    /// use flowbench_engine::flow::{Flow, Window, WindowId};
    /// let out = Flow::from_iter(1..=25u64).stages(1)
    ///     .window(Window::count(10))
    ///     .reduce(Vec::new, |acc: &mut Vec<u64>, e| acc.push(e))
    ///     .on_trigger(|acc: &mut Vec<u64>, t| vec![(t.window, acc.len())])
    ///     .collect()
    ///     .unwrap();
    /// assert_eq!(out, [(WindowId::Count(0), 10), (WindowId::Count(1), 10), (WindowId::Count(2), 5)]);
    /// ```
    pub fn on_trigger<E: Clone + Send + 'static>(
        self,
        f: impl Fn(&mut A, &TriggerInfo) -> Vec<E> + Send + Sync + 'static,
    ) -> Flow<E, In> {
        self.finish_with("on_trigger", Arc::new(f))
    }

    fn finish_with<E: Clone + Send + 'static>(self, what: &str, emit: EmitFn<A, E>) -> Flow<E, In> {
        let reduced = self.flow.layer.reduced;
        let label = format!("reduce ({}), {what}", self.window.describe());
        let (window, init, fold) = (self.window, self.init, self.fold);
        let op: OpFactory<T, E> = Arc::new(move |info: &StageInfo| {
            Box::new(Reduce::new(
                info,
                window.clone(),
                Arc::clone(&init),
                Arc::clone(&fold),
                Arc::clone(&emit),
            )) as Box<dyn ops::Op<T, E>>
        });
        let mut flow = self.flow.push_op(label, op);
        flow.layer.reduced = true;
        if reduced {
            flow.fail_plan(
                "a layer has one reduce: partition() or shuffle() before the next".into(),
            )
        } else {
            flow
        }
    }

    /// At each trigger, emits the accumulator itself (Flow's `emit(:state)`).
    pub fn emit_state(self) -> Flow<A, In>
    where
        A: Clone,
    {
        let init = Arc::clone(&self.init);
        self.finish_with(
            "emit state",
            Arc::new(move |acc: &mut A, t: &TriggerInfo| {
                if t.is_done() {
                    vec![std::mem::replace(acc, init())]
                } else {
                    vec![acc.clone()]
                }
            }),
        )
    }

    /// At each trigger, emits the accumulator's items (Flow's default, `emit(:events)`):
    /// a map accumulator emits its `(key, value)` pairs.
    pub fn emit_events(self) -> Flow<A::Item, In>
    where
        A: IntoIterator + Clone,
        A::Item: Clone + Send + 'static,
    {
        let init = Arc::clone(&self.init);
        self.finish_with(
            "emit events",
            Arc::new(move |acc: &mut A, t: &TriggerInfo| {
                if t.is_done() {
                    std::mem::replace(acc, init()).into_iter().collect()
                } else {
                    acc.clone().into_iter().collect()
                }
            }),
        )
    }

    /// At each trigger, emits the accumulator's items, then the accumulator.
    ///
    /// ```
    /// use flowbench_engine::flow::{Emitted, Flow};
    /// let out = Flow::from_iter([1u64, 2]).stages(1)
    ///     .reduce(Vec::new, |acc: &mut Vec<u64>, e| acc.push(e))
    ///     .emit_both()
    ///     .collect()
    ///     .unwrap();
    /// assert_eq!(out, [Emitted::Event(1), Emitted::Event(2), Emitted::State(vec![1, 2])]);
    /// ```
    pub fn emit_both(self) -> Flow<Emitted<A::Item, A>, In>
    where
        A: IntoIterator + Clone,
        A::Item: Clone + Send + 'static,
    {
        self.finish_with(
            "emit both",
            Arc::new(move |acc: &mut A, _: &TriggerInfo| {
                let mut v: Vec<Emitted<A::Item, A>> =
                    acc.clone().into_iter().map(Emitted::Event).collect();
                v.push(Emitted::State(acc.clone()));
                v
            }),
        )
    }

    /// Merges the partitions' accumulators in one new stage, per window (Flow's
    /// `departition`): `merge` takes every partition's accumulator at each of its
    /// triggers; once every partition's window is done, `done` turns the merged value
    /// into the one event emitted for that window.
    ///
    /// ```
    /// use flowbench_engine::flow::{Flow, Partition};
    /// let total = Flow::from_iter(1..=1000u64)
    ///     .partition_with(Partition::hashed().stages(4))
    ///     .reduce(|| 0u64, |acc: &mut u64, e| *acc += e)
    ///     .departition(|| 0u64, |sum: &mut u64, part| *sum += part, |sum| sum)
    ///     .collect()
    ///     .unwrap();
    /// assert_eq!(total, [500_500]);
    /// ```
    pub fn departition<B, E>(
        self,
        init: impl Fn() -> B + Send + Sync + 'static,
        merge: impl Fn(&mut B, A) + Send + Sync + 'static,
        done: impl Fn(B) -> E + Send + Sync + 'static,
    ) -> Flow<E, Partial<A>>
    where
        A: Clone,
        B: Send + 'static,
        E: Clone + Send + 'static,
    {
        let take = Arc::clone(&self.init);
        let partials = self.finish_with(
            "to departition",
            Arc::new(move |acc: &mut A, t: &TriggerInfo| {
                let state = if t.is_done() {
                    std::mem::replace(acc, take())
                } else {
                    acc.clone()
                };
                vec![Partial {
                    window: t.window,
                    done: t.is_done(),
                    state,
                }]
            }),
        );
        let init: Arc<dyn Fn() -> B + Send + Sync> = Arc::new(init);
        let merge: Merge<A, B> = Arc::new(merge);
        let done: Arc<dyn Fn(B) -> E + Send + Sync> = Arc::new(done);
        let op: OpFactory<Partial<A>, E> = Arc::new(move |info: &StageInfo| {
            Box::new(Departition {
                init: Arc::clone(&init),
                merge: Arc::clone(&merge),
                done: Arc::clone(&done),
                open: BTreeMap::new(),
                upstreams: info.upstreams,
            }) as Box<dyn ops::Op<Partial<A>, E>>
        });
        partials
            .next_layer(1, Inbound::Demand, None)
            .push_op("departition".into(), op)
    }
}

type Merge<A, B> = Arc<dyn Fn(&mut B, A) + Send + Sync>;

struct Departition<A, B, E> {
    init: Arc<dyn Fn() -> B + Send + Sync>,
    merge: Merge<A, B>,
    done: Arc<dyn Fn(B) -> E + Send + Sync>,
    open: BTreeMap<WindowId, (B, usize)>,
    upstreams: usize,
}

impl<A: Send, B: Send, E: Send> ops::Op<Partial<A>, E> for Departition<A, B, E> {
    fn event(&mut self, p: Partial<A>, _from: SubRef, out: Out<'_, E>) {
        let init = &self.init;
        let slot = self.open.entry(p.window).or_insert_with(|| (init(), 0));
        (self.merge)(&mut slot.0, p.state);
        if p.done {
            slot.1 += 1;
            if slot.1 >= self.upstreams {
                if let Some((b, _)) = self.open.remove(&p.window) {
                    out((self.done)(b));
                }
            }
        }
    }

    fn done(&mut self, out: Out<'_, E>) {
        for (_, (b, _)) in std::mem::take(&mut self.open) {
            out((self.done)(b));
        }
    }
}

/// A layer stage: its fused operations, with user panics recorded for the caller.
struct LayerStage<I, O> {
    op: Box<dyn ops::Op<I, O>>,
    label: Arc<Label>,
}

impl<I, O> LayerStage<I, O> {
    fn guarded(&mut self, f: impl FnOnce(&mut Box<dyn ops::Op<I, O>>)) {
        let l = &self.label;
        // The worker may have run another stage since: point `try_map` at this one.
        CURRENT.with(|c| {
            let mut c = c.borrow_mut();
            if !c.as_ref().is_some_and(|cur| Arc::ptr_eq(cur, l)) {
                *c = Some(Arc::clone(l));
            }
        });
        let op = &mut self.op;
        l.run.user(&l.name, &l.ops, || f(op));
    }
}

impl<I: Send, O: Send> ProducerConsumer<I, O> for LayerStage<I, O> {
    fn handle_events(&mut self, mut events: Chunk<'_, I>, from: SubRef, emit: &mut Emit<O>) {
        self.guarded(|op| {
            op.chunk(&mut events, from, &mut |o| emit.push(o));
            op.after_chunk(&mut |o| emit.push(o));
        });
    }

    fn handle_done(&mut self, emit: &mut Emit<O>) {
        self.guarded(|op| op.done(&mut |o| emit.push(o)));
    }
}

/// The sink: the caller's consumer, with its panics recorded.
struct SinkStage<C> {
    inner: C,
    run: Arc<RunShared>,
}

impl<T, C: Consumer<T>> Consumer<T> for SinkStage<C> {
    fn handle_events(&mut self, events: Chunk<'_, T>, ctx: &mut Ctx) {
        let inner = &mut self.inner;
        self.run
            .user("sink", "sink", || inner.handle_events(events, ctx));
    }
}

#[cfg(test)]
mod tests;
