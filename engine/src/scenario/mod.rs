//! Scenario files: TOML text in, a validated [`Scenario`] out, or the first problem.
//!
//! A scenario file describes a pipeline: its stages, how they subscribe to each other,
//! where events come from, and how long each stage takes per event. The format is
//! documented for users in the README ("Scenario format reference"); the shortest useful file is
//!
//! ```
//! let text = r#"
//! [[stage]]
//! name = "source"
//! kind = "producer"
//! source = { range = [1, 100] }
//!
//! [[stage]]
//! name = "sink"
//! kind = "consumer"
//!
//! [[subscription]]
//! producer = "source"
//! consumer = "sink"
//! max_demand = 10
//! "#;
//! let scenario = flowbench_engine::scenario::parse_str(text, "tiny.toml").unwrap();
//! assert_eq!(scenario.name, "tiny");
//! assert_eq!(scenario.links[0].demand.min(), 5);
//! ```
//!
//! Reading goes in three steps, each reporting at most one error:
//!
//! 1. **syntax**: the text must be TOML (`syntax`);
//! 2. **shape**: every key must be known and every value of the right type (`raw`);
//! 3. **meaning**: ranges, references between stages and subscriptions, and the topology
//!    (`validate`, with `stage`, `source`, `fault`, `link`, `graph` and `values`).
//!
//! Within a step the error reported is the one earliest in the file (in the shape step,
//! the keys of one table are read in alphabetical order). Every error names the file,
//! line, column and key, and says what is allowed; see [`ScenarioError`].
//!
//! This module never runs anything and never reads a clock or an RNG: it only turns text
//! into a [`Scenario`]. It panics on no input.

mod error;
mod fault;
mod graph;
mod link;
pub mod model;
mod raw;
mod source;
mod stage;
mod syntax;
mod validate;
mod values;

#[cfg(test)]
mod tests;

use std::path::Path;

pub use self::error::ScenarioError;
pub use self::model::{
    CrashTrigger, DispatcherDef, Dist, Fault, HashDef, LinkDef, PushDef, Scenario, ScriptBatch,
    SelectorDef, SourceDef, StageDef,
};

/// The most partitions a partition dispatcher may have in a scenario file (`partitions`).
pub const MAX_PARTITIONS: u32 = 1024;

/// The scenario used when none is named: a log pipeline (`scenarios/log-pipeline.toml`).
pub const DEFAULT_SCENARIO: &str = include_str!("../../../scenarios/log-pipeline.toml");

/// The file name of [`DEFAULT_SCENARIO`], for messages and for a default scenario name.
pub const DEFAULT_SCENARIO_FILE: &str = "scenarios/log-pipeline.toml";

/// Reads and checks a scenario from `text`; `file` is the name used in error messages and,
/// through its stem, the default scenario name.
///
/// ```
/// use flowbench_engine::scenario::{parse_str, DEFAULT_SCENARIO, DEFAULT_SCENARIO_FILE};
/// let scenario = parse_str(DEFAULT_SCENARIO, DEFAULT_SCENARIO_FILE).unwrap();
/// assert_eq!(scenario.name, "log-pipeline");
///
/// let text = DEFAULT_SCENARIO.replace("max_demand = 1000", "max_demand = 0");
/// let err = parse_str(&text, "x.toml").unwrap_err();
/// assert_eq!(err.message(), "max_demand must be at least 1, got 0");
/// ```
pub fn parse_str(text: &str, file: &str) -> Result<Scenario, ScenarioError> {
    let raw = syntax::parse(text).map_err(|issue| issue.into_error(file, text))?;
    validate::scenario(raw, file).map_err(|issue| issue.into_error(file, text))
}

/// The largest scenario file [`load`] reads: 64 MiB.
pub const MAX_SCENARIO_BYTES: u64 = 64 << 20;

/// Reads and checks the scenario file at `path`. A file that cannot be read, or is not
/// UTF-8, is a [`ScenarioError`] too (the latter at its first invalid byte).
///
/// ```
/// let path = std::path::Path::new("no/such/file.toml");
/// let err = flowbench_engine::scenario::load(path).unwrap_err();
/// assert_eq!(err.field(), "(file)");
/// ```
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    use std::io::Read as _;
    let file = path.display().to_string();
    let f = std::fs::File::open(path).map_err(|err| ScenarioError::io(&file, &err))?;
    // Read one byte past the cap, so a larger file (or an endless one such as
    // `/dev/zero`) is refused without being read whole.
    let mut bytes = Vec::new();
    f.take(MAX_SCENARIO_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| ScenarioError::io(&file, &err))?;
    if bytes.len() as u64 > MAX_SCENARIO_BYTES {
        return Err(ScenarioError::too_large(&file, MAX_SCENARIO_BYTES));
    }
    let text =
        std::str::from_utf8(&bytes).map_err(|err| ScenarioError::not_utf8(&file, &bytes, err))?;
    parse_str(text, &file)
}
