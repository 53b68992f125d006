//! The sans-IO stage core: one protocol message in, the messages it causes out.
//!
//! A [`StageCore`] holds everything GenStage keeps in a stage process — subscriptions and
//! their demand, the dispatcher, the buffer, the producer-consumer's input queue, the
//! user's logic — and applies `SEMANTICS.md` to each [`Input`]. It never sleeps, spawns,
//! locks, reads a clock or draws a random number: the threads runtime and the simulator
//! are drivers that deliver inputs and carry [`Effects`] to other stages.
//!
//! *Architecture invariants:*
//! - every state change of the dispatcher is followed by offering the buffer to it, so a
//!   buffered event never waits while the dispatcher could place it;
//! - a stage that stops for an orderly reason first delivers what it holds; one that
//!   crashes counts what it holds as lost; either way the counters balance;
//! - a panic in user code is caught here and becomes a stop with an `error` reason.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::buffer::{Buffer, Keep};
use crate::demand::{AutoAsk, PoolAsk};
use crate::dispatcher::{Dispatcher, DispatcherSpec, Sink};
use crate::logic::{Chunk, Consumer, Ctx, Emit, Producer, ProducerConsumer};
use crate::observe::{DropCause, LostCause, Observer};
use crate::opts::{AskMode, CancelMode, Demand, Selector};
use crate::protocol::{CancelReason, Downstream, LinkId, Outgoing, StageId, SubRef, Upstream};

/// The four kinds of stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StageKind {
    /// Creates events on demand (or receives them from outside).
    Producer,
    /// Consumes events from upstream and produces events downstream.
    ProducerConsumer,
    /// Consumes events.
    Consumer,
    /// Consumes events, each as its own job, up to `max_demand` at once.
    ConsumerPool,
}

impl StageKind {
    /// The name used in scenario files and summaries.
    pub fn name(self) -> &'static str {
        match self {
            StageKind::Producer => "producer",
            StageKind::ProducerConsumer => "producer_consumer",
            StageKind::Consumer => "consumer",
            StageKind::ConsumerPool => "consumer_pool",
        }
    }

    /// Does this kind hand events downstream?
    pub fn produces(self) -> bool {
        matches!(self, StageKind::Producer | StageKind::ProducerConsumer)
    }

    /// Does this kind subscribe upstream?
    pub fn consumes(self) -> bool {
        !matches!(self, StageKind::Producer)
    }
}

/// The user's logic for a stage, by kind.
pub enum Logic<I, O> {
    /// See [`Producer`].
    Producer(Box<dyn Producer<O>>),
    /// See [`ProducerConsumer`].
    ProducerConsumer(Box<dyn ProducerConsumer<I, O>>),
    /// See [`Consumer`].
    Consumer(Box<dyn Consumer<I>>),
    /// The runtime runs each event as a job (see [`crate::Job`]).
    ConsumerPool,
}

impl<I, O> Logic<I, O> {
    /// The kind of stage this logic makes.
    pub fn kind(&self) -> StageKind {
        match self {
            Logic::Producer(_) => StageKind::Producer,
            Logic::ProducerConsumer(_) => StageKind::ProducerConsumer,
            Logic::Consumer(_) => StageKind::Consumer,
            Logic::ConsumerPool => StageKind::ConsumerPool,
        }
    }
}

/// How a producer treats asks: pass them on, or hold them until told to forward.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DemandMode {
    /// Asks reach the dispatcher at once (the default).
    #[default]
    Forward,
    /// Asks are held until [`Input::Forward`], then replayed one by one, in order.
    Accumulate,
}

/// One upstream subscription of a consuming stage, as configured.
#[derive(Clone, Debug)]
pub struct InLinkConfig {
    /// The link.
    pub link: LinkId,
    /// Demand bounds.
    pub demand: Demand,
    /// What ending this subscription does to the stage.
    pub cancel: CancelMode,
    /// Automatic or manual asking.
    pub mode: AskMode,
}

/// One downstream subscription of a producing stage, as configured.
#[derive(Clone, Debug)]
pub struct OutLinkConfig<O> {
    /// The link.
    pub link: LinkId,
    /// The consumer at the other end.
    pub consumer: StageId,
    /// Partition requested (partition dispatcher).
    pub partition: Option<u32>,
    /// Selector (broadcast dispatcher).
    pub selector: Option<Selector<O>>,
}

/// The producing side of a stage, as configured.
#[derive(Debug)]
pub struct OutputConfig<O> {
    /// The dispatcher.
    pub dispatcher: DispatcherSpec<O>,
    /// `buffer_size`: `None` is unbounded.
    pub buffer_size: Option<u64>,
    /// `buffer_keep`.
    pub buffer_keep: Keep,
    /// Forward or accumulate.
    pub demand_mode: DemandMode,
    /// Stop after emitting this many events (producers only).
    pub limit: Option<u64>,
    /// With [`DemandMode::Accumulate`]: switch to forward by itself once every configured
    /// subscription has been made (the usual way to let all consumers join first).
    pub forward_when_subscribed: bool,
    /// The downstream subscriptions.
    pub links: Vec<OutLinkConfig<O>>,
}

/// Everything a runtime needs to build a stage core.
pub struct CoreConfig<I, O> {
    /// The stage's index in its topology.
    pub id: StageId,
    /// The user's logic; its variant decides the kind.
    pub logic: Logic<I, O>,
    /// Upstream subscriptions (empty for producers).
    pub inputs: Vec<InLinkConfig>,
    /// The producing side (`None` for consumers and pools).
    pub output: Option<OutputConfig<O>>,
}

/// Something that happens to a stage.
#[derive(Debug)]
pub enum Input<I, O> {
    /// The run starts: consuming stages subscribe to their producers.
    Start,
    /// A message from a downstream consumer (or a producer's refund to itself).
    Up(Upstream),
    /// A message from an upstream producer.
    Down(Downstream<I>),
    /// Events pushed into a producer from outside (arrivals).
    Arrive(Vec<O>),
    /// One job of a consumer pool finished.
    JobDone {
        /// The subscription the job's event came on.
        sub: SubRef,
    },
    /// Switch an accumulating producer to forward, replaying held asks.
    Forward,
    /// Orderly shutdown from outside: finish what is held, then stop with `shutdown`.
    Shutdown,
    /// Kill the stage now; whatever it holds is lost.
    Crash(CancelReason),
}

/// What handling one input asks the runtime to do.
#[derive(Debug)]
pub struct Effects<I, O> {
    /// Messages to deliver, in order.
    pub out: Vec<Outgoing<O>>,
    /// Consumer-pool jobs to start: `(subscription, event)`.
    pub jobs: Vec<(SubRef, I)>,
}

impl<I, O> Default for Effects<I, O> {
    fn default() -> Self {
        Effects {
            out: Vec::new(),
            jobs: Vec::new(),
        }
    }
}

impl<I, O> Effects<I, O> {
    /// Empties both lists, keeping their allocations.
    pub fn clear(&mut self) {
        self.out.clear();
        self.jobs.clear();
    }
}

/// Where a stage is in its life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// Working.
    Running,
    /// Stopping in order: delivering what it holds before it cancels downstream.
    Draining(CancelReason),
    /// Gone, with the reason.
    Stopped(CancelReason),
}

/// Counters of one stage. Plain integers: a runtime copies them into probes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StageStats {
    /// Events created by this stage (handle_demand, handle_events, arrivals).
    pub emitted: u64,
    /// Events sent downstream in batches (a broadcast event once per consumer).
    pub dispatched: u64,
    /// Distinct events that left the producer (a broadcast event once).
    pub handed_out: u64,
    /// Events dropped (buffer overflow, partition hash).
    pub dropped: u64,
    /// Of those, events the partition hash dropped.
    pub hash_dropped: u64,
    /// Output events lost (partition queue discarded, held when the stage went away).
    pub lost_out: u64,
    /// Events received on live subscriptions.
    pub received: u64,
    /// Events passed to `handle_events` (or started as pool jobs).
    pub handled: u64,
    /// Input events lost (stale arrivals, queued when the stage went away).
    pub lost_in: u64,
    /// Asks sent upstream.
    pub asks_sent: u64,
    /// Asks received from downstream (refunds excluded).
    pub asks_received: u64,
    /// Batches received on live subscriptions.
    pub batches_in: u64,
    /// Batches sent downstream.
    pub batches_out: u64,
    /// Calls of `handle_demand`.
    pub demand_calls: u64,
    /// The most events the buffer held.
    pub buffer_peak: u64,
    /// The most events queued at once in a producer-consumer's input queue.
    pub queue_peak: u64,
    /// Subscriptions the producer refused.
    pub rejected: u64,
    /// Panics caught in the stage's code (its stage then stopped with an error).
    pub panics: u64,
    /// Events lost for a partition whose subscriber left (`on_missing_partition =
    /// "drop"`), asked for again from the source.
    pub lost_resupplied: u64,
}

impl StageStats {
    /// Adds `other`'s counters to these (peaks take the larger), as when the figures of a
    /// restarted stage's incarnations are summed.
    pub fn add(&mut self, other: &StageStats) {
        // Destructured so that a counter added to `StageStats` cannot be forgotten here (a
        // restarted producer's `handed_out` once was, and its accounting failed to balance).
        let StageStats {
            emitted,
            dispatched,
            handed_out,
            dropped,
            hash_dropped,
            lost_out,
            received,
            handled,
            lost_in,
            asks_sent,
            asks_received,
            batches_in,
            batches_out,
            demand_calls,
            buffer_peak,
            queue_peak,
            rejected,
            panics,
            lost_resupplied,
        } = other;
        self.emitted += emitted;
        self.dispatched += dispatched;
        self.handed_out += handed_out;
        self.dropped += dropped;
        self.hash_dropped += hash_dropped;
        self.lost_out += lost_out;
        self.received += received;
        self.handled += handled;
        self.lost_in += lost_in;
        self.asks_sent += asks_sent;
        self.asks_received += asks_received;
        self.batches_in += batches_in;
        self.batches_out += batches_out;
        self.demand_calls += demand_calls;
        self.buffer_peak = self.buffer_peak.max(*buffer_peak);
        self.queue_peak = self.queue_peak.max(*queue_peak);
        self.rejected += rejected;
        self.panics += panics;
        self.lost_resupplied += lost_resupplied;
    }
}

#[derive(Debug)]
enum Asker {
    Auto(AutoAsk),
    Manual(AutoAsk),
    Pool(PoolAsk),
}

impl Asker {
    fn pending(&self) -> u64 {
        match self {
            Asker::Auto(a) | Asker::Manual(a) => a.pending(),
            Asker::Pool(p) => p.pending(),
        }
    }

    fn excess(&self) -> u64 {
        match self {
            Asker::Auto(a) | Asker::Manual(a) => a.excess(),
            Asker::Pool(p) => p.excess(),
        }
    }
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum LinkState {
    Idle,
    Live,
    Ended,
}

#[derive(Debug)]
struct InLink {
    cfg: InLinkConfig,
    gen: u32,
    state: LinkState,
    asker: Option<Asker>,
    handled: u64,
    lost: u64,
    /// Events from this link waiting in the input queue (producer-consumers).
    queued: u64,
    excess_before: u64,
}

impl InLink {
    fn sub(&self) -> SubRef {
        SubRef {
            link: self.cfg.link,
            gen: self.gen,
        }
    }

    fn excess(&self) -> u64 {
        self.excess_before + self.asker.as_ref().map_or(0, Asker::excess)
    }
}

#[derive(Debug)]
struct OutLink<O> {
    cfg: OutLinkConfig<O>,
    gen: u32,
    state: LinkState,
    dispatched: u64,
}

struct Output<O> {
    dispatcher: Dispatcher<O>,
    buffer: Buffer<O>,
    links: Vec<OutLink<O>>,
    /// A producer's downstream demand not yet served by the buffer or `handle_demand`
    /// (a producer-consumer asks its dispatcher instead).
    counter: u64,
    held: Option<VecDeque<(SubRef, u64)>>,
    /// Set once the source is exhausted (or a shutdown was asked): no more emitting.
    finishing: Option<CancelReason>,
    limit: Option<u64>,
    forward_when_subscribed: bool,
    /// Hash-dropped events already resupplied (or owed).
    resupplied: u64,
    /// Resupply owed while no subscription was live: added to the next subscription's
    /// demand.
    owed: u64,
}

/// Per-subscription figures of the consuming side, for probes and summaries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InLinkStats {
    /// The link.
    pub link: LinkId,
    /// Events asked for and not yet received.
    pub pending: u64,
    /// Events handled that came on this link.
    pub handled: u64,
    /// Events that came on this link and were lost here.
    pub lost: u64,
    /// Events received beyond what was asked.
    pub excess: u64,
    /// Events that came on this link and wait in the input queue (producer-consumers).
    pub queued: u64,
    /// `true` while the subscription is open.
    pub live: bool,
}

/// Per-subscription figures of the producing side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutLinkStats {
    /// The link.
    pub link: LinkId,
    /// Events sent on this link.
    pub dispatched: u64,
    /// The subscription's outstanding demand as the dispatcher sees it.
    pub outstanding: u64,
    /// `true` while the subscription is open.
    pub live: bool,
    /// Events waiting in this subscription's partition queue (partition dispatcher).
    pub queued: u64,
}

/// The runtime-agnostic state machine of one stage. See the module documentation.
pub struct StageCore<I, O> {
    id: StageId,
    logic: Logic<I, O>,
    ins: Vec<InLink>,
    queue: VecDeque<(SubRef, Vec<I>)>,
    queued: u64,
    out: Option<Output<O>>,
    status: Status,
    stats: StageStats,
    jobs_running: u64,
    /// A draining producer-consumer's logic has had its `handle_done`.
    flushed: bool,
}

impl<I, O> std::fmt::Debug for StageCore<I, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageCore")
            .field("id", &self.id)
            .field("kind", &self.logic.kind())
            .field("status", &self.status)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-text panic payload".to_string()
    }
}

/// The most events a producer's `handle_demand` is asked for in one call. Larger demand
/// is served over several steps, so a huge `max_demand` never allocates a huge batch.
pub const MAX_DEMAND_PER_CALL: u64 = 1 << 16;

/// Runs user code; a panic becomes an error reason, and is counted in `panics`.
fn guarded<R>(panics: &mut u64, what: &str, f: impl FnOnce() -> R) -> Result<R, CancelReason> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        *panics += 1;
        CancelReason::error(format!("panic in {what}: {}", panic_text(&*p)))
    })
}

impl<I: Send + 'static, O: Clone + Send + 'static> StageCore<I, O> {
    /// Builds a core from its configuration. Links are kept sorted by id.
    pub fn new(cfg: CoreConfig<I, O>) -> Self {
        let mut ins: Vec<InLink> = cfg
            .inputs
            .into_iter()
            .map(|c| InLink {
                cfg: c,
                gen: 0,
                state: LinkState::Idle,
                asker: None,
                handled: 0,
                lost: 0,
                queued: 0,
                excess_before: 0,
            })
            .collect();
        ins.sort_by_key(|l| l.cfg.link);
        let out = cfg.output.map(|o| {
            let mut links: Vec<OutLink<O>> = o
                .links
                .into_iter()
                .map(|c| OutLink {
                    cfg: c,
                    gen: 0,
                    state: LinkState::Idle,
                    dispatched: 0,
                })
                .collect();
            links.sort_by_key(|l| l.cfg.link);
            Output {
                dispatcher: Dispatcher::new(o.dispatcher),
                buffer: Buffer::new(o.buffer_size, o.buffer_keep),
                links,
                counter: 0,
                held: (o.demand_mode == DemandMode::Accumulate).then(VecDeque::new),
                finishing: None,
                limit: o.limit,
                forward_when_subscribed: o.forward_when_subscribed,
                resupplied: 0,
                owed: 0,
            }
        });
        StageCore {
            id: cfg.id,
            logic: cfg.logic,
            ins,
            queue: VecDeque::new(),
            queued: 0,
            out,
            status: Status::Running,
            stats: StageStats::default(),
            jobs_running: 0,
            flushed: false,
        }
    }

    /// The stage's index in its topology.
    pub fn id(&self) -> StageId {
        self.id
    }

    /// The stage's kind.
    pub fn kind(&self) -> StageKind {
        self.logic.kind()
    }

    /// Where the stage is in its life.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// `true` once the stage has stopped.
    pub fn is_stopped(&self) -> bool {
        matches!(self.status, Status::Stopped(_))
    }

    /// The stage's counters.
    pub fn stats(&self) -> &StageStats {
        &self.stats
    }

    /// Events in the producer buffer now.
    pub fn buffered(&self) -> u64 {
        self.out.as_ref().map_or(0, |o| o.buffer.len() as u64)
    }

    /// Events held inside the dispatcher now (partition queues).
    pub fn dispatcher_queued(&self) -> u64 {
        self.out.as_ref().map_or(0, |o| o.dispatcher.queued())
    }

    /// Events waiting in a producer-consumer's input queue now.
    pub fn input_queued(&self) -> u64 {
        self.queued
    }

    /// Consumer-pool jobs running now.
    pub fn jobs_running(&self) -> u64 {
        self.jobs_running
    }

    /// Events received beyond what was asked, over all upstream subscriptions.
    pub fn excess(&self) -> u64 {
        self.ins.iter().map(InLink::excess).sum()
    }

    /// Asks larger than the demand dispatcher's expected `max_demand`.
    pub fn oversized_asks(&self) -> u64 {
        self.out
            .as_ref()
            .map_or(0, |o| o.dispatcher.oversized_asks())
    }

    /// `true` while a producer still takes pushed arrivals (it is running and has not
    /// reached its limit or been told to shut down).
    pub fn takes_arrivals(&self) -> bool {
        self.status == Status::Running && self.out.as_ref().is_some_and(|o| o.finishing.is_none())
    }

    /// `true` if the dispatcher could place another event right now.
    pub fn dispatcher_can_take(&self) -> bool {
        self.out.as_ref().is_some_and(|o| o.dispatcher.can_take())
    }

    /// Figures of each upstream subscription.
    pub fn in_links(&self) -> impl Iterator<Item = InLinkStats> + '_ {
        self.ins.iter().map(|l| InLinkStats {
            link: l.cfg.link,
            pending: l.asker.as_ref().map_or(0, Asker::pending),
            handled: l.handled,
            lost: l.lost,
            excess: l.excess(),
            queued: l.queued,
            live: l.state == LinkState::Live,
        })
    }

    /// Figures of each downstream subscription.
    pub fn out_links(&self) -> impl Iterator<Item = OutLinkStats> + '_ {
        self.out.iter().flat_map(|o| {
            o.links.iter().map(|l| OutLinkStats {
                link: l.cfg.link,
                dispatched: l.dispatched,
                outstanding: if l.state == LinkState::Live {
                    o.dispatcher
                        .outstanding_at(
                            SubRef {
                                link: l.cfg.link,
                                gen: l.gen,
                            },
                            l.cfg.partition,
                        )
                        .unwrap_or(0)
                } else {
                    0
                },
                live: l.state == LinkState::Live,
                queued: l.cfg.partition.map_or(0, |p| o.dispatcher.queued_in(p)),
            })
        })
    }

    /// The outstanding demand of each downstream subscription, in
    /// [`out_links`](Self::out_links) order: what a live probe publishes after every slice
    /// of work, without the other figures.
    pub fn outstanding_each(&self) -> impl Iterator<Item = u64> + '_ {
        self.out.iter().flat_map(|o| {
            o.links.iter().map(|l| {
                if l.state != LinkState::Live {
                    return 0;
                }
                let sub = SubRef {
                    link: l.cfg.link,
                    gen: l.gen,
                };
                o.dispatcher
                    .outstanding_at(sub, l.cfg.partition)
                    .unwrap_or(0)
            })
        })
    }

    /// The pending demand (asked, not yet received) of each upstream subscription, in
    /// [`in_links`](Self::in_links) order.
    pub fn pending_each(&self) -> impl Iterator<Item = u64> + '_ {
        self.ins
            .iter()
            .map(|l| l.asker.as_ref().map_or(0, Asker::pending))
    }

    /// Handles one input; the messages and jobs it causes are appended to `fx`.
    pub fn handle(
        &mut self,
        input: Input<I, O>,
        fx: &mut Effects<I, O>,
        obs: &mut dyn Observer<I, O>,
    ) {
        let start = fx.out.len();
        if self.is_stopped() {
            self.handle_stopped(input, fx, obs);
        } else {
            let result = match input {
                Input::Start => self.start(fx),
                Input::Up(msg) => self.upstream_msg(msg, fx, obs),
                Input::Down(Downstream::Events { sub, batch }) => self.events(sub, batch, fx, obs),
                Input::Down(Downstream::Cancel { sub, reason }) => {
                    self.cancelled_by_producer(sub, reason, fx, obs)
                }
                Input::Arrive(events) => self.arrive(events, fx, obs),
                Input::JobDone { sub } => self.job_done(sub, fx, obs),
                Input::Forward => self.forward(fx, obs),
                Input::Shutdown => self.shutdown(fx, obs),
                Input::Crash(reason) => Err(reason),
            };
            match result {
                Ok(()) => {
                    self.resupply(fx);
                    self.settle(fx, obs);
                }
                Err(reason) => self.finish(reason, fx, obs),
            }
        }
        self.tally(start, fx);
    }

    fn handle_stopped(
        &mut self,
        input: Input<I, O>,
        fx: &mut Effects<I, O>,
        obs: &mut dyn Observer<I, O>,
    ) {
        let Status::Stopped(reason) = self.status.clone() else {
            return;
        };
        match input {
            Input::Down(Downstream::Events { sub, batch }) => {
                self.lose_input(sub, LostCause::StageDown, &batch, obs);
            }
            Input::Up(Upstream::Subscribe { sub }) => {
                // Like subscribing to a process that is gone: the answer is a cancel.
                fx.out
                    .push(Outgoing::Down(Downstream::Cancel { sub, reason }));
            }
            _ => {}
        }
    }

    fn start(&mut self, fx: &mut Effects<I, O>) -> Result<(), CancelReason> {
        let mut manual = Vec::new();
        for l in &mut self.ins {
            if l.state != LinkState::Idle {
                continue;
            }
            l.state = LinkState::Live;
            let sub = l.sub();
            fx.out.push(Outgoing::Up(Upstream::Subscribe { sub }));
            let (asker, first) = match (self.logic.kind(), l.cfg.mode) {
                (StageKind::ConsumerPool, _) => {
                    let (p, n) = PoolAsk::subscribe(l.cfg.demand);
                    (Asker::Pool(p), Some(n))
                }
                (_, AskMode::Manual) => (Asker::Manual(AutoAsk::manual(l.cfg.demand)), None),
                (_, AskMode::Automatic) => {
                    let (a, n) = AutoAsk::subscribe(l.cfg.demand);
                    (Asker::Auto(a), Some(n))
                }
            };
            l.asker = Some(asker);
            if let Some(n) = first {
                fx.out.push(Outgoing::Up(Upstream::Ask { sub, n }));
                self.stats.asks_sent += 1;
            } else {
                manual.push(sub);
            }
        }
        if let Logic::Consumer(c) = &mut self.logic {
            for sub in manual {
                let mut ctx = Ctx::new(sub);
                guarded(&mut self.stats.panics, "handle_subscribe", || {
                    c.handle_subscribe(&mut ctx)
                })?;
                Self::send_manual_asks(&mut self.ins, &mut self.stats, ctx, fx);
            }
        }
        Ok(())
    }

    fn send_manual_asks(
        ins: &mut [InLink],
        stats: &mut StageStats,
        ctx: Ctx,
        fx: &mut Effects<I, O>,
    ) {
        for (sub, n) in ctx.asks {
            let Some(l) = find_in(ins, sub) else { continue };
            if let (LinkState::Live, Some(Asker::Manual(a))) = (l.state, l.asker.as_mut()) {
                if n > 0 {
                    a.asked_manual(n);
                    fx.out.push(Outgoing::Up(Upstream::Ask { sub, n }));
                    stats.asks_sent += 1;
                }
            }
        }
    }

    // ---- producing side -------------------------------------------------------------

    fn upstream_msg(
        &mut self,
        msg: Upstream,
        fx: &mut Effects<I, O>,
        obs: &mut dyn Observer<I, O>,
    ) -> Result<(), CancelReason> {
        let sub = msg.sub();
        let Some(idx) = self
            .out
            .as_ref()
            .and_then(|out| out.links.iter().position(|l| l.cfg.link == sub.link))
        else {
            return Ok(());
        };
        match msg {
            Upstream::Subscribe { sub } => {
                if self.accept_subscription(idx, sub, fx, obs) {
                    self.pump(fx, obs)?;
                    return self.forward(fx, obs);
                }
            }
            Upstream::Ask { sub, n } => self.take_demand(idx, sub, n, true, fx, obs),
            Upstream::Refund { sub, n } => self.take_demand(idx, sub, n, false, fx, obs),
            Upstream::Resupply { n, .. } => {
                if self.logic.kind() == StageKind::Producer {
                    if let Some(out) = self.out.as_mut() {
                        out.counter += n;
                    }
                }
            }
            Upstream::Cancel { sub, .. } => self.end_subscription(idx, sub, fx, obs),
        }
        self.pump(fx, obs)
    }

    /// A subscription on output link `idx` (new, or replacing an earlier incarnation).
    /// Returns `true` when it was the last one an accumulating producer waited for.
    fn accept_subscription(
        &mut self,
        idx: usize,
        sub: SubRef,
        fx: &mut Effects<I, O>,
        obs: &mut dyn Observer<I, O>,
    ) -> bool {
        let Some(out) = self.out.as_mut() else {
            return false;
        };
        let link = &mut out.links[idx];
        if link.state == LinkState::Live && link.gen == sub.gen {
            return false;
        }
        if link.state == LinkState::Live {
            // A resubscription replaces the old incarnation.
            let old = SubRef {
                link: sub.link,
                gen: link.gen,
            };
            let mut sink = Sink::new(&mut fx.out, obs);
            out.counter += out.dispatcher.cancel(old, &mut sink);
            absorb(&mut self.stats, &sink);
        }
        let link = &mut out.links[idx];
        link.gen = sub.gen;
        match out.dispatcher.subscribe(
            sub,
            link.cfg.consumer,
            link.cfg.partition,
            link.cfg.selector.clone(),
        ) {
            Ok(up) => {
                link.state = LinkState::Live;
                out.counter += up + std::mem::take(&mut out.owed);
            }
            Err(rejection) => {
                link.state = LinkState::Ended;
                self.stats.rejected += 1;
                fx.out.push(Outgoing::Down(Downstream::Cancel {
                    sub,
                    reason: CancelReason::Rejected(rejection),
                }));
            }
        }
        out.held.is_some()
            && out.forward_when_subscribed
            && out.links.iter().all(|l| l.state != LinkState::Idle)
    }

    /// An ask (or a broadcast selector's refund) on output link `idx`: held while
    /// accumulating, else given to the dispatcher.
    fn take_demand(
        &mut self,
        idx: usize,
        sub: SubRef,
        n: u64,
        ask: bool,
        fx: &mut Effects<I, O>,
        obs: &mut dyn Observer<I, O>,
    ) {
        let Some(out) = self.out.as_mut() else {
            return;
        };
        let link = &out.links[idx];
        if link.state != LinkState::Live || link.gen != sub.gen {
            return;
        }
        if ask {
            self.stats.asks_received += 1;
        }
        if let Some(held) = out.held.as_mut() {
            held.push_back((sub, n));
            return;
        }
        let mut sink = Sink::new(&mut fx.out, obs);
        out.counter += out.dispatcher.ask(sub, n, &mut sink);
        absorb(&mut self.stats, &sink);
    }

    /// A consumer cancelled the subscription on output link `idx`.
    fn end_subscription(
        &mut self,
        idx: usize,
        sub: SubRef,
        fx: &mut Effects<I, O>,
        obs: &mut dyn Observer<I, O>,
    ) {
        let Some(out) = self.out.as_mut() else {
            return;
        };
        let link = &mut out.links[idx];
        if link.gen != sub.gen || link.state == LinkState::Ended {
            return;
        }
        let was_live = link.state == LinkState::Live;
        link.state = LinkState::Ended;
        if was_live {
            let mut sink = Sink::new(&mut fx.out, obs);
            out.counter += out.dispatcher.cancel(sub, &mut sink);
            absorb(&mut self.stats, &sink);
        }
    }

    fn forward(
        &mut self,
        fx: &mut Effects<I, O>,
        obs: &mut dyn Observer<I, O>,
    ) -> Result<(), CancelReason> {
        let Some(held) = self.out.as_mut().and_then(|o| o.held.take()) else {
            return Ok(());
        };
        for (sub, n) in held {
            let Some(out) = self.out.as_mut() else { break };
            let live = out
                .links
                .iter()
                .any(|l| l.cfg.link == sub.link && l.gen == sub.gen && l.state == LinkState::Live);
            if !live {
                continue;
            }
            let mut sink = Sink::new(&mut fx.out, obs);
            out.counter += out.dispatcher.ask(sub, n, &mut sink);
            absorb(&mut self.stats, &sink);
            self.pump(fx, obs)?;
        }
        Ok(())
    }

    fn arrive(
        &mut self,
        mut events: Vec<O>,
        fx: &mut Effects<I, O>,
        obs: &mut dyn Observer<I, O>,
    ) -> Result<(), CancelReason> {
        let Some(out) = self.out.as_mut() else {
            return Ok(());
        };
        if out.finishing.is_some() {
            return Ok(());
        }
        if let Some(limit) = out.limit {
            let room = limit.saturating_sub(self.stats.emitted);
            if (events.len() as u64) >= room {
                events.truncate(room as usize);
                out.finishing = Some(CancelReason::Normal);
            }
        }
        self.place(events, fx, obs);
        self.pump(fx, obs)
    }

    /// Offers the buffer to the dispatcher, then creates or processes events while
    /// downstream demand is left.
    fn pump(
        &mut self,
        fx: &mut Effects<I, O>,
        obs: &mut dyn Observer<I, O>,
    ) -> Result<(), CancelReason> {
        let Some(out) = self.out.as_mut() else {
            return Ok(());
        };
        if !out.buffer.is_empty() {
            let mut sink = Sink::new(&mut fx.out, obs);
            let taken = out.dispatcher.dispatch(out.buffer.queue_mut(), &mut sink);
            absorb(&mut self.stats, &sink);
            out.counter = out.counter.saturating_sub(taken);
        }
        if self.logic.kind() == StageKind::ProducerConsumer {
            while self.downstream_has_room() {
                let Some((sub, batch)) = self.dequeue() else {
                    break;
                };
                self.process(sub, batch, fx, obs)?;
            }
            return Ok(());
        }
        let Logic::Producer(p) = &mut self.logic else {
            return Ok(());
        };
        if out.counter == 0
            || out.held.is_some()
            || out.finishing.is_some()
            || self.status != Status::Running
        {
            return Ok(());
        }
        let room = out
            .limit
            .map_or(u64::MAX, |l| l.saturating_sub(self.stats.emitted));
        if room == 0 {
            out.counter = 0;
            out.finishing = Some(CancelReason::Normal);
            return Ok(());
        }
        // At most MAX_DEMAND_PER_CALL per call, whatever the demand, so one step (and one
        // batch) stays bounded; the rest is asked for in the next step, through a note to
        // self, as a partition hash's resupply is.
        let n = out.counter.min(room).min(MAX_DEMAND_PER_CALL);
        out.counter = if out.counter.min(room) > n {
            out.counter - n
        } else {
            0
        };
        if out.counter > 0 {
            if let Some(l) = out.links.iter().find(|l| l.state == LinkState::Live) {
                fx.out.push(Outgoing::Up(Upstream::Resupply {
                    sub: SubRef {
                        link: l.cfg.link,
                        gen: l.gen,
                    },
                    n: 0,
                }));
            }
        }
        obs.demand(n);
        self.stats.demand_calls += 1;
        let mut emit = Emit::with_capacity(n as usize);
        guarded(&mut self.stats.panics, "handle_demand", || {
            p.handle_demand(n, &mut emit)
        })?;
        let (mut events, finished) = emit.into_parts();
        if events.len() as u64 >= room {
            events.truncate(room as usize);
            out.finishing = Some(CancelReason::Normal);
        }
        if finished {
            out.finishing = Some(CancelReason::Normal);
        }
        self.place(events, fx, obs);
        Ok(())
    }

    /// A producer-consumer may process its next batch: the dispatcher would take an
    /// event and nothing waits in the buffer for it. (No separate counter: one would
    /// count an overshoot twice, once when emitted and again when it leaves the buffer.)
    #[inline]
    fn downstream_has_room(&self) -> bool {
        self.out
            .as_ref()
            .is_some_and(|o| o.buffer.is_empty() && o.dispatcher.can_take())
    }

    /// Sends fresh events through the dispatcher; what it cannot place is buffered.
    fn place(&mut self, events: Vec<O>, fx: &mut Effects<I, O>, obs: &mut dyn Observer<I, O>) {
        let Some(out) = self.out.as_mut() else { return };
        self.stats.emitted += events.len() as u64;
        if events.is_empty() {
            return;
        }
        let rest = if out.buffer.is_empty() {
            let mut sink = Sink::new(&mut fx.out, obs);
            let q = match out.dispatcher.dispatch_whole(events, &mut sink) {
                Ok(()) => VecDeque::new(),
                Err(events) => {
                    let mut q = VecDeque::from(events);
                    out.dispatcher.dispatch(&mut q, &mut sink);
                    q
                }
            };
            absorb(&mut self.stats, &sink);
            q
        } else {
            VecDeque::from(events)
        };
        if !rest.is_empty() {
            let dropped = out.buffer.push_all(rest);
            if !dropped.is_empty() {
                self.stats.dropped += dropped.len() as u64;
                obs.dropped(DropCause::BufferFull, &dropped);
            }
            self.stats.buffer_peak = self.stats.buffer_peak.max(out.buffer.peak() as u64);
        }
    }

    // ---- consuming side -------------------------------------------------------------

    fn events(
        &mut self,
        sub: SubRef,
        batch: Vec<I>,
        fx: &mut Effects<I, O>,
        obs: &mut dyn Observer<I, O>,
    ) -> Result<(), CancelReason> {
        let live = find_in(&mut self.ins, sub).is_some_and(|l| l.state == LinkState::Live);
        if !live {
            self.lose_input(sub, LostCause::Stale, &batch, obs);
            return Ok(());
        }
        self.stats.received += batch.len() as u64;
        self.stats.batches_in += 1;
        match self.logic.kind() {
            StageKind::ProducerConsumer => {
                let n = batch.len() as u64;
                if self.queue.is_empty() && self.downstream_has_room() {
                    // What `pump` would take off the queue at once: no detour through it
                    // (its peak still counts the batch, as if it had waited there).
                    self.stats.queue_peak = self.stats.queue_peak.max(self.queued + n);
                    return self.process(sub, batch, fx, obs);
                }
                self.queued += n;
                if let Some(l) = self.ins.iter_mut().find(|l| l.cfg.link == sub.link) {
                    l.queued += n;
                }
                self.stats.queue_peak = self.stats.queue_peak.max(self.queued);
                self.queue.push_back((sub, batch));
                self.pump(fx, obs)
            }
            StageKind::ConsumerPool => {
                let n = batch.len() as u64;
                if let Some(l) = find_in(&mut self.ins, sub) {
                    if let Some(Asker::Pool(p)) = l.asker.as_mut() {
                        p.received(n);
                    }
                    l.handled += n;
                }
                obs.handled(sub, &batch);
                self.stats.handled += n;
                self.jobs_running += n;
                fx.jobs.extend(batch.into_iter().map(|e| (sub, e)));
                Ok(())
            }
            _ => self.process(sub, batch, fx, obs),
        }
    }

    /// Runs a batch through the user's logic, chunk by chunk, asking after each chunk.
    fn process(
        &mut self,
        sub: SubRef,
        batch: Vec<I>,
        fx: &mut Effects<I, O>,
        obs: &mut dyn Observer<I, O>,
    ) -> Result<(), CancelReason> {
        let Some(idx) = self.ins.iter().position(|l| l.cfg.link == sub.link) else {
            return Ok(());
        };
        let current = self.ins[idx].gen == sub.gen && self.ins[idx].state != LinkState::Idle;
        let demand = self.ins[idx].cfg.demand;
        let manual = matches!(self.ins[idx].asker, Some(Asker::Manual(_)));
        let len = batch.len();
        let mut iter = batch.into_iter();
        // Manual: one batch, one call. Automatic: chunks of max - min.
        let size = if manual { len as u64 } else { demand.chunk() };
        while iter.len() > 0 {
            let b = size.min(iter.len() as u64);
            let ask = if current {
                match self.ins[idx].asker.as_mut() {
                    Some(Asker::Auto(a)) => a.after_chunk(b),
                    Some(Asker::Manual(a)) => {
                        a.received_manual(b);
                        None
                    }
                    _ => None,
                }
            } else {
                None
            };
            self.ins[idx].handled += b;
            self.stats.handled += b;
            obs.handled(sub, &iter.as_slice()[..b as usize]);
            let chunk = Chunk::new(&mut iter, b as usize);
            let mut emitted = None;
            let result = match &mut self.logic {
                Logic::Consumer(c) => {
                    let mut ctx = Ctx::new(sub);
                    let r = guarded(&mut self.stats.panics, "handle_events", || {
                        c.handle_events(chunk, &mut ctx)
                    });
                    if r.is_ok() {
                        Self::send_manual_asks(&mut self.ins, &mut self.stats, ctx, fx);
                    }
                    r
                }
                Logic::ProducerConsumer(pc) => {
                    let mut emit = Emit::with_capacity(b as usize);
                    let r = guarded(&mut self.stats.panics, "handle_events", || {
                        pc.handle_events(chunk, sub, &mut emit)
                    });
                    emitted = Some(emit.into_parts().0);
                    r
                }
                _ => {
                    drop(chunk);
                    Ok(())
                }
            };
            if let (Ok(()), Some(events)) = (&result, emitted) {
                self.place(events, fx, obs);
            }
            if let Err(reason) = result {
                let rest: Vec<I> = iter.collect();
                self.lose_input(sub, LostCause::StageDown, &rest, obs);
                return Err(reason);
            }
            let l = &self.ins[idx];
            if let Some(n) = ask {
                if l.state == LinkState::Live && l.gen == sub.gen {
                    fx.out.push(Outgoing::Up(Upstream::Ask { sub, n }));
                    self.stats.asks_sent += 1;
                }
            }
        }
        Ok(())
    }

    fn job_done(
        &mut self,
        sub: SubRef,
        fx: &mut Effects<I, O>,
        _obs: &mut dyn Observer<I, O>,
    ) -> Result<(), CancelReason> {
        self.jobs_running = self.jobs_running.saturating_sub(1);
        if let Some(l) = find_in(&mut self.ins, sub) {
            if l.state == LinkState::Live {
                if let Some(Asker::Pool(p)) = l.asker.as_mut() {
                    if let Some(n) = p.job_done() {
                        fx.out.push(Outgoing::Up(Upstream::Ask { sub, n }));
                        self.stats.asks_sent += 1;
                    }
                }
            }
        }
        Ok(())
    }

    fn cancelled_by_producer(
        &mut self,
        sub: SubRef,
        reason: CancelReason,
        fx: &mut Effects<I, O>,
        obs: &mut dyn Observer<I, O>,
    ) -> Result<(), CancelReason> {
        let Some(l) = find_in(&mut self.ins, sub) else {
            return Ok(());
        };
        if l.state != LinkState::Live {
            return Ok(());
        }
        l.state = LinkState::Ended;
        if l.cfg.cancel.stops_on(&reason) {
            return self.begin_stop(reason, fx, obs);
        }
        if self.ins.iter().all(|l| l.state == LinkState::Ended) {
            return self.begin_stop(CancelReason::Normal, fx, obs);
        }
        Ok(())
    }

    fn shutdown(
        &mut self,
        fx: &mut Effects<I, O>,
        obs: &mut dyn Observer<I, O>,
    ) -> Result<(), CancelReason> {
        if let Some(out) = self.out.as_mut() {
            if self.logic.kind() == StageKind::Producer {
                out.finishing.get_or_insert(CancelReason::Shutdown);
                return Ok(());
            }
        }
        self.begin_stop(CancelReason::Shutdown, fx, obs)
    }

    /// Starts stopping: cancels upstream, then drains (orderly) or stops at once.
    fn begin_stop(
        &mut self,
        reason: CancelReason,
        fx: &mut Effects<I, O>,
        obs: &mut dyn Observer<I, O>,
    ) -> Result<(), CancelReason> {
        self.cancel_upstream(&reason, fx);
        let orderly = reason.is_orderly();
        match self.logic.kind() {
            StageKind::ProducerConsumer if orderly => {
                self.status = Status::Draining(reason);
                self.pump(fx, obs)
            }
            StageKind::ConsumerPool if orderly && self.jobs_running > 0 => {
                self.status = Status::Draining(reason);
                Ok(())
            }
            _ => Err(reason),
        }
    }

    /// An orderly stop of a producer-consumer: once the input it still holds is
    /// handled, its logic's last events ([`ProducerConsumer::handle_done`]) go out like
    /// any others, before the stage's cancels.
    fn flush_logic(
        &mut self,
        fx: &mut Effects<I, O>,
        obs: &mut dyn Observer<I, O>,
    ) -> Result<(), CancelReason> {
        let Logic::ProducerConsumer(pc) = &mut self.logic else {
            return Ok(());
        };
        let mut emit = Emit::with_capacity(0);
        guarded(&mut self.stats.panics, "handle_done", || {
            pc.handle_done(&mut emit)
        })?;
        self.place(emit.into_parts().0, fx, obs);
        Ok(())
    }

    fn cancel_upstream(&mut self, reason: &CancelReason, fx: &mut Effects<I, O>) {
        for l in &mut self.ins {
            if l.state == LinkState::Live {
                fx.out.push(Outgoing::Up(Upstream::Cancel {
                    sub: l.sub(),
                    reason: reason.clone(),
                }));
            }
            if l.state != LinkState::Ended {
                l.state = LinkState::Ended;
            }
        }
    }

    /// Events the partition hash dropped used no demand, but the source made them for
    /// demand that is still open: a producer asks its source for as many again, through a
    /// note to itself ([`Upstream::Resupply`]) so that one step stays bounded; with no
    /// live subscription to route it, the next subscription gets it.
    fn resupply(&mut self, fx: &mut Effects<I, O>) {
        let Some(out) = self.out.as_mut() else { return };
        if self.logic.kind() != StageKind::Producer {
            return;
        }
        let n = self.stats.hash_dropped + self.stats.lost_resupplied - out.resupplied;
        if n == 0 {
            return;
        }
        out.resupplied += n;
        match out.links.iter().find(|l| l.state == LinkState::Live) {
            Some(l) => fx.out.push(Outgoing::Up(Upstream::Resupply {
                sub: SubRef {
                    link: l.cfg.link,
                    gen: l.gen,
                },
                n,
            })),
            None => out.owed += n,
        }
    }

    /// After each input: stop if the work is done or nobody is left downstream.
    fn settle(&mut self, fx: &mut Effects<I, O>, obs: &mut dyn Observer<I, O>) {
        if matches!(self.status, Status::Draining(_)) && !self.flushed && self.queue.is_empty() {
            self.flushed = true;
            if let Err(reason) = self.flush_logic(fx, obs) {
                self.finish(reason, fx, obs);
                return;
            }
        }
        let reason = match (&self.status, self.out.as_ref()) {
            (Status::Stopped(_), _) => return,
            (Status::Draining(r), None) => (self.jobs_running == 0).then(|| r.clone()),
            (status, Some(out)) => {
                let empty = out.buffer.is_empty() && out.dispatcher.queued() == 0;
                let all_ended =
                    !out.links.is_empty() && out.links.iter().all(|l| l.state == LinkState::Ended);
                if all_ended {
                    Some(CancelReason::Normal)
                } else {
                    match status {
                        Status::Draining(r) if empty && self.queue.is_empty() => Some(r.clone()),
                        Status::Running if empty => out.finishing.clone(),
                        _ => None,
                    }
                }
            }
            (Status::Running, None) => None,
        };
        if let Some(reason) = reason {
            self.finish(reason, fx, obs);
        }
    }

    /// Stops now: cancels every open subscription with `reason`; whatever is still held
    /// is counted as lost.
    fn finish(
        &mut self,
        reason: CancelReason,
        fx: &mut Effects<I, O>,
        obs: &mut dyn Observer<I, O>,
    ) {
        self.cancel_upstream(&reason, fx);
        while let Some((sub, batch)) = self.dequeue() {
            self.lose_input(sub, LostCause::StageDown, &batch, obs);
        }
        if let Some(out) = self.out.as_mut() {
            let held = out.buffer.take_all();
            let mut sink = Sink::new(&mut fx.out, obs);
            sink.lose(LostCause::StageDown, &held);
            out.dispatcher.discard_all(&mut sink);
            absorb(&mut self.stats, &sink);
            for l in &mut out.links {
                if l.state == LinkState::Live {
                    fx.out.push(Outgoing::Down(Downstream::Cancel {
                        sub: SubRef {
                            link: l.cfg.link,
                            gen: l.gen,
                        },
                        reason: reason.clone(),
                    }));
                }
                l.state = LinkState::Ended;
            }
        }
        self.status = Status::Stopped(reason);
    }

    /// Takes the oldest batch off the input queue, keeping the counts in step.
    fn dequeue(&mut self) -> Option<(SubRef, Vec<I>)> {
        let (sub, batch) = self.queue.pop_front()?;
        let n = batch.len() as u64;
        self.queued -= n;
        if let Some(l) = self.ins.iter_mut().find(|l| l.cfg.link == sub.link) {
            l.queued -= n;
        }
        Some((sub, batch))
    }

    fn lose_input(
        &mut self,
        sub: SubRef,
        cause: LostCause,
        events: &[I],
        obs: &mut dyn Observer<I, O>,
    ) {
        if events.is_empty() {
            return;
        }
        let n = events.len() as u64;
        self.stats.lost_in += n;
        if let Some(l) = self.ins.iter_mut().find(|l| l.cfg.link == sub.link) {
            l.lost += n;
        }
        obs.lost_in(sub, cause, events);
    }

    /// Counts the batches this input sent, per link.
    #[inline]
    fn tally(&mut self, start: usize, fx: &Effects<I, O>) {
        let Some(out) = self.out.as_mut() else { return };
        for o in &fx.out[start..] {
            if let Outgoing::Down(Downstream::Events { sub, batch }) = o {
                self.stats.batches_out += 1;
                if let Ok(i) = out.links.binary_search_by_key(&sub.link, |l| l.cfg.link) {
                    out.links[i].dispatched += batch.len() as u64;
                }
            }
        }
    }

    /// Changes the `max_demand` / `min_demand` of this stage's subscription on `link`
    /// while it runs (a viewer's "what if"): later subscriptions use them too, and a live
    /// automatic subscription whose pending demand is at or below the new `min_demand`
    /// asks at once for enough to reach the new `max_demand` (the ask is appended to `fx`).
    /// Events already asked for stay asked for. Returns `false` if the stage has no such
    /// subscription.
    pub fn set_demand(&mut self, link: LinkId, demand: Demand, fx: &mut Effects<I, O>) -> bool {
        let Some(l) = self.ins.iter_mut().find(|l| l.cfg.link == link) else {
            return false;
        };
        l.cfg.demand = demand;
        let (live, sub) = (l.state == LinkState::Live, l.sub());
        let ask = match l.asker.as_mut() {
            Some(Asker::Auto(a)) => a.retune(demand),
            Some(Asker::Manual(a)) => {
                a.set_bounds(demand);
                None
            }
            Some(Asker::Pool(p)) => {
                p.retune(demand);
                None
            }
            None => None,
        };
        if let (true, Some(n), false) = (live, ask, self.is_stopped()) {
            fx.out.push(Outgoing::Up(Upstream::Ask { sub, n }));
            self.stats.asks_sent += 1;
        }
        true
    }

    /// Marks a subscription as re-opened by a restarted consumer: the next [`Input::Start`]
    /// subscribes it again with a new generation. Used by runtimes that restart stages.
    pub fn reset_inputs_for_restart(&mut self) {
        for l in &mut self.ins {
            l.excess_before = l.excess();
            l.gen += 1;
            l.state = LinkState::Idle;
            l.asker = None;
        }
    }
}

fn find_in(ins: &mut [InLink], sub: SubRef) -> Option<&mut InLink> {
    ins.iter_mut()
        .find(|l| l.cfg.link == sub.link && l.gen == sub.gen)
}

fn absorb<I, O>(stats: &mut StageStats, sink: &Sink<'_, I, O>) {
    stats.dispatched += sink.sent;
    stats.handed_out += sink.handed_out;
    stats.dropped += sink.dropped;
    stats.hash_dropped += sink.dropped;
    stats.lost_out += sink.lost;
    stats.lost_resupplied += sink.resupply;
}

#[cfg(test)]
mod tests;
