//! `flowbench`: run, check and measure demand-driven stage pipelines.
//!
//! The binary only parses arguments, wires the library crates together and maps
//! outcomes to exit codes: 0 ok, 1 the run failed or did not balance, 2 bad input.

mod duration;
mod trace_file;
mod tui_cmd;
mod words_cmd;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use flowbench_engine::scenario::{self, model::Scenario, ScenarioError};
use flowbench_engine::threads::scenario::{self as threads, ScenarioRunOptions};
use flowbench_engine::threads::Scheduling;
use serde_json::json;

/// Simulate, benchmark and tune demand-driven stage pipelines (GenStage/Flow semantics).
#[derive(Parser, Debug)]
#[command(name = "flowbench", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a scenario (the embedded default when none is given) and print a summary.
    Run(RunArgs),
    /// Find the max_demand/min_demand to use: sweep them on the simulator and recommend
    /// one setting in plain words.
    Tune(TuneArgs),
    /// Draw the report of a sweep (its tune.json) again: index.html with charts, SVGs,
    /// CSV and JSON.
    Report {
        /// A tune result (`tune.json`, or `flowbench tune --json`).
        result: PathBuf,
        /// Where to write it.
        #[arg(
            short = 'o',
            long = "output",
            value_name = "DIR",
            default_value = "flowbench-report"
        )]
        output: PathBuf,
    },
    /// Measure what the threads runtime itself costs on this machine and write a profile
    /// that run and tune charge in the simulator.
    Calibrate {
        /// Where to write the profile.
        #[arg(short = 'o', long = "output", value_name = "FILE", default_value = CALIBRATION_FILE)]
        output: PathBuf,
        /// Print the profile as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Run the benchmark suite (or your scenarios) and compare it with a baseline: exit 1
    /// on a regression.
    Bench(BenchArgs),
    /// The word count: generate a text, count it eager, lazy or as a flow.
    Words {
        #[command(subcommand)]
        cmd: words_cmd::WordsCmd,
    },
    /// Watch a pipeline live in the terminal: queue depths, demand, a log in plain words;
    /// change demand, slow or crash stages; replay a trace; five lessons on back-pressure.
    Tui(tui_cmd::TuiArgs),
    /// Validate a scenario file without running it.
    Check {
        /// The scenario file (TOML).
        scenario: PathBuf,
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// The scenario file (TOML); without it, the embedded default scenario runs.
    scenario: Option<PathBuf>,
    /// Where the stages run.
    #[arg(long, value_enum, default_value_t = Runtime::Sim)]
    runtime: Runtime,
    /// Stop each producer after N events.
    #[arg(long, value_name = "N")]
    events: Option<u64>,
    /// Root seed of the run (default: the scenario's `seed`, else 0).
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Stop after this much time (virtual on sim, wall-clock on threads), e.g. 10ms, 1.5s.
    #[arg(long, value_name = "DURATION", value_parser = duration::parse)]
    until: Option<Duration>,
    /// Sampling period of the sim's time series, e.g. 1ms.
    #[arg(long, value_name = "DURATION", value_parser = duration::parse, default_value = "1ms")]
    sample: Duration,
    /// Write the sim's trace as JSON lines to FILE.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// Print one JSON object on stdout instead of tables.
    #[arg(long)]
    json: bool,
    /// Charge the threads runtime's own costs from this profile (`flowbench calibrate`)
    /// so the simulator predicts threads [default: ./flowbench-calibration.json if it
    /// exists].
    #[arg(long, value_name = "FILE")]
    calibration: Option<PathBuf>,
    /// Write a report of the run (sim): index.html with charts over virtual time, SVGs,
    /// summary.json and series.csv.
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
    /// Skip the trace hash (sim): saves the work of folding every delivery and handled
    /// chunk; the summary says `trace hash off`.
    #[arg(long)]
    no_trace_hash: bool,
    #[command(flatten)]
    pool: PoolArgs,
}

#[derive(clap::Args, Debug)]
struct BenchArgs {
    /// The built-in suite: quick (CI, a few minutes on 2 cores) or full.
    #[arg(long, value_enum)]
    suite: Option<SuiteArg>,
    /// Your scenario file, run on the simulator at its seed (repeat for several); replaces
    /// the built-in suite.
    #[arg(long = "scenario", value_name = "FILE")]
    scenarios: Vec<PathBuf>,
    /// Stop each producer of your scenarios after N events.
    #[arg(long, value_name = "N")]
    events: Option<u64>,
    /// Write this run as a baseline (JSON) to FILE.
    #[arg(long, value_name = "FILE")]
    save: Option<PathBuf>,
    /// Compare with the baseline in FILE; exit 1 on a regression.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// Threshold of the threads ratios, percent (default: from the baseline's spread,
    /// 25 to 60). Simulated figures are exact; instruction counts may grow 3%.
    #[arg(long, value_name = "PCT")]
    max_regression: Option<f64>,
    /// Also fail when a simulated case behaves differently (another trace hash) with the
    /// same figures.
    #[arg(long)]
    strict: bool,
    /// Print one JSON object on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// Run the instruction-count case once and exit (what callgrind runs).
    #[arg(long, hide = true, value_name = "EVENTS")]
    probe: Option<u64>,
}

#[derive(clap::Args, Debug)]
struct TuneArgs {
    /// The scenario file (TOML); without it, the embedded default scenario.
    scenario: Option<PathBuf>,
    /// A subscription to tune, as PRODUCER:CONSUMER (`*` matches any stage); repeat for
    /// several (searched by coordinate descent). Without it every subscription gets the
    /// same setting.
    #[arg(long = "subscription", value_name = "PRODUCER:CONSUMER")]
    subscriptions: Vec<String>,
    /// The range of max_demand, on a log scale [default: 1..10000].
    #[arg(long, value_name = "A..B")]
    max: Option<String>,
    /// The range of min_demand as a fraction of max_demand [default: 0..0.9].
    #[arg(long = "min-ratio", value_name = "A..B")]
    min_ratio: Option<String>,
    /// Grid size: max_demand values x min ratios [default: 9x4].
    #[arg(long, value_name = "MxN")]
    grid: Option<String>,
    /// Seeds per point.
    #[arg(long, value_name = "K", default_value_t = 3)]
    seeds: u64,
    /// Events per producer per run [default: 20000, or fewer if the scenario has fewer].
    #[arg(long, value_name = "N")]
    events: Option<u64>,
    /// What the recommendation optimises.
    #[arg(long, value_enum, default_value_t = ObjectiveArg::Balanced)]
    objective: ObjectiveArg,
    /// Points run at once [default: available cores].
    #[arg(long, value_name = "J")]
    jobs: Option<usize>,
    /// `threads` also re-measures the recommendation and the fastest frontier points on
    /// real threads and shows prediction and measurement side by side.
    #[arg(long, value_enum, default_value_t = Runtime::Sim)]
    runtime: Runtime,
    /// Run only the I-th of N slices of the sweep (0-based) and print its partial result.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    /// Join shard results (JSON files from --shard --json) into the whole sweep's result.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    merge: Vec<PathBuf>,
    /// Where to write the report (index.html with charts, SVGs, tune.json, points.csv)
    /// [default without SCENARIO: flowbench-report].
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
    /// Print the whole result as one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// The threads runtime's costs (`flowbench calibrate`), so the sweep predicts
    /// threads [default: ./flowbench-calibration.json if it exists].
    #[arg(long, value_name = "FILE")]
    calibration: Option<PathBuf>,
    #[command(flatten)]
    pool: PoolArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ObjectiveArg {
    /// The smallest setting within 2% of the best throughput.
    Throughput,
    /// The lowest p99 keeping 95% of the best throughput.
    P99,
    /// The lowest peak memory keeping 95% of the best throughput.
    Memory,
    /// The knee of the Pareto frontier.
    Balanced,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum SuiteArg {
    /// Small sizes, 5 repetitions: for CI.
    Quick,
    /// Larger sizes, 9 repetitions.
    Full,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Runtime {
    /// Seeded discrete-event simulator: virtual time, reproducible from the seed.
    Sim,
    /// One OS thread per stage: wall time, real concurrency.
    Threads,
}

/// Text for a terminal: control characters (but line breaks) from names in the scenario
/// are shown escaped, so a name cannot move the cursor or recolour the screen.
fn terminal_safe(text: &str) -> String {
    if !text.chars().any(|c| c.is_control() && c != '\n') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if c.is_control() && c != '\n' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Prints a message on stderr, made safe for the terminal.
macro_rules! say {
    ($($arg:tt)*) => { eprintln!("{}", terminal_safe(&format!($($arg)*))) };
}
/// How a command failed, which decides the exit code and the JSON `kind`.
enum Failure {
    /// Exit 2: the input (file, flags, options) cannot be run.
    BadInput(anyhow::Error),
    /// Already reported on stdout and stderr; exit with this code.
    Reported(u8),
    /// Exit 1: the run started and failed; `replay` repeats it.
    RunFailed {
        kind: &'static str,
        error: anyhow::Error,
        replay: Option<String>,
        summary: Option<serde_json::Value>,
    },
}

impl Failure {
    fn run(kind: &'static str, error: anyhow::Error) -> Self {
        Failure::RunFailed {
            kind,
            error,
            replay: None,
            summary: None,
        }
    }
}

impl From<ScenarioError> for Failure {
    fn from(e: ScenarioError) -> Self {
        Failure::BadInput(anyhow::Error::new(e))
    }
}

fn load(path: Option<&Path>) -> Result<(Scenario, String), Failure> {
    match path {
        Some(p) => Ok((scenario::load(p)?, p.display().to_string())),
        None => Ok((
            scenario::parse_str(scenario::DEFAULT_SCENARIO, scenario::DEFAULT_SCENARIO_FILE)?,
            scenario::DEFAULT_SCENARIO_FILE.to_string(),
        )),
    }
}

/// A scenario's stages run built-in code (sources, pass-throughs, sinks) that never
/// panics; if one did, that is a bug of flowbench, and the run fails whatever its figures.
fn builtin_panics(stages: &[flowbench_engine::report::StageFigures]) -> Vec<String> {
    stages
        .iter()
        .filter(|s| s.stats.panics > 0)
        .map(|s| {
            format!(
                "stage `{}` panicked in built-in code ({}): a bug in flowbench, please report it with the scenario",
                s.name, s.exit
            )
        })
        .collect()
}

/// The command that repeats a run exactly: every option that shaped it.
fn replay_line(file: &str, args: &RunArgs, seed: u64) -> String {
    let mut line = format!("replay: flowbench run {file} --runtime sim --seed {seed}");
    if let Some(n) = args.events {
        line += &format!(" --events {n}");
    }
    if let Some(t) = args.until {
        line += &format!(" --until {}", duration::format(t));
    }
    if args.sample != Duration::from_millis(1) {
        line += &format!(" --sample {}", duration::format(args.sample));
    }
    line
}

fn run(args: &RunArgs) -> Result<bool, Failure> {
    let (scenario, file) = load(args.scenario.as_deref())?;
    let seed = args.seed.or(scenario.seed).unwrap_or(0);
    match args.runtime {
        Runtime::Threads => {
            if args.trace.is_some() || args.report.is_some() {
                return Err(Failure::BadInput(anyhow::anyhow!(
                    "--trace and --report are only available with --runtime sim"
                )));
            }
            let opts = ScenarioRunOptions {
                scheduling: args.pool.scheduling(),
                events: args.events,
                seed,
                until: args.until,
                record: false,
            };
            let run = threads::run_scenario(&scenario, &opts).map_err(|e| match e {
                threads::ScenarioRunError::Plan(_) => Failure::BadInput(anyhow::Error::new(e)),
                _ => Failure::run("run_failed", anyhow::Error::new(e)),
            })?;
            for l in &run.limitations {
                say!("note: {l}");
            }
            let mut summary = run.outcome.summary(&scenario.name);
            summary.fail(&builtin_panics(&run.outcome.stages));
            if let Some(report) = &run.outcome.deadlock {
                return Err(Failure::RunFailed {
                    kind: "deadlock",
                    error: anyhow::anyhow!("{report}"),
                    replay: None,
                    summary: serde_json::to_value(&summary).ok(),
                });
            }
            print_summary(&summary, summary.balanced, args.json, || summary.table())?;
            for e in &summary.errors {
                say!("error: {e}");
            }
            if !summary.balanced {
                say!("error: the run did not balance; scenario {file}");
            }
            Ok(summary.balanced)
        }
        Runtime::Sim => run_sim(args, &scenario, &file, seed),
    }
}

fn run_sim(args: &RunArgs, scenario: &Scenario, file: &str, seed: u64) -> Result<bool, Failure> {
    let opts = flowbench_sim::SimOptions {
        seed: Some(seed),
        events: args.events,
        until_ns: args
            .until
            .map(|d| d.as_nanos().min(u128::from(u64::MAX)) as u64),
        sample_ns: (args.sample.as_nanos().min(u128::from(u64::MAX)) as u64).max(1),
        costs: load_calibration(args.calibration.as_deref())?,
        trace_hash: !args.no_trace_hash,
    };
    let replay = replay_line(file, args, seed);
    let mut trace = match &args.trace {
        Some(p) => Some(
            trace_file::TraceFile::create(p, args.scenario.as_deref())
                .map_err(Failure::BadInput)?,
        ),
        None => None,
    };
    let result = flowbench_sim::run(
        scenario,
        &opts,
        trace
            .as_mut()
            .map(|t| t.writer() as &mut dyn std::io::Write),
    );
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(e) if e.is_bad_input() => {
            // The scenario needs a bound the command line did not give: bad input, and
            // no trace was written (an earlier one is left as it was).
            return Err(Failure::BadInput(anyhow::Error::new(e)));
        }
        Err(e) => {
            let trace_failed = e.is_trace_write();
            let summary = e
                .outcome()
                .and_then(|o| serde_json::to_value(o.summary()).ok());
            if !trace_failed {
                if let Some(t) = trace.take() {
                    t.commit().map_err(Failure::BadInput)?;
                }
            }
            return Err(Failure::RunFailed {
                kind: if e.deadlock().is_some() {
                    "deadlock"
                } else if trace_failed {
                    "trace_write"
                } else {
                    "run_failed"
                },
                error: anyhow::Error::new(e),
                replay: Some(replay),
                summary,
            });
        }
    };
    if let Some(t) = trace.take() {
        t.commit().map_err(|e| Failure::run("trace_write", e))?;
    }
    if let Some(dir) = &args.report {
        flowbench_reports::write_run_report(&outcome, &report_header(), dir)
            .map_err(|e| Failure::BadInput(anyhow::Error::new(e)))?;
        say!("report: {}", dir.join("index.html").display());
    }
    let mut summary = outcome.summary();
    summary.base.fail(&builtin_panics(outcome.stages()));
    for e in &summary.base.errors {
        say!("error: {e}");
    }
    print_summary(&summary, summary.base.balanced, args.json, || {
        outcome.table()
    })?;
    if !summary.base.balanced {
        say!("error: the run did not balance");
        say!("{replay}");
    }
    Ok(summary.base.balanced)
}

/// Prints the summary: JSON (with `ok`) or the table.
fn print_summary<S: serde::Serialize>(
    summary: &S,
    ok: bool,
    json: bool,
    table: impl FnOnce() -> String,
) -> Result<(), Failure> {
    let text = if json {
        let mut v = serde_json::to_value(summary)
            .context("cannot encode the summary")
            .map_err(|e| Failure::run("run_failed", e))?;
        if let Some(map) = v.as_object_mut() {
            map.insert("ok".to_string(), json!(ok));
        }
        v.to_string() + "\n"
    } else {
        terminal_safe(&table())
    };
    // A closed pipe (e.g. `| head`) is not an error of the run.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(())
}

/// Where `calibrate` writes its profile, and where `run` and `tune` look for one.
const CALIBRATION_FILE: &str = "flowbench-calibration.json";

/// How the threads runtime schedules its stages (`run` and `tune --runtime threads`).
#[derive(clap::Args, Debug)]
struct PoolArgs {
    /// On threads: run the stages as tasks on N worker threads [default: one per core].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=4096))]
    workers: Option<u16>,
}

impl PoolArgs {
    /// `--workers N`: the pool with N workers; without it, one worker per core.
    fn scheduling(&self) -> Scheduling {
        match self.workers {
            Some(w) => Scheduling::Pool {
                workers: usize::from(w),
            },
            None => Scheduling::Auto,
        }
    }
}

/// The runtime costs of `path`, or of `./flowbench-calibration.json` if it exists.
fn load_calibration(path: Option<&Path>) -> Result<Option<flowbench_sim::RuntimeCosts>, Failure> {
    let implicit = Path::new(CALIBRATION_FILE);
    let path = match path {
        Some(p) => p,
        None if implicit.is_file() => implicit,
        None => return Ok(None),
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the calibration {}", path.display()))
        .map_err(Failure::BadInput)?;
    let c: flowbench_bench::calibrate::Calibration = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a flowbench calibration profile", path.display()))
        .map_err(Failure::BadInput)?;
    say!(
        "note: charging the threads runtime's costs from {} ({})",
        path.display(),
        costs_text(&c.costs)
    );
    Ok(Some(c.costs))
}

/// A calibration's costs in words.
fn costs_text(c: &flowbench_sim::RuntimeCosts) -> String {
    format!(
        "{} ns a message, {} ps an event, {} ps a partitioned event, {} ps a broadcast copy, \
         {} us to start and stop a run plus {} us a stage, {} cores",
        c.message_ns,
        c.event_ps,
        c.route_ps,
        c.copy_ps,
        c.start_ns / 1000,
        c.stage_start_ns / 1000,
        c.cores
    )
}

fn calibrate(output: &Path, json: bool) -> Result<bool, Failure> {
    let c = flowbench_bench::calibrate::calibrate(15)
        .map_err(|e| Failure::run("run_failed", anyhow::anyhow!(e)))?;
    let text = serde_json::to_string_pretty(&c)
        .context("cannot encode the profile")
        .map_err(|e| Failure::run("run_failed", e))?;
    std::fs::write(output, text.clone() + "\n")
        .with_context(|| format!("cannot write {}", output.display()))
        .map_err(Failure::BadInput)?;
    if json {
        println!("{}", serde_json::to_string(&c).unwrap_or_default());
    } else {
        println!(
            "calibrated: {} ({} events/s one by one, {} batched, {} partitioned); written to {}",
            costs_text(&c.costs),
            c.one_by_one_eps,
            c.batched_eps,
            c.partition_eps,
            output.display()
        );
    }
    Ok(true)
}

/// `A..B` of two numbers.
fn range<T: std::str::FromStr + PartialOrd + Copy>(
    flag: &str,
    text: &str,
) -> Result<(T, T), Failure> {
    let bad = || {
        Failure::BadInput(anyhow::anyhow!(
            "{flag} must be A..B with A <= B (for example 1..10000), got `{text}`"
        ))
    };
    let (a, b) = text.split_once("..").ok_or_else(bad)?;
    let a: T = a.trim().parse().map_err(|_| bad())?;
    let b: T = b.trim().parse().map_err(|_| bad())?;
    if a > b {
        return Err(bad());
    }
    Ok((a, b))
}

/// `MxN`, `I/N`: two whole numbers around a separator.
fn pair(flag: &str, text: &str, sep: char, example: &str) -> Result<(usize, usize), Failure> {
    let bad = || {
        Failure::BadInput(anyhow::anyhow!(
            "{flag} must look like {example}, got `{text}`"
        ))
    };
    let (a, b) = text.split_once(sep).ok_or_else(bad)?;
    Ok((
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    ))
}

fn tune(args: &TuneArgs) -> Result<bool, Failure> {
    use flowbench_bench::tune::{self as t, Objective, TuneOptions, TuneResult};
    let (scenario, _file) = load(args.scenario.as_deref())?;
    let bad = |e: t::TuneError| Failure::BadInput(anyhow::Error::new(e));
    let mut opts = TuneOptions {
        seeds: args.seeds.max(1),
        objective: match args.objective {
            ObjectiveArg::Throughput => Objective::Throughput,
            ObjectiveArg::P99 => Objective::P99,
            ObjectiveArg::Memory => Objective::Memory,
            ObjectiveArg::Balanced => Objective::Balanced,
        },
        costs: load_calibration(args.calibration.as_deref())?,
        ..TuneOptions::default()
    };
    for sub in &args.subscriptions {
        let (p, c) = sub.split_once(':').ok_or_else(|| {
            Failure::BadInput(anyhow::anyhow!(
                "--subscription must be PRODUCER:CONSUMER, got `{sub}`"
            ))
        })?;
        opts.subscriptions.push((p.to_string(), c.to_string()));
    }
    if let Some(m) = &args.max {
        opts.max = range("--max", m)?;
        if opts.max.0 == 0 {
            return Err(Failure::BadInput(anyhow::anyhow!(
                "--max must start at 1 or more"
            )));
        }
    }
    if let Some(m) = &args.min_ratio {
        opts.min_ratio = range("--min-ratio", m)?;
        if opts.min_ratio.0 < 0.0 || opts.min_ratio.1 >= 1.0 {
            return Err(Failure::BadInput(anyhow::anyhow!(
                "--min-ratio must lie in 0..1 (below 1), got `{m}`"
            )));
        }
    }
    if let Some(g) = &args.grid {
        opts.grid = pair("--grid", g, 'x', "9x4")?;
        if opts.grid.0 == 0 || opts.grid.1 == 0 {
            return Err(Failure::BadInput(anyhow::anyhow!(
                "--grid needs at least 1x1"
            )));
        }
    }
    // The sweep's scale: at most 20 000 events per producer per run unless asked.
    let largest = scenario
        .stages
        .iter()
        .filter_map(|st| match &st.source {
            Some(scenario::model::SourceDef::Range { first, last }) => Some(last - first + 1),
            _ => None,
        })
        .max();
    opts.events = args
        .events
        .unwrap_or_else(|| largest.map_or(20_000, |n| n.min(20_000)));
    let shard = match &args.shard {
        Some(sh) => Some(pair("--shard", sh, '/', "0/4")?),
        None => None,
    };
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |c| c.get()))
        .max(1);
    let result: TuneResult = if args.merge.is_empty() {
        let bar = indicatif::ProgressBar::new(0);
        if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        let r = t::tune(&scenario, &opts, jobs, shard, &|done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        })
        .map_err(bad)?;
        bar.finish_and_clear();
        r
    } else {
        let mut shards = Vec::new();
        for f in &args.merge {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("cannot read shard {}", f.display()))
                .map_err(Failure::BadInput)?;
            let r: TuneResult = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a tune shard", f.display()))
                .map_err(Failure::BadInput)?;
            shards.push(r);
        }
        t::merge(&scenario, shards).map_err(bad)?
    };
    let mut result = result;
    if args.runtime == Runtime::Threads && result.shard.is_none() {
        t::measure_on_threads(&scenario, &mut result, 3, 3, args.pool.scheduling());
    }
    let report_dir = args.report.clone().or_else(|| {
        args.scenario
            .is_none()
            .then(|| PathBuf::from("flowbench-report"))
    });
    if let Some(dir) = &report_dir {
        write_tune_report(dir, &result)?;
    }
    let text = if args.json {
        serde_json::to_string(&result)
            .context("cannot encode the result")
            .map_err(|e| Failure::run("run_failed", e))?
            + "\n"
    } else {
        terminal_safe(&t::table(&result))
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    if args.events.is_none() && largest.is_some_and(|n| n > opts.events) {
        say!(
            "note: each run uses {} events per producer (the scenario has more); --events N changes it",
            opts.events
        );
    }
    if opts.costs.is_none() && args.merge.is_empty() {
        say!(
            "note: no calibration profile: the simulator charges only the scenario's service \
             times, so a small max_demand costs nothing here; run `flowbench calibrate` first \
             to predict the threads runtime"
        );
    }
    if let Some(dir) = &report_dir {
        say!("report: {}", dir.join("index.html").display());
    }
    Ok(result.recommendation.is_some() || result.shard.is_some())
}

/// The report of a sweep: `index.html` with its charts, the `.svg` files, `tune.json`
/// and `points.csv`.
fn write_tune_report(dir: &Path, r: &flowbench_bench::tune::TuneResult) -> Result<(), Failure> {
    flowbench_reports::write_tune_report(r, &report_header(), dir)
        .map(drop)
        .map_err(|e| Failure::BadInput(anyhow::Error::new(e)))
}

/// What a report's header says: version, commit, machine, date.
fn report_header() -> flowbench_reports::Header {
    let m = flowbench_bench::Machine::this();
    // The build's commit, shortened.
    let commit = flowbench_bench::COMMIT.chars().take(12).collect();
    flowbench_reports::Header {
        version: env!("CARGO_PKG_VERSION").to_string(),
        commit,
        machine: format!("{} ({} cores)", m.cpu, m.cores),
        date: flowbench_bench::baseline::utc_now(),
    }
}

/// `flowbench report RESULT.json -o DIR`: redraws a sweep's report.
fn report(result: &Path, out: &Path) -> Result<bool, Failure> {
    let text = std::fs::read_to_string(result)
        .with_context(|| format!("cannot read {}", result.display()))
        .map_err(Failure::BadInput)?;
    let r: flowbench_bench::tune::TuneResult = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a tune result (tune.json)", result.display()))
        .map_err(Failure::BadInput)?;
    write_tune_report(out, &r)?;
    say!("report: {}", out.join("index.html").display());
    Ok(true)
}

fn bench(args: &BenchArgs) -> Result<bool, Failure> {
    use flowbench_bench::{Baseline, Options, Suite};
    if let Some(events) = args.probe {
        flowbench_bench::suite::probe(events);
        return Ok(true);
    }
    let bad = |e: flowbench_bench::BenchError| Failure::BadInput(anyhow::Error::new(e));
    if let Some(p) = args.max_regression {
        if !(p.is_finite() && p >= 0.0) {
            return Err(Failure::BadInput(anyhow::anyhow!(
                "--max-regression must be a percentage of 0 or more, got {p}"
            )));
        }
    }
    let suite = match (args.suite, args.scenarios.is_empty()) {
        (Some(_), false) => {
            return Err(Failure::BadInput(anyhow::anyhow!(
                "--suite and --scenario exclude each other: the suite is built in, --scenario \
                 runs your files instead"
            )))
        }
        (Some(SuiteArg::Full), true) => Suite::Full,
        (Some(SuiteArg::Quick) | None, true) => Suite::Quick,
        (None, false) => Suite::Scenarios,
    };
    let mut scenarios = Vec::new();
    for p in &args.scenarios {
        let s = scenario::load(p)?;
        scenarios.push((p.display().to_string(), s));
    }
    let baseline = match &args.baseline {
        Some(p) => Some(Baseline::load(p).map_err(bad)?),
        None => None,
    };
    let opts = Options {
        suite,
        scenarios,
        events: args.events,
        max_regression_pct: args.max_regression,
        strict: args.strict,
        exe: std::env::current_exe().ok(),
        ..Options::default()
    };
    let bar = indicatif::ProgressBar::new(0);
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let report =
        flowbench_bench::run_with_progress(&opts, baseline.as_ref(), &mut |done, total, what| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            bar.set_message(what.to_string());
        })
        .map_err(|e| match (e, &args.baseline) {
            (flowbench_bench::BenchError::Baseline { message, .. }, Some(p)) => {
                bad(flowbench_bench::BenchError::Baseline {
                    file: p.display().to_string(),
                    message,
                })
            }
            (e, _) => bad(e),
        })?;
    bar.finish_and_clear();
    if let Some(p) = &args.save {
        report.baseline.save(p).map_err(bad)?;
    }
    let ok = !report.regressed();
    let text = if args.json {
        let mut v = serde_json::to_value(&report)
            .context("cannot encode the report")
            .map_err(|e| Failure::run("run_failed", e))?;
        if let Some(m) = v.as_object_mut() {
            m.insert("ok".to_string(), json!(ok));
            m.insert("summary".to_string(), json!(report.summary_line()));
        }
        v.to_string() + "\n"
    } else {
        terminal_safe(&report.table())
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    if let Some(p) = &args.save {
        say!("baseline written to {}", p.display());
    }
    Ok(ok)
}

fn check(path: &Path, json: bool) -> Result<bool, Failure> {
    let s = match scenario::load(path) {
        Ok(s) => s,
        Err(e) if json => {
            let v = json!({
                "file": path.display().to_string(),
                "valid": false,
                "error": {
                    "line": e.line(),
                    "column": e.column(),
                    "field": e.field(),
                    "message": e.message(),
                },
            });
            println!("{v}");
            say!("error: {e}");
            return Err(Failure::Reported(2));
        }
        Err(e) => return Err(e.into()),
    };
    if json {
        let v = json!({
            "scenario": s.name,
            "file": path.display().to_string(),
            "valid": true,
            "stages": s.stages.len(),
            "subscriptions": s.links.len(),
        });
        println!("{v}");
    } else {
        println!(
            "{}: ok ({} stages, {} subscriptions)",
            path.display(),
            s.stages.len(),
            s.links.len()
        );
    }
    Ok(true)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (result, json) = match &cli.command {
        Command::Run(args) => (run(args), args.json),
        Command::Bench(args) => (bench(args), args.json),
        Command::Tune(args) => (tune(args), args.json),
        Command::Calibrate { output, json } => (calibrate(output, *json), *json),
        Command::Report { result, output } => (report(result, output), false),
        Command::Check { scenario, json } => (check(scenario, *json), false),
        Command::Words { cmd } => (words_cmd::words(cmd), cmd.json()),
        Command::Tui(args) => (tui_cmd::tui(args), false),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(Failure::Reported(code)) => ExitCode::from(code),
        Err(Failure::BadInput(e)) => {
            say!("error: {e:#}");
            if json {
                println!(
                    "{}",
                    json!({"ok": false, "error": {"kind": "bad_input", "message": format!("{e:#}")}})
                );
            }
            ExitCode::from(2)
        }
        Err(Failure::RunFailed {
            kind,
            error,
            replay,
            summary,
        }) => {
            say!("error: {error:#}");
            if let Some(r) = &replay {
                say!("{r}");
            }
            if json {
                let mut err = json!({"kind": kind, "message": format!("{error:#}")});
                if let Some(r) = &replay {
                    err["replay"] = json!(r.trim_start_matches("replay: "));
                }
                let mut v = json!({"ok": false, "error": err});
                if let Some(s) = summary {
                    v["summary"] = s;
                }
                println!("{v}");
            }
            ExitCode::from(1)
        }
    }
}
