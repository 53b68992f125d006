//! Why a simulated run failed, and how to replay it.
//!
//! [`SimError`] is opaque: ask it what happened ([`SimError::deadlock`],
//! [`SimError::is_unbounded`]) and for the seed that replays it ([`SimError::seed`],
//! [`SimError::replay_hint`]). A run whose accounting does not balance is *not* an error:
//! its summary says `balanced: false`. This module never prints; the CLI does.

use std::fmt;

pub use flowbench_engine::report::{DeadlockReport, LinkState, StageState};
use std::io;

use crate::outcome::SimOutcome;

/// A simulated run that could not finish. See the module documentation.
///
/// ```
/// use flowbench_engine::scenario::parse_str;
/// use flowbench_sim::{run, SimOptions};
///
/// // A counter never runs out: without `events` or `until_ns` the run is refused.
/// let s = parse_str(r#"
/// [[stage]]
/// name = "ticks"
/// kind = "producer"
/// source = { counter = 0 }
/// [[stage]]
/// name = "sink"
/// kind = "consumer"
/// [[subscription]]
/// producer = "ticks"
/// consumer = "sink"
/// "#, "ticks.toml").unwrap();
/// let err = run(&s, &SimOptions { seed: Some(9), ..SimOptions::default() }, None).unwrap_err();
/// assert!(err.is_unbounded());
/// assert_eq!(err.seed(), 9);
/// assert_eq!(
///     err.replay_hint("ticks.toml"),
///     "replay: flowbench run ticks.toml --runtime sim --seed 9"
/// );
/// ```
#[derive(Debug)]
pub struct SimError {
    seed: u64,
    kind: ErrorKind,
}

#[derive(Debug)]
enum ErrorKind {
    Deadlock(Box<(DeadlockReport, SimOutcome)>),
    Plan(flowbench_engine::plan::PlanError),
    Trace(io::Error),
    TimeOverflow { stage: String, t_ns: u64 },
}

impl SimError {
    pub(crate) fn deadlocked(seed: u64, report: DeadlockReport, outcome: SimOutcome) -> Self {
        SimError {
            seed,
            kind: ErrorKind::Deadlock(Box::new((report, outcome))),
        }
    }

    pub(crate) fn plan(seed: u64, e: flowbench_engine::plan::PlanError) -> Self {
        SimError {
            seed,
            kind: ErrorKind::Plan(e),
        }
    }

    pub(crate) fn time_overflow(seed: u64, stage: &str, t_ns: u64) -> Self {
        SimError {
            seed,
            kind: ErrorKind::TimeOverflow {
                stage: stage.to_string(),
                t_ns,
            },
        }
    }

    pub(crate) fn trace(seed: u64, err: io::Error) -> Self {
        SimError {
            seed,
            kind: ErrorKind::Trace(err),
        }
    }

    /// The root seed of the failed run.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// One line that replays the run from the command line, for `scenario_file`:
    /// `replay: flowbench run <scenario> --runtime sim --seed N`.
    pub fn replay_hint(&self, scenario_file: &str) -> String {
        format!(
            "replay: flowbench run {scenario_file} --runtime sim --seed {}",
            self.seed
        )
    }

    /// The state of every stage when the run deadlocked, if that is what happened.
    pub fn deadlock(&self) -> Option<&DeadlockReport> {
        match &self.kind {
            ErrorKind::Deadlock(b) => Some(&b.0),
            _ => None,
        }
    }

    /// The figures of the run up to the deadlock, if the run deadlocked.
    pub fn outcome(&self) -> Option<&SimOutcome> {
        match &self.kind {
            ErrorKind::Deadlock(b) => Some(&b.1),
            _ => None,
        }
    }

    /// `true` if the run was refused because a source never ends and neither an event
    /// limit nor a time limit was given.
    pub fn is_unbounded(&self) -> bool {
        use flowbench_engine::plan::PlanError;
        matches!(
            self.kind,
            ErrorKind::Plan(PlanError::Unbounded { .. } | PlanError::Timeless { .. })
        )
    }

    /// `true` if the scenario and options cannot be run at all (the plan refused them:
    /// a source that needs a limit, `cores = 0`): bad input, not a failed run.
    pub fn is_bad_input(&self) -> bool {
        matches!(self.kind, ErrorKind::Plan(_))
    }

    /// `true` if the trace could not be written.
    pub fn is_trace_write(&self) -> bool {
        matches!(self.kind, ErrorKind::Trace(_))
    }
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::Deadlock(b) => write!(f, "{} (seed {})", b.0, self.seed),
            ErrorKind::Plan(e) => e.fmt(f),
            ErrorKind::TimeOverflow { stage, t_ns } => write!(
                f,
                "virtual time would pass its end (2^64 ns, about 584 years) in a service of \
                 stage `{stage}` starting at {t_ns} ns: its per_event, per_batch or slowdown \
                 factor is too large"
            ),
            // The cause is the source: `{:#}` prints it once.
            ErrorKind::Trace(_) => f.write_str("cannot write the trace"),
        }
    }
}

impl std::error::Error for SimError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Trace(e) => Some(e),
            _ => None,
        }
    }
}
