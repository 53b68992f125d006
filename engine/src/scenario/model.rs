//! The validated scenario: what a scenario file describes once every check has passed.
//!
//! Stages and subscriptions are stored in file order; a stage's index is its
//! [`StageId`](crate::StageId) and a subscription's index its [`LinkId`](crate::LinkId).
//! Events are `u64` ids so every event can be traced. Times are nanoseconds.
//! Nothing here is read by the stage core: runtimes turn it into cores and schedules.

use crate::buffer::Keep;
use crate::core::{DemandMode, StageKind};
use crate::opts::{CancelMode, Demand};

/// A whole, validated scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// `name`, or the file stem when absent.
    pub name: String,
    /// `description`, free text.
    pub description: Option<String>,
    /// `seed`: the default root seed of simulated runs.
    pub seed: Option<u64>,
    /// `cores`: how many stages may run at once in the simulator (`None`: unlimited).
    pub cores: Option<u32>,
    /// The stages, in file order.
    pub stages: Vec<StageDef>,
    /// The subscriptions, in file order.
    pub links: Vec<LinkDef>,
}

impl Scenario {
    /// The stage named `name`.
    pub fn stage(&self, name: &str) -> Option<(usize, &StageDef)> {
        self.stages.iter().enumerate().find(|(_, s)| s.name == name)
    }

    /// Subscriptions whose consumer is stage `id`, with their link ids.
    pub fn inputs_of(&self, id: usize) -> impl Iterator<Item = (usize, &LinkDef)> {
        self.links
            .iter()
            .enumerate()
            .filter(move |(_, l)| l.consumer == id)
    }

    /// Subscriptions whose producer is stage `id`, with their link ids.
    pub fn outputs_of(&self, id: usize) -> impl Iterator<Item = (usize, &LinkDef)> {
        self.links
            .iter()
            .enumerate()
            .filter(move |(_, l)| l.producer == id)
    }
}

/// One stage.
#[derive(Clone, Debug, PartialEq)]
pub struct StageDef {
    /// Unique name.
    pub name: String,
    /// `kind`.
    pub kind: StageKind,
    /// `source`: producers only.
    pub source: Option<SourceDef>,
    /// The dispatcher of a producer or producer-consumer.
    pub dispatcher: DispatcherDef,
    /// `buffer_size` (`None`: unbounded). Default 10 000 for producers, unbounded for
    /// producer-consumers.
    pub buffer_size: Option<u64>,
    /// `buffer_keep`, default `last`.
    pub buffer_keep: Keep,
    /// `demand`: `forward` (default) or `accumulate`.
    pub demand_mode: DemandMode,
    /// `forward_at_us` (as ns): when an accumulating producer switches to forward.
    /// `None` with `accumulate`: once every subscription of the producer has been made.
    pub forward_at_ns: Option<u64>,
    /// `per_event`: service time per event handled.
    pub per_event: Option<Dist>,
    /// `per_batch`: service time per batch (or `handle_demand` call) handled.
    pub per_batch: Option<Dist>,
    /// `fault`: faults injected into this stage.
    pub faults: Vec<Fault>,
}

/// Where a producer's events come from.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceDef {
    /// `range = [first, last]`: the ids `first..=last`, on demand, then done.
    Range {
        /// First id.
        first: u64,
        /// Last id (inclusive).
        last: u64,
    },
    /// `counter = start`: ids `start, start+1, …` on demand, forever.
    Counter {
        /// First id.
        start: u64,
    },
    /// Events pushed in from outside, whatever the demand.
    Push(PushDef),
}

/// Push arrivals: ids are numbered from `first_id` in arrival order (scripts give their own).
#[derive(Clone, Debug, PartialEq)]
pub enum PushDef {
    /// `poisson = { rate_per_s, batch }`: batches of `batch` events, exponential gaps,
    /// `rate_per_s` events per second on average.
    Poisson {
        /// Mean events per second.
        rate_per_s: f64,
        /// Events per arrival (default 1).
        batch: u64,
        /// First id (default 0).
        first_id: u64,
        /// Stop after this many events (`None`: unbounded).
        total: Option<u64>,
    },
    /// `bursts = { every_us, size, count }`: `size` events at once every `every_us`.
    Bursts {
        /// Gap between bursts, ns.
        every_ns: u64,
        /// Events per burst.
        size: u64,
        /// Number of bursts (`None`: forever).
        count: Option<u64>,
        /// First id (default 0).
        first_id: u64,
    },
    /// `script = [{ at_us, first, last }, …]`: the ids `first..=last` at time `at_us`.
    Script(Vec<ScriptBatch>),
}

/// One scripted arrival.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptBatch {
    /// When, ns from the start.
    pub at_ns: u64,
    /// First id.
    pub first: u64,
    /// Last id (inclusive).
    pub last: u64,
}

/// The dispatcher of a producing stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DispatcherDef {
    /// `dispatcher = "demand"` (default), with `shuffle_demands_on_first_dispatch`.
    Demand {
        /// Shuffle the consumers once before the first dispatch.
        shuffle: bool,
    },
    /// `dispatcher = "broadcast"`.
    Broadcast,
    /// `dispatcher = "partition"` with `partitions`, `hash` and `hash_modulus`.
    Partition {
        /// Number of partitions `0..partitions`.
        partitions: u32,
        /// How an event id maps to a partition.
        hash: HashDef,
        /// `on_missing_partition`: `hold` (default) or `drop`.
        on_missing: crate::dispatcher::OnMissing,
    },
}

/// A partition hash over `u64` ids. An event whose value is `>= partitions` is dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashDef {
    /// `hash = "rem"`: `id % modulus`.
    Rem {
        /// `hash_modulus`, default `partitions`.
        modulus: u64,
    },
    /// `hash = "mix"` (default): `mix64(id) % modulus`, see [`crate::hash::mix64`].
    Mix {
        /// `hash_modulus`, default `partitions`.
        modulus: u64,
    },
}

impl HashDef {
    /// The partition of `id`, or `None` when it is dropped.
    #[inline]
    pub fn partition(self, id: u64, partitions: u32) -> Option<u32> {
        // A power-of-two modulus (the usual partition count) is a mask, not a division.
        let m = |x: u64, modulus: u64| {
            if modulus.is_power_of_two() {
                x & (modulus - 1)
            } else {
                x % modulus
            }
        };
        let v = match self {
            HashDef::Rem { modulus } => m(id, modulus),
            HashDef::Mix { modulus } => m(crate::hash::mix64(id), modulus),
        };
        (v < u64::from(partitions)).then_some(v as u32)
    }
}

/// A broadcast selector over `u64` ids: `id % modulus == remainder`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SelectorDef {
    /// `modulus` (>= 1).
    pub modulus: u64,
    /// `remainder` (< modulus).
    pub remainder: u64,
}

impl SelectorDef {
    /// Does the selector accept `id`?
    #[inline]
    pub fn accepts(self, id: u64) -> bool {
        id % self.modulus == self.remainder
    }
}

/// A service-time distribution, in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Dist {
    /// `{ dist = "fixed", ns }`.
    Fixed {
        /// The time.
        ns: u64,
    },
    /// `{ dist = "uniform", min_ns, max_ns }`.
    Uniform {
        /// Lower bound.
        min_ns: u64,
        /// Upper bound (inclusive).
        max_ns: u64,
    },
    /// `{ dist = "exp", mean_ns }`.
    Exp {
        /// Mean.
        mean_ns: f64,
    },
    /// `{ dist = "lognormal", median_ns, sigma }`.
    LogNormal {
        /// Median (`exp(mu)`).
        median_ns: f64,
        /// Shape (standard deviation of the log).
        sigma: f64,
    },
}

impl Dist {
    /// The mean of the distribution, ns.
    pub fn mean_ns(&self) -> f64 {
        match *self {
            Dist::Fixed { ns } => ns as f64,
            Dist::Uniform { min_ns, max_ns } => (min_ns as f64 + max_ns as f64) / 2.0,
            Dist::Exp { mean_ns } => mean_ns,
            Dist::LogNormal { median_ns, sigma } => median_ns * (sigma * sigma / 2.0).exp(),
        }
    }

    /// Draws one value from uniform variates `u1, u2` in `(0, 1]` (two are needed only by
    /// the log-normal, through Box–Muller). Deterministic: the caller owns the RNG.
    pub fn sample_with(&self, u1: f64, u2: f64) -> u64 {
        match *self {
            Dist::Fixed { ns } => ns,
            Dist::Uniform { min_ns, max_ns } => {
                let span = (max_ns - min_ns) as f64;
                (min_ns as f64 + (span + 1.0) * (1.0 - u1)).min(max_ns as f64) as u64
            }
            Dist::Exp { mean_ns } => (-mean_ns * u1.ln()).round() as u64,
            Dist::LogNormal { median_ns, sigma } => {
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                (median_ns * (sigma * z).exp()).round() as u64
            }
        }
    }
}

/// A fault injected into a stage.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// `{ crash_after_events = N }` or `{ crash_at_us = T }`, optionally
    /// `restart_after_us = D`.
    Crash {
        /// When the crash happens.
        trigger: CrashTrigger,
        /// Restart this long after the crash (simulator only).
        restart_after_ns: Option<u64>,
    },
    /// `{ slow_at_us = T, factor = F }`: service times are multiplied by `F` from `T` on.
    Slow {
        /// From when, ns.
        at_ns: u64,
        /// The multiplier (> 0).
        factor: f64,
    },
}

/// What sets off a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashTrigger {
    /// After the stage handled (consumers) or emitted (producers) this many events.
    AfterEvents(u64),
    /// At this time, ns from the start.
    AtNs(u64),
}

/// One subscription.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkDef {
    /// Index of the producing stage.
    pub producer: usize,
    /// Index of the consuming stage.
    pub consumer: usize,
    /// `max_demand` and `min_demand`.
    pub demand: Demand,
    /// `cancel`.
    pub cancel: CancelMode,
    /// `partition` (partition dispatcher only).
    pub partition: Option<u32>,
    /// `selector` (broadcast dispatcher only).
    pub selector: Option<SelectorDef>,
    /// `latency`: delivery delay on this link in the simulator (default none).
    pub latency: Option<Dist>,
}
