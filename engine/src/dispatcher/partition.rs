//! The partition dispatcher: each event goes to the one partition its hash names.
//!
//! Dispatch walks the offered events while the total demand asked upstream and not yet
//! used (`waiting`) is positive. Each event goes to its partition; an event its hash drops
//! uses no demand (its producer asks its source for as many again). Events beyond a partition's own demand wait in that partition's queue,
//! which is served first on its next ask. Cancelling a partition's subscriber discards its
//! queue (counted as lost) and asks upstream for as many events. A partition nobody holds
//! keeps its demand or queue for the next subscriber, as in GenStage.

use std::collections::VecDeque;

use super::{OnMissing, PartitionFn, Sink};
use crate::observe::{DropCause, LostCause};
use crate::protocol::{Rejection, SubRef};

#[derive(Debug)]
struct Part<T> {
    holder: Option<SubRef>,
    /// A subscriber held it and left; no new one has come.
    left: bool,
    demand: u64,
    queue: VecDeque<T>,
    staged: Vec<T>,
}

/// See the module documentation.
#[derive(Debug)]
pub struct PartitionDispatcher<T> {
    parts: Vec<Part<T>>,
    hash: PartitionFn<T>,
    waiting: u64,
    pending: u64,
    on_missing: OnMissing,
}

impl<T> PartitionDispatcher<T> {
    /// `partitions` partitions named `0..partitions`, routed by `hash`.
    pub fn new(partitions: u32, hash: PartitionFn<T>, on_missing: OnMissing) -> Self {
        PartitionDispatcher {
            parts: (0..partitions)
                .map(|_| Part {
                    holder: None,
                    left: false,
                    demand: 0,
                    queue: VecDeque::new(),
                    staged: Vec::new(),
                })
                .collect(),
            hash,
            waiting: 0,
            pending: 0,
            on_missing,
        }
    }

    /// Takes the named partition for `sub`.
    pub fn subscribe(&mut self, sub: SubRef, partition: Option<u32>) -> Result<u64, Rejection> {
        let partitions = self.parts.len() as u32;
        let p = partition.ok_or(Rejection::PartitionMissing)?;
        let part = self
            .parts
            .get_mut(p as usize)
            .ok_or(Rejection::PartitionOutOfRange {
                partition: p,
                partitions,
            })?;
        if part.holder.is_some() {
            return Err(Rejection::PartitionTaken { partition: p });
        }
        part.holder = Some(sub);
        part.left = false;
        Ok(0)
    }

    /// Serves the partition's queue first, then keeps the rest as its demand; returns the
    /// upstream demand after netting against `pending`.
    pub fn ask<I>(&mut self, sub: SubRef, n: u64, sink: &mut Sink<'_, I, T>) -> u64 {
        let Some(part) = self.parts.iter_mut().find(|p| p.holder == Some(sub)) else {
            return 0;
        };
        if part.queue.is_empty() {
            part.demand += n;
        } else {
            let k = n.min(part.queue.len() as u64) as usize;
            let batch: Vec<T> = part.queue.drain(..k).collect();
            sink.send(sub, batch);
            part.demand = n - k as u64;
        }
        let already_sent = self.pending.min(n);
        self.pending -= already_sent;
        let up = n - already_sent;
        self.waiting += up;
        up
    }

    /// Frees the partition; a non-empty queue is discarded and asked for again upstream.
    pub fn cancel<I>(&mut self, sub: SubRef, sink: &mut Sink<'_, I, T>) -> u64 {
        let Some(part) = self.parts.iter_mut().find(|p| p.holder == Some(sub)) else {
            return 0;
        };
        part.holder = None;
        part.left = true;
        if part.queue.is_empty() {
            self.pending += std::mem::take(&mut part.demand);
            0
        } else {
            let discarded: Vec<T> = part.queue.drain(..).collect();
            sink.lose(LostCause::PartitionCancelled, &discarded);
            let n = discarded.len() as u64;
            part.demand = 0;
            self.waiting += n;
            n
        }
    }

    /// Routes events from the front of `src` while `waiting` lasts; returns how many it
    /// took. Events for a partition whose subscriber left are lost with
    /// `OnMissing::Drop`, and the producer asks its source for as many again.
    pub fn dispatch<I>(&mut self, src: &mut VecDeque<T>, sink: &mut Sink<'_, I, T>) -> u64 {
        let mut taken = 0u64;
        let mut dropped = Vec::new();
        let n = self.parts.len();
        // In chunks of at most `waiting` events from the front: each routed event uses one
        // unit of demand and a dropped one none, so a chunk never routes more than the
        // demand left, and the loop stops as soon as it is used up (as one event at a time
        // would).
        while self.waiting > 0 && !src.is_empty() {
            let k = usize::try_from(self.waiting)
                .unwrap_or(usize::MAX)
                .min(src.len());
            taken += k as u64;
            for e in src.drain(..k) {
                match self.hash.call(&e) {
                    Some(p) if (p as usize) < n => {
                        self.parts[p as usize].staged.push(e);
                        self.waiting -= 1;
                    }
                    _ => dropped.push(e),
                }
            }
        }
        sink.drop_events(DropCause::Hash, &dropped);
        for part in &mut self.parts {
            if part.staged.is_empty() {
                continue;
            }
            if part.left && self.on_missing == OnMissing::Drop {
                // Lost, and asked for again: the demand they used goes back.
                sink.lose(LostCause::PartitionCancelled, &part.staged);
                let n = part.staged.len() as u64;
                part.staged.clear();
                self.waiting += n;
                sink.resupply += n;
                continue;
            }
            if !part.queue.is_empty() || part.holder.is_none() {
                part.queue.extend(part.staged.drain(..));
                continue;
            }
            let k = part.demand.min(part.staged.len() as u64) as usize;
            part.demand -= k as u64;
            part.queue.extend(part.staged.drain(k..));
            if let Some(sub) = part.holder {
                // The batch leaves with its buffer; the next one is likely as big, so it
                // starts at this size instead of growing by doubling from nothing.
                let cap = part.staged.len();
                let batch = std::mem::replace(&mut part.staged, Vec::with_capacity(cap));
                sink.send(sub, batch);
            }
        }
        taken
    }

    /// `true` while upstream demand is left to route events with.
    pub fn can_take(&self) -> bool {
        self.waiting > 0
    }

    /// Events waiting in partition queues.
    pub fn queued(&self) -> u64 {
        self.parts.iter().map(|p| p.queue.len() as u64).sum()
    }

    /// Events waiting in partition `p`'s queue.
    pub fn queued_in(&self, p: u32) -> u64 {
        self.parts
            .get(p as usize)
            .map_or(0, |x| x.queue.len() as u64)
    }

    /// Discards every queue (the producer is going away).
    pub fn discard_all<I>(&mut self, sink: &mut Sink<'_, I, T>) {
        for part in &mut self.parts {
            let discarded: Vec<T> = part.queue.drain(..).collect();
            sink.lose(LostCause::StageDown, &discarded);
        }
    }

    /// Outstanding demand of partition `p`, if `sub` holds it.
    pub fn outstanding_in(&self, sub: SubRef, p: u32) -> Option<u64> {
        self.parts
            .get(p as usize)
            .filter(|x| x.holder == Some(sub))
            .map(|x| x.demand)
    }

    /// Outstanding demand of `sub`'s partition.
    pub fn outstanding(&self, sub: SubRef) -> Option<u64> {
        self.parts
            .iter()
            .find(|p| p.holder == Some(sub))
            .map(|p| p.demand)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{sent, sub};
    use super::*;

    fn rem3() -> PartitionDispatcher<u64> {
        PartitionDispatcher::new(
            3,
            PartitionFn::new(|e: &u64| Some((e % 3) as u32)),
            OnMissing::Hold,
        )
    }

    #[test]
    fn partition_routes_by_hash() {
        // hash e % 3, each partition asking 10: 1..=6 → p0 [3,6], p1 [1,4], p2 [2,5].
        let mut d = rem3();
        let mut ups = 0;
        let batches = sent(|s| {
            for p in 0..3 {
                d.subscribe(sub(p), Some(p)).expect("subscribe");
                ups += d.ask(sub(p), 10, s);
            }
            d.dispatch(&mut VecDeque::from((1..=6).collect::<Vec<u64>>()), s);
        });
        assert_eq!(ups, 30);
        assert_eq!(batches, [(0, vec![3, 6]), (1, vec![1, 4]), (2, vec![2, 5])]);
    }

    #[test]
    fn partition_events_beyond_demand_wait_in_queue() {
        let mut d = rem3();
        let batches = sent(|s| {
            for p in 0..3 {
                d.subscribe(sub(p), Some(p)).expect("subscribe");
            }
            d.ask(sub(0), 1, s);
            d.ask(sub(1), 5, s);
            // 0, 3, 6 hash to p0 which asked 1: 3 and 6 wait in its queue.
            d.dispatch(&mut VecDeque::from(vec![0, 3, 6]), s);
        });
        assert_eq!(batches, [(0, vec![0])]);
        assert_eq!(d.queued(), 2);
        // The next ask of p0 is served from its queue first.
        let batches = sent(|s| {
            d.ask(sub(0), 1, s);
        });
        assert_eq!(batches, [(0, vec![3])]);
    }

    #[test]
    fn partition_walk_stops_when_demand_used_up() {
        let mut d = rem3();
        let mut src = VecDeque::from(vec![1, 2, 3, 4]);
        sent(|s| {
            for p in 0..3 {
                d.subscribe(sub(p), Some(p)).expect("subscribe");
            }
            d.ask(sub(0), 2, s);
            assert_eq!(d.dispatch(&mut src, s), 2);
        });
        assert_eq!(src, [3, 4], "the rest goes back to the producer buffer");
    }

    #[test]
    fn partition_hash_drop_uses_no_demand() {
        let mut d = PartitionDispatcher::new(
            2,
            PartitionFn::new(|e: &u64| Some((e % 3) as u32)),
            OnMissing::Hold,
        );
        let mut out = Vec::new();
        let mut obs = crate::observe::NoObserver;
        let mut s: Sink<'_, (), u64> = Sink::new(&mut out, &mut obs);
        d.subscribe(sub(0), Some(0)).expect("subscribe");
        d.subscribe(sub(1), Some(1)).expect("subscribe");
        d.ask(sub(0), 2, &mut s);
        let mut src = VecDeque::from(vec![2, 5, 0, 3]);
        assert_eq!(d.dispatch(&mut src, &mut s), 4);
        assert_eq!(s.dropped, 2);
        assert_eq!(s.sent, 2);
    }

    #[test]
    fn partition_cancel_discards_queue_and_reasks() {
        let mut d = rem3();
        let mut out = Vec::new();
        let mut obs = crate::observe::NoObserver;
        let mut s: Sink<'_, (), u64> = Sink::new(&mut out, &mut obs);
        for p in 0..3 {
            d.subscribe(sub(p), Some(p)).expect("subscribe");
        }
        d.ask(sub(1), 3, &mut s);
        d.dispatch(&mut VecDeque::from(vec![0, 3, 6]), &mut s);
        assert_eq!(d.queued(), 3);
        assert_eq!(d.cancel(sub(0), &mut s), 3);
        assert_eq!(s.lost, 3);
        assert_eq!(d.queued(), 0);
        assert!(d.can_take());
    }

    #[test]
    fn partition_subscription_errors() {
        let mut d = rem3();
        assert_eq!(d.subscribe(sub(0), None), Err(Rejection::PartitionMissing));
        assert_eq!(
            d.subscribe(sub(0), Some(3)),
            Err(Rejection::PartitionOutOfRange {
                partition: 3,
                partitions: 3
            })
        );
        d.subscribe(sub(0), Some(1)).expect("subscribe");
        assert_eq!(
            d.subscribe(sub(1), Some(1)),
            Err(Rejection::PartitionTaken { partition: 1 })
        );
    }

    #[test]
    fn partition_cancel_without_queue_keeps_demand_pending() {
        let mut d = rem3();
        let mut out = Vec::new();
        let mut obs = crate::observe::NoObserver;
        let mut s: Sink<'_, (), u64> = Sink::new(&mut out, &mut obs);
        d.subscribe(sub(0), Some(0)).expect("subscribe");
        assert_eq!(d.ask(sub(0), 10, &mut s), 10);
        assert_eq!(d.cancel(sub(0), &mut s), 0);
        d.subscribe(sub(1), Some(0)).expect("subscribe");
        assert_eq!(d.ask(sub(1), 10, &mut s), 0, "netted against pending");
    }
}
