//! From a validated [`Scenario`] to stage cores over `u64` event ids.
//!
//! Both runtimes start here, so a scenario means the same thing on threads and in the
//! simulator: the same sources, dispatchers, buffers and subscriptions. What differs —
//! when arrivals happen, how long a service takes — is left to the runtime, which gets
//! the [`Arrivals`] schedule and the service-time [`Dist`](crate::scenario::model::Dist)s from the scenario.

use std::ops::RangeInclusive;

use crate::core::{
    CoreConfig, DemandMode, InLinkConfig, Logic, OutLinkConfig, OutputConfig, StageCore, StageKind,
};
use crate::dispatcher::{DispatcherSpec, PartitionFn};
use crate::hash::{fnv1a64, mix64};
use crate::logic::{Chunk, Ctx, Emit};
use crate::opts::{AskMode, Selector};
use crate::protocol::{LinkId, StageId, SubRef};
use crate::scenario::model::{DispatcherDef, PushDef, Scenario, ScriptBatch, SourceDef};

/// Choices that are not in the scenario file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Stop each producer after this many events (`--events N`).
    pub events: Option<u64>,
    /// The root seed; a stage's own seed is derived from it and the stage's name.
    pub seed: u64,
}

/// The seed of a stream named `name` under the root seed `root`: adding or renaming
/// another stage does not change it.
pub fn derive_seed(root: u64, name: &str) -> u64 {
    mix64(root ^ mix64(fnv1a64(name.as_bytes())))
}

/// Builds one core per stage, in scenario order (index = [`StageId`]).
pub fn cores(s: &Scenario, opts: &PlanOptions) -> Vec<StageCore<u64, u64>> {
    (0..s.stages.len()).map(|i| core(s, i, opts)).collect()
}

/// Builds the core of stage `id`.
pub fn core(s: &Scenario, id: usize, opts: &PlanOptions) -> StageCore<u64, u64> {
    StageCore::new(config(s, id, opts))
}

/// The configuration of stage `id`'s core.
pub fn config(s: &Scenario, id: usize, opts: &PlanOptions) -> CoreConfig<u64, u64> {
    let st = &s.stages[id];
    let logic: Logic<u64, u64> = match st.kind {
        StageKind::Producer => match &st.source {
            Some(SourceDef::Range { first, last }) => range_logic(*first..=*last),
            Some(SourceDef::Counter { start }) => counter_logic(*start),
            Some(SourceDef::Push(_)) | None => Logic::Producer(Box::new(push_logic)),
        },
        StageKind::ProducerConsumer => Logic::ProducerConsumer(Box::new(pass_through)),
        StageKind::Consumer => Logic::Consumer(Box::new(discard)),
        StageKind::ConsumerPool => Logic::ConsumerPool,
    };
    let inputs = s
        .inputs_of(id)
        .map(|(l, d)| InLinkConfig {
            link: l as LinkId,
            demand: d.demand,
            cancel: d.cancel,
            mode: AskMode::Automatic,
        })
        .collect();
    let output = st.kind.produces().then(|| {
        let seed = derive_seed(opts.seed, &st.name);
        let dispatcher = match st.dispatcher {
            DispatcherDef::Demand { shuffle } => DispatcherSpec::Demand {
                max_demand: None,
                shuffle_seed: shuffle.then_some(seed),
            },
            DispatcherDef::Broadcast => DispatcherSpec::Broadcast,
            DispatcherDef::Partition { partitions, hash } => DispatcherSpec::Partition {
                partitions,
                hash: PartitionFn::new(move |e: &u64| hash.partition(*e, partitions)),
            },
        };
        OutputConfig {
            dispatcher,
            buffer_size: st.buffer_size,
            buffer_keep: st.buffer_keep,
            demand_mode: st.demand_mode,
            limit: (st.kind == StageKind::Producer)
                .then_some(opts.events)
                .flatten(),
            forward_when_subscribed: st.demand_mode == DemandMode::Accumulate
                && st.forward_at_ns.is_none(),
            links: s
                .outputs_of(id)
                .map(|(l, d)| OutLinkConfig {
                    link: l as LinkId,
                    consumer: d.consumer as StageId,
                    partition: d.partition,
                    selector: d
                        .selector
                        .map(|sel| Selector::new(move |e: &u64| sel.accepts(*e))),
                })
                .collect(),
        }
    });
    CoreConfig {
        id: id as StageId,
        logic,
        inputs,
        output,
    }
}

fn range_logic(ids: RangeInclusive<u64>) -> Logic<u64, u64> {
    let (mut next, last) = ids.into_inner();
    let mut done = next > last;
    Logic::Producer(Box::new(move |n: u64, emit: &mut Emit<u64>| {
        if done {
            emit.finish();
            return;
        }
        let end = last.min(next.saturating_add(n - 1));
        emit.extend(next..=end);
        if end == last {
            done = true;
            emit.finish();
        } else {
            next = end + 1;
        }
    }))
}

fn counter_logic(start: u64) -> Logic<u64, u64> {
    let mut next = start;
    Logic::Producer(Box::new(move |n: u64, emit: &mut Emit<u64>| {
        emit.extend(next..next.saturating_add(n));
        next = next.saturating_add(n);
    }))
}

fn push_logic(_n: u64, _emit: &mut Emit<u64>) {}

fn pass_through(events: Chunk<'_, u64>, _from: SubRef, emit: &mut Emit<u64>) {
    emit.extend(events);
}

fn discard(events: Chunk<'_, u64>, _ctx: &mut Ctx) {
    drop(events);
}

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
        }
    }

    /// The next arrival, or `None` when the source has no more.
    pub fn next(&mut self, uniform: &mut dyn FnMut() -> f64) -> Option<(u64, RangeInclusive<u64>)> {
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

    fn take(&mut self, n: u64) -> RangeInclusive<u64> {
        let first = self.next_id;
        self.next_id = self.next_id.saturating_add(n);
        self.emitted += n;
        first..=first + (n - 1)
    }
}
