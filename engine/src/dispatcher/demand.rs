//! The demand dispatcher: each batch goes to the consumer with the biggest outstanding
//! demand, as many events as it asked for, then to the next.
//!
//! Consumers are kept ordered by outstanding demand, largest first; ties keep the order in
//! which their asks arrived (a consumer re-enters after the others with equal demand).
//! Demand a cancelled consumer had already caused upstream is remembered as `pending` and
//! netted against later asks, as in GenStage.

use std::collections::VecDeque;

use super::Sink;
use crate::hash::SplitMix64;
use crate::protocol::SubRef;

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct DemandDispatcher {
    /// `(outstanding, subscription)`, sorted by outstanding, descending, stable.
    demands: Vec<(u64, SubRef)>,
    pending: u64,
    max_demand: Option<u64>,
    shuffle_seed: Option<u64>,
    oversized: u64,
}

impl DemandDispatcher {
    /// A dispatcher expecting `max_demand` (or learning it from the first ask), optionally
    /// shuffling its consumers once before the first dispatch.
    pub fn new(max_demand: Option<u64>, shuffle_seed: Option<u64>) -> Self {
        DemandDispatcher {
            demands: Vec::new(),
            pending: 0,
            max_demand,
            shuffle_seed,
            oversized: 0,
        }
    }

    /// Registers a subscription with no demand yet.
    pub fn subscribe(&mut self, sub: SubRef) -> u64 {
        self.demands.push((0, sub));
        0
    }

    /// Removes a subscription; its outstanding demand becomes `pending`.
    pub fn cancel(&mut self, sub: SubRef) -> u64 {
        if let Some(i) = self.position(sub) {
            let (current, _) = self.demands.remove(i);
            self.pending += current;
        }
        0
    }

    /// Adds demand; returns the upstream demand after netting against `pending`.
    pub fn ask(&mut self, sub: SubRef, n: u64) -> u64 {
        let Some(i) = self.position(sub) else {
            return 0;
        };
        let max = *self.max_demand.get_or_insert(n);
        if n > max {
            self.oversized += 1;
        }
        if n == 0 {
            // Re-enters after the others with equal demand.
            let (current, _) = self.demands.remove(i);
            self.insert(current, sub);
        } else {
            // More demand moves it only forward: before the first consumer with less
            // (every consumer behind it has at most its old demand), after the ones with
            // as much, which is where remove + sorted insert would put it, without
            // shifting the whole list twice.
            let counter = self.demands[i].0 + n;
            self.demands[i].0 = counter;
            let to = self.demands[..i]
                .iter()
                .position(|&(c, _)| counter > c)
                .unwrap_or(i);
            if to < i {
                self.demands[to..=i].rotate_right(1);
            }
        }
        let already_sent = self.pending.min(n);
        self.pending -= already_sent;
        n - already_sent
    }

    /// Sends events from the front of `src` to the biggest demands.
    pub fn dispatch<I, T>(&mut self, src: &mut VecDeque<T>, sink: &mut Sink<'_, I, T>) -> u64 {
        if let Some(seed) = self.shuffle_seed.take() {
            let mut rng = SplitMix64::new(seed);
            for i in (1..self.demands.len()).rev() {
                let j = rng.below(i as u64 + 1) as usize;
                self.demands.swap(i, j);
            }
            // The shuffle only reorders consumers of equal demand: the list stays sorted
            // by demand, biggest first (a stable sort keeps the shuffled order of ties).
            self.demands.sort_by_key(|&(c, _)| std::cmp::Reverse(c));
        }
        let mut taken = 0;
        while !src.is_empty() {
            let Some(&(counter, sub)) = self.demands.first() else {
                break;
            };
            if counter == 0 {
                break;
            }
            let k = counter.min(src.len() as u64);
            let batch = if k as usize == src.len() {
                Vec::from(std::mem::take(src))
            } else {
                src.drain(..k as usize).collect()
            };
            sink.send(sub, batch);
            self.served_head(counter - k);
            taken += k;
        }
        taken
    }

    /// Sends all of `events` to the consumer with the biggest demand if it asked for at
    /// least as many (the usual case: a batch made for demand); else gives them back.
    #[inline]
    pub fn dispatch_whole<I, T>(
        &mut self,
        events: Vec<T>,
        sink: &mut Sink<'_, I, T>,
    ) -> Result<(), Vec<T>> {
        let k = events.len() as u64;
        match self.demands.first() {
            Some(&(counter, sub)) if self.shuffle_seed.is_none() && counter >= k && k > 0 => {
                sink.send(sub, events);
                self.served_head(counter - k);
                Ok(())
            }
            _ => Err(events),
        }
    }

    /// The head consumer was served and has `left` demand: re-places it after every
    /// consumer with at least as much (what remove + sorted insert would do), by rotating
    /// it into place.
    #[inline]
    fn served_head(&mut self, left: u64) {
        self.demands[0].0 = left;
        if self.demands.len() > 1 {
            let to = self.demands[1..]
                .iter()
                .position(|&(c, _)| left > c)
                .map_or(self.demands.len(), |i| i + 1);
            self.demands[..to].rotate_left(1);
        }
    }

    /// `true` if some consumer has demand.
    pub fn can_take(&self) -> bool {
        self.demands.first().is_some_and(|&(c, _)| c > 0)
    }

    /// Outstanding demand of `sub`.
    pub fn outstanding(&self, sub: SubRef) -> Option<u64> {
        self.position(sub).map(|i| self.demands[i].0)
    }

    /// Asks that exceeded the expected `max_demand`.
    pub fn oversized_asks(&self) -> u64 {
        self.oversized
    }

    /// Demand already sent upstream for consumers that went away.
    pub fn pending(&self) -> u64 {
        self.pending
    }

    fn position(&self, sub: SubRef) -> Option<usize> {
        self.demands.iter().position(|&(_, s)| s == sub)
    }

    fn insert(&mut self, counter: u64, sub: SubRef) {
        let at = self
            .demands
            .iter()
            .position(|&(c, _)| counter > c)
            .unwrap_or(self.demands.len());
        self.demands.insert(at, (counter, sub));
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{sent, sub};
    use super::*;

    fn with_asks(asks: &[u64]) -> DemandDispatcher {
        let mut d = DemandDispatcher::new(None, None);
        for (i, _) in asks.iter().enumerate() {
            d.subscribe(sub(i as u32));
        }
        for (i, &n) in asks.iter().enumerate() {
            d.ask(sub(i as u32), n);
        }
        d
    }

    #[test]
    fn demand_dispatch_fills_largest_demand_first() {
        // Three consumers that each asked 10, events [1,2,3,4] → all four to the first.
        let mut d = with_asks(&[10, 10, 10]);
        let mut src = VecDeque::from(vec![1, 2, 3, 4]);
        let batches = sent(|s| {
            d.dispatch(&mut src, s);
        });
        assert_eq!(batches, [(0, vec![1, 2, 3, 4])]);
        assert!(src.is_empty());
    }

    #[test]
    fn demand_dispatch_ties_in_ask_order_and_leftover_buffered() {
        // Asks of 1,1,1 → [1], [2], [3] and 4 stays for the buffer.
        let mut d = with_asks(&[1, 1, 1]);
        let mut src = VecDeque::from(vec![1, 2, 3, 4]);
        let batches = sent(|s| {
            assert_eq!(d.dispatch(&mut src, s), 3);
        });
        assert_eq!(batches, [(0, vec![1]), (1, vec![2]), (2, vec![3])]);
        assert_eq!(src, [4]);
        assert!(!d.can_take());
    }

    #[test]
    fn demand_dispatch_biggest_then_next() {
        // Asks of 1,2,3 → [1,2,3] to the third, [4] to the second.
        let mut d = with_asks(&[1, 2, 3]);
        let mut src = VecDeque::from(vec![1, 2, 3, 4]);
        let batches = sent(|s| {
            d.dispatch(&mut src, s);
        });
        assert_eq!(batches, [(2, vec![1, 2, 3]), (1, vec![4])]);
        assert_eq!(d.outstanding(sub(0)), Some(1));
        assert_eq!(d.outstanding(sub(1)), Some(1));
        assert_eq!(d.outstanding(sub(2)), Some(0));
    }

    #[test]
    fn demand_cancel_keeps_pending_and_nets_later_asks() {
        let mut d = with_asks(&[10, 10]);
        assert_eq!(d.cancel(sub(0)), 0);
        assert_eq!(d.pending(), 10);
        // The next asks are netted: 4 → nothing upstream, then 8 → 2 upstream.
        assert_eq!(d.ask(sub(1), 4), 0);
        assert_eq!(d.ask(sub(1), 8), 2);
        assert_eq!(d.pending(), 0);
        assert_eq!(d.outstanding(sub(1)), Some(22));
    }

    /// The order GenStage keeps: remove the consumer, add its demand, insert it after
    /// every consumer with at least as much.
    fn reference_ask(demands: &mut Vec<(u64, SubRef)>, s: SubRef, n: u64) {
        let i = demands
            .iter()
            .position(|&(_, x)| x == s)
            .expect("subscribed");
        let (c, _) = demands.remove(i);
        let at = demands
            .iter()
            .position(|&(d, _)| c + n > d)
            .unwrap_or(demands.len());
        demands.insert(at, (c + n, s));
    }

    #[test]
    fn demand_asks_and_whole_batches_keep_the_order_of_remove_and_sorted_insert() {
        let mut rng = SplitMix64::new(11);
        for round in 0..400 {
            let k = 1 + rng.below(5) as u32;
            let mut d = DemandDispatcher::new(None, None);
            let mut model = Vec::new();
            for i in 0..k {
                d.subscribe(sub(i));
                model.push((0, sub(i)));
            }
            for _ in 0..40 {
                let s = sub(rng.below(u64::from(k)) as u32);
                if rng.below(3) == 0 {
                    // A batch of up to 6 events: whole to the biggest demand if it fits,
                    // else the queue path; both must leave the same order.
                    let len = 1 + rng.below(6) as usize;
                    let events: Vec<u64> = (0..len as u64).collect();
                    let mut queued = d.clone();
                    let mut q = VecDeque::from(events.clone());
                    let by_queue = sent(|sk| {
                        queued.dispatch(&mut q, sk);
                    });
                    let mut whole = None;
                    let by_whole = sent(|sk| whole = Some(d.dispatch_whole(events, sk)));
                    match whole.expect("ran") {
                        Ok(()) => {
                            assert!(q.is_empty(), "round {round}: whole but not by queue");
                            assert_eq!(by_whole, by_queue, "round {round}");
                            assert_eq!(d.demands, queued.demands, "round {round}");
                        }
                        Err(back) => {
                            assert!(by_whole.is_empty());
                            assert_eq!(back.len(), len);
                            assert!(!q.is_empty() || by_queue.len() > 1, "round {round}");
                            d = queued;
                        }
                    }
                    model.clone_from(&d.demands);
                } else {
                    let n = rng.below(4);
                    d.ask(s, n);
                    reference_ask(&mut model, s, n);
                    assert_eq!(d.demands, model, "round {round}: ask {n} on {s:?}");
                }
            }
        }
    }

    #[test]
    fn demand_first_ask_fixes_max_and_larger_asks_are_counted() {
        let mut d = with_asks(&[10]);
        d.subscribe(sub(1));
        assert_eq!(d.ask(sub(1), 20), 20);
        assert_eq!(d.oversized_asks(), 1);
    }

    #[test]
    fn demand_shuffle_on_first_dispatch_is_seeded() {
        let order = |seed| {
            let mut d = DemandDispatcher::new(None, Some(seed));
            for i in 0..8 {
                d.subscribe(sub(i));
                d.ask(sub(i), 1);
            }
            let mut src = VecDeque::from((0..8).collect::<Vec<u64>>());
            sent(|s| {
                d.dispatch(&mut src, s);
            })
            .into_iter()
            .map(|(l, _)| l)
            .collect::<Vec<_>>()
        };
        assert_eq!(order(7), order(7));
        assert_ne!(
            order(7),
            (0..8).collect::<Vec<_>>(),
            "seed 7 keeps identity order"
        );
        let mut sorted = order(7);
        sorted.sort_unstable();
        assert_eq!(sorted, (0..8).collect::<Vec<_>>());
    }
}
