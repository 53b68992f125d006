//! Consumer-side demand accounting: the automatic ask algorithm and the pool's rule.
//!
//! Pure arithmetic on counters; the stage core calls it once per chunk. Nothing here sends
//! a message: it only says how big the chunks are and what to ask after each one.

use crate::opts::Demand;

/// The automatic consumer's state for one subscription (`SEMANTICS.md`, "ask algorithm").
///
/// ```
/// use flowbench_engine::{AutoAsk, Demand};
/// // max 100, min 20, batches of 100 then 80: chunk 80 → ask 80; chunk 20 → none; chunk 80 → ask 100.
/// let d = Demand::new(100, Some(20)).unwrap();
/// let (mut a, first) = AutoAsk::subscribe(d);
/// assert_eq!(first, 100);
/// let asks: Vec<_> = [100u64, 80]
///     .iter()
///     .flat_map(|&len| AutoAsk::chunks(d, len))
///     .map(|chunk| (chunk, a.after_chunk(chunk)))
///     .collect();
/// assert_eq!(asks, [(80, Some(80)), (20, None), (80, Some(100))]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AutoAsk {
    demand: Demand,
    pending: u64,
    excess: u64,
}

impl AutoAsk {
    /// A new subscription asks `max_demand` at once; returns the state and that ask.
    pub fn subscribe(demand: Demand) -> (Self, u64) {
        (
            AutoAsk {
                demand,
                pending: demand.max(),
                excess: 0,
            },
            demand.max(),
        )
    }

    /// The bounds this subscription runs with.
    pub fn demand(&self) -> Demand {
        self.demand
    }

    /// Events asked for and not yet received.
    pub fn pending(&self) -> u64 {
        self.pending
    }

    /// Events received beyond what was asked for (delivered anyway, counted here).
    pub fn excess(&self) -> u64 {
        self.excess
    }

    /// The chunk lengths a batch of `len` events is cut into: `max - min` from the start of
    /// the batch, the last one possibly shorter.
    pub fn chunks(demand: Demand, len: u64) -> impl Iterator<Item = u64> {
        let size = demand.chunk();
        let mut left = len;
        std::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            let b = left.min(size);
            left -= b;
            Some(b)
        })
    }

    /// Accounts for a chunk of `b` events and returns the ask to send once the chunk has
    /// been handled, if any.
    pub fn after_chunk(&mut self, b: u64) -> Option<u64> {
        if b > self.pending {
            self.excess += b - self.pending;
        }
        self.pending = self.pending.saturating_sub(b);
        if self.pending <= self.demand.min() {
            let ask = self.demand.max() - self.pending;
            self.pending = self.demand.max();
            Some(ask)
        } else {
            None
        }
    }

    /// Changes the bounds of a live subscription. Returns the ask to send now, if the
    /// events still pending are at or below the new `min_demand` (the consumer tops its
    /// demand up to the new `max_demand`, as it would after a chunk).
    ///
    /// ```
    /// use flowbench_engine::{AutoAsk, Demand};
    /// let (mut a, _) = AutoAsk::subscribe(Demand::new(10, Some(5)).unwrap());
    /// assert_eq!(a.after_chunk(4), None);            // pending 6 > min 5
    /// assert_eq!(a.retune(Demand::new(100, Some(50)).unwrap()), Some(94));
    /// assert_eq!(a.pending(), 100);
    /// assert_eq!(a.retune(Demand::new(2, Some(1)).unwrap()), None); // 100 still pending
    /// ```
    pub fn retune(&mut self, demand: Demand) -> Option<u64> {
        self.demand = demand;
        if self.pending <= demand.min() && demand.max() > self.pending {
            let ask = demand.max() - self.pending;
            self.pending = demand.max();
            Some(ask)
        } else {
            None
        }
    }

    /// Changes the bounds of a manual subscription (it asks on its own; nothing is sent).
    pub fn set_bounds(&mut self, demand: Demand) {
        self.demand = demand;
    }

    /// Accounts for events received on a manual subscription (no ask follows).
    pub fn received_manual(&mut self, b: u64) {
        if b > self.pending {
            self.excess += b - self.pending;
        }
        self.pending = self.pending.saturating_sub(b);
    }

    /// Accounts for an explicit ask on a manual subscription.
    pub fn asked_manual(&mut self, n: u64) {
        self.pending += n;
    }

    /// A manual subscription starts with nothing asked.
    pub fn manual(demand: Demand) -> Self {
        AutoAsk {
            demand,
            pending: 0,
            excess: 0,
        }
    }
}

/// A consumer pool's state for one subscription: it counts finished jobs and asks for
/// that many once the count reaches `max(min_demand, 1)`.
///
/// ```
/// use flowbench_engine::{PoolAsk, Demand};
/// let (mut p, first) = PoolAsk::subscribe(Demand::new(4, Some(2)).unwrap());
/// assert_eq!(first, 4);
/// assert_eq!(p.job_done(), None);
/// assert_eq!(p.job_done(), Some(2));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolAsk {
    demand: Demand,
    done: u64,
    pending: u64,
    excess: u64,
}

impl PoolAsk {
    /// A new subscription asks `max_demand` at once.
    pub fn subscribe(demand: Demand) -> (Self, u64) {
        (
            PoolAsk {
                demand,
                done: 0,
                pending: demand.max(),
                excess: 0,
            },
            demand.max(),
        )
    }

    /// The bounds this subscription runs with.
    pub fn demand(&self) -> Demand {
        self.demand
    }

    /// Events asked for and not yet received.
    pub fn pending(&self) -> u64 {
        self.pending
    }

    /// Events received beyond what was asked for.
    pub fn excess(&self) -> u64 {
        self.excess
    }

    /// Changes the bounds of a live subscription: later asks follow the new
    /// `min_demand`; what is pending is kept.
    pub fn retune(&mut self, demand: Demand) {
        self.demand = demand;
    }

    /// Accounts for `b` events arriving (each becomes a job).
    pub fn received(&mut self, b: u64) {
        if b > self.pending {
            self.excess += b - self.pending;
        }
        self.pending = self.pending.saturating_sub(b);
    }

    /// One job finished; returns the ask to send, if the count reached the threshold.
    pub fn job_done(&mut self) -> Option<u64> {
        self.done += 1;
        if self.done >= self.demand.min().max(1) {
            let ask = self.done;
            self.done = 0;
            self.pending += ask;
            Some(ask)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demand(max: u64, min: u64) -> Demand {
        Demand::new(max, Some(min)).expect("valid demand")
    }

    fn run(d: Demand, batches: &[u64]) -> (Vec<u64>, Vec<u64>) {
        let (mut a, first) = AutoAsk::subscribe(d);
        let mut asks = vec![first];
        let mut chunks = vec![];
        for &len in batches {
            for b in AutoAsk::chunks(d, len) {
                chunks.push(b);
                asks.extend(a.after_chunk(b));
            }
        }
        (asks, chunks)
    }

    #[test]
    fn demand_reasks_when_pending_reaches_min() {
        // max 10, min 5, producer of 1..=100 answering each ask in one batch.
        let d = demand(10, 5);
        let (mut a, first) = AutoAsk::subscribe(d);
        let mut asks = vec![first];
        let mut chunks = vec![];
        let mut left = 100u64;
        let mut queue = std::collections::VecDeque::from([first]);
        while let Some(n) = queue.pop_front() {
            let len = n.min(left);
            left -= len;
            for b in AutoAsk::chunks(d, len) {
                chunks.push(b);
                if let Some(ask) = a.after_chunk(b) {
                    asks.push(ask);
                    queue.push_back(ask);
                }
            }
            if left == 0 {
                break;
            }
        }
        assert_eq!(asks[0], 10);
        assert_eq!(&asks[1..21], &[5; 20]);
        assert!(chunks.iter().all(|&c| c == 5));
        assert_eq!(chunks.iter().sum::<u64>(), 100);
    }

    #[test]
    fn demand_no_ask_until_pending_at_most_min() {
        // max 1000, min 750, batches of 100: asks only after the 3rd batch, for 300.
        let (asks, chunks) = run(demand(1000, 750), &[100, 100, 100]);
        assert_eq!(asks, [1000, 300]);
        assert_eq!(chunks, [100, 100, 100]);
    }

    #[test]
    fn demand_chunks_counted_from_batch_start() {
        // max 100, min 20, batches of 100 then 80.
        let (asks, chunks) = run(demand(100, 20), &[100, 80]);
        assert_eq!(chunks, [80, 20, 80]);
        assert_eq!(asks, [100, 80, 100]);
    }

    #[test]
    fn demand_excess_is_counted_not_lost() {
        let d = demand(4, 1);
        let (mut a, _) = AutoAsk::subscribe(d);
        for b in AutoAsk::chunks(d, 7) {
            a.after_chunk(b);
        }
        // 3 + 3 + 1: the first chunk leaves pending 1 → ask 3, back to 4; then 3 → ask; 1 → none.
        assert_eq!(a.excess(), 0);
        let mut m = AutoAsk::manual(d);
        m.asked_manual(2);
        m.received_manual(5);
        assert_eq!(m.excess(), 3);
        assert_eq!(m.pending(), 0);
    }

    #[test]
    fn pool_asks_one_per_job_when_min_is_zero() {
        let (mut p, first) = PoolAsk::subscribe(demand(3, 0));
        assert_eq!(first, 3);
        p.received(3);
        assert_eq!(p.job_done(), Some(1));
        assert_eq!(p.job_done(), Some(1));
    }

    #[test]
    fn pool_asks_min_demand_after_min_demand_jobs() {
        let (mut p, _) = PoolAsk::subscribe(demand(10, 4));
        p.received(10);
        let asks: Vec<_> = (0..10).filter_map(|_| p.job_done()).collect();
        assert_eq!(asks, [4, 4]);
        assert_eq!(p.pending(), 8);
    }
}
