//! One trace record read back: a line of the JSON-lines trace that
//! `flowbench run --trace` writes (the format is specified in the README, "The trace
//! format"), for viewers that replay a trace or explain a stepped run.

use std::fmt;

use serde::Deserialize;

/// One record of a trace. Fields a kind does not have are `None` (or empty); fields this
/// reader does not know are ignored, as the format allows.
///
/// ```
/// use flowbench_sim::Record;
/// let r = Record::parse(r#"{"t_ns":5,"seq":0,"kind":"events","from":"p","to":"c","n":3,"events":[[1,2],[7,7]]}"#).unwrap();
/// assert_eq!((r.t_ns, r.kind.as_str(), r.n), (5, "events", Some(3)));
/// assert_eq!(r.events, [(1, 2), (7, 7)]);
/// assert_eq!(r.from.as_deref(), Some("p"));
/// assert!(Record::parse("{\"seq\":1}").is_err()); // no t_ns, no kind
/// ```
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Record {
    /// Virtual time, ns.
    pub t_ns: u64,
    /// The record's number, from 0.
    pub seq: u64,
    /// What it is about: `subscribe`, `ask`, `events`, `handle`, `crash`, ...
    pub kind: String,
    /// The stage doing it (`handle`, `demand`, `drop`, `lost`, `crash`, ...).
    #[serde(default)]
    pub stage: Option<String>,
    /// The sender of a delivery, or the producer of handled events.
    #[serde(default)]
    pub from: Option<String>,
    /// The receiver of a delivery.
    #[serde(default)]
    pub to: Option<String>,
    /// Events, or demand.
    #[serde(default)]
    pub n: Option<u64>,
    /// Event ids as inclusive ranges.
    #[serde(default)]
    pub events: Vec<(u64, u64)>,
    /// Why a subscription ended or a stage crashed.
    #[serde(default)]
    pub reason: Option<String>,
    /// Why events were dropped or lost.
    #[serde(default)]
    pub cause: Option<String>,
    /// New `max_demand` (`retune`).
    #[serde(default)]
    pub max_demand: Option<u64>,
    /// New `min_demand` (`retune`).
    #[serde(default)]
    pub min_demand: Option<u64>,
    /// Slowdown factor (`slow`).
    #[serde(default)]
    pub factor: Option<f64>,
}

/// A line that is not a trace record.
#[derive(Debug)]
pub struct RecordError(serde_json::Error);

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a trace record: {}", self.0)
    }
}

impl std::error::Error for RecordError {}

impl Record {
    /// Reads one line of a trace.
    pub fn parse(line: &str) -> Result<Record, RecordError> {
        serde_json::from_str(line).map_err(RecordError)
    }

    /// The first id and the last id it carries, if any.
    pub fn id_span(&self) -> Option<(u64, u64)> {
        Some((self.events.first()?.0, self.events.last()?.1))
    }
}
