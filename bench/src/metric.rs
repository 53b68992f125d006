//! What a benchmark run measures, and how two runs compare.
//!
//! Three kinds of figure, each compared its own way:
//!
//! - **exact** — simulated figures (virtual throughput, latency, memory, drops, losses).
//!   They do not depend on the machine: any change is reported, and a change in the
//!   wrong direction is a regression, with a threshold of zero.
//! - **ratio** — a threads-runtime throughput divided by its peer's (batched crossbeam of
//!   the same shape) measured right beside it, repeated; the median is compared, and
//!   the threshold comes from the spread of the baseline's repetitions (or
//!   `--max-regression`).
//! - **instructions** — the simulator's own cost, counted by callgrind per simulated
//!   protocol message; compared with a soft limit of [`INSTRUCTION_LIMIT_PCT`].
//!
//! A changed trace hash with exact figures unchanged is "behaviour changed": reported,
//! and a failure only with `--strict`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Instructions per message may grow this much (percent) before it is a regression.
pub const INSTRUCTION_LIMIT_PCT: f64 = 3.0;

/// The smallest and largest default threshold of a ratio metric, percent.
pub const RATIO_THRESHOLD_PCT: (f64, f64) = (25.0, 60.0);

/// How a figure was obtained, which decides how it is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Simulated: machine-independent, threshold zero.
    Exact,
    /// Measured on threads, divided by a peer measured in the same process.
    Ratio,
    /// Counted by callgrind.
    Instructions,
    /// Shown for context (a machine-dependent rate); never gated.
    Info,
}

/// Which way is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    /// More is better (throughput).
    Higher,
    /// Less is better (latency, memory, drops, cost).
    Lower,
}

/// One figure of a run, with its spread over repetitions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// `scenario/figure`, e.g. `sim/log-pipeline/p99_us` or `threads/chain-3/ratio`.
    pub name: String,
    /// How it was obtained.
    pub kind: Kind,
    /// Which way is better.
    pub better: Better,
    /// The median (or the only value).
    pub value: f64,
    /// The smallest repetition.
    pub min: f64,
    /// The largest repetition.
    pub max: f64,
    /// Units, for the table (`events/s`, `us`, `x`, `instr/msg`, …).
    pub unit: String,
}

impl Metric {
    /// A figure measured once.
    pub fn once(name: &str, kind: Kind, better: Better, value: f64, unit: &str) -> Self {
        Metric {
            name: name.to_string(),
            kind,
            better,
            value,
            min: value,
            max: value,
            unit: unit.to_string(),
        }
    }

    /// The median of `values` (at least one), with their min and max.
    pub fn repeated(name: &str, kind: Kind, better: Better, values: &[f64], unit: &str) -> Self {
        Metric {
            name: name.to_string(),
            kind,
            better,
            value: median(values),
            min: values.iter().copied().reduce(f64::min).unwrap_or(0.0),
            max: values.iter().copied().reduce(f64::max).unwrap_or(0.0),
            unit: unit.to_string(),
        }
    }

    /// The spread of the repetitions, percent of the median.
    pub fn spread_pct(&self) -> f64 {
        if self.value == 0.0 {
            0.0
        } else {
            (self.max - self.min) / self.value.abs() * 100.0
        }
    }
}

/// The verdict on one figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Unchanged (or within the threshold).
    Same,
    /// Better than the baseline beyond the threshold.
    Improved,
    /// Worse beyond the threshold.
    Regressed,
    /// In the baseline but not measured now (or the other way round).
    Missing,
    /// Not measured on this machine (for example valgrind is not installed).
    Skipped,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Same => "ok",
            Verdict::Improved => "improved",
            Verdict::Regressed => "REGRESSED",
            Verdict::Missing => "MISSING",
            Verdict::Skipped => "skipped",
        })
    }
}

/// One row of the comparison table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    /// The metric.
    pub metric: String,
    /// Its units.
    pub unit: String,
    /// The baseline's value.
    pub baseline: Option<f64>,
    /// This run's value.
    pub now: Option<f64>,
    /// Relative change, percent (positive: larger).
    pub change_pct: Option<f64>,
    /// The threshold that applied, percent.
    pub threshold_pct: f64,
    /// The verdict.
    pub verdict: Verdict,
}

/// The threshold of `base` (percent); `override_pct` (`--max-regression`) replaces the
/// default of ratio figures.
pub fn threshold_pct(base: &Metric, override_pct: Option<f64>) -> f64 {
    match base.kind {
        Kind::Exact | Kind::Info => 0.0,
        Kind::Instructions => INSTRUCTION_LIMIT_PCT,
        Kind::Ratio => override_pct.unwrap_or_else(|| {
            (2.0 * base.spread_pct()).clamp(RATIO_THRESHOLD_PCT.0, RATIO_THRESHOLD_PCT.1)
        }),
    }
}

/// Compares one figure with its baseline.
///
/// ```
/// use flowbench_bench::metric::{compare, Better, Kind, Metric, Verdict};
/// let base = Metric::once("sim/x/p99_us", Kind::Exact, Better::Lower, 10.0, "us");
/// let worse = Metric::once("sim/x/p99_us", Kind::Exact, Better::Lower, 10.5, "us");
/// assert_eq!(compare(&base, &worse, None).verdict, Verdict::Regressed);
/// assert_eq!(compare(&base, &base, None).verdict, Verdict::Same);
/// ```
pub fn compare(base: &Metric, now: &Metric, override_pct: Option<f64>) -> Row {
    let threshold = threshold_pct(base, override_pct);
    let change = if base.value == 0.0 {
        if now.value == 0.0 {
            0.0
        } else {
            f64::INFINITY.copysign(now.value)
        }
    } else {
        (now.value - base.value) / base.value.abs() * 100.0
    };
    let worse = match base.better {
        Better::Higher => -change,
        Better::Lower => change,
    };
    let exact_change = base.kind == Kind::Exact && now.value != base.value;
    let verdict = if base.kind == Kind::Info {
        Verdict::Same
    } else if (exact_change && worse > 0.0) || (!exact_change && worse > threshold) {
        Verdict::Regressed
    } else if (exact_change && worse < 0.0) || (!exact_change && -worse > threshold) {
        Verdict::Improved
    } else {
        Verdict::Same
    };
    Row {
        metric: base.name.clone(),
        unit: base.unit.clone(),
        baseline: Some(base.value),
        now: Some(now.value),
        change_pct: Some(change),
        threshold_pct: threshold,
        verdict,
    }
}

/// The median of `values` (the mean of the middle two for an even count; 0 for none).
///
/// ```
/// use flowbench_bench::metric::median;
/// assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
/// assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
/// assert_eq!(median(&[]), 0.0);
/// ```
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[mid],
        _ => (v[mid - 1] + v[mid]) / 2.0,
    }
}

/// The mean of `values` without the lowest and the highest fifth (the median for fewer
/// than five; 0 for none): robust to an outlier like the median, but a pipeline whose
/// runs fall into two modes counts both in proportion.
///
/// ```
/// use flowbench_bench::metric::trimmed_mean;
/// assert_eq!(trimmed_mean(&[100.0, 1.0, 2.0, 3.0, 4.0]), 3.0);
/// assert_eq!(trimmed_mean(&[3.0, 1.0, 2.0]), 2.0);
/// assert_eq!(trimmed_mean(&[]), 0.0);
/// ```
pub fn trimmed_mean(values: &[f64]) -> f64 {
    if values.len() < 5 {
        return median(values);
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let cut = v.len() / 5;
    let kept = &v[cut..v.len() - cut];
    kept.iter().sum::<f64>() / kept.len() as f64
}
