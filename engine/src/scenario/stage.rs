//! Checks of one `[[stage]]` table on its own: its name, which options its kind allows,
//! its dispatcher, buffer, demand mode, service times and faults.

use toml::Spanned;

use super::error::{Issue, Issues};
use super::model::{DispatcherDef, HashDef, SourceDef, StageDef};
use super::raw::{
    Int, RawDemandMode, RawDispatcher, RawHash, RawKeep, RawKind, RawOnMissing, RawStage,
};
use super::values::{self, int_in, int_u32, offset_of, path, start, us_to_ns};
use super::MAX_PARTITIONS;
use super::{fault, source};
use crate::buffer::{Keep, DEFAULT_PRODUCER_BUFFER};
use crate::core::{DemandMode, StageKind};
use crate::dispatcher::OnMissing;

/// A checked stage, with what later checks need to know about it.
pub(super) struct Checked {
    /// The stage as far as it could be checked (defaults where a value was rejected).
    pub def: StageDef,
    /// The dispatcher, or `None` if its options were rejected: subscriptions to this stage
    /// then skip the checks that depend on it, so one mistake is not reported twice.
    pub dispatcher: Option<DispatcherDef>,
    /// Where to point errors about the stage as a whole: its `[[stage]]` header.
    pub offset: usize,
    /// Where to point errors about its partitions.
    pub partitions_offset: usize,
}

/// The stage kind named in the file.
pub(super) fn kind(raw: RawKind) -> StageKind {
    match raw {
        RawKind::Producer => StageKind::Producer,
        RawKind::ProducerConsumer => StageKind::ProducerConsumer,
        RawKind::Consumer => StageKind::Consumer,
        RawKind::ConsumerPool => StageKind::ConsumerPool,
    }
}

/// Does a stage of this kind send events downstream?
pub(super) fn produces(kind: StageKind) -> bool {
    matches!(kind, StageKind::Producer | StageKind::ProducerConsumer)
}

/// Checks stage number `index`.
pub(super) fn check(raw: &Spanned<RawStage>, index: usize, issues: &mut Issues) -> Checked {
    let s = raw.get_ref();
    let base = format!("stage[{index}]");
    let kind = kind(*s.kind.get_ref());
    let name = s.name.get_ref();
    issues.take(check_name(&s.name, &base));
    let source = check_source(s, start(raw), kind, &base, issues);
    let dispatcher = if produces(kind) {
        dispatcher(s, name, &base, issues)
    } else {
        reject_producing_options(s, name, kind, &base, issues);
        Some(DispatcherDef::Demand { shuffle: false })
    };
    let (demand_mode, forward_at_ns) = demand_mode(s, name, kind, &base, issues);
    let per_event = s.per_event.as_ref();
    let per_batch = s.per_batch.as_ref();
    let def = StageDef {
        name: name.clone(),
        kind,
        source,
        dispatcher: dispatcher
            .clone()
            .unwrap_or(DispatcherDef::Demand { shuffle: false }),
        buffer_size: buffer_size(s, kind, &base, issues),
        buffer_keep: match s.buffer_keep.as_ref().map(|k| *k.get_ref()) {
            Some(RawKeep::First) => Keep::First,
            Some(RawKeep::Last) | None => Keep::Last,
        },
        demand_mode,
        forward_at_ns,
        per_event: per_event.and_then(|d| values::dist(d, &path(&base, "per_event"), issues)),
        per_batch: per_batch.and_then(|d| values::dist(d, &path(&base, "per_batch"), issues)),
        faults: s
            .fault
            .iter()
            .enumerate()
            .filter_map(|(i, f)| fault::check(f, &format!("{base}.fault[{i}]"), issues))
            .collect(),
    };
    Checked {
        def,
        dispatcher,
        offset: start(raw),
        partitions_offset: offset_of(&s.partitions)
            .or(offset_of(&s.dispatcher))
            .unwrap_or(start(raw)),
    }
}

/// Stage names are used in subscriptions, summaries and file names.
fn check_name(name: &Spanned<String>, base: &str) -> Result<(), Issue> {
    let text = name.get_ref();
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if !text.is_empty() && text.chars().all(ok) {
        return Ok(());
    }
    let message = format!(
        "stage names must be non-empty and use only letters A-Z a-z, digits, `_` and `-`, \
         got {text:?}"
    );
    Err(Issue::new(start(name), path(base, "name"), message))
}

/// `source`: required for producers, refused for every other kind.
fn check_source(
    s: &RawStage,
    table: usize,
    kind: StageKind,
    base: &str,
    issues: &mut Issues,
) -> Option<SourceDef> {
    let field = path(base, "source");
    match (&s.source, kind) {
        (Some(source), StageKind::Producer) => source::check(source, &field, issues),
        (None, StageKind::Producer) => {
            let message = format!(
                "producer `{}` needs a `source`: {{ range = [first, last] }}, \
                 {{ counter = start }}, {{ poisson = {{ … }} }}, {{ bursts = {{ … }} }} \
                 or {{ script = [ … ] }}",
                s.name.get_ref()
            );
            issues.push(Issue::new(table, field, message));
            None
        }
        (Some(source), _) => {
            let message = format!(
                "`source` applies only to producers; `{}` is a {} and gets its events from \
                 its subscriptions",
                s.name.get_ref(),
                kind.name()
            );
            issues.push(Issue::new(start(source), field, message));
            None
        }
        (None, _) => None,
    }
}

/// The options that only a stage that sends events downstream has, with where they are.
fn producing_options(s: &RawStage) -> [(&'static str, Option<usize>); 8] {
    [
        ("dispatcher", offset_of(&s.dispatcher)),
        ("partitions", offset_of(&s.partitions)),
        ("hash", offset_of(&s.hash)),
        ("hash_modulus", offset_of(&s.hash_modulus)),
        (
            "shuffle_demands_on_first_dispatch",
            offset_of(&s.shuffle_demands_on_first_dispatch),
        ),
        ("buffer_size", offset_of(&s.buffer_size)),
        ("buffer_keep", offset_of(&s.buffer_keep)),
        ("on_missing_partition", offset_of(&s.on_missing_partition)),
    ]
}

fn reject_producing_options(
    s: &RawStage,
    name: &str,
    kind: StageKind,
    base: &str,
    issues: &mut Issues,
) {
    for (key, offset) in producing_options(s) {
        if let Some(offset) = offset {
            let message = format!(
                "`{key}` applies only to producers and producer_consumers; `{name}` is a {}",
                kind.name()
            );
            issues.push(Issue::new(offset, path(base, key), message));
        }
    }
}

/// The dispatcher of a producer or producer-consumer; `None` if it cannot be built.
fn dispatcher(s: &RawStage, name: &str, base: &str, issues: &mut Issues) -> Option<DispatcherDef> {
    let kind = s
        .dispatcher
        .as_ref()
        .map_or(RawDispatcher::Demand, |d| *d.get_ref());
    let options = [
        (
            "partitions",
            offset_of(&s.partitions),
            RawDispatcher::Partition,
        ),
        ("hash", offset_of(&s.hash), RawDispatcher::Partition),
        (
            "hash_modulus",
            offset_of(&s.hash_modulus),
            RawDispatcher::Partition,
        ),
        (
            "on_missing_partition",
            offset_of(&s.on_missing_partition),
            RawDispatcher::Partition,
        ),
        (
            "shuffle_demands_on_first_dispatch",
            offset_of(&s.shuffle_demands_on_first_dispatch),
            RawDispatcher::Demand,
        ),
    ];
    for (key, offset, owner) in options {
        if let (Some(offset), true) = (offset, owner != kind) {
            let message = format!(
                "`{key}` applies only to dispatcher = \"{}\"; `{name}` uses dispatcher = \"{}\"",
                owner.name(),
                kind.name()
            );
            issues.push(Issue::new(offset, path(base, key), message));
        }
    }
    match kind {
        RawDispatcher::Demand => Some(DispatcherDef::Demand {
            shuffle: s
                .shuffle_demands_on_first_dispatch
                .as_ref()
                .is_some_and(|v| *v.get_ref()),
        }),
        RawDispatcher::Broadcast => Some(DispatcherDef::Broadcast),
        RawDispatcher::Partition => partition(s, base, issues),
    }
}

/// `dispatcher = "partition"` with `partitions`, `hash` and `hash_modulus`.
fn partition(s: &RawStage, base: &str, issues: &mut Issues) -> Option<DispatcherDef> {
    let Some(raw) = &s.partitions else {
        let offset = offset_of(&s.dispatcher).unwrap_or_default();
        let message =
            format!("dispatcher = \"partition\" needs `partitions` (from 1 to {MAX_PARTITIONS})");
        issues.push(Issue::new(offset, path(base, "partitions"), message));
        return None;
    };
    let partitions = issues.take(int_u32(raw, base, "partitions", 1, MAX_PARTITIONS))?;
    let modulus = match &s.hash_modulus {
        None => u64::from(partitions),
        Some(m) => issues.take(hash_modulus(m, partitions, base))?,
    };
    let hash = match s.hash.as_ref().map(|h| *h.get_ref()) {
        Some(RawHash::Rem) => HashDef::Rem { modulus },
        Some(RawHash::Mix) | None => HashDef::Mix { modulus },
    };
    let on_missing = match s.on_missing_partition.as_ref().map(|m| *m.get_ref()) {
        Some(RawOnMissing::Drop) => OnMissing::Drop,
        Some(RawOnMissing::Hold) | None => OnMissing::Hold,
    };
    Some(DispatcherDef::Partition {
        partitions,
        hash,
        on_missing,
    })
}

fn hash_modulus(raw: &Spanned<Int>, partitions: u32, base: &str) -> Result<u64, Issue> {
    int_in(raw, base, "hash_modulus", partitions.into(), u64::MAX).map_err(|issue| Issue {
        message: format!(
            "hash_modulus must be at least partitions ({partitions}), got {}; hash values \
             from partitions up to hash_modulus - 1 are dropped",
            raw.get_ref().0
        ),
        ..issue
    })
}

/// `buffer_size`: default 10 000 for producers, unbounded for producer-consumers.
fn buffer_size(s: &RawStage, kind: StageKind, base: &str, issues: &mut Issues) -> Option<u64> {
    match (&s.buffer_size, kind) {
        (Some(size), _) => issues.take(int_in(size, base, "buffer_size", 0, u64::MAX)),
        (None, StageKind::Producer) => Some(DEFAULT_PRODUCER_BUFFER),
        (None, _) => None,
    }
}

/// `demand` and `forward_at_us`: producers only.
fn demand_mode(
    s: &RawStage,
    name: &str,
    kind: StageKind,
    base: &str,
    issues: &mut Issues,
) -> (DemandMode, Option<u64>) {
    if kind != StageKind::Producer {
        let keys = [
            ("demand", offset_of(&s.demand)),
            ("forward_at_us", offset_of(&s.forward_at_us)),
        ];
        for (key, offset) in keys {
            if let Some(offset) = offset {
                let message = format!(
                    "`{key}` applies only to producers; `{name}` is a {}",
                    kind.name()
                );
                issues.push(Issue::new(offset, path(base, key), message));
            }
        }
        return (DemandMode::Forward, None);
    }
    let mode = match s.demand.as_ref().map(|d| *d.get_ref()) {
        Some(RawDemandMode::Accumulate) => DemandMode::Accumulate,
        Some(RawDemandMode::Forward) | None => DemandMode::Forward,
    };
    let forward_at_ns = match (&s.forward_at_us, mode) {
        (Some(at), DemandMode::Accumulate) => issues.take(us_to_ns(at, base, "forward_at_us", 0)),
        (Some(at), DemandMode::Forward) => {
            let message = "`forward_at_us` applies only with demand = \"accumulate\"";
            issues.push(Issue::new(start(at), path(base, "forward_at_us"), message));
            None
        }
        (None, _) => None,
    };
    (mode, forward_at_ns)
}
