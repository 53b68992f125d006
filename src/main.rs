//! `flowbench`: run, check and measure demand-driven stage pipelines.
//!
//! The binary only parses arguments, wires the library crates together and maps
//! outcomes to exit codes: 0 ok, 1 the run failed or did not balance, 2 bad input.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use flowbench_engine::scenario::{self, model::Scenario, ScenarioError};
use flowbench_engine::threads::scenario::{self as threads, ScenarioRunOptions};

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
    /// Stop after this much time (virtual on sim, wall-clock on threads), e.g. 10ms, 2s.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    until: Option<Duration>,
    /// Sampling period of the sim's time series, e.g. 1ms.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "1ms")]
    sample: Duration,
    /// Write the sim's trace as JSON lines to FILE.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// Print one JSON object on stdout instead of tables.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Runtime {
    /// Seeded discrete-event simulator: virtual time, reproducible from the seed.
    Sim,
    /// One OS thread per stage: wall time, real concurrency.
    Threads,
}

/// Parses `250ns`, `10us`, `5ms`, `2s` (a bare number means milliseconds).
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (examples: 250ns, 10us, 5ms, 2s)"))?;
    let mul = match unit {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "" | "ms" => 1_000_000,
        "s" => 1_000_000_000,
        _ => {
            return Err(format!(
                "unknown unit `{unit}` in `{s}`: use ns, us, ms or s"
            ))
        }
    };
    n.checked_mul(mul)
        .map(Duration::from_nanos)
        .ok_or_else(|| format!("duration `{s}` is too large"))
}

/// A failure, with the exit code it maps to.
enum Failure {
    BadInput(anyhow::Error),
    RunFailed(anyhow::Error),
}

impl From<ScenarioError> for Failure {
    fn from(e: ScenarioError) -> Self {
        Failure::BadInput(anyhow::Error::new(e))
    }
}

fn load(path: Option<&std::path::Path>) -> Result<(Scenario, String), Failure> {
    match path {
        Some(p) => Ok((scenario::load(p)?, p.display().to_string())),
        None => Ok((
            scenario::parse_str(scenario::DEFAULT_SCENARIO, scenario::DEFAULT_SCENARIO_FILE)?,
            scenario::DEFAULT_SCENARIO_FILE.to_string(),
        )),
    }
}

fn run(args: &RunArgs) -> Result<bool, Failure> {
    let (scenario, file) = load(args.scenario.as_deref())?;
    let seed = args.seed.or(scenario.seed).unwrap_or(0);
    match args.runtime {
        Runtime::Threads => {
            if args.trace.is_some() {
                return Err(Failure::BadInput(anyhow::anyhow!(
                    "--trace is only available with --runtime sim"
                )));
            }
            let opts = ScenarioRunOptions {
                events: args.events,
                seed,
                stop_after: args.until,
                record: false,
            };
            let run = threads::run_scenario(&scenario, &opts).map_err(|e| match e {
                threads::ScenarioRunError::Plan(_) => Failure::BadInput(anyhow::Error::new(e)),
                _ => Failure::RunFailed(anyhow::Error::new(e)),
            })?;
            for l in &run.limitations {
                eprintln!("note: {l}");
            }
            let summary = run.outcome.summary(&scenario.name);
            print_summary(&summary, args.json, || summary.table())?;
            for e in &summary.errors {
                eprintln!("error: {e}");
            }
            if !summary.balanced {
                eprintln!("error: the run did not balance; scenario {file}");
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
    };
    let replay = format!("replay: flowbench run {file} --runtime sim --seed {seed}");
    let mut trace_file = match &args.trace {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p)
                .with_context(|| format!("cannot create trace file {}", p.display()))
                .map_err(Failure::BadInput)?,
        )),
        None => None,
    };
    let result = flowbench_sim::run(
        scenario,
        &opts,
        trace_file.as_mut().map(|w| w as &mut dyn std::io::Write),
    );
    if let Some(mut w) = trace_file {
        w.flush()
            .context("cannot write the trace file")
            .map_err(Failure::RunFailed)?;
    }
    let outcome = result.map_err(|e| {
        if e.is_unbounded() {
            // The scenario needs a bound the command line did not give: bad input.
            return Failure::BadInput(anyhow::Error::new(e));
        }
        eprintln!("{replay}");
        Failure::RunFailed(anyhow::Error::new(e))
    })?;
    let summary = outcome.summary();
    print_summary(&summary, args.json, || outcome.table())?;
    if !summary.base.balanced {
        eprintln!("error: the run did not balance");
        eprintln!("{replay}");
    }
    Ok(summary.base.balanced)
}

fn print_summary<S: serde::Serialize>(
    summary: &S,
    json: bool,
    table: impl FnOnce() -> String,
) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    let text = if json {
        serde_json::to_string(summary)
            .context("cannot encode the summary")
            .map_err(Failure::RunFailed)?
            + "\n"
    } else {
        table()
    };
    // A closed pipe (e.g. `| head`) is not an error of the run.
    let _ = out.write_all(text.as_bytes());
    Ok(())
}

fn check(path: &std::path::Path, json: bool) -> Result<bool, Failure> {
    let s = scenario::load(path)?;
    if json {
        let v = serde_json::json!({
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
    let result = match &cli.command {
        Command::Run(args) => run(args),
        Command::Check { scenario, json } => check(scenario, *json),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(Failure::BadInput(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
        Err(Failure::RunFailed(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
