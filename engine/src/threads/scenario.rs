//! Running a scenario file on threads.
//!
//! Each stage becomes a `u64` stage of a [`Topology`], built by [`crate::plan`] exactly as
//! the simulator builds it. Service times become busy work of that length; push arrivals,
//! `forward_at_us` and `crash_at_us` follow the wall clock from the start of the run.
//! Link latencies and restarts are simulator-only and are ignored here.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Extras, RunError, RunOutcome, Topology, TypedStage};
use crate::core::{Logic, StageKind};
use crate::logic::{Chunk, Ctx, Job};
use crate::plan::{self, Arrivals, PlanOptions};
use crate::protocol::{LinkId, SubRef};
use crate::scenario::model::{CrashTrigger, Fault, Scenario, SourceDef};

/// Choices for a threads run that are not in the scenario file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScenarioRunOptions {
    /// Stop each producer after this many events (`--events N`).
    pub events: Option<u64>,
    /// Root seed for the emulated service times and arrival gaps.
    pub seed: u64,
    /// Shut producers down (in order) after this much wall time.
    pub stop_after: Option<Duration>,
    /// Record every event each final stage (consumer, pool) handles, with the link it came
    /// on, into [`RunOutcome::received`]. For tests and equivalence checks; it costs a
    /// lock per chunk.
    pub record: bool,
}

/// Runs `scenario` on threads to the end.
pub fn run_scenario(
    scenario: &Scenario,
    opts: &ScenarioRunOptions,
) -> Result<RunOutcome, RunError> {
    let (t, records) = topology(scenario, opts);
    let mut outcome = t.run()?;
    if opts.record {
        outcome.received = records
            .iter()
            .map(|r| std::mem::take(&mut *crate::sync::lock(r)))
            .collect();
    }
    Ok(outcome)
}

/// Where a stage records the events it handles, with their link.
pub type Record = Arc<Mutex<Vec<(LinkId, u64)>>>;

/// The topology a scenario describes, ready to spawn, and where each stage records the
/// events it handles (empty unless `opts.record`).
pub fn topology(scenario: &Scenario, opts: &ScenarioRunOptions) -> (Topology, Vec<Record>) {
    let records: Vec<Record> = scenario.stages.iter().map(|_| Record::default()).collect();
    let popts = PlanOptions {
        events: opts.events,
        seed: opts.seed,
    };
    let mut t = Topology::new();
    t.links = scenario
        .links
        .iter()
        .map(|l| (l.producer as u32, l.consumer as u32))
        .collect();
    t.stop_after = opts.stop_after;
    for (i, st) in scenario.stages.iter().enumerate() {
        let cfg = plan::config(scenario, i, &popts);
        let pool = st.kind == StageKind::ConsumerPool;
        let mut extras = Extras {
            per_event: st.per_event,
            per_batch: st.per_batch,
            forward_at: st.forward_at_ns.map(Duration::from_nanos),
            seed: plan::derive_seed(opts.seed, &st.name),
            ..Extras::default()
        };
        if let Some(SourceDef::Push(def)) = &st.source {
            extras.arrivals = Some(Arrivals::new(def.clone()));
        }
        for f in &st.faults {
            match *f {
                Fault::Crash { trigger, .. } => match trigger {
                    CrashTrigger::AfterEvents(n) => extras.crash_after_events = Some(n),
                    CrashTrigger::AtNs(ns) => extras.crash_at = Some(Duration::from_nanos(ns)),
                },
                Fault::Slow { at_ns, factor } => {
                    extras.slow = Some((Duration::from_nanos(at_ns), factor));
                }
            }
        }
        let rec = Arc::clone(&records[i]);
        let logic = match (st.kind, opts.record) {
            (StageKind::Consumer, true) => {
                Logic::Consumer(Box::new(move |events: Chunk<'_, u64>, ctx: &mut Ctx| {
                    let link = ctx.from().link;
                    crate::sync::lock(&rec).extend(events.map(|e| (link, e)));
                }))
            }
            _ => cfg.logic,
        };
        let rec = Arc::clone(&records[i]);
        let record = opts.record;
        let job = move |sub: SubRef, e: u64| {
            if record {
                crate::sync::lock(&rec).push((sub.link, e));
            }
        };
        t.stages.push(Box::new(TypedStage::<u64, u64> {
            name: st.name.clone(),
            logic: if pool { None } else { Some(logic) },
            job: pool.then(|| Arc::new(RecordingJob(job)) as Arc<dyn Job<u64>>),
            inputs: cfg.inputs,
            output: cfg.output,
            extras,
        }));
    }
    (t, records)
}

/// A pool job that records the subscription its event came on.
struct RecordingJob<F>(F);

impl<F: Fn(SubRef, u64) + Send + Sync> Job<u64> for RecordingJob<F> {
    fn run(&self, e: u64) {
        (self.0)(SubRef::first(0), e)
    }

    fn run_from(&self, from: SubRef, e: u64) {
        (self.0)(from, e)
    }
}
