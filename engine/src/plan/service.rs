//! Service times: how long a stage is busy for what it did, the one rule both runtimes use.
//!
//! The simulator turns a [`ServiceModel`]'s answer into virtual time; the threads runtime
//! into busy work of that length. Neither computes a service time any other way.

use crate::scenario::model::{Dist, Fault, StageDef};
use crate::StageKind;

/// A source of uniform variates in `(0, 1]`, owned by the runtime (the simulator's seeded
/// ChaCha stream, the threads runtime's SplitMix64).
pub trait Variates {
    /// The next uniform variate in `(0, 1]`.
    fn uniform(&mut self) -> f64;
}

impl Variates for crate::hash::SplitMix64 {
    fn uniform(&mut self) -> f64 {
        ((self.next() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// One draw of `d`. A fixed time draws nothing; a log-normal draws two variates, every
/// other distribution one.
///
/// ```
/// use flowbench_engine::plan::{sample, Variates};
/// use flowbench_engine::scenario::Dist;
/// struct Half;
/// impl Variates for Half { fn uniform(&mut self) -> f64 { 0.5 } }
/// assert_eq!(sample(&Dist::Fixed { ns: 7 }, &mut Half), 7);
/// assert_eq!(sample(&Dist::Uniform { min_ns: 0, max_ns: 9 }, &mut Half), 5);
/// ```
#[inline]
pub fn sample(d: &Dist, v: &mut dyn Variates) -> u64 {
    match d {
        Dist::Fixed { ns } => *ns,
        Dist::LogNormal { .. } => {
            let u1 = v.uniform();
            let u2 = v.uniform();
            d.sample_with(u1, u2)
        }
        _ => {
            let u1 = v.uniform();
            d.sample_with(u1, 1.0)
        }
    }
}

/// The sum of `n` independent draws of `d` (a fixed time is multiplied, not drawn).
pub fn sample_sum(d: &Dist, n: u64, v: &mut dyn Variates) -> u64 {
    match d {
        Dist::Fixed { ns } => ns.saturating_mul(n),
        _ => (0..n).fold(0u64, |acc, _| acc.saturating_add(sample(d, v))),
    }
}

/// A stage's service-time model: `per_event`, `per_batch` and every `slow` fault.
///
/// A step costs `per_batch` once per batch received (or `handle_demand` call) plus
/// `per_event` once per event handled or emitted (whichever is larger); a pool pays
/// `per_event` per job instead. From each slowdown's time on, the cost is multiplied by
/// its factor; two slowdowns that have both begun multiply.
///
/// ```
/// use flowbench_engine::plan::{ServiceModel, Variates};
/// use flowbench_engine::scenario::Dist;
/// struct Half;
/// impl Variates for Half { fn uniform(&mut self) -> f64 { 0.5 } }
/// let m = ServiceModel::new(Some(Dist::Fixed { ns: 10 }), Some(Dist::Fixed { ns: 100 }), vec![(1_000, 2.0), (5_000, 3.0)], false);
/// assert_eq!(m.step_ns(5, 1, 0, &mut Half), 150);
/// assert_eq!(m.step_ns(5, 1, 1_000, &mut Half), 300);
/// assert_eq!(m.step_ns(5, 1, 9_000, &mut Half), 900);
/// assert_eq!(m.step_ns(0, 0, 9_000, &mut Half), 0);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceModel {
    per_event: Option<Dist>,
    per_batch: Option<Dist>,
    slow: Vec<(u64, f64)>,
    pool: bool,
}

impl ServiceModel {
    /// A model from its parts; `slow` is `(from ns, factor)` in the scenario's order, and
    /// `pool` says the stage is a consumer pool (it pays `per_event` per job).
    pub fn new(
        per_event: Option<Dist>,
        per_batch: Option<Dist>,
        slow: Vec<(u64, f64)>,
        pool: bool,
    ) -> Self {
        ServiceModel {
            per_event,
            per_batch,
            slow,
            pool,
        }
    }

    /// The model of a scenario stage.
    pub fn of(st: &StageDef) -> Self {
        let slow = st
            .faults
            .iter()
            .filter_map(|f| match *f {
                Fault::Slow { at_ns, factor } => Some((at_ns, factor)),
                Fault::Crash { .. } => None,
            })
            .collect();
        ServiceModel::new(
            st.per_event,
            st.per_batch,
            slow,
            st.kind == StageKind::ConsumerPool,
        )
    }

    /// `true` if no step of this stage ever takes time.
    pub fn is_free(&self) -> bool {
        self.per_event.is_none() && self.per_batch.is_none()
    }

    /// Adds a slowdown by `factor` from `at_ns` on (a slowdown asked for while the run goes
    /// on; `factor` below 1 speeds the stage up again). `false` if `factor` is not a
    /// finite number greater than 0 (nothing changes then).
    pub fn slow_from(&mut self, at_ns: u64, factor: f64) -> bool {
        if !(factor.is_finite() && factor > 0.0) {
            return false;
        }
        self.slow.push((at_ns, factor));
        true
    }

    /// The product of the slowdowns that have begun at `at`.
    pub fn slowdown_at(&self, at: u64) -> f64 {
        self.slow
            .iter()
            .filter(|&&(t, _)| at >= t)
            .map(|&(_, f)| f)
            .product()
    }

    /// `ns` with every slowdown that has begun at `at` applied.
    pub fn slowed(&self, ns: u64, at: u64) -> u64 {
        let mut v = ns;
        for &(t, f) in &self.slow {
            if at >= t {
                v = (v as f64 * f).round() as u64;
            }
        }
        v
    }

    /// The service time of a step, starting at `at` ns, that handled or emitted `events`
    /// events and received `batches` batches or `handle_demand` calls.
    #[inline]
    pub fn step_ns(&self, events: u64, batches: u64, at: u64, v: &mut dyn Variates) -> u64 {
        let mut ns = 0u64;
        if batches > 0 {
            if let Some(d) = &self.per_batch {
                ns = ns.saturating_add(sample_sum(d, batches, v));
            }
        }
        if events > 0 && !self.pool {
            if let Some(d) = &self.per_event {
                ns = ns.saturating_add(sample_sum(d, events, v));
            }
        }
        if ns == 0 || self.slow.is_empty() {
            ns
        } else {
            self.slowed(ns, at)
        }
    }

    /// The time of one pool job starting at `at` ns.
    pub fn job_ns(&self, at: u64, v: &mut dyn Variates) -> u64 {
        match &self.per_event {
            Some(d) => {
                let ns = sample(d, v);
                self.slowed(ns, at)
            }
            None => 0,
        }
    }
}
