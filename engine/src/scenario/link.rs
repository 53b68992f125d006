//! Checks of one `[[subscription]]`: the stages it names, its demand, and the options
//! that depend on the producer's dispatcher (`partition`, `selector`).

use std::collections::HashMap;

use toml::Spanned;

use super::error::{Issue, Issues};
use super::model::{DispatcherDef, LinkDef, SelectorDef};
use super::raw::{Int, RawCancel, RawSelector, RawSubscription};
use super::stage::{self, produces};
use super::values::{self, backtick_list, int_in, int_u32, path, start};
use crate::core::StageKind;
use crate::opts::{CancelMode, Demand, DemandError, DEFAULT_MAX_DEMAND};

/// What the subscription checks know about the stages.
pub(super) struct Stages<'a> {
    /// Stage index by name (the first stage of each name).
    pub by_name: HashMap<&'a str, usize>,
    /// Every stage as checked.
    pub checked: &'a [stage::Checked],
}

impl Stages<'_> {
    fn kind(&self, id: usize) -> StageKind {
        self.checked[id].def.kind
    }

    fn name(&self, id: usize) -> &str {
        &self.checked[id].def.name
    }

    /// "`a`, `b`" for the stages that `keep` accepts, in file order.
    fn list(&self, keep: impl Fn(StageKind) -> bool) -> String {
        let names = self
            .checked
            .iter()
            .filter(|c| keep(c.def.kind))
            .map(|c| c.def.name.as_str());
        let list = backtick_list(names);
        if list.is_empty() {
            "(none in this file)".to_owned()
        } else {
            list
        }
    }
}

/// What the checks of earlier subscriptions leave for later ones.
#[derive(Default)]
pub(super) struct Seen {
    /// `(producer, partition)` → the subscription that took it.
    pub partitions: HashMap<(usize, u32), usize>,
    /// `(producer, consumer)` → the first subscription between them.
    pairs: HashMap<(usize, usize), usize>,
    /// Producers named by a subscription that had a problem: their partition coverage is
    /// not checked, because a missing partition there is likely that same problem.
    pub troubled: Vec<usize>,
}

/// Checks subscription number `index`; `None` if it had a problem.
pub(super) fn check(
    raw: &Spanned<RawSubscription>,
    index: usize,
    stages: &Stages<'_>,
    seen: &mut Seen,
    issues: &mut Issues,
) -> Option<LinkDef> {
    let s = raw.get_ref();
    let base = format!("subscription[{index}]");
    let before = issues.len();
    let producer = issues.take(resolve_producer(&s.producer, stages, &base));
    let consumer = issues.take(resolve_consumer(&s.consumer, stages, &base));
    let demand = issues.take(demand(s, &base));
    let cancel = match s.cancel.as_ref().map(|c| *c.get_ref()) {
        Some(RawCancel::Permanent) | None => CancelMode::Permanent,
        Some(RawCancel::Transient) => CancelMode::Transient,
        Some(RawCancel::Temporary) => CancelMode::Temporary,
    };
    let dispatcher = producer.and_then(|p| stages.checked[p].dispatcher.as_ref());
    let (partition, selector) = match (producer, dispatcher) {
        (Some(p), Some(d)) => dispatcher_options(s, start(raw), p, d, stages, &base, issues),
        _ => (None, None),
    };
    let latency = s.latency.as_ref();
    let latency = latency.and_then(|l| values::dist(l, &path(&base, "latency"), issues));
    if let (Some(p), Some(c)) = (producer, consumer) {
        issues.take(check_pair(s, p, c, index, stages, seen, &base));
    }
    if issues.len() > before {
        seen.troubled.extend(producer);
        return None;
    }
    if let (Some(p), Some(partition)) = (producer, partition) {
        seen.partitions.insert((p, partition), index);
    }
    Some(LinkDef {
        producer: producer?,
        consumer: consumer?,
        demand: demand?,
        cancel,
        partition,
        selector,
        latency,
    })
}

/// The stage named by `name`, or an issue that lists the known names.
fn resolve(name: &Spanned<String>, stages: &Stages<'_>, field: &str) -> Result<usize, Issue> {
    stages
        .by_name
        .get(name.get_ref().as_str())
        .copied()
        .ok_or_else(|| {
            let message = format!(
                "unknown stage `{}`; known stages: {}",
                name.get_ref(),
                stages.list(|_| true)
            );
            Issue::new(start(name), field, message)
        })
}

fn resolve_producer(
    name: &Spanned<String>,
    stages: &Stages<'_>,
    base: &str,
) -> Result<usize, Issue> {
    let field = path(base, "producer");
    let id = resolve(name, stages, &field)?;
    if produces(stages.kind(id)) {
        return Ok(id);
    }
    let message = format!(
        "stage `{}` is a {} and sends no events; `producer` must name a producer or \
         producer_consumer: {}",
        name.get_ref(),
        stages.kind(id).name(),
        stages.list(produces)
    );
    Err(Issue::new(start(name), field, message))
}

fn resolve_consumer(
    name: &Spanned<String>,
    stages: &Stages<'_>,
    base: &str,
) -> Result<usize, Issue> {
    let field = path(base, "consumer");
    let id = resolve(name, stages, &field)?;
    if stages.kind(id) != StageKind::Producer {
        return Ok(id);
    }
    let message = format!(
        "stage `{}` is a producer, and a producer cannot have subscriptions; `consumer` must \
         name a producer_consumer, consumer or consumer_pool: {}",
        name.get_ref(),
        stages.list(|k| k != StageKind::Producer)
    );
    Err(Issue::new(start(name), field, message))
}

/// `max_demand` and `min_demand`, checked by [`Demand::new`] so the texts match the engine.
fn demand(s: &RawSubscription, base: &str) -> Result<Demand, Issue> {
    let max = match &s.max_demand {
        None => DEFAULT_MAX_DEMAND,
        // 0 is left to `Demand::new`, which reports it in the engine's words.
        Some(v) if v.get_ref().0 == 0 => 0,
        Some(v) => int_in(v, base, "max_demand", 1, u64::MAX)?,
    };
    let min = match &s.min_demand {
        None => None,
        Some(v) => Some(int_in(v, base, "min_demand", 0, u64::MAX)?),
    };
    Demand::new(max, min).map_err(|err| {
        let (key, offset) = match (&err, &s.min_demand, &s.max_demand) {
            (DemandError::MinTooLarge { .. }, Some(min), _) => ("min_demand", start(min)),
            (_, _, Some(max)) => ("max_demand", start(max)),
            _ => ("max_demand", 0),
        };
        Issue::new(offset, path(base, key), err.to_string())
    })
}

/// `partition` and `selector`, which only some dispatchers take.
fn dispatcher_options(
    s: &RawSubscription,
    table: usize,
    producer: usize,
    dispatcher: &DispatcherDef,
    stages: &Stages<'_>,
    base: &str,
    issues: &mut Issues,
) -> (Option<u32>, Option<SelectorDef>) {
    let name = stages.name(producer);
    let uses = match dispatcher {
        DispatcherDef::Demand { .. } => "demand",
        DispatcherDef::Broadcast => "broadcast",
        DispatcherDef::Partition { .. } => "partition",
    };
    let partition = match (dispatcher, &s.partition) {
        (&DispatcherDef::Partition { partitions, .. }, raw) => {
            issues.take(partition(raw, table, producer, partitions, stages, base))
        }
        (_, Some(raw)) => {
            let message = format!(
                "`partition` applies only when the producer's dispatcher is \"partition\"; \
                 `{name}` uses dispatcher = \"{uses}\""
            );
            issues.push(Issue::new(start(raw), path(base, "partition"), message));
            None
        }
        (_, None) => None,
    };
    let selector = match (dispatcher, &s.selector) {
        (DispatcherDef::Broadcast, Some(raw)) => {
            issues.take(selector(raw, &path(base, "selector")))
        }
        (_, Some(raw)) => {
            let message = format!(
                "`selector` applies only when the producer's dispatcher is \"broadcast\"; \
                 `{name}` uses dispatcher = \"{uses}\""
            );
            issues.push(Issue::new(start(raw), path(base, "selector"), message));
            None
        }
        (_, None) => None,
    };
    (partition, selector)
}

/// The partition a subscription to a partition dispatcher takes.
fn partition(
    raw: &Option<Spanned<Int>>,
    table: usize,
    producer: usize,
    partitions: u32,
    stages: &Stages<'_>,
    base: &str,
) -> Result<u32, Issue> {
    let name = stages.name(producer);
    let field = path(base, "partition");
    let last = partitions - 1;
    let Some(raw) = raw else {
        let message = format!(
            "`partition` is required: `{name}` has dispatcher = \"partition\" with \
             {partitions} partitions; give a partition from 0 to {last}"
        );
        return Err(Issue::new(table, field, message));
    };
    int_u32(raw, base, "partition", 0, last).map_err(|issue| Issue {
        message: format!(
            "partition must be from 0 to {last} (`{name}` has {partitions} partitions), got {}",
            raw.get_ref().0
        ),
        ..issue
    })
}

/// `selector = { modulus, remainder }`.
fn selector(raw: &Spanned<RawSelector>, base: &str) -> Result<SelectorDef, Issue> {
    let s = raw.get_ref();
    let modulus = int_in(&s.modulus, base, "modulus", 1, u64::MAX)?;
    let remainder = match &s.remainder {
        None => 0,
        Some(r) => int_in(r, base, "remainder", 0, modulus - 1).map_err(|issue| Issue {
            message: format!(
                "remainder must be less than modulus ({modulus}), got {}",
                r.get_ref().0
            ),
            ..issue
        })?,
    };
    Ok(SelectorDef { modulus, remainder })
}

/// The same producer and consumer may be subscribed once, and a partition taken once.
fn check_pair(
    s: &RawSubscription,
    producer: usize,
    consumer: usize,
    index: usize,
    stages: &Stages<'_>,
    seen: &mut Seen,
    base: &str,
) -> Result<(), Issue> {
    if let Some(first) = seen.pairs.get(&(producer, consumer)) {
        let message = format!(
            "`{}` -> `{}` is already subscribed by subscription[{first}]; a consumer may \
             subscribe to the same producer only once",
            stages.name(producer),
            stages.name(consumer)
        );
        return Err(Issue::new(
            start(&s.consumer),
            path(base, "consumer"),
            message,
        ));
    }
    seen.pairs.insert((producer, consumer), index);
    let Some(raw) = &s.partition else {
        return Ok(());
    };
    let taken = u32::try_from(raw.get_ref().0)
        .ok()
        .and_then(|p| seen.partitions.get(&(producer, p)));
    match taken {
        Some(first) => {
            let message = format!(
                "partition {} of `{}` is already taken by subscription[{first}]; each \
                 partition takes exactly one subscription",
                raw.get_ref().0,
                stages.name(producer)
            );
            Err(Issue::new(start(raw), path(base, "partition"), message))
        }
        None => Ok(()),
    }
}
