//! Time series of each stage and subscription, sampled every `sample_ns` of virtual time.
//!
//! A sample at time `t` shows the state the run was in just before the events due at `t`
//! (the last sample shows the state at the end). Depths are point readings; busy time is
//! cumulative, so the busy fraction of an interval is the difference of two samples over
//! its length ([`Series::busy_fraction`]). When a series reaches [`MAX_SAMPLES`] points,
//! every other point is dropped and the interval doubles, so memory stays bounded however
//! long the run. This module stores readings; the scheduler decides when to take them.

use serde::Serialize;

/// The most points a series keeps before it halves its resolution.
pub const MAX_SAMPLES: usize = 16_384;

/// Samples of every stage and subscription at the same instants.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Series {
    /// The interval between samples now (it doubles each time the series is thinned).
    pub interval_ns: u64,
    /// The sample instants, ns of virtual time.
    pub t_ns: Vec<u64>,
    /// One series per stage, in scenario order.
    pub stages: Vec<StageSeries>,
    /// One series per subscription, in scenario order.
    pub links: Vec<LinkSeries>,
}

/// The readings of one stage.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StageSeries {
    /// Stage name.
    pub name: String,
    /// Servers the stage has: 1, or a consumer pool's `max_demand` (its job slots).
    pub slots: u64,
    /// Messages waiting in the mailbox.
    pub mailbox: Vec<u64>,
    /// Events in the producer buffer.
    pub buffered: Vec<u64>,
    /// Events in partition queues and in a producer-consumer's input queue.
    pub queued: Vec<u64>,
    /// Cumulative busy time, ns: handling messages, or for a pool the time its jobs ran.
    pub busy_ns: Vec<u64>,
    /// Cumulative events this stage dropped (buffer overflow, partition hash), over every
    /// incarnation.
    pub dropped: Vec<u64>,
    /// Cumulative events lost at this stage (input after its subscription ended or while
    /// it was down, events discarded from its queues), over every incarnation. Events
    /// sent to a stage that was already gone are in the summary's `lost`, not here.
    pub lost: Vec<u64>,
}

/// The readings of one subscription.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LinkSeries {
    /// Producing stage.
    pub producer: String,
    /// Consuming stage.
    pub consumer: String,
    /// Outstanding demand: events the consumer asked for and has not received yet.
    pub outstanding: Vec<u64>,
}

impl Series {
    /// Number of sample instants.
    pub fn len(&self) -> usize {
        self.t_ns.len()
    }

    /// `true` when nothing was sampled (sampling off, or a run of zero length).
    pub fn is_empty(&self) -> bool {
        self.t_ns.is_empty()
    }

    /// The fraction of the interval before sample `i` that stage `stage` was busy (for a
    /// pool: the mean fraction of its slots in use), in `0..=1`; 0 for `i == 0`.
    ///
    /// ```
    /// use flowbench_sim::{Series, StageSeries};
    /// let s = Series {
    ///     interval_ns: 100,
    ///     t_ns: vec![0, 100, 200],
    ///     stages: vec![StageSeries { slots: 1, busy_ns: vec![0, 50, 150], ..Default::default() }],
    ///     links: vec![],
    /// };
    /// assert_eq!(s.busy_fraction(0, 1), 0.5);
    /// assert_eq!(s.busy_fraction(0, 2), 1.0);
    /// ```
    pub fn busy_fraction(&self, stage: usize, i: usize) -> f64 {
        let Some(st) = self.stages.get(stage) else {
            return 0.0;
        };
        if i == 0 || i >= self.t_ns.len() || i >= st.busy_ns.len() {
            return 0.0;
        }
        let dt = self.t_ns[i].saturating_sub(self.t_ns[i - 1]);
        if dt == 0 {
            return 0.0;
        }
        let busy = st.busy_ns[i].saturating_sub(st.busy_ns[i - 1]);
        (busy as f64 / (dt as f64 * st.slots.max(1) as f64)).clamp(0.0, 1.0)
    }

    /// Keeps every other sample (those at even multiples of the interval) and doubles it.
    pub(crate) fn thin(&mut self) {
        fn keep_even(v: &mut Vec<u64>) {
            let mut i = 0;
            v.retain(|_| {
                i += 1;
                i % 2 == 1
            });
        }
        keep_even(&mut self.t_ns);
        for s in &mut self.stages {
            keep_even(&mut s.mailbox);
            keep_even(&mut s.buffered);
            keep_even(&mut s.queued);
            keep_even(&mut s.busy_ns);
            keep_even(&mut s.dropped);
            keep_even(&mut s.lost);
        }
        for l in &mut self.links {
            keep_even(&mut l.outstanding);
        }
        self.interval_ns = self.interval_ns.saturating_mul(2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_thin_keeps_even_multiples() {
        let mut s = Series {
            interval_ns: 10,
            t_ns: vec![0, 10, 20, 30, 40],
            stages: vec![StageSeries {
                mailbox: vec![0, 1, 2, 3, 4],
                buffered: vec![0; 5],
                queued: vec![0; 5],
                busy_ns: vec![0; 5],
                ..Default::default()
            }],
            links: vec![LinkSeries {
                outstanding: vec![5, 6, 7, 8, 9],
                ..Default::default()
            }],
        };
        s.thin();
        assert_eq!(s.t_ns, [0, 20, 40]);
        assert_eq!(s.stages[0].mailbox, [0, 2, 4]);
        assert_eq!(s.links[0].outstanding, [5, 7, 9]);
        assert_eq!(s.interval_ns, 20);
    }
}
