//! Dispatchers: how a producer turns consumer demand into upstream demand, and how it
//! hands events out.
//!
//! One module per policy — [`demand`], [`broadcast`], [`partition`] — behind the
//! [`Dispatcher`] enum. A dispatcher never sends a subscription more events than its
//! outstanding demand, and takes events from the front of the source it is offered, so
//! whatever it cannot place stays in order for the producer buffer.
//!
//! *Architecture invariant:* a dispatcher owns no clock, no RNG (a shuffle takes its seed
//! from the runtime) and sends nothing itself: it writes batches into a [`Sink`].

pub mod broadcast;
pub mod demand;
pub mod partition;

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use crate::observe::{DropCause, LostCause, Observer};
use crate::opts::Selector;
use crate::protocol::{Downstream, Outgoing, Rejection, StageId, SubRef};

pub use broadcast::BroadcastDispatcher;
pub use demand::DemandDispatcher;
pub use partition::PartitionDispatcher;

/// Where a dispatcher writes its batches and reports drops and losses.
pub struct Sink<'a, I, O> {
    pub(crate) out: &'a mut Vec<Outgoing<O>>,
    pub(crate) obs: &'a mut dyn Observer<I, O>,
    /// Events sent in batches (a broadcast event counts once per consumer).
    pub(crate) sent: u64,
    /// Distinct events handed out (a broadcast event counts once).
    pub(crate) handed_out: u64,
    /// Events dropped by the hash.
    pub(crate) dropped: u64,
    /// Events discarded from queues.
    pub(crate) lost: u64,
    /// Lost events that used demand: the producer asks its source for as many again.
    pub(crate) resupply: u64,
}

impl<'a, I, O> Sink<'a, I, O> {
    /// A sink writing into `out`.
    pub fn new(out: &'a mut Vec<Outgoing<O>>, obs: &'a mut dyn Observer<I, O>) -> Self {
        Sink {
            out,
            obs,
            sent: 0,
            handed_out: 0,
            resupply: 0,
            dropped: 0,
            lost: 0,
        }
    }

    /// Sends a batch of events that go to this one consumer only.
    pub(crate) fn send(&mut self, sub: SubRef, batch: Vec<O>) {
        self.handed_out += batch.len() as u64;
        self.send_copy(sub, batch);
    }

    /// Sends one consumer's copy of events that several consumers get (broadcast); the
    /// caller counts the distinct events in `handed_out`.
    pub(crate) fn send_copy(&mut self, sub: SubRef, batch: Vec<O>) {
        if batch.is_empty() {
            return;
        }
        self.sent += batch.len() as u64;
        self.out
            .push(Outgoing::Down(Downstream::Events { sub, batch }));
    }

    pub(crate) fn drop_events(&mut self, cause: DropCause, events: &[O]) {
        if events.is_empty() {
            return;
        }
        self.dropped += events.len() as u64;
        self.obs.dropped(cause, events);
    }

    pub(crate) fn lose(&mut self, cause: LostCause, events: &[O]) {
        if events.is_empty() {
            return;
        }
        self.lost += events.len() as u64;
        self.obs.lost_out(cause, events);
    }
}

type HashFn<T> = dyn Fn(&T) -> Option<u32> + Send + Sync;

/// A partition function: the partition of an event, or `None` to drop it.
pub struct PartitionFn<T>(Arc<HashFn<T>>);

impl<T> PartitionFn<T> {
    /// Wraps a function.
    pub fn new(f: impl Fn(&T) -> Option<u32> + Send + Sync + 'static) -> Self {
        PartitionFn(Arc::new(f))
    }

    #[inline]
    pub(crate) fn call(&self, e: &T) -> Option<u32> {
        (self.0)(e)
    }
}

impl<T> Clone for PartitionFn<T> {
    fn clone(&self) -> Self {
        PartitionFn(Arc::clone(&self.0))
    }
}

impl<T> fmt::Debug for PartitionFn<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PartitionFn(..)")
    }
}

/// Which dispatcher a producer uses, with its options.
#[derive(Clone, Debug)]
pub enum DispatcherSpec<T> {
    /// Biggest outstanding demand first (GenStage's default).
    Demand {
        /// `max_demand` every consumer is expected to use; `None`: fixed by the first ask.
        max_demand: Option<u64>,
        /// Shuffle the consumer order once, before the first dispatch, from this seed.
        shuffle_seed: Option<u64>,
    },
    /// Every consumer gets every event its selector accepts.
    Broadcast,
    /// Events are routed by `hash` to one of `partitions` consumers.
    Partition {
        /// Number of partitions, named `0..partitions`.
        partitions: u32,
        /// The partition of an event (`None` drops it; out of range also drops).
        hash: PartitionFn<T>,
        /// What happens to events for a partition whose subscriber has left.
        on_missing: OnMissing,
    },
}

/// What a partition dispatcher does with events for a partition whose subscriber has
/// left (and no new one has come yet).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnMissing {
    /// Keep them in the partition's queue for the next subscriber, as GenStage does. They
    /// use the producer's demand, so the other partitions can starve.
    #[default]
    Hold,
    /// Count them as lost and ask upstream for as many again, so the other partitions
    /// keep running.
    Drop,
}

impl<T> Default for DispatcherSpec<T> {
    fn default() -> Self {
        DispatcherSpec::Demand {
            max_demand: None,
            shuffle_seed: None,
        }
    }
}

impl<T> DispatcherSpec<T> {
    /// The name used in scenario files and summaries.
    pub fn name(&self) -> &'static str {
        match self {
            DispatcherSpec::Demand { .. } => "demand",
            DispatcherSpec::Broadcast => "broadcast",
            DispatcherSpec::Partition { .. } => "partition",
        }
    }
}

/// A dispatcher of one of the three kinds.
#[derive(Debug)]
pub enum Dispatcher<T> {
    /// See [`DemandDispatcher`].
    Demand(DemandDispatcher),
    /// See [`BroadcastDispatcher`].
    Broadcast(BroadcastDispatcher<T>),
    /// See [`PartitionDispatcher`].
    Partition(PartitionDispatcher<T>),
}

impl<T: Clone> Dispatcher<T> {
    /// Builds the dispatcher a spec describes.
    pub fn new(spec: DispatcherSpec<T>) -> Self {
        match spec {
            DispatcherSpec::Demand {
                max_demand,
                shuffle_seed,
            } => Dispatcher::Demand(DemandDispatcher::new(max_demand, shuffle_seed)),
            DispatcherSpec::Broadcast => Dispatcher::Broadcast(BroadcastDispatcher::new()),
            DispatcherSpec::Partition {
                partitions,
                hash,
                on_missing,
            } => Dispatcher::Partition(PartitionDispatcher::new(partitions, hash, on_missing)),
        }
    }

    /// Registers a subscription; returns new upstream demand or why it is refused.
    pub fn subscribe(
        &mut self,
        sub: SubRef,
        consumer: StageId,
        partition: Option<u32>,
        selector: Option<Selector<T>>,
    ) -> Result<u64, Rejection> {
        match self {
            Dispatcher::Demand(_) | Dispatcher::Partition(_) if selector.is_some() => {
                Err(Rejection::SelectorNotBroadcast)
            }
            Dispatcher::Demand(_) | Dispatcher::Broadcast(_) if partition.is_some() => {
                Err(Rejection::PartitionNotPartitioned)
            }
            Dispatcher::Demand(d) => Ok(d.subscribe(sub)),
            Dispatcher::Broadcast(d) => d.subscribe(sub, consumer, selector),
            Dispatcher::Partition(d) => d.subscribe(sub, partition),
        }
    }

    /// Adds `n` to a subscription's demand; returns new upstream demand.
    pub fn ask<I>(&mut self, sub: SubRef, n: u64, sink: &mut Sink<'_, I, T>) -> u64 {
        match self {
            Dispatcher::Demand(d) => d.ask(sub, n),
            Dispatcher::Broadcast(d) => d.ask(sub, n),
            Dispatcher::Partition(d) => d.ask(sub, n, sink),
        }
    }

    /// Removes a subscription; returns new upstream demand.
    pub fn cancel<I>(&mut self, sub: SubRef, sink: &mut Sink<'_, I, T>) -> u64 {
        match self {
            Dispatcher::Demand(d) => d.cancel(sub),
            Dispatcher::Broadcast(d) => d.cancel(sub),
            Dispatcher::Partition(d) => d.cancel(sub, sink),
        }
    }

    /// Takes events from the front of `src` as demand allows and sends them; returns how
    /// many events were taken from `src`.
    pub fn dispatch<I>(&mut self, src: &mut VecDeque<T>, sink: &mut Sink<'_, I, T>) -> u64 {
        match self {
            Dispatcher::Demand(d) => d.dispatch(src, sink),
            Dispatcher::Broadcast(d) => d.dispatch(src, sink),
            Dispatcher::Partition(d) => d.dispatch(src, sink),
        }
    }

    /// Sends all of `events` at once if one consumer's demand takes them (demand
    /// dispatcher only, the usual case of a batch made for demand): no queue to take them
    /// from. Gives them back otherwise, for [`dispatch`](Self::dispatch).
    #[inline]
    pub fn dispatch_whole<I>(
        &mut self,
        events: Vec<T>,
        sink: &mut Sink<'_, I, T>,
    ) -> Result<(), Vec<T>> {
        match self {
            Dispatcher::Demand(d) => d.dispatch_whole(events, sink),
            _ => Err(events),
        }
    }

    /// `true` when the dispatcher would take at least one more event now.
    pub fn can_take(&self) -> bool {
        match self {
            Dispatcher::Demand(d) => d.can_take(),
            Dispatcher::Broadcast(d) => d.can_take(),
            Dispatcher::Partition(d) => d.can_take(),
        }
    }

    /// Events held inside the dispatcher (partition queues).
    pub fn queued(&self) -> u64 {
        match self {
            Dispatcher::Partition(d) => d.queued(),
            _ => 0,
        }
    }

    /// [`outstanding`](Self::outstanding), knowing the subscription's partition (which
    /// saves the partition dispatcher a search).
    pub fn outstanding_at(&self, sub: SubRef, partition: Option<u32>) -> Option<u64> {
        match (self, partition) {
            (Dispatcher::Partition(d), Some(p)) => d.outstanding_in(sub, p),
            _ => self.outstanding(sub),
        }
    }

    /// Events waiting in partition `p`'s queue (partition dispatcher only).
    pub fn queued_in(&self, p: u32) -> u64 {
        match self {
            Dispatcher::Partition(d) => d.queued_in(p),
            _ => 0,
        }
    }

    /// Discards everything held inside the dispatcher (the stage is going away).
    pub fn discard_all<I>(&mut self, sink: &mut Sink<'_, I, T>) {
        if let Dispatcher::Partition(d) = self {
            d.discard_all(sink);
        }
    }

    /// The outstanding demand of one subscription, if it is registered.
    pub fn outstanding(&self, sub: SubRef) -> Option<u64> {
        match self {
            Dispatcher::Demand(d) => d.outstanding(sub),
            Dispatcher::Broadcast(d) => d.outstanding(sub),
            Dispatcher::Partition(d) => d.outstanding(sub),
        }
    }

    /// Asks larger than the expected `max_demand` (demand dispatcher only).
    pub fn oversized_asks(&self) -> u64 {
        match self {
            Dispatcher::Demand(d) => d.oversized_asks(),
            _ => 0,
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers shared by the dispatcher tests.
    use super::*;
    use crate::observe::NoObserver;

    pub fn sub(link: u32) -> SubRef {
        SubRef::first(link)
    }

    /// Runs `f` with a sink and returns the batches it sent, as `(link, events)`.
    pub fn sent<T>(f: impl FnOnce(&mut Sink<'_, (), T>)) -> Vec<(u32, Vec<T>)> {
        let mut out = Vec::new();
        let mut obs = NoObserver;
        let mut sink = Sink::new(&mut out, &mut obs);
        f(&mut sink);
        out.into_iter()
            .filter_map(|o| match o {
                Outgoing::Down(Downstream::Events { sub, batch }) => Some((sub.link, batch)),
                _ => None,
            })
            .collect()
    }
}
