//! Demand-tuning sweeps: `flowbench tune`.
//!
//! A sweep sets `max_demand` (on a log scale) and `min_demand` (as a fraction of it) on
//! the chosen subscriptions — all of them together when none is named — runs each point
//! on the simulator for several seeds, and reports the figures of every point, the Pareto
//! frontier over (throughput, p99 latency, peak memory) and one recommendation in plain
//! words, with the bottleneck and the pathologies it sees.
//!
//! With two or more named subscriptions the joint space is searched by **coordinate
//! descent**: every subscription starts at GenStage's default (1000/500); each round
//! sweeps one subscription's grid with the others held at their current choice and
//! keeps the objective's choice; two rounds over all subscriptions.
//!
//! Everything is a function of the scenario, the options and the seeds: the same sweep
//! gives the same numbers on any machine, with any number of jobs, sharded or not.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use flowbench_engine::scenario::{DispatcherDef, Scenario};
use flowbench_engine::{Demand, StageKind};
use flowbench_sim::{run, SimOptions};
use serde::{Deserialize, Serialize};

/// What to optimise for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// The smallest setting within 2% of the best throughput.
    Throughput,
    /// The lowest p99 latency among settings keeping 95% of the best throughput.
    P99,
    /// The lowest peak memory among settings keeping 95% of the best throughput.
    Memory,
    /// The knee of the frontier: the frontier point that maximises normalised throughput
    /// minus half the normalised p99 and half the normalised memory.
    Balanced,
}

impl Objective {
    /// `throughput`, `p99`, `memory`, `balanced`.
    pub fn name(self) -> &'static str {
        match self {
            Objective::Throughput => "throughput",
            Objective::P99 => "p99",
            Objective::Memory => "memory",
            Objective::Balanced => "balanced",
        }
    }
}

/// A sweep's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TuneOptions {
    /// The subscriptions to tune, as `(producer, consumer)` names; empty: all together.
    pub subscriptions: Vec<(String, String)>,
    /// The range of `max_demand`, inclusive.
    pub max: (u64, u64),
    /// The range of `min_demand / max_demand`.
    pub min_ratio: (f64, f64),
    /// Grid size: `max_demand` values × min ratios.
    pub grid: (usize, usize),
    /// Seeds per point.
    pub seeds: u64,
    /// Events per producer per run (the sweep's scale).
    pub events: u64,
    /// What the recommendation optimises.
    pub objective: Objective,
    /// The threads runtime's own costs (`flowbench calibrate`): with them the sweep
    /// predicts threads rather than a free runtime.
    pub costs: Option<flowbench_sim::RuntimeCosts>,
}

impl Default for TuneOptions {
    fn default() -> Self {
        TuneOptions {
            subscriptions: Vec::new(),
            max: (1, 10_000),
            min_ratio: (0.0, 0.9),
            grid: (9, 4),
            seeds: 3,
            events: 20_000,
            objective: Objective::Balanced,
            costs: None,
        }
    }
}

/// One subscription's setting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting {
    /// The producing stage.
    pub producer: String,
    /// The consuming stage (`*` for "every subscription").
    pub consumer: String,
    /// `max_demand`.
    pub max_demand: u64,
    /// `min_demand`.
    pub min_demand: u64,
}

/// The figures of one point, over its seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Its index in the sweep.
    pub index: usize,
    /// What it set.
    pub settings: Vec<Setting>,
    /// Mean delivered events per second of virtual time.
    pub throughput_eps: f64,
    /// Spread of the throughput over seeds (max − min).
    pub throughput_spread: f64,
    /// Mean p99 born-to-consumed latency, µs.
    pub p99_us: f64,
    /// Mean p50 latency, µs.
    pub p50_us: f64,
    /// Mean peak of events held at once.
    pub memory_peak_events: f64,
    /// Events dropped (sum over seeds).
    pub drops: u64,
    /// Events received beyond what was asked (sum over seeds).
    pub excess: u64,
    /// Runs that failed (a deadlock): their figures are not in the means.
    pub failed_runs: u64,
    /// Mean busy fraction of every stage, by name.
    pub busy: BTreeMap<String, f64>,
    /// Mean events handled by every consuming stage, by name.
    pub handled: BTreeMap<String, f64>,
}

/// The recommendation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// The settings to use.
    pub settings: Vec<Setting>,
    /// The point they come from.
    pub point: usize,
    /// Its throughput, events/s (virtual).
    pub throughput_eps: f64,
    /// Its p99 latency, µs.
    pub p99_us: f64,
    /// Its peak memory, events.
    pub memory_peak_events: f64,
    /// The busiest stage there.
    pub bottleneck: String,
    /// The reason, in words.
    pub reason: String,
    /// Pathologies seen at that point.
    pub warnings: Vec<String>,
}

/// A sweep's result (also what `--shard` writes and `--merge` reads).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TuneResult {
    /// The scenario's name.
    pub scenario: String,
    /// The options.
    pub options: TuneOptions,
    /// The objective, by name.
    pub objective: String,
    /// Every point, in sweep order (a shard holds its own only).
    pub points: Vec<Point>,
    /// Indices of the Pareto-optimal points.
    pub pareto: Vec<usize>,
    /// The recommendation (`None` in a shard, or when no point ran).
    pub recommendation: Option<Recommendation>,
    /// `Some((i, n))` for the i-th of n shards.
    pub shard: Option<(usize, usize)>,
    /// How many points the whole sweep has.
    pub total_points: usize,
    /// The best points re-measured on real threads ([`measure_on_threads`]), if asked.
    #[serde(default)]
    pub threads: Vec<ThreadsCheck>,
}

/// A point's prediction next to its measurement on the threads runtime.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThreadsCheck {
    /// The point.
    pub point: usize,
    /// Its settings.
    pub settings: Vec<Setting>,
    /// The simulator's throughput, events/s.
    pub predicted_eps: f64,
    /// Measured on threads (service times as busy work), events/s: the median of runs.
    pub measured_eps: f64,
    /// `(predicted - measured) / measured`, percent.
    pub error_pct: f64,
}

/// Re-measures the recommendation and the frontier's fastest points (at most `n`) on real
/// threads, `reps` runs each, with the same events per producer as the sweep, under `scheduling`.
pub fn measure_on_threads(
    s: &Scenario,
    r: &mut TuneResult,
    n: usize,
    reps: usize,
    scheduling: flowbench_engine::threads::Scheduling,
) {
    use flowbench_engine::threads::scenario::{run_scenario, ScenarioRunOptions};
    let mut chosen: Vec<usize> = r.recommendation.iter().map(|rec| rec.point).collect();
    let mut front: Vec<&Point> = r
        .points
        .iter()
        .filter(|p| r.pareto.contains(&p.index))
        .collect();
    front.sort_by(|a, b| b.throughput_eps.total_cmp(&a.throughput_eps));
    for p in front {
        if chosen.len() >= n {
            break;
        }
        if !chosen.contains(&p.index) {
            chosen.push(p.index);
        }
    }
    r.threads = chosen
        .into_iter()
        .filter_map(|i| {
            let point = r.points.iter().find(|p| p.index == i)?;
            let groups: Plan = point
                .settings
                .iter()
                .map(|st| {
                    links_of(s, &st.producer, &st.consumer)
                        .map(|l| (l, st.max_demand, st.min_demand))
                })
                .collect::<Result<_, _>>()
                .ok()?;
            let sc = apply(s, &groups);
            let opts = ScenarioRunOptions {
                scheduling,
                events: Some(r.options.events),
                seed: s.seed.unwrap_or(0),
                ..ScenarioRunOptions::default()
            };
            let rates: Vec<f64> = (0..reps.max(1))
                .filter_map(|_| {
                    let o = run_scenario(&sc, &opts).ok()?.outcome;
                    let delivered: u64 = o
                        .stages
                        .iter()
                        .filter(|st| !st.kind.produces())
                        .map(|st| st.stats.handled)
                        .sum();
                    Some(delivered as f64 / o.elapsed.as_secs_f64().max(1e-9))
                })
                .collect();
            if rates.is_empty() {
                return None;
            }
            let measured = crate::metric::median(&rates).round();
            Some(ThreadsCheck {
                point: i,
                settings: point.settings.clone(),
                predicted_eps: point.throughput_eps,
                measured_eps: measured,
                error_pct: (point.throughput_eps - measured) / measured.max(1e-9) * 100.0,
            })
        })
        .collect();
}

/// `max_demand` values from `a` to `b` on a log scale, `n` of them (fewer when they
/// round to the same integer).
pub fn log_grid(a: u64, b: u64, n: usize) -> Vec<u64> {
    let (a, b) = (a.max(1), b.max(a.max(1)));
    if n <= 1 || a == b {
        return vec![a];
    }
    let (la, lb) = ((a as f64).ln(), (b as f64).ln());
    let mut v: Vec<u64> = (0..n)
        .map(|i| (la + (lb - la) * i as f64 / (n - 1) as f64).exp().round() as u64)
        .map(|x| x.clamp(a, b))
        .collect();
    v.dedup();
    v
}

/// The (max, min) settings of one subscription's grid.
pub fn grid(opts: &TuneOptions) -> Vec<(u64, u64)> {
    let maxes = log_grid(opts.max.0, opts.max.1, opts.grid.0);
    let n = opts.grid.1.max(1);
    let ratios: Vec<f64> = (0..n)
        .map(|j| {
            if n == 1 {
                opts.min_ratio.0
            } else {
                opts.min_ratio.0 + (opts.min_ratio.1 - opts.min_ratio.0) * j as f64 / (n - 1) as f64
            }
        })
        .collect();
    let mut out = Vec::new();
    for &m in &maxes {
        let mut mins: Vec<u64> = ratios
            .iter()
            .map(|r| ((m as f64 * r).floor() as u64).min(m - 1))
            .collect();
        mins.dedup();
        for mn in mins {
            out.push((m, mn));
        }
    }
    out
}

/// Why a sweep cannot run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TuneError(pub String);

impl std::fmt::Display for TuneError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TuneError {}

/// The link ids a `(producer, consumer)` name pair selects (a consumer `*` or a
/// producer `*` matches any).
fn links_of(s: &Scenario, p: &str, c: &str) -> Result<Vec<usize>, TuneError> {
    let name = |i: usize| s.stages[i].name.as_str();
    let v: Vec<usize> = s
        .links
        .iter()
        .enumerate()
        .filter(|(_, l)| (p == "*" || name(l.producer) == p) && (c == "*" || name(l.consumer) == c))
        .map(|(i, _)| i)
        .collect();
    if v.is_empty() {
        let known: Vec<String> = s
            .links
            .iter()
            .map(|l| format!("{}:{}", name(l.producer), name(l.consumer)))
            .collect();
        return Err(TuneError(format!(
            "--subscription {p}:{c} names no subscription; the scenario has {}",
            known.join(", ")
        )));
    }
    Ok(v)
}

/// The scenario with `settings` applied to the links they name.
fn apply(s: &Scenario, groups: &[(Vec<usize>, u64, u64)]) -> Scenario {
    let mut s = s.clone();
    for (links, max, min) in groups {
        for &l in links {
            if let Ok(d) = Demand::new(*max, Some(*min)) {
                s.links[l].demand = d;
            }
        }
    }
    s
}

/// Runs one point: every seed, figures averaged.
fn measure(
    s: &Scenario,
    index: usize,
    settings: Vec<Setting>,
    groups: &[(Vec<usize>, u64, u64)],
    opts: &TuneOptions,
) -> Point {
    let sc = apply(s, groups);
    let base_seed = s.seed.unwrap_or(0);
    let mut tp = Vec::new();
    let (mut p99, mut p50, mut mem) = (0.0, 0.0, 0.0);
    let (mut drops, mut excess, mut failed) = (0u64, 0u64, 0u64);
    let mut busy: BTreeMap<String, f64> = BTreeMap::new();
    let mut handled: BTreeMap<String, f64> = BTreeMap::new();
    for k in 0..opts.seeds.max(1) {
        let o = SimOptions {
            seed: Some(base_seed.wrapping_add(k)),
            events: Some(opts.events),
            until_ns: None,
            sample_ns: 0,
            costs: opts.costs,
            // A sweep compares figures: the trace hash would be work for nothing.
            trace_hash: false,
        };
        let Ok(out) = run(&sc, &o, None) else {
            failed += 1;
            continue;
        };
        let sum = out.summary();
        tp.push(sum.virtual_throughput_eps);
        p99 += sum.latency_us.p99;
        p50 += sum.latency_us.p50;
        mem += out.memory_peak_events() as f64;
        for (st, f) in out.stages().iter().zip(out.busy_fractions()) {
            drops += st.stats.dropped;
            excess += st.excess;
            *busy.entry(st.name.clone()).or_default() += f;
            if st.kind.consumes() {
                *handled.entry(st.name.clone()).or_default() += st.stats.handled as f64;
            }
        }
    }
    let n = tp.len().max(1) as f64;
    busy.values_mut().for_each(|v| *v /= n);
    handled.values_mut().for_each(|v| *v /= n);
    let mean = tp.iter().sum::<f64>() / n;
    let spread =
        tp.iter().copied().fold(f64::MIN, f64::max) - tp.iter().copied().fold(f64::MAX, f64::min);
    Point {
        index,
        settings,
        throughput_eps: if tp.is_empty() { 0.0 } else { mean.round() },
        throughput_spread: if tp.is_empty() { 0.0 } else { spread.round() },
        p99_us: p99 / n,
        p50_us: p50 / n,
        memory_peak_events: mem / n,
        drops,
        excess,
        failed_runs: failed,
        busy,
        handled,
    }
}

/// What one point of a sweep sets: per group of links, (max, min).
type Plan = Vec<(Vec<usize>, u64, u64)>;

/// The subscriptions a sweep sets, as (producer, consumer, link ids): the named ones, or
/// every link as one group `*:*`.
fn groups(
    s: &Scenario,
    opts: &TuneOptions,
) -> Result<Vec<(String, String, Vec<usize>)>, TuneError> {
    if opts.subscriptions.is_empty() {
        return Ok(vec![("*".into(), "*".into(), (0..s.links.len()).collect())]);
    }
    opts.subscriptions
        .iter()
        .map(|(p, c)| Ok((p.clone(), c.clone(), links_of(s, p, c)?)))
        .collect()
}

/// The points of a one-pass sweep (all named subscriptions, or all links, together).
fn plans(s: &Scenario, opts: &TuneOptions) -> Result<(Vec<Plan>, Vec<Vec<Setting>>), TuneError> {
    let groups = groups(s, opts)?;
    let g = grid(opts);
    let mut plans = Vec::new();
    let mut settings = Vec::new();
    if groups.len() == 1 {
        let (p, c, links) = &groups[0];
        for &(m, mn) in &g {
            plans.push(vec![(links.clone(), m, mn)]);
            settings.push(vec![Setting {
                producer: p.clone(),
                consumer: c.clone(),
                max_demand: m,
                min_demand: mn,
            }]);
        }
    }
    Ok((plans, settings))
}

/// Runs the points at `indices` of `all` in parallel on `jobs` threads; results in index
/// order whatever the jobs.
fn run_points(
    s: &Scenario,
    all: &[Plan],
    settings: &[Vec<Setting>],
    indices: &[usize],
    opts: &TuneOptions,
    jobs: usize,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Vec<Point> {
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let out: Mutex<Vec<Option<Point>>> = Mutex::new(vec![None; indices.len()]);
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1).min(indices.len().max(1)) {
            scope.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(&i) = indices.get(k) else { break };
                let p = measure(s, i, settings[i].clone(), &all[i], opts);
                if let Ok(mut o) = out.lock() {
                    o[k] = Some(p);
                }
                progress(done.fetch_add(1, Ordering::Relaxed) + 1, indices.len());
            });
        }
    });
    out.into_inner()
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect()
}

/// Runs a sweep (or the `shard`-th of `n` slices of it) with `jobs` threads.
pub fn tune(
    s: &Scenario,
    opts: &TuneOptions,
    jobs: usize,
    shard: Option<(usize, usize)>,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<TuneResult, TuneError> {
    if s.links.is_empty() {
        return Err(TuneError("the scenario has no subscription to tune".into()));
    }
    if let Some((i, n)) = shard {
        if n == 0 || i >= n {
            return Err(TuneError(format!(
                "--shard {i}/{n}: I must be below N and N at least 1"
            )));
        }
    }
    if opts.subscriptions.len() >= 2 {
        if shard.is_some() {
            return Err(TuneError(
                "--shard splits a one-pass sweep; with two or more --subscription the search \
                 is coordinate descent, which runs as one job"
                    .into(),
            ));
        }
        return descend(s, opts, jobs, progress);
    }
    let (all, settings) = plans(s, opts)?;
    let indices: Vec<usize> = match shard {
        Some((i, n)) => (0..all.len()).filter(|k| k % n == i).collect(),
        None => (0..all.len()).collect(),
    };
    let points = run_points(s, &all, &settings, &indices, opts, jobs, progress);
    Ok(match shard {
        Some(_) => TuneResult {
            shard,
            ..TuneResult::unfinished(&s.name, opts, points, all.len())
        },
        None => TuneResult::finished(s, opts, points, all.len()),
    })
}

impl TuneResult {
    /// The result of `points`, before its frontier and recommendation are found.
    fn unfinished(scenario: &str, opts: &TuneOptions, points: Vec<Point>, total: usize) -> Self {
        TuneResult {
            scenario: scenario.to_string(),
            options: opts.clone(),
            objective: opts.objective.name().to_string(),
            points,
            pareto: Vec::new(),
            recommendation: None,
            shard: None,
            total_points: total,
            threads: Vec::new(),
        }
    }

    /// The result of `points`, with its frontier and recommendation.
    fn finished(s: &Scenario, opts: &TuneOptions, points: Vec<Point>, total: usize) -> Self {
        let mut r = TuneResult::unfinished(&s.name, opts, points, total);
        finish(s, &mut r);
        r
    }
}

/// Coordinate descent over two or more named subscriptions.
fn descend(
    s: &Scenario,
    opts: &TuneOptions,
    jobs: usize,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<TuneResult, TuneError> {
    let groups = groups(s, opts)?;
    let g = grid(opts);
    let mut current: Vec<(u64, u64)> = vec![(1000, 500); groups.len()];
    let mut points: Vec<Point> = Vec::new();
    let mut seen: BTreeMap<Vec<(u64, u64)>, usize> = BTreeMap::new();
    for _round in 0..2 {
        for gi in 0..groups.len() {
            let mut all = Vec::new();
            let mut settings = Vec::new();
            let mut keys = Vec::new();
            for &(m, mn) in &g {
                let mut cfg = current.clone();
                cfg[gi] = (m, mn);
                if seen.contains_key(&cfg) {
                    continue;
                }
                all.push(
                    groups
                        .iter()
                        .zip(&cfg)
                        .map(|((_, _, l), &(m, mn))| (l.clone(), m, mn))
                        .collect::<Plan>(),
                );
                settings.push(
                    groups
                        .iter()
                        .zip(&cfg)
                        .map(|((p, c, _), &(m, mn))| Setting {
                            producer: p.clone(),
                            consumer: c.clone(),
                            max_demand: m,
                            min_demand: mn,
                        })
                        .collect::<Vec<_>>(),
                );
                keys.push(cfg);
            }
            let idx: Vec<usize> = (0..all.len()).collect();
            let new = run_points(s, &all, &settings, &idx, opts, jobs, progress);
            for (mut p, key) in new.into_iter().zip(keys) {
                p.index = points.len();
                seen.insert(key, p.index);
                points.push(p);
            }
            // Keep the objective's choice among the points of this subscription's sweep.
            let r = TuneResult::finished(s, opts, points.clone(), points.len());
            if let Some(rec) = &r.recommendation {
                current = rec
                    .settings
                    .iter()
                    .map(|st| (st.max_demand, st.min_demand))
                    .collect();
            }
        }
    }
    let total = points.len();
    Ok(TuneResult::finished(s, opts, points, total))
}

/// Joins shards into the result one run gives. Errors: shards of different sweeps,
/// missing or repeated points.
pub fn merge(s: &Scenario, shards: Vec<TuneResult>) -> Result<TuneResult, TuneError> {
    let Some(first) = shards.first() else {
        return Err(TuneError("--merge needs at least one shard".into()));
    };
    let (scenario, options, total) = (
        first.scenario.clone(),
        first.options.clone(),
        first.total_points,
    );
    let mut points: Vec<Point> = Vec::new();
    for sh in &shards {
        if sh.scenario != scenario || sh.options != options || sh.total_points != total {
            return Err(TuneError(
                "the shards come from different sweeps (scenario, options or size differ)".into(),
            ));
        }
        points.extend(sh.points.iter().cloned());
    }
    points.sort_by_key(|p| p.index);
    let complete = points.len() == total && points.iter().enumerate().all(|(i, p)| p.index == i);
    if !complete {
        return Err(TuneError(format!(
            "the shards hold {} of the sweep's {total} points (missing or repeated ones)",
            points.len()
        )));
    }
    let mut r = TuneResult::finished(s, &options, points, total);
    // The scenario's name as the shards recorded it (they may come from a copy).
    r.scenario = scenario;
    Ok(r)
}

/// The Pareto frontier and the recommendation.
fn finish(s: &Scenario, r: &mut TuneResult) {
    let ok: Vec<&Point> = r.points.iter().filter(|p| p.failed_runs == 0).collect();
    let dominated = |a: &Point| {
        ok.iter().any(|b| {
            b.throughput_eps >= a.throughput_eps
                && b.p99_us <= a.p99_us
                && b.memory_peak_events <= a.memory_peak_events
                && (b.throughput_eps > a.throughput_eps
                    || b.p99_us < a.p99_us
                    || b.memory_peak_events < a.memory_peak_events)
        })
    };
    r.pareto = ok
        .iter()
        .filter(|p| !dominated(p))
        .map(|p| p.index)
        .collect();
    r.recommendation = recommend(s, r, &ok);
}

/// `max_demand` summed over a point's settings: what "smaller" means.
fn size(p: &Point) -> (u64, u64) {
    (
        p.settings.iter().map(|s| s.max_demand).sum(),
        p.settings.iter().map(|s| s.min_demand).sum(),
    )
}

fn recommend(s: &Scenario, r: &TuneResult, ok: &[&Point]) -> Option<Recommendation> {
    let best_tp = ok.iter().map(|p| p.throughput_eps).fold(0.0, f64::max);
    if ok.is_empty() || best_tp <= 0.0 {
        return None;
    }
    let within = |f: f64| ok.iter().filter(move |p| p.throughput_eps >= f * best_tp);
    let pick = match r.options.objective {
        Objective::Throughput => within(0.98).min_by_key(|p| size(p)).copied(),
        Objective::P99 => within(0.95)
            .min_by(|a, b| a.p99_us.total_cmp(&b.p99_us).then(size(a).cmp(&size(b))))
            .copied(),
        Objective::Memory => within(0.95)
            .min_by(|a, b| {
                a.memory_peak_events
                    .total_cmp(&b.memory_peak_events)
                    .then(size(a).cmp(&size(b)))
            })
            .copied(),
        Objective::Balanced => {
            let front: Vec<&Point> = ok
                .iter()
                .filter(|p| r.pareto.contains(&p.index))
                .copied()
                .collect();
            let max_p99 = front.iter().map(|p| p.p99_us).fold(0.0, f64::max).max(1e-9);
            let max_mem = front
                .iter()
                .map(|p| p.memory_peak_events)
                .fold(0.0, f64::max)
                .max(1e-9);
            front
                .into_iter()
                .map(|p| {
                    let score = p.throughput_eps / best_tp
                        - 0.5 * (p.p99_us / max_p99)
                        - 0.5 * (p.memory_peak_events / max_mem);
                    (p, score)
                })
                .max_by(|(a, x), (b, y)| x.total_cmp(y).then(size(b).cmp(&size(a))))
                .map(|(p, _)| p)
        }
    }?;
    let peak_mem = ok
        .iter()
        .map(|p| p.memory_peak_events)
        .fold(0.0, f64::max)
        .max(1.0);
    let (bottleneck, busy) = pick
        .busy
        .iter()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(n, b)| (n.clone(), *b))
        .unwrap_or_default();
    let what = pick
        .settings
        .iter()
        .map(|st| {
            format!(
                "{} -> {}: max_demand {}, min_demand {}",
                st.producer, st.consumer, st.max_demand, st.min_demand
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let reason = format!(
        "{what} — {:.0}% of the best throughput at {:.0}% of the sweep's peak memory (p99 {:.1} us); \
         {}",
        100.0 * pick.throughput_eps / best_tp,
        100.0 * pick.memory_peak_events / peak_mem,
        pick.p99_us,
        if busy >= 0.9 {
            format!("more buys nothing because {bottleneck} is busy {:.0}% of the time (the bottleneck)", busy * 100.0)
        } else {
            format!("the busiest stage is {bottleneck} at {:.0}%", busy * 100.0)
        }
    );
    Some(Recommendation {
        settings: pick.settings.clone(),
        point: pick.index,
        throughput_eps: pick.throughput_eps,
        p99_us: pick.p99_us,
        memory_peak_events: pick.memory_peak_events,
        bottleneck,
        warnings: pathologies(s, pick),
        reason,
    })
}

/// What looks wrong at a point: drops, excess, a partition hot spot, a greedy first
/// consumer, a link whose latency needs more demand than `max_demand` allows.
fn pathologies(s: &Scenario, p: &Point) -> Vec<String> {
    let mut w = Vec::new();
    if p.drops > 0 {
        w.push(format!("{} events dropped by full buffers", p.drops));
    }
    if p.excess > 0 {
        w.push(format!(
            "{} events received beyond what was asked",
            p.excess
        ));
    }
    for (i, st) in s.stages.iter().enumerate() {
        let outs: Vec<&str> = s
            .outputs_of(i)
            .map(|(_, l)| s.stages[l.consumer].name.as_str())
            .collect();
        if outs.len() < 2 {
            continue;
        }
        let got: Vec<f64> = outs
            .iter()
            .map(|c| p.handled.get(*c).copied().unwrap_or(0.0))
            .collect();
        let total: f64 = got.iter().sum();
        let most = got.iter().copied().fold(0.0, f64::max);
        if total <= 0.0 {
            continue;
        }
        let share = most / total;
        let fair = 1.0 / outs.len() as f64;
        match st.dispatcher {
            DispatcherDef::Partition { .. } if share > 2.0 * fair => w.push(format!(
                "partition hot spot: one partition of {} takes {:.0}% of its events",
                st.name,
                share * 100.0
            )),
            DispatcherDef::Demand { .. } if share > 2.0 * fair => w.push(format!(
                "greedy first consumer: one consumer of {} takes {:.0}% of its events under the \
                 demand dispatcher",
                st.name,
                share * 100.0
            )),
            _ => {}
        }
    }
    // Bandwidth-delay product: to keep a link busy, outstanding demand must cover the
    // events that arrive during one round trip.
    for (l, link) in s.links.iter().enumerate() {
        let Some(lat) = link.latency else { continue };
        let rtt_s = 2.0 * lat.mean_ns() / 1e9;
        let need = p.throughput_eps * rtt_s;
        let max = p
            .settings
            .iter()
            .find(|st| {
                (st.producer == "*" || st.producer == s.stages[link.producer].name)
                    && (st.consumer == "*" || st.consumer == s.stages[link.consumer].name)
            })
            .map_or(link.demand.max(), |st| st.max_demand);
        if need > max as f64 && s.stages[link.consumer].kind != StageKind::ConsumerPool {
            w.push(format!(
                "link {l} {} -> {}: its latency needs about {need:.0} events outstanding \
                 (bandwidth-delay product), more than max_demand {max}",
                s.stages[link.producer].name, s.stages[link.consumer].name
            ));
        }
    }
    w
}

/// The result as a table, the frontier and the recommendation.
pub fn table(r: &TuneResult) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "tune {}: {} points x {} seeds, {} events per producer per run, objective {}",
        r.scenario,
        r.points.len(),
        r.options.seeds,
        r.options.events,
        r.objective
    );
    let _ = writeln!(
        s,
        "{:>5}  {:<34} {:>14} {:>10} {:>10} {:>8} {:>7}  pareto",
        "point", "settings", "throughput/s", "p99 us", "memory", "drops", "failed"
    );
    for p in &r.points {
        let set = p
            .settings
            .iter()
            .map(|st| format!("{}/{}", st.max_demand, st.min_demand))
            .collect::<Vec<_>>()
            .join(" ");
        let _ = writeln!(
            s,
            "{:>5}  {:<34} {:>14.0} {:>10.1} {:>10.0} {:>8} {:>7}  {}",
            p.index,
            set,
            p.throughput_eps,
            p.p99_us,
            p.memory_peak_events,
            p.drops,
            p.failed_runs,
            if r.pareto.contains(&p.index) { "*" } else { "" }
        );
    }
    for c in &r.threads {
        let _ = writeln!(
            s,
            "threads, point {}: predicted {:.0} events/s, measured {:.0} ({:+.0}%)",
            c.point, c.predicted_eps, c.measured_eps, c.error_pct
        );
    }
    match &r.recommendation {
        Some(rec) => {
            let _ = writeln!(s, "recommendation: {}", rec.reason);
            for w in &rec.warnings {
                let _ = writeln!(s, "warning: {w}");
            }
        }
        None if r.shard.is_some() => {
            let _ = writeln!(
                s,
                "shard {:?}: merge the shards for the recommendation",
                r.shard
            );
        }
        None => {
            let _ = writeln!(s, "no recommendation: no point ran");
        }
    }
    s
}
