//! Typed trace records for the property tests: each JSON line of a simulated run's trace
//! (format: the README, "The trace format") read into a [`Rec`] whose stage names are scenario indices and
//! whose subscription is named by its link id, plus a runner that keeps the trace and the
//! figures of a run, deadlocked or not.
//!
//! This module only reads what the simulator wrote; it decides nothing about the run.

// Each test file uses its own subset of these helpers.
#![allow(dead_code)]

use flowbench_engine::scenario::Scenario;
use flowbench_sim::{run, DeadlockReport, SimError, SimOptions, SimOutcome};
use serde::Deserialize;

/// What a record is about (the README's trace format, "Kinds").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum K {
    Subscribe,
    Ask,
    Events,
    Cancel,
    Refund,
    Handle,
    Demand,
    Drop,
    Lost,
    Arrive,
    Forward,
    Shutdown,
    Crash,
    Restart,
    /// The producer's note to itself to make events again for hash-dropped ones.
    Resupply,
    /// A kind this reader does not know (the trace format: readers ignore what they do not know).
    Other,
}

/// One trace record.
#[derive(Clone, Debug)]
pub struct Rec {
    /// Virtual time, ns.
    pub t: u64,
    /// Position in the trace.
    pub seq: usize,
    pub kind: K,
    /// The stage the record is about: `stage` where the record has one; for deliveries
    /// the receiving stage (`to`).
    pub stage: Option<usize>,
    /// The subscription, for records between two stages.
    pub link: Option<usize>,
    /// For a `cancel`: sent by the producer (downstream) rather than the consumer.
    pub down: bool,
    /// `n`, or 0.
    pub n: u64,
    /// The ids of `events`, expanded, in order.
    pub ids: Vec<u64>,
    /// `reason` or `cause`.
    pub text: Option<String>,
}

#[derive(Deserialize)]
struct Raw {
    t_ns: u64,
    kind: String,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    stage: Option<String>,
    #[serde(default)]
    n: Option<u64>,
    #[serde(default)]
    events: Option<Vec<(u64, u64)>>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    cause: Option<String>,
}

/// The link between producer `p` and consumer `c`, if any.
pub fn link_of(s: &Scenario, p: usize, c: usize) -> Option<usize> {
    s.links
        .iter()
        .position(|l| l.producer == p && l.consumer == c)
}

/// Reads a trace (JSON lines) of a run of `s`.
pub fn parse(s: &Scenario, text: &str) -> Result<Vec<Rec>, String> {
    let idx = |name: &Option<String>| -> Result<Option<usize>, String> {
        match name {
            None => Ok(None),
            Some(n) => s
                .stage(n)
                .map(|(i, _)| Some(i))
                .ok_or_else(|| format!("trace names an unknown stage `{n}`")),
        }
    };
    let mut out = Vec::new();
    for (seq, line) in text.lines().enumerate() {
        let raw: Raw =
            serde_json::from_str(line).map_err(|e| format!("trace line {seq}: {e}: {line}"))?;
        let kind = match raw.kind.as_str() {
            "subscribe" => K::Subscribe,
            "ask" => K::Ask,
            "events" => K::Events,
            "cancel" => K::Cancel,
            "refund" => K::Refund,
            "handle" => K::Handle,
            "demand" => K::Demand,
            "drop" => K::Drop,
            "lost" => K::Lost,
            "arrive" => K::Arrive,
            "forward" => K::Forward,
            "shutdown" => K::Shutdown,
            "crash" => K::Crash,
            "restart" => K::Restart,
            "resupply" => K::Resupply,
            _ => K::Other,
        };
        let from = idx(&raw.from)?;
        let to = idx(&raw.to)?;
        let stage = idx(&raw.stage)?;
        let (stage, link, down) = match kind {
            K::Subscribe | K::Ask | K::Refund => {
                let (c, p) = (from.ok_or("no from")?, to.ok_or("no to")?);
                (Some(p), link_of(s, p, c), false)
            }
            K::Events => {
                let (p, c) = (from.ok_or("no from")?, to.ok_or("no to")?);
                (Some(c), link_of(s, p, c), true)
            }
            K::Cancel => {
                let (a, b) = (from.ok_or("no from")?, to.ok_or("no to")?);
                match link_of(s, a, b) {
                    Some(l) => (Some(b), Some(l), true),
                    None => (Some(b), link_of(s, b, a), false),
                }
            }
            K::Resupply => (to, None, false),
            K::Handle | K::Lost => {
                let st = stage.ok_or("no stage")?;
                (Some(st), from.and_then(|p| link_of(s, p, st)), false)
            }
            _ => (stage, None, false),
        };
        let needs_link = matches!(
            kind,
            K::Subscribe | K::Ask | K::Refund | K::Events | K::Cancel | K::Handle
        ) || (kind == K::Lost && from.is_some());
        if needs_link && link.is_none() {
            return Err(format!("trace line {seq}: no subscription matches: {line}"));
        }
        let ids = raw
            .events
            .unwrap_or_default()
            .into_iter()
            .flat_map(|(a, b)| a..=b)
            .collect();
        out.push(Rec {
            t: raw.t_ns,
            seq,
            kind,
            stage,
            link,
            down,
            n: raw.n.unwrap_or(0),
            ids,
            text: raw.reason.or(raw.cause),
        });
    }
    Ok(out)
}

/// A finished run (drained, or stopped by a deadlock) with its trace.
pub struct Ran {
    pub outcome: SimOutcome,
    pub deadlock: Option<DeadlockReport>,
    pub trace: Vec<Rec>,
    pub trace_text: String,
}

/// Runs `s` with a trace. A deadlock is not an error here (its figures are kept); any
/// other failure is.
pub fn run_case(s: &Scenario, opts: &SimOptions) -> Result<Ran, String> {
    let mut buf = Vec::new();
    let res: Result<SimOutcome, SimError> = run(s, opts, Some(&mut buf));
    let trace_text = String::from_utf8(buf).map_err(|e| format!("trace is not UTF-8: {e}"))?;
    let (outcome, deadlock) = match res {
        Ok(o) => (o, None),
        Err(e) => match (e.outcome(), e.deadlock()) {
            (Some(o), Some(d)) => (o.clone(), Some(d.clone())),
            _ => return Err(format!("the run failed: {e}")),
        },
    };
    let trace = parse(s, &trace_text)?;
    Ok(Ran {
        outcome,
        deadlock,
        trace,
        trace_text,
    })
}
