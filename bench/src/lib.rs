//! # flowbench-bench
//!
//! Benchmarks of flowbench against its peers, and the regression gate behind
//! `flowbench bench`.
//!
//! **Should I be using this crate?** Use the `flowbench bench` command to gate a CI job on
//! a pipeline's speed and behaviour; use this crate to run the same suite from Rust. The
//! criterion benches (`cargo bench -p flowbench-bench`) measure the threads runtime
//! against crossbeam-channel and `std::sync::mpsc`, and the simulator, with criterion's
//! HTML reports.
//!
//! A run of the gate ([`run`]) measures a versioned [suite](mod@suite) — simulated cases with
//! exact metrics, threads pipelines as ratios to a peer measured beside them, and the
//! simulator's own cost in instructions per message — or the user's scenario files, and
//! compares it with a saved [`Baseline`]. See [`metric`] for how each kind of figure is
//! compared.
//!
//! ```
//! use flowbench_bench::{run, Options, Suite};
//! use flowbench_engine::scenario::parse_str;
//! let s = parse_str("[[stage]]\nname = \"p\"\nkind = \"producer\"\nsource = { range = [1, 100] }\n[[stage]]\nname = \"c\"\nkind = \"consumer\"\n[[subscription]]\nproducer = \"p\"\nconsumer = \"c\"\n", "x.toml").unwrap();
//! let opts = Options { suite: Suite::Scenarios, scenarios: vec![("x".into(), s)], ..Options::default() };
//! let first = run(&opts, None).unwrap();
//! let again = run(&opts, Some(&first.baseline)).unwrap();
//! assert!(!again.regressed());
//! ```

pub mod baseline;
pub mod calibrate;
pub mod metric;
pub mod pipelines;
pub mod suite;
pub mod tune;
pub mod words;

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::path::PathBuf;

use flowbench_engine::scenario::Scenario;
use serde::Serialize;

pub use crate::baseline::{Baseline, Machine};

/// The commit flowbench was built from (`git rev-parse HEAD` at build time), or
/// `unknown` when built outside a git checkout.
pub const COMMIT: &str = env!("FLOWBENCH_COMMIT");
pub use crate::metric::{Metric, Row, Verdict};
pub use crate::suite::{Suite, SUITE_VERSION};

use crate::metric::Kind;
use crate::suite::{CaseInfo, SimCase};

/// Why a bench run could not be compared: bad input (exit 2).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BenchError {
    /// The baseline file is missing, malformed, or of another suite.
    Baseline {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// Something the run needs is wrong (a scenario that cannot run, say).
    Input(String),
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BenchError::Baseline { file, message } => write!(f, "baseline {file}: {message}"),
            BenchError::Input(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for BenchError {}

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// The suite; [`Suite::Scenarios`] runs `scenarios` only.
    pub suite: Suite,
    /// The user's scenarios (name, scenario), run on the simulator at their seed.
    pub scenarios: Vec<(String, Scenario)>,
    /// The per-producer event limit of the user's scenarios.
    pub events: Option<u64>,
    /// The threshold of ratio figures, percent; default from the baseline's spread.
    /// Instruction counts keep [`metric::INSTRUCTION_LIMIT_PCT`].
    pub max_regression_pct: Option<f64>,
    /// A changed trace hash with equal figures fails too.
    pub strict: bool,
    /// The `flowbench` binary, for callgrind to run (`None`: instructions not counted).
    pub exe: Option<PathBuf>,
    /// `release` or `debug`: the build being measured.
    pub profile: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            suite: Suite::Quick,
            scenarios: Vec::new(),
            events: None,
            max_regression_pct: None,
            strict: false,
            exe: None,
            profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            }
            .to_string(),
        }
    }
}

/// A finished bench run: its figures, and their comparison with a baseline if one was
/// given.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// What this run measured, ready to save.
    pub baseline: Baseline,
    /// One row per metric (empty without a baseline).
    pub rows: Vec<Row>,
    /// Simulated cases whose trace hash changed while their figures did not.
    pub behaviour_changed: Vec<String>,
    /// `--strict` was given.
    pub strict: bool,
    /// Notes (a metric skipped, and why).
    pub notes: Vec<String>,
}

impl Report {
    /// `true` if a metric regressed, one went missing, or (with `--strict`) behaviour
    /// changed.
    pub fn regressed(&self) -> bool {
        self.rows
            .iter()
            .any(|r| matches!(r.verdict, Verdict::Regressed | Verdict::Missing))
            || (self.strict && !self.behaviour_changed.is_empty())
    }

    /// The comparison as a table and one summary line (or the figures alone, without a
    /// baseline).
    pub fn table(&self) -> String {
        let mut s = String::new();
        let fmt_v = |v: Option<f64>| v.map_or_else(|| "-".to_string(), format_value);
        if self.rows.is_empty() {
            let _ = writeln!(s, "{:<52} {:>16}  unit", "metric", "value (min..max)");
            for m in &self.baseline.metrics {
                let range = if m.min == m.max {
                    String::new()
                } else {
                    format!(" ({}..{})", format_value(m.min), format_value(m.max))
                };
                let _ = writeln!(
                    s,
                    "{:<52} {:>16}{range}  {}",
                    m.name,
                    format_value(m.value),
                    m.unit
                );
            }
        } else {
            let _ = writeln!(
                s,
                "{:<52} {:>14} {:>14} {:>9} {:>6}  verdict",
                "metric", "baseline", "now", "change", "limit"
            );
            for r in &self.rows {
                let change = r
                    .change_pct
                    .map_or_else(|| "-".to_string(), |c| format!("{c:+.1}%"));
                let _ = writeln!(
                    s,
                    "{:<52} {:>14} {:>14} {:>9} {:>5.0}%  {}",
                    r.metric,
                    fmt_v(r.baseline),
                    fmt_v(r.now),
                    change,
                    r.threshold_pct,
                    r.verdict
                );
            }
        }
        for c in &self.behaviour_changed {
            let _ = writeln!(
                s,
                "behaviour changed: {c}: same figures, another trace hash{}",
                if self.strict {
                    " (fails with --strict)"
                } else {
                    ""
                }
            );
        }
        for n in &self.notes {
            let _ = writeln!(s, "note: {n}");
        }
        let _ = writeln!(s, "{}", self.summary_line());
        s
    }

    /// One line: how many metrics, how many regressed.
    pub fn summary_line(&self) -> String {
        if self.rows.is_empty() {
            return format!(
                "bench: {} metrics measured ({} suite v{}), no baseline to compare with",
                self.baseline.metrics.len(),
                self.baseline.suite.name(),
                self.baseline.suite_version
            );
        }
        let count = |v: Verdict| self.rows.iter().filter(|r| r.verdict == v).count();
        let bad = count(Verdict::Regressed) + count(Verdict::Missing);
        format!(
            "bench: {} {} of {} metrics regressed, {} improved, {} skipped{}",
            if self.regressed() { "FAIL:" } else { "ok:" },
            bad,
            self.rows.len(),
            count(Verdict::Improved),
            count(Verdict::Skipped),
            if self.behaviour_changed.is_empty() {
                String::new()
            } else {
                format!("; behaviour changed in {}", self.behaviour_changed.len())
            }
        )
    }
}

fn format_value(v: f64) -> String {
    if v.abs() >= 1e6 {
        format!("{:.3e}", v)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// Runs the suite (or the user's scenarios) and compares it with `baseline` if given.
/// Errors: a baseline of another suite, version or set of cases (bad input).
pub fn run(opts: &Options, baseline: Option<&Baseline>) -> Result<Report, BenchError> {
    run_with_progress(opts, baseline, &mut |_, _, _| {})
}

/// [`run`], calling `progress(done, total, case)` before each case (for a progress bar).
pub fn run_with_progress(
    opts: &Options,
    baseline: Option<&Baseline>,
    progress: &mut dyn FnMut(usize, usize, &str),
) -> Result<Report, BenchError> {
    let sim_cases: Vec<SimCase> = match opts.suite {
        Suite::Scenarios => opts
            .scenarios
            .iter()
            .map(|(name, s)| SimCase {
                name: name.clone(),
                scenario: s.clone(),
                seed: s.seed.unwrap_or(0),
                events: opts.events,
            })
            .collect(),
        suite => suite::sim_cases(suite),
    };
    let chains = suite::chain_cases(opts.suite);
    let mut cases: Vec<CaseInfo> = sim_cases
        .iter()
        .map(|c| CaseInfo {
            name: format!("sim/{}", c.name),
            seed: Some(c.seed),
            events: c.events,
        })
        .collect();
    cases.extend(chains.iter().map(|c| CaseInfo {
        name: format!("threads/{}", c.name()),
        seed: None,
        events: Some(c.events),
    }));
    if let Some(b) = baseline {
        if let Some(why) = b.mismatch(opts.suite, SUITE_VERSION, &cases) {
            return Err(BenchError::Baseline {
                file: "(given)".to_string(),
                message: why,
            });
        }
    }
    let instruction_step = usize::from(opts.suite != Suite::Scenarios);
    let total = sim_cases.len() + chains.len() + instruction_step;
    let mut tick = |done: usize, what: &str| progress(done, total, what);
    let mut metrics = Vec::new();
    let mut hashes = BTreeMap::new();
    let mut notes = Vec::new();
    for (i, c) in sim_cases.iter().enumerate() {
        tick(i, &c.name);
        let (m, hash) = suite::sim_metrics(c);
        metrics.extend(m);
        hashes.insert(format!("sim/{}", c.name), hash);
    }
    for (i, c) in chains.iter().enumerate() {
        tick(sim_cases.len() + i, &c.name());
        metrics.extend(suite::chain_metrics(c, opts.suite.reps()));
    }
    if instruction_step == 1 {
        tick(total - 1, "instructions");
        match opts.exe.as_deref() {
            None => notes.push("instructions not counted: no flowbench binary given".into()),
            Some(exe) => match suite::instructions_per_message(exe) {
                Ok(Some(m)) => metrics.push(m),
                Ok(None) => notes.push(
                    "instructions not counted: valgrind is not installed \
                     (scripts/bench-gate.sh installs it)"
                        .into(),
                ),
                Err(e) => notes.push(format!("instructions not counted: {e}")),
            },
        }
    }
    tick(total, "done");
    let now = Baseline {
        suite: opts.suite,
        suite_version: SUITE_VERSION,
        flowbench: env!("CARGO_PKG_VERSION").to_string(),
        profile: opts.profile.clone(),
        machine: Machine::this(),
        rustc: command_line("rustc", &["--version"]),
        commit: COMMIT.to_string(),
        date: baseline::utc_now(),
        cases,
        metrics,
        hashes,
    };
    let mut now = now;
    let (mut rows, mut behaviour_changed) = match baseline {
        Some(b) => compare_all(b, &now, opts, &mut notes),
        None => (Vec::new(), Vec::new()),
    };
    if let Some(b) = baseline {
        let names: Vec<String> = chains
            .iter()
            .map(|c| format!("threads/{}/", c.name()))
            .collect();
        let reps = opts.suite.reps();
        let mut measure = |i: usize| suite::chain_metrics(&chains[i], reps);
        if confirm(&names, &rows, &mut now, &mut notes, &mut measure) {
            let mut more = Vec::new();
            (rows, behaviour_changed) = compare_all(b, &now, opts, &mut more);
            for n in more {
                if !notes.contains(&n) {
                    notes.push(n);
                }
            }
        }
    }
    Ok(Report {
        baseline: now,
        rows,
        behaviour_changed,
        strict: opts.strict,
        notes,
    })
}

/// A measured ratio that regressed is measured once more before the gate fails: a real
/// regression regresses twice, a busy moment of a shared machine seldom does. `cases[i]`
/// is the metric-name prefix of case `i` (`threads/chain-3-md1/`), `measure(i)` measures
/// it again. Keeps the second measurement where its ratio is better; returns whether any
/// was kept (the rows must then be compared again).
fn confirm(
    cases: &[String],
    rows: &[Row],
    now: &mut Baseline,
    notes: &mut Vec<String>,
    measure: &mut dyn FnMut(usize) -> Vec<Metric>,
) -> bool {
    let mut kept = false;
    for (i, prefix) in cases.iter().enumerate() {
        let name = format!("{prefix}ratio");
        let regressed = rows
            .iter()
            .any(|r| r.metric == name && r.verdict == Verdict::Regressed);
        if !regressed {
            continue;
        }
        let first = now.metrics.iter().find(|m| m.name == name).map(|m| m.value);
        let second = measure(i);
        let value = second.iter().find(|m| m.name == name).map(|m| m.value);
        if let (Some(a), Some(v)) = (first, value) {
            notes.push(format!(
                "{name} regressed on the first measurement ({a:.3}); measured again: {v:.3}{}",
                if v > a { " (kept)" } else { "" }
            ));
            if v > a {
                now.metrics.retain(|m| !m.name.starts_with(prefix.as_str()));
                now.metrics.extend(second);
                kept = true;
            }
        }
    }
    kept
}

fn compare_all(
    base: &Baseline,
    now: &Baseline,
    opts: &Options,
    notes: &mut Vec<String>,
) -> (Vec<Row>, Vec<String>) {
    let mut rows = Vec::new();
    for b in &base.metrics {
        let current = now.metrics.iter().find(|m| m.name == b.name);
        let row = match current {
            Some(n) if b.kind == Kind::Instructions && base.profile != now.profile => Row {
                verdict: Verdict::Skipped,
                ..metric::compare(b, n, opts.max_regression_pct)
            },
            Some(n) => metric::compare(b, n, opts.max_regression_pct),
            None if b.kind == Kind::Instructions => Row {
                metric: b.name.clone(),
                unit: b.unit.clone(),
                baseline: Some(b.value),
                now: None,
                change_pct: None,
                threshold_pct: metric::threshold_pct(b, opts.max_regression_pct),
                verdict: Verdict::Skipped,
            },
            None => Row {
                metric: b.name.clone(),
                unit: b.unit.clone(),
                baseline: Some(b.value),
                now: None,
                change_pct: None,
                threshold_pct: 0.0,
                verdict: Verdict::Missing,
            },
        };
        rows.push(row);
    }
    if base.profile != now.profile {
        notes.push(format!(
            "instruction counts not compared: the baseline was taken with a {} build, this is \
             a {} build",
            base.profile, now.profile
        ));
    }
    // Behaviour changed: another trace hash while every exact figure of the case held.
    let mut changed = Vec::new();
    for (case, hash) in &base.hashes {
        if now.hashes.get(case) == Some(hash) {
            continue;
        }
        let prefix = format!("{case}/");
        let figures_moved = rows
            .iter()
            .any(|r| r.metric.starts_with(&prefix) && r.verdict != Verdict::Same);
        if !figures_moved {
            changed.push(case.clone());
        }
    }
    (rows, changed)
}

/// The first line a command prints, or `unknown`.
fn command_line(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            String::from_utf8(o.stdout)
                .ok()
                .and_then(|s| s.lines().next().map(str::to_string))
        })
        .unwrap_or_else(|| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::Better;

    fn base(hash: &str, p99: f64) -> Baseline {
        Baseline {
            suite: Suite::Scenarios,
            suite_version: SUITE_VERSION,
            flowbench: "0".into(),
            profile: "release".into(),
            machine: Machine {
                cpu: "x".into(),
                cores: 2,
            },
            rustc: "r".into(),
            commit: "c".into(),
            date: "d".into(),
            cases: Vec::new(),
            metrics: vec![Metric::once(
                "sim/a/p99_us",
                Kind::Exact,
                Better::Lower,
                p99,
                "us",
            )],
            hashes: [("sim/a".to_string(), hash.to_string())].into(),
        }
    }

    #[test]
    fn another_trace_hash_with_the_same_figures_is_behaviour_changed_and_fails_only_strict() {
        let mut notes = Vec::new();
        let opts = Options::default();
        let (rows, changed) = compare_all(&base("aa", 5.0), &base("bb", 5.0), &opts, &mut notes);
        assert_eq!(changed, ["sim/a"]);
        let mut report = Report {
            baseline: base("bb", 5.0),
            rows,
            behaviour_changed: changed,
            strict: false,
            notes,
        };
        assert!(!report.regressed());
        report.strict = true;
        assert!(report.regressed());
        // When a figure moved too, the change is the figure's, not "behaviour changed".
        let (rows, changed) =
            compare_all(&base("aa", 5.0), &base("bb", 6.0), &opts, &mut Vec::new());
        assert!(changed.is_empty());
        assert_eq!(rows[0].verdict, Verdict::Regressed);
    }

    fn ratio(name: &str, v: f64) -> Metric {
        Metric::once(name, Kind::Ratio, Better::Higher, v, "x")
    }

    #[test]
    fn a_regressed_ratio_is_measured_again_and_passes_only_if_the_second_does() {
        let opts = Options {
            max_regression_pct: Some(50.0),
            ..Options::default()
        };
        let mut old = base("aa", 5.0);
        old.metrics = vec![ratio("threads/x/ratio", 1.0), ratio("threads/y/ratio", 1.0)];
        let mut now = old.clone();
        now.metrics = vec![ratio("threads/x/ratio", 0.2), ratio("threads/y/ratio", 0.2)];
        let mut notes = Vec::new();
        let (rows, _) = compare_all(&old, &now, &opts, &mut notes);
        assert!(rows.iter().all(|r| r.verdict == Verdict::Regressed));
        // x was a busy moment (0.9 the second time); y really regressed (0.1 again).
        let cases = ["threads/x/".to_string(), "threads/y/".to_string()];
        let mut asked = Vec::new();
        let mut measure = |i: usize| {
            asked.push(i);
            vec![ratio(&format!("{}ratio", cases[i]), [0.9, 0.1][i])]
        };
        assert!(confirm(&cases, &rows, &mut now, &mut notes, &mut measure));
        assert_eq!(asked, [0, 1], "each regressed case once");
        let (rows, _) = compare_all(&old, &now, &opts, &mut notes);
        let verdict = |n: &str| rows.iter().find(|r| r.metric == n).map(|r| r.verdict);
        assert_eq!(verdict("threads/x/ratio"), Some(Verdict::Same));
        assert_eq!(verdict("threads/y/ratio"), Some(Verdict::Regressed));
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(
            notes[0].contains("measured again: 0.900 (kept)"),
            "{notes:?}"
        );
        // Nothing regressed: nothing is measured.
        let mut never = |_: usize| -> Vec<Metric> { panic!("measured without a regression") };
        let same = old.clone();
        let (rows, _) = compare_all(&old, &same, &opts, &mut Vec::new());
        assert!(!confirm(
            &cases,
            &rows,
            &mut old.clone(),
            &mut Vec::new(),
            &mut never
        ));
    }
}
