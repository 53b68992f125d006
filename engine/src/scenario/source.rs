//! A producer's `source`: where its events come from (a range, a counter, or pushed
//! arrivals: poisson, bursts or a script).

use std::collections::BTreeMap;

use toml::Spanned;

use super::error::{Issue, Issues};
use super::model::{PushDef, ScriptBatch, SourceDef};
use super::raw::{Int, RawBursts, RawPoisson, RawScriptBatch, RawSource};
use super::values::{exactly_one, int_in, int_or, offset_of, path, positive, start, us_to_ns};

/// A producer's `source = { … }`; `base` is the path of `source`.
pub(super) fn check(
    raw: &Spanned<RawSource>,
    base: &str,
    issues: &mut Issues,
) -> Option<SourceDef> {
    let s = raw.get_ref();
    let keys = [
        ("range", offset_of(&s.range)),
        ("counter", offset_of(&s.counter)),
        ("poisson", offset_of(&s.poisson)),
        ("bursts", offset_of(&s.bursts)),
        ("script", offset_of(&s.script)),
    ];
    exactly_one(&keys, start(raw), base, "source", issues)?;
    if let Some(range) = &s.range {
        return issues.take(id_range(range, base));
    }
    if let Some(counter) = &s.counter {
        let start = issues.take(int_in(counter, base, "counter", 0, u64::MAX))?;
        return Some(SourceDef::Counter { start });
    }
    let push = if let Some(poisson) = &s.poisson {
        issues.take(self::poisson(poisson.get_ref(), &path(base, "poisson")))?
    } else if let Some(bursts) = &s.bursts {
        issues.take(self::bursts(bursts.get_ref(), &path(base, "bursts")))?
    } else {
        let script = s.script.as_ref()?;
        self::script(script, base, issues)?
    };
    Some(SourceDef::Push(push))
}

/// `range = [first, last]`.
fn id_range(range: &Spanned<Vec<Spanned<Int>>>, base: &str) -> Result<SourceDef, Issue> {
    let field = path(base, "range");
    let [first, last] = range.get_ref().as_slice() else {
        let message = format!(
            "range must be [first, last] (two ids), got {} values",
            range.get_ref().len()
        );
        return Err(Issue::new(start(range), field, message));
    };
    let first_id = int_in(first, &field, "first", 0, u64::MAX).map_err(|issue| Issue {
        field: field.clone(),
        ..issue
    })?;
    let last_id = int_in(last, &field, "last", 0, u64::MAX).map_err(|issue| Issue {
        field: field.clone(),
        ..issue
    })?;
    if first_id > last_id {
        let message = format!("range must have first <= last, got [{first_id}, {last_id}]");
        return Err(Issue::new(start(last), field, message));
    }
    Ok(SourceDef::Range {
        first: first_id,
        last: last_id,
    })
}

fn poisson(p: &RawPoisson, base: &str) -> Result<PushDef, Issue> {
    let rate_per_s = positive(&p.rate_per_s, base, "rate_per_s")?;
    let batch = int_or(&p.batch, base, "batch", 1, 1)?;
    let first_id = int_or(&p.first_id, base, "first_id", 0, 0)?;
    let total = match &p.total {
        Some(total) => Some(int_in(total, base, "total", 1, u64::MAX)?),
        None => None,
    };
    if let (Some(n), Some(span)) = (total, &p.total) {
        ids_fit(first_id, u128::from(n), start(span), base, "total")?;
    }
    Ok(PushDef::Poisson {
        rate_per_s,
        batch,
        first_id,
        total,
    })
}

fn bursts(b: &RawBursts, base: &str) -> Result<PushDef, Issue> {
    let every_ns = us_to_ns(&b.every_us, base, "every_us", 1)?;
    let size = int_in(&b.size, base, "size", 1, u64::MAX)?;
    let count = match &b.count {
        Some(count) => Some(int_in(count, base, "count", 1, u64::MAX)?),
        None => None,
    };
    let first_id = int_or(&b.first_id, base, "first_id", 0, 0)?;
    if let (Some(c), Some(span)) = (count, &b.count) {
        ids_fit(
            first_id,
            u128::from(size) * u128::from(c),
            start(span),
            base,
            "count",
        )?;
    }
    Ok(PushDef::Bursts {
        every_ns,
        size,
        count,
        first_id,
    })
}

/// A push source numbers its events from `first_id`; all `n` of them must fit in a `u64`,
/// or ids would repeat.
fn ids_fit(first_id: u64, n: u128, at: usize, base: &str, key: &str) -> Result<(), Issue> {
    let last = u128::from(first_id) + n - 1;
    if last <= u128::from(u64::MAX) {
        return Ok(());
    }
    let message = format!(
        "the source's ids would not fit: first_id {first_id} + {n} events - 1 = {last} is more \
         than {} (u64::MAX); lower first_id or the number of events",
        u64::MAX
    );
    Err(Issue::new(at, path(base, key), message))
}

/// `script = [{ at_us, first, last }, …]`: in time order, ids never repeated.
fn script(
    raw: &Spanned<Vec<Spanned<RawScriptBatch>>>,
    base: &str,
    issues: &mut Issues,
) -> Option<PushDef> {
    if raw.get_ref().is_empty() {
        let message = "script needs at least one batch { at_us, first, last }";
        issues.push(Issue::new(start(raw), path(base, "script"), message));
        return None;
    }
    let before = issues.len();
    let mut batches = Vec::with_capacity(raw.get_ref().len());
    // Disjoint id ranges seen so far: first → (last, index).
    let mut seen: BTreeMap<u64, (u64, usize)> = BTreeMap::new();
    for (i, batch) in raw.get_ref().iter().enumerate() {
        let field = format!("{base}.script[{i}]");
        let Some(b) = issues.take(script_batch(batch.get_ref(), &field)) else {
            continue;
        };
        if let Some(prev) = batches.last().filter(|p: &&ScriptBatch| p.at_ns > b.at_ns) {
            let message = format!(
                "script batches must be in time order: at_us must be at least {} (the previous \
                 batch's), got {}",
                prev.at_ns / 1000,
                b.at_ns / 1000
            );
            issues.push(Issue::new(
                start(&batch.get_ref().at_us),
                path(&field, "at_us"),
                message,
            ));
        }
        if let Some((&a, &(z, j))) = seen
            .range(..=b.last)
            .next_back()
            .filter(|(_, (z, _))| *z >= b.first)
        {
            let message = format!(
                "ids {}..={} overlap script[{j}] ({a}..={z}); each id may arrive only once",
                b.first, b.last
            );
            issues.push(Issue::new(start(batch), field, message));
        } else {
            seen.insert(b.first, (b.last, i));
        }
        batches.push(b);
    }
    (issues.len() == before).then_some(PushDef::Script(batches))
}

fn script_batch(b: &RawScriptBatch, base: &str) -> Result<ScriptBatch, Issue> {
    let at_ns = us_to_ns(&b.at_us, base, "at_us", 0)?;
    let first = int_in(&b.first, base, "first", 0, u64::MAX)?;
    let last = int_in(&b.last, base, "last", 0, u64::MAX)?;
    if first > last {
        let message = format!("last must be at least first ({first}), got {last}");
        return Err(Issue::new(start(&b.last), path(base, "last"), message));
    }
    Ok(ScriptBatch { at_ns, first, last })
}
