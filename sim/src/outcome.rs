//! What a finished simulated run reports: the engine's run summary plus the sim's own
//! figures (seed, trace hash, virtual time, latency, memory peak, busy fractions) and the
//! sampled time series.
//!
//! This module only formats what the scheduler measured; it computes nothing about the
//! run itself beyond ratios.

use std::fmt::Write as _;

use flowbench_engine::report::{account, LinkFigures, RunSummary, StageFigures};
use serde::Serialize;

use crate::latency::{Histogram, LatencySummary};
use crate::series::Series;

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ended {
    /// Nothing was left to happen: every event was handled, dropped or lost.
    Drained,
    /// The time limit (`until_ns`) was reached; what was in flight is reported as such.
    Until,
}

impl Ended {
    /// `drained` or `until`.
    pub fn name(self) -> &'static str {
        match self {
            Ended::Drained => "drained",
            Ended::Until => "until",
        }
    }
}

/// The figures of a finished simulated run. Build one with [`crate::run`].
#[derive(Clone, Debug)]
pub struct SimOutcome {
    pub(crate) scenario: String,
    pub(crate) seed: u64,
    pub(crate) trace_hash: u64,
    /// Whether the trace hash was computed (`SimOptions::trace_hash`).
    pub(crate) hashed: bool,
    pub(crate) virtual_ns: u64,
    pub(crate) wall_s: f64,
    pub(crate) ended: Ended,
    pub(crate) stages: Vec<StageFigures>,
    pub(crate) links: Vec<LinkFigures>,
    pub(crate) busy_fraction: Vec<f64>,
    pub(crate) latency: Histogram,
    pub(crate) unmeasured: u64,
    pub(crate) memory_peak_events: u64,
    pub(crate) messages: u64,
    pub(crate) records: u64,
    /// Per source, event ids it handed out twice (a bug if ever non-empty).
    pub(crate) duplicate_ids: Vec<(String, u64)>,
    pub(crate) series: Series,
}

/// The summary of a simulated run, as `flowbench run --runtime sim --json` prints it: the
/// fields of the engine's [`RunSummary`] (flattened, with `runtime = "sim"` and
/// `elapsed_s` the wall time the simulation took) and the simulator's own.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SimSummary {
    /// The engine's summary; its stage rows carry `busy_fraction`.
    #[serde(flatten)]
    pub base: RunSummary,
    /// The root seed of the run.
    pub seed: u64,
    /// The trace hash, 16 lowercase hex digits.
    pub trace_hash: String,
    /// Virtual time at the end of the run, seconds.
    pub virtual_time_s: f64,
    /// Events delivered per second of virtual time.
    pub virtual_throughput_eps: f64,
    /// Born-to-consumed latency of events, microseconds.
    pub latency_us: LatencySummary,
    /// The most events held at once: buffered + in mailboxes + in flight.
    pub memory_peak_events: u64,
    /// Protocol messages delivered (subscribe, ask, events, cancel, refund).
    pub messages: u64,
    /// `drained` or `until`.
    pub ended: Ended,
}

impl SimOutcome {
    /// The scenario's name.
    pub fn scenario(&self) -> &str {
        &self.scenario
    }

    /// The root seed the run used.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The trace hash: every delivery and handled chunk, in order (see the README, "The
    /// trace format"); 0 when it was turned off ([`SimOptions::trace_hash`](crate::SimOptions::trace_hash)).
    pub fn trace_hash(&self) -> u64 {
        self.trace_hash
    }

    /// Whether the trace hash was computed.
    pub fn hashed(&self) -> bool {
        self.hashed
    }

    /// The trace hash as 16 lowercase hex digits, or `off`.
    pub fn trace_hash_hex(&self) -> String {
        if self.hashed {
            format!("{:016x}", self.trace_hash)
        } else {
            "off".to_string()
        }
    }

    /// Virtual time at the end of the run, ns.
    pub fn virtual_ns(&self) -> u64 {
        self.virtual_ns
    }

    /// Wall-clock seconds the simulation took (the only wall-clock reading of a run; it
    /// influences nothing).
    pub fn wall_s(&self) -> f64 {
        self.wall_s
    }

    /// How the run ended.
    pub fn ended(&self) -> Ended {
        self.ended
    }

    /// Per-stage figures, in scenario order (earlier incarnations of restarted stages
    /// summed in).
    pub fn stages(&self) -> &[StageFigures] {
        &self.stages
    }

    /// Per-subscription figures, in scenario order.
    pub fn links(&self) -> &[LinkFigures] {
        &self.links
    }

    /// The fraction of the run each stage was busy (pools: the mean fraction of their job
    /// slots in use), in scenario order.
    pub fn busy_fractions(&self) -> &[f64] {
        &self.busy_fraction
    }

    /// Born-to-consumed latencies, ns.
    pub fn latency(&self) -> &Histogram {
        &self.latency
    }

    /// Consumed events whose birth time was not known (not measured).
    pub fn latency_unmeasured(&self) -> u64 {
        self.unmeasured
    }

    /// The most events held at once: buffered + in mailboxes + in flight.
    pub fn memory_peak_events(&self) -> u64 {
        self.memory_peak_events
    }

    /// Protocol messages delivered.
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// Trace records (written, or only hashed when no trace was asked for; none with the
    /// trace hash off and no trace).
    pub fn trace_records(&self) -> u64 {
        self.records
    }

    /// The sampled time series.
    pub fn series(&self) -> &Series {
        &self.series
    }

    /// Events handled by final consumers (consumers and pools).
    pub fn events_delivered(&self) -> u64 {
        self.stages
            .iter()
            .filter(|s| !s.kind.produces())
            .map(|s| s.stats.handled)
            .sum()
    }

    /// `true` if every producing stage's accounting balanced.
    pub fn balanced(&self) -> bool {
        self.duplicate_ids.is_empty()
            && account(&self.stages, &self.links)
                .iter()
                .all(|b| b.balanced)
    }

    /// Sources that handed an event id out twice, with how many (empty in a sound run:
    /// the accounting counts events, so it also checks that ids do not repeat).
    pub fn duplicate_ids(&self) -> &[(String, u64)] {
        &self.duplicate_ids
    }

    /// The serialisable summary.
    ///
    /// ```
    /// use flowbench_engine::scenario::{parse_str, DEFAULT_SCENARIO, DEFAULT_SCENARIO_FILE};
    /// use flowbench_sim::{run, SimOptions};
    /// let s = parse_str(DEFAULT_SCENARIO, DEFAULT_SCENARIO_FILE).unwrap();
    /// let out = run(&s, &SimOptions { events: Some(5_000), ..SimOptions::default() }, None).unwrap();
    /// let sum = out.summary();
    /// assert_eq!(sum.base.runtime, "sim");
    /// assert!(sum.base.balanced);
    /// assert_eq!(sum.base.events_delivered, 5_000);
    /// assert_eq!(sum.seed, 42); // the scenario's seed
    /// assert_eq!(sum.trace_hash.len(), 16);
    /// let json = serde_json::to_value(&sum).unwrap();
    /// assert_eq!(json["runtime"], "sim");
    /// assert!(json["stages"][1]["busy_fraction"].as_f64().unwrap() > 0.9); // parse is the bottleneck
    /// ```
    pub fn summary(&self) -> SimSummary {
        let mut base = RunSummary::new(
            &self.scenario,
            "sim",
            self.wall_s,
            &self.stages,
            &self.links,
        );
        let dup: Vec<String> = self
            .duplicate_ids
            .iter()
            .map(|(s, n)| format!("source `{s}` handed out {n} event ids twice"))
            .collect();
        base.fail(&dup);
        for (row, f) in base.stages.iter_mut().zip(&self.busy_fraction) {
            row.busy_fraction = Some(*f);
        }
        let virtual_time_s = self.virtual_ns as f64 / 1e9;
        SimSummary {
            virtual_throughput_eps: if virtual_time_s > 0.0 {
                base.events_delivered as f64 / virtual_time_s
            } else {
                0.0
            },
            base,
            seed: self.seed,
            trace_hash: self.trace_hash_hex(),
            virtual_time_s,
            latency_us: self.latency.summary_us(),
            memory_peak_events: self.memory_peak_events,
            messages: self.messages,
            ended: self.ended,
        }
    }

    /// The summary as a human-readable table: the engine's table, then the sim's lines.
    pub fn table(&self) -> String {
        let sum = self.summary();
        let mut s = sum.base.table();
        let _ = writeln!(
            s,
            "sim: seed {}, trace hash {}, virtual time {:.6} s ({:.0} events/s virtual), {} messages, ended: {}",
            sum.seed,
            sum.trace_hash,
            sum.virtual_time_s,
            sum.virtual_throughput_eps,
            sum.messages,
            sum.ended.name()
        );
        let l = sum.latency_us;
        let _ = writeln!(
            s,
            "latency (born -> consumed, us): p50 {:.3}, p90 {:.3}, p99 {:.3}, max {:.3} over {} events",
            l.p50, l.p90, l.p99, l.max, l.count
        );
        let _ = writeln!(
            s,
            "memory peak: {} events (buffered + in mailboxes + in flight)",
            sum.memory_peak_events
        );
        let width = sum
            .base
            .stages
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(5)
            .max(5);
        let _ = writeln!(s, "{:<width$}  {:>6}  {:>8}", "stage", "busy", "excess");
        for r in &sum.base.stages {
            let _ = writeln!(
                s,
                "{:<width$}  {:>5.1}%  {:>8}",
                r.name,
                r.busy_fraction.unwrap_or(0.0) * 100.0,
                r.excess
            );
        }
        s
    }
}
