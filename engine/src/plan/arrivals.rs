//! Push arrivals: when events arrive at a push source, and when its schedule ends, the one
//! rule both runtimes use.
//!
//! The simulator turns each arrival into a timed event; the threads runtime waits for its
//! wall-clock time. When the schedule is exhausted the source is shut down (reason
//! `shutdown`), so the pipeline drains and the run ends; when the run's event limit is
//! reached nothing more arrives, and the producer's own limit stops it.

use std::ops::RangeInclusive;

use crate::scenario::model::{PushDef, ScriptBatch};

/// The arrival schedule of a push source: `(time ns, ids)` in time order.
///
/// The caller supplies uniform variates in `(0, 1]` (from its own seeded RNG), so the
/// schedule is as reproducible as the caller's randomness.
///
/// ```
/// use flowbench_engine::plan::Arrivals;
/// use flowbench_engine::scenario::model::PushDef;
/// let mut a = Arrivals::new(PushDef::Bursts { every_ns: 1000, size: 3, count: Some(2), first_id: 10 });
/// let mut u = || 0.5;
/// assert_eq!(a.next(&mut u), Some((0, 10..=12)));
/// assert_eq!(a.next(&mut u), Some((1000, 13..=15)));
/// assert_eq!(a.next(&mut u), None);
/// ```
#[derive(Clone, Debug)]
pub struct Arrivals {
    def: PushDef,
    t_ns: u64,
    next_id: u64,
    emitted: u64,
    index: u64,
    /// The ids ran out at `u64::MAX`: nothing more arrives.
    spent: bool,
}

impl Arrivals {
    /// The schedule of `def`, starting at time 0.
    pub fn new(def: PushDef) -> Self {
        let next_id = match &def {
            PushDef::Poisson { first_id, .. } | PushDef::Bursts { first_id, .. } => *first_id,
            PushDef::Script(_) => 0,
        };
        Arrivals {
            def,
            t_ns: 0,
            next_id,
            emitted: 0,
            index: 0,
            spent: false,
        }
    }

    /// The next arrival, or `None` when the source has no more.
    pub fn next(&mut self, uniform: &mut dyn FnMut() -> f64) -> Option<(u64, RangeInclusive<u64>)> {
        if self.spent {
            return None;
        }
        match &self.def {
            PushDef::Poisson {
                rate_per_s,
                batch,
                total,
                ..
            } => {
                let left = total.map_or(u64::MAX, |t| t.saturating_sub(self.emitted));
                let n = (*batch).min(left);
                if n == 0 {
                    return None;
                }
                // Batches arrive at rate / batch per second; gaps are exponential.
                let mean_gap_ns = 1e9 * *batch as f64 / rate_per_s;
                let gap = (-mean_gap_ns * uniform().ln()).round() as u64;
                self.t_ns = self.t_ns.saturating_add(gap);
                Some((self.t_ns, self.take(n)))
            }
            PushDef::Bursts {
                every_ns,
                size,
                count,
                ..
            } => {
                if count.is_some_and(|c| self.index >= c) {
                    return None;
                }
                let at = self.index.saturating_mul(*every_ns);
                self.index += 1;
                let size = *size;
                Some((at, self.take(size)))
            }
            PushDef::Script(batches) => {
                let b: &ScriptBatch = batches.get(self.index as usize)?;
                self.index += 1;
                Some((b.at_ns, b.first..=b.last))
            }
        }
    }

    /// The next `n` ids; at the top of the id space the range is cut at `u64::MAX` and
    /// the schedule ends there (validation refuses bounded sources whose ids do not fit).
    fn take(&mut self, n: u64) -> RangeInclusive<u64> {
        let first = self.next_id;
        let last = match first.checked_add(n - 1) {
            Some(last) if last < u64::MAX => last,
            _ => {
                self.spent = true;
                u64::MAX
            }
        };
        self.next_id = last.wrapping_add(1);
        self.emitted = self.emitted.saturating_add(last - first + 1);
        first..=last
    }
}

/// What comes next from a [`PushSchedule`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// These ids arrive at this time, ns from the start.
    At(u64, RangeInclusive<u64>),
    /// The schedule is exhausted: shut the source down.
    End,
    /// The run's event limit is reached: nothing more arrives (the producer's limit stops
    /// it).
    Limit,
}

/// A push source's arrivals under the run's event limit (`--events`).
///
/// ```
/// use flowbench_engine::plan::{Next, PushSchedule};
/// use flowbench_engine::scenario::model::PushDef;
/// let def = PushDef::Bursts { every_ns: 10, size: 2, count: Some(3), first_id: 1 };
/// let mut u = || 0.5;
/// let mut all = PushSchedule::new(def.clone(), None);
/// assert_eq!(all.next(&mut u), Next::At(0, 1..=2));
/// assert_eq!(all.next(&mut u), Next::At(10, 3..=4));
/// assert_eq!(all.next(&mut u), Next::At(20, 5..=6));
/// assert_eq!(all.next(&mut u), Next::End);
/// let mut some = PushSchedule::new(def, Some(3));
/// assert_eq!(some.next(&mut u), Next::At(0, 1..=2));
/// assert_eq!(some.next(&mut u), Next::At(10, 3..=4));
/// assert_eq!(some.next(&mut u), Next::Limit);
/// ```
#[derive(Clone, Debug)]
pub struct PushSchedule {
    arrivals: Arrivals,
    limit: Option<u64>,
    arrived: u64,
    /// The part of a large arrival not handed out yet (same time).
    rest: Option<(u64, RangeInclusive<u64>)>,
}

/// The most ids one arrival hands a source at once: a larger burst arrives as several
/// arrivals at the same instant, so memory stays bounded by what is really buffered.
pub const MAX_ARRIVAL: u64 = 1 << 16;

impl PushSchedule {
    /// The schedule of `def`, cut at `limit` events.
    pub fn new(def: PushDef, limit: Option<u64>) -> Self {
        PushSchedule {
            arrivals: Arrivals::new(def),
            limit,
            arrived: 0,
            rest: None,
        }
    }

    /// The next arrival, given uniform variates in `(0, 1]` from the runtime's seeded
    /// stream.
    pub fn next(&mut self, uniform: &mut dyn FnMut() -> f64) -> Next {
        if self.limit.is_some_and(|l| self.arrived >= l) {
            return Next::Limit;
        }
        let (t, ids) = match self.rest.take() {
            Some(rest) => rest,
            None => match self.arrivals.next(uniform) {
                Some(a) => a,
                None => return Next::End,
            },
        };
        let (first, last) = ids.into_inner();
        // Cut at MAX_ARRIVAL ids; the rest arrives at the same time.
        let end = last.min(first.saturating_add(MAX_ARRIVAL - 1));
        if end < last {
            self.rest = Some((t, end + 1..=last));
        }
        self.arrived = self.arrived.saturating_add(end - first + 1);
        Next::At(t, first..=end)
    }
}
