//! Checks of single values: number ranges, times, "exactly one of" key groups, and
//! service-time distributions. Nothing here knows about stages or subscriptions.

use toml::Spanned;

use super::error::{Issue, Issues};
use super::model::Dist;
use super::raw::{Int, Num, RawDist, RawDistKind};

/// The largest `*_us` value whose nanoseconds fit in a `u64`.
const MAX_US: u64 = u64::MAX / 1000;

/// Byte offset where a spanned value starts.
pub(super) fn start<T>(value: &Spanned<T>) -> usize {
    value.span().start
}

/// The path of `key` inside `base`: `stage[0]` + `source` → `stage[0].source`; an empty
/// `base` is the top level.
pub(super) fn path(base: &str, key: &str) -> String {
    if base.is_empty() {
        key.to_owned()
    } else {
        format!("{base}.{key}")
    }
}

/// Checks that an integer lies in `min..=max`.
pub(super) fn int_in(
    value: &Spanned<Int>,
    base: &str,
    key: &str,
    min: u64,
    max: u64,
) -> Result<u64, Issue> {
    let got = value.get_ref().0;
    u64::try_from(got)
        .ok()
        .filter(|v| (min..=max).contains(v))
        .ok_or_else(|| {
            Issue::new(
                start(value),
                path(base, key),
                range_message(key, min, max, got),
            )
        })
}

/// Like [`int_in`], for keys stored as `u32`.
pub(super) fn int_u32(
    value: &Spanned<Int>,
    base: &str,
    key: &str,
    min: u32,
    max: u32,
) -> Result<u32, Issue> {
    let v = int_in(value, base, key, min.into(), max.into())?;
    u32::try_from(v).map_err(|_| {
        let message = range_message(key, min.into(), max.into(), v.into());
        Issue::new(start(value), path(base, key), message)
    })
}

fn range_message(key: &str, min: u64, max: u64, got: i128) -> String {
    if max != u64::MAX {
        format!("{key} must be from {min} to {max}, got {got}")
    } else if got < i128::from(min) {
        format!("{key} must be at least {min}, got {got}")
    } else {
        format!("{key} must be at most {max}, got {got}")
    }
}

/// An optional integer, `default` when absent.
pub(super) fn int_or(
    value: &Option<Spanned<Int>>,
    base: &str,
    key: &str,
    min: u64,
    default: u64,
) -> Result<u64, Issue> {
    value
        .as_ref()
        .map_or(Ok(default), |v| int_in(v, base, key, min, u64::MAX))
}

/// A time in µs (at least `min_us`), converted to ns.
pub(super) fn us_to_ns(
    value: &Spanned<Int>,
    base: &str,
    key: &str,
    min_us: u64,
) -> Result<u64, Issue> {
    let us = int_in(value, base, key, min_us, u64::MAX)?;
    us.checked_mul(1000).ok_or_else(|| {
        let message = format!(
            "{key} must be at most {MAX_US} (larger times overflow u64 nanoseconds), got {us}"
        );
        Issue::new(start(value), path(base, key), message)
    })
}

/// A finite number greater than 0.
pub(super) fn positive(value: &Spanned<Num>, base: &str, key: &str) -> Result<f64, Issue> {
    let got = value.get_ref().0;
    if got.is_finite() && got > 0.0 {
        return Ok(got);
    }
    let message = format!("{key} must be a finite number greater than 0, got {got}");
    Err(Issue::new(start(value), path(base, key), message))
}

/// A finite number, 0 or more.
fn non_negative(value: &Spanned<Num>, base: &str, key: &str) -> Result<f64, Issue> {
    let got = value.get_ref().0;
    if got.is_finite() && got >= 0.0 {
        return Ok(got);
    }
    let message = format!("{key} must be a finite number of at least 0, got {got}");
    Err(Issue::new(start(value), path(base, key), message))
}

/// Records an issue for each key present in `keys` after the first: "exactly one of".
/// Returns the one key present, or `None` (after recording why).
pub(super) fn exactly_one<'k>(
    keys: &[(&'k str, Option<usize>)],
    table_offset: usize,
    base: &str,
    what: &str,
    issues: &mut Issues,
) -> Option<&'k str> {
    let allowed = backtick_list(keys.iter().map(|(k, _)| *k));
    let mut present: Vec<(&str, usize)> = keys
        .iter()
        .filter_map(|&(key, offset)| offset.map(|o| (key, o)))
        .collect();
    present.sort_by_key(|&(_, offset)| offset);
    match present.as_slice() {
        [] => {
            let message = format!("{what} needs exactly one of {allowed}, got none");
            issues.push(Issue::new(table_offset, base, message));
            None
        }
        [(key, _)] => Some(key),
        [(first, _), rest @ ..] => {
            for (key, offset) in rest {
                let message = format!(
                    "{what} takes exactly one of {allowed}, got both `{first}` and `{key}`"
                );
                issues.push(Issue::new(*offset, path(base, key), message));
            }
            None
        }
    }
}

/// "`a`, `b`, `c`".
pub(super) fn backtick_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    items
        .into_iter()
        .map(|item| format!("`{item}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Like `Option::as_ref().map(start)`, for "which keys are present" lists.
pub(super) fn offset_of<T>(value: &Option<Spanned<T>>) -> Option<usize> {
    value.as_ref().map(start)
}

/// A service-time distribution: `{ dist = …, … }`.
pub(super) fn dist(raw: &Spanned<RawDist>, base: &str, issues: &mut Issues) -> Option<Dist> {
    let d = raw.get_ref();
    let kind = *d.dist.get_ref();
    let before = issues.len();
    let keys = [
        ("ns", offset_of(&d.ns)),
        ("min_ns", offset_of(&d.min_ns)),
        ("max_ns", offset_of(&d.max_ns)),
        ("mean_ns", offset_of(&d.mean_ns)),
        ("median_ns", offset_of(&d.median_ns)),
        ("sigma", offset_of(&d.sigma)),
    ];
    let takes = dist_keys(kind);
    for (key, offset) in keys {
        if let (Some(offset), false) = (offset, takes.contains(&key)) {
            let message = format!(
                "`{key}` does not apply to dist = \"{}\", which takes {}",
                kind.name(),
                backtick_list(takes.iter().copied())
            );
            issues.push(Issue::new(offset, path(base, key), message));
        }
    }
    let need = |key: &str| {
        let message = format!(
            "dist = \"{}\" needs `{key}` (it takes {})",
            kind.name(),
            backtick_list(takes.iter().copied())
        );
        Issue::new(start(raw), path(base, key), message)
    };
    let dist = match kind {
        RawDistKind::Fixed => {
            let ns = d.ns.as_ref().ok_or_else(|| need("ns"));
            issues
                .take(ns.and_then(|v| int_in(v, base, "ns", 0, u64::MAX)))
                .map(|ns| Dist::Fixed { ns })
        }
        RawDistKind::Uniform => uniform(d, base, need, issues),
        RawDistKind::Exp => {
            let mean = d.mean_ns.as_ref().ok_or_else(|| need("mean_ns"));
            issues
                .take(mean.and_then(|v| positive(v, base, "mean_ns")))
                .map(|mean_ns| Dist::Exp { mean_ns })
        }
        RawDistKind::Lognormal => {
            let median = d.median_ns.as_ref().ok_or_else(|| need("median_ns"));
            let median = issues.take(median.and_then(|v| positive(v, base, "median_ns")));
            let sigma = d.sigma.as_ref().ok_or_else(|| need("sigma"));
            let sigma = issues.take(sigma.and_then(|v| non_negative(v, base, "sigma")));
            median
                .zip(sigma)
                .map(|(median_ns, sigma)| Dist::LogNormal { median_ns, sigma })
        }
    };
    dist.filter(|_| issues.len() == before)
}

/// The keys each `dist` takes besides `dist` itself.
fn dist_keys(kind: RawDistKind) -> &'static [&'static str] {
    match kind {
        RawDistKind::Fixed => &["ns"],
        RawDistKind::Uniform => &["min_ns", "max_ns"],
        RawDistKind::Exp => &["mean_ns"],
        RawDistKind::Lognormal => &["median_ns", "sigma"],
    }
}

fn uniform(
    d: &RawDist,
    base: &str,
    need: impl Fn(&str) -> Issue,
    issues: &mut Issues,
) -> Option<Dist> {
    let min = d.min_ns.as_ref().ok_or_else(|| need("min_ns"));
    let min_ns = issues.take(min.and_then(|v| int_in(v, base, "min_ns", 0, u64::MAX)));
    let max = d.max_ns.as_ref().ok_or_else(|| need("max_ns"));
    let max_ns = issues.take(max.and_then(|v| int_in(v, base, "max_ns", 0, u64::MAX)));
    let (min_ns, max_ns) = min_ns.zip(max_ns)?;
    if min_ns <= max_ns {
        return Some(Dist::Uniform { min_ns, max_ns });
    }
    let offset = d.max_ns.as_ref().map_or(0, start);
    let message = format!("max_ns must be at least min_ns ({min_ns}), got {max_ns}");
    issues.push(Issue::new(offset, path(base, "max_ns"), message));
    None
}
