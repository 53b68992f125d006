//! What a run reports: per-stage figures, the accounting check, and the summary that
//! `flowbench run` prints (as a table or as JSON).
//!
//! The accounting rule (`SEMANTICS.md`, "Accounting"), for every producing stage:
//! `emitted = delivered + dropped + lost + buffered (+ in flight, if the run was cut
//! short)`. A run whose figures do not balance is a bug and is reported as such.

use std::fmt;

use crate::core::{InLinkStats, OutLinkStats, StageCore, StageKind, StageStats, Status};

/// The figures of one stage, copied out of its core (plus what only the runtime knows).
#[derive(Clone, Debug, PartialEq)]
pub struct StageFigures {
    /// Stage name.
    pub name: String,
    /// Stage kind.
    pub kind: StageKind,
    /// The core's counters.
    pub stats: StageStats,
    /// Events in the producer buffer.
    pub buffered: u64,
    /// Events in dispatcher queues (partition).
    pub dispatcher_queued: u64,
    /// Events in a producer-consumer's input queue.
    pub input_queued: u64,
    /// Events received beyond what was asked.
    pub excess: u64,
    /// Upstream subscriptions.
    pub in_links: Vec<InLinkStats>,
    /// Downstream subscriptions.
    pub out_links: Vec<OutLinkStats>,
    /// The most messages waiting in the stage's mailbox (runtime).
    pub mailbox_peak: u64,
    /// Time spent handling messages, ns (runtime).
    pub busy_ns: u64,
    /// `running`, or the reason the stage stopped.
    pub exit: String,
}

impl StageFigures {
    /// Copies the figures of `core`; runtime-only fields start at zero.
    pub fn capture<I: Send + 'static, O: Clone + Send + 'static>(
        name: &str,
        core: &StageCore<I, O>,
    ) -> Self {
        StageFigures {
            name: name.to_string(),
            kind: core.kind(),
            stats: core.stats().clone(),
            buffered: core.buffered(),
            dispatcher_queued: core.dispatcher_queued(),
            input_queued: core.input_queued(),
            excess: core.excess(),
            in_links: core.in_links().collect(),
            out_links: core.out_links().collect(),
            mailbox_peak: 0,
            busy_ns: 0,
            exit: match core.status() {
                Status::Running => "running".to_string(),
                Status::Draining(r) => format!("draining ({r})"),
                Status::Stopped(r) => r.to_string(),
            },
        }
    }
}

impl StageFigures {
    /// The figures of a stage whose thread died: nothing is known but its name and kind.
    pub fn unknown(name: &str, kind: StageKind, exit: &str) -> Self {
        StageFigures {
            name: name.to_string(),
            kind,
            stats: StageStats::default(),
            buffered: 0,
            dispatcher_queued: 0,
            input_queued: 0,
            excess: 0,
            in_links: Vec::new(),
            out_links: Vec::new(),
            mailbox_peak: 0,
            busy_ns: 0,
            exit: exit.to_string(),
        }
    }

    /// The figures of a restarted stage: this incarnation's (`self`), with the counters
    /// of the earlier ones (`old`) added; depths and the exit are this incarnation's.
    pub fn after(mut self, old: &StageFigures) -> Self {
        let mut stats = old.stats.clone();
        stats.add(&self.stats);
        self.stats = stats;
        self.excess += old.excess;
        for l in &mut self.in_links {
            if let Some(o) = old.in_links.iter().find(|o| o.link == l.link) {
                l.handled += o.handled;
                l.lost += o.lost;
                l.excess += o.excess;
            }
        }
        for l in &mut self.out_links {
            if let Some(o) = old.out_links.iter().find(|o| o.link == l.link) {
                l.dispatched += o.dispatched;
            }
        }
        self
    }
}

/// Runtime-side figures of one link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkFigures {
    /// Producing stage index.
    pub producer: usize,
    /// Consuming stage index.
    pub consumer: usize,
    /// Events in messages that could not be delivered (the consumer was gone).
    pub undeliverable: u64,
    /// Events still travelling or waiting in the consumer's mailbox when the run ended.
    pub in_flight: u64,
}

/// The accounting of one producing stage, checked at two levels:
///
/// - at the producer: `emitted = handed_out + dropped + lost_out + held`, where `held` is
///   its buffer and dispatcher queues;
/// - on each of its subscriptions: `sent = handled + lost + queued + in_flight`, where a
///   broadcast sends each event once per consumer.
///
/// For a non-broadcast producer the two add up to SEMANTICS.md's rule
/// `emitted = delivered + dropped + lost + buffered`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "scenario", derive(serde::Serialize))]
pub struct Balance {
    /// Stage name.
    pub stage: String,
    /// Events it created.
    pub emitted: u64,
    /// Distinct events that left it (through the dispatcher).
    pub handed_out: u64,
    /// Events its consumers handled (each broadcast copy counts).
    pub delivered: u64,
    /// Events it dropped.
    pub dropped: u64,
    /// Events lost: discarded from its queues, or lost on the way or at a consumer.
    pub lost: u64,
    /// Events still in its buffer or dispatcher queues, or queued at a consumer's input.
    pub buffered: u64,
    /// Events still in flight.
    pub in_flight: u64,
    /// Both levels balance.
    pub balanced: bool,
    /// What did not balance, if anything.
    #[cfg_attr(feature = "scenario", serde(skip_serializing_if = "Vec::is_empty"))]
    pub problems: Vec<String>,
}

/// Checks the accounting rule for every producing stage.
pub fn account(stages: &[StageFigures], links: &[LinkFigures]) -> Vec<Balance> {
    let mut out = Vec::new();
    let mut by_producer: Vec<Vec<usize>> = vec![Vec::new(); stages.len()];
    for (l, lf) in links.iter().enumerate() {
        if let Some(v) = by_producer.get_mut(lf.producer) {
            v.push(l);
        }
    }
    for (i, st) in stages.iter().enumerate() {
        if !st.kind.produces() {
            continue;
        }
        let s = &st.stats;
        let held = st.buffered + st.dispatcher_queued;
        let mut problems = Vec::new();
        if s.emitted != s.handed_out + s.dropped + s.lost_out + held {
            problems.push(format!(
                "{}: emitted {} != handed out {} + dropped {} + lost {} + held {}",
                st.name, s.emitted, s.handed_out, s.dropped, s.lost_out, held
            ));
        }
        let (mut delivered, mut lost, mut queued, mut in_flight) = (0, s.lost_out, 0, 0);
        for &l in &by_producer[i] {
            let lf = &links[l];
            let sent = st
                .out_links
                .iter()
                .find(|x| x.link as usize == l)
                .map_or(0, |x| x.dispatched);
            let consumer = &stages[lf.consumer];
            let (h, lo, q) = consumer
                .in_links
                .iter()
                .find(|x| x.link as usize == l)
                .map_or((0, 0, 0), |x| (x.handled, x.lost, x.queued));
            delivered += h;
            lost += lo + lf.undeliverable;
            queued += q;
            in_flight += lf.in_flight;
            if sent != h + lo + q + lf.undeliverable + lf.in_flight {
                problems.push(format!(
                    "link {l} {} -> {}: sent {sent} != handled {h} + lost {} + queued {q} + in flight {}",
                    st.name,
                    consumer.name,
                    lo + lf.undeliverable,
                    lf.in_flight
                ));
            }
        }
        out.push(Balance {
            stage: st.name.clone(),
            emitted: s.emitted,
            handed_out: s.handed_out,
            delivered,
            dropped: s.dropped,
            lost,
            buffered: held + queued,
            in_flight,
            balanced: problems.is_empty(),
            problems,
        });
    }
    out
}

/// One row of the summary table / JSON `stages` array.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "scenario", derive(serde::Serialize))]
pub struct StageSummary {
    /// Stage name.
    pub name: String,
    /// `producer`, `producer_consumer`, `consumer` or `consumer_pool`.
    pub kind: &'static str,
    /// Events this stage created.
    pub emitted: u64,
    /// Of those, events its consumers handled.
    pub delivered: u64,
    /// Events this stage handled (as a consumer).
    pub received: u64,
    /// Events this stage dropped.
    pub dropped: u64,
    /// Events lost *at* this stage, each counted on one row only: input that reached it
    /// after its subscription ended or while it went away, events discarded from its own
    /// queues, and events it sent to a stage that was already gone. The column adds up to
    /// every event the run lost.
    pub lost: u64,
    /// Events still in this stage's buffer or queues at the end.
    pub buffered: u64,
    /// Most messages in the mailbox at once.
    pub mailbox_peak: u64,
    /// Most events in the buffer at once.
    pub buffer_peak: u64,
    /// Asks this stage sent upstream.
    pub asks: u64,
    /// Asks this stage received from downstream.
    pub asks_received: u64,
    /// Batches this stage received.
    pub batches: u64,
    /// Batches this stage sent.
    pub batches_sent: u64,
    /// Events received beyond what was asked.
    pub excess: u64,
    /// Time spent handling messages, ns.
    pub busy_ns: u64,
    /// Fraction of the run the stage was busy (simulator).
    #[cfg_attr(feature = "scenario", serde(skip_serializing_if = "Option::is_none"))]
    pub busy_fraction: Option<f64>,
    /// `running`, or why the stage stopped.
    pub exit: String,
}

/// The summary of a run.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "scenario", derive(serde::Serialize))]
pub struct RunSummary {
    /// Scenario name.
    pub scenario: String,
    /// `threads` or `sim`.
    pub runtime: &'static str,
    /// Wall-clock seconds the run took.
    pub elapsed_s: f64,
    /// Events handled by the final consumers (consumers and pools).
    pub events_delivered: u64,
    /// `events_delivered / elapsed_s`.
    pub throughput_eps: f64,
    /// Whether every producing stage balanced.
    pub balanced: bool,
    /// One row per stage, in scenario order.
    pub stages: Vec<StageSummary>,
    /// The accounting of every producing stage.
    pub accounting: Vec<Balance>,
    /// Why the run failed beyond its accounting (a stage thread that died).
    #[cfg_attr(feature = "scenario", serde(skip_serializing_if = "Vec::is_empty"))]
    pub errors: Vec<String>,
}

impl RunSummary {
    /// Builds the summary from the figures of a finished run.
    pub fn new(
        scenario: &str,
        runtime: &'static str,
        elapsed_s: f64,
        stages: &[StageFigures],
        links: &[LinkFigures],
    ) -> Self {
        let accounting = account(stages, links);
        let balanced = accounting.iter().all(|b| b.balanced);
        let events_delivered = stages
            .iter()
            .filter(|s| !s.kind.produces())
            .map(|s| s.stats.handled)
            .sum();
        let mut undeliverable = vec![0u64; stages.len()];
        for l in links {
            if let Some(u) = undeliverable.get_mut(l.producer) {
                *u += l.undeliverable;
            }
        }
        // `account` yields one balance per producing stage, in stage order.
        let mut balances = accounting.iter();
        let rows = stages
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let bal = if s.kind.produces() {
                    balances.next()
                } else {
                    None
                };
                StageSummary {
                    name: s.name.clone(),
                    kind: s.kind.name(),
                    emitted: s.stats.emitted,
                    delivered: bal.map_or(0, |b| b.delivered),
                    received: s.stats.handled,
                    dropped: s.stats.dropped,
                    lost: s.stats.lost_in + s.stats.lost_out + undeliverable[i],
                    buffered: s.buffered + s.dispatcher_queued + s.input_queued,
                    mailbox_peak: s.mailbox_peak,
                    buffer_peak: s.stats.buffer_peak,
                    asks: s.stats.asks_sent,
                    asks_received: s.stats.asks_received,
                    batches: s.stats.batches_in,
                    batches_sent: s.stats.batches_out,
                    excess: s.excess,
                    busy_ns: s.busy_ns,
                    busy_fraction: None,
                    exit: s.exit.clone(),
                }
            })
            .collect();
        RunSummary {
            scenario: scenario.to_string(),
            runtime,
            elapsed_s,
            events_delivered,
            throughput_eps: if elapsed_s > 0.0 {
                events_delivered as f64 / elapsed_s
            } else {
                0.0
            },
            balanced,
            stages: rows,
            accounting,
            errors: Vec::new(),
        }
    }

    /// Marks the run failed for each of `errors` (a stage thread that died): such a run
    /// is never balanced, whatever its figures say.
    pub fn fail(&mut self, errors: &[String]) {
        if errors.is_empty() {
            return;
        }
        self.balanced = false;
        self.errors.extend(errors.iter().cloned());
    }

    /// The summary as a human-readable table, ending with the accounting verdict.
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "scenario {} on {}: {} events delivered in {:.3} s ({:.0} events/s)",
            self.scenario, self.runtime, self.events_delivered, self.elapsed_s, self.throughput_eps
        );
        let head = [
            "stage",
            "kind",
            "emitted",
            "delivered",
            "received",
            "dropped",
            "lost",
            "buffered",
            "mbox_peak",
            "buf_peak",
            "asks_out",
            "asks_in",
            "batch_in",
            "batch_out",
            "exit",
        ];
        let rows: Vec<[String; 15]> = self
            .stages
            .iter()
            .map(|r| {
                [
                    r.name.clone(),
                    r.kind.to_string(),
                    r.emitted.to_string(),
                    r.delivered.to_string(),
                    r.received.to_string(),
                    r.dropped.to_string(),
                    r.lost.to_string(),
                    r.buffered.to_string(),
                    r.mailbox_peak.to_string(),
                    r.buffer_peak.to_string(),
                    r.asks.to_string(),
                    r.asks_received.to_string(),
                    r.batches.to_string(),
                    r.batches_sent.to_string(),
                    r.exit.clone(),
                ]
            })
            .collect();
        let mut width = head.map(str::len);
        for r in &rows {
            for (w, c) in width.iter_mut().zip(r) {
                *w = (*w).max(c.len());
            }
        }
        let line = |cells: Vec<&str>, s: &mut String| {
            let mut l = String::new();
            for (i, (c, w)) in cells.iter().zip(width).enumerate() {
                if i < 2 || i == 14 {
                    let _ = write!(l, "{c:<w$}  ");
                } else {
                    let _ = write!(l, "{c:>w$}  ");
                }
            }
            let _ = writeln!(s, "{}", l.trim_end());
        };
        line(head.to_vec(), &mut s);
        for r in &rows {
            line(r.iter().map(String::as_str).collect(), &mut s);
        }
        for b in &self.accounting {
            let _ = writeln!(
                s,
                "accounting {}: emitted {} = handed out {} + dropped {} + held; delivered {}, lost {}, buffered {}, in flight {}: {}",
                b.stage,
                b.emitted,
                b.handed_out,
                b.dropped,
                b.delivered,
                b.lost,
                b.buffered,
                b.in_flight,
                if b.balanced { "ok" } else { "UNBALANCED" }
            );
            for p in &b.problems {
                let _ = writeln!(s, "  {p}");
            }
        }
        let _ = writeln!(
            s,
            "verdict: {}",
            if self.balanced {
                "balanced"
            } else {
                "NOT BALANCED (a bug: please report it with the scenario)"
            }
        );
        s
    }
}

/// What every stage was doing when nothing could run any more.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadlockReport {
    /// Time of the deadlock, ns (virtual on the simulator, from the start on threads).
    pub t_ns: u64,
    /// One entry per stage, in scenario order.
    pub stages: Vec<StageState>,
}

/// The state of one stage at a deadlock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageState {
    /// Stage name.
    pub name: String,
    /// Stage kind.
    pub kind: &'static str,
    /// `running`, `draining (reason)`, or the reason it stopped.
    pub status: String,
    /// Events in the producer buffer.
    pub buffered: u64,
    /// Events in partition queues or the input queue.
    pub queued: u64,
    /// Messages in the mailbox.
    pub mailbox: u64,
    /// Upstream subscriptions: the producer, and the demand asked and not yet received.
    pub inputs: Vec<LinkState>,
    /// Downstream subscriptions: the consumer, and its outstanding demand.
    pub outputs: Vec<LinkState>,
}

/// One subscription seen from one end at a deadlock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkState {
    /// The stage at the other end.
    pub peer: String,
    /// Outstanding demand on the subscription.
    pub demand: u64,
    /// `true` while the subscription is open.
    pub live: bool,
    /// Seen from a producer: events waiting in this subscription's partition queue.
    pub queued: u64,
}

impl DeadlockReport {
    /// The report of a run that can make no progress, from every stage's figures (in
    /// order), the messages left in each mailbox and each link's `(producer, consumer)`.
    pub fn from_figures(
        t_ns: u64,
        stages: &[StageFigures],
        mailboxes: &[u64],
        links: &[(usize, usize)],
    ) -> Self {
        let name = |i: usize| stages.get(i).map_or_else(String::new, |s| s.name.clone());
        let end = |l: u32| links.get(l as usize).copied().unwrap_or_default();
        DeadlockReport {
            t_ns,
            stages: stages
                .iter()
                .enumerate()
                .map(|(i, s)| StageState {
                    name: s.name.clone(),
                    kind: s.kind.name(),
                    status: s.exit.clone(),
                    buffered: s.buffered,
                    queued: s.dispatcher_queued + s.input_queued,
                    mailbox: mailboxes.get(i).copied().unwrap_or(0),
                    inputs: s
                        .in_links
                        .iter()
                        .map(|l| LinkState {
                            peer: name(end(l.link).0),
                            demand: l.pending,
                            live: l.live,
                            queued: 0,
                        })
                        .collect(),
                    outputs: s
                        .out_links
                        .iter()
                        .map(|l| LinkState {
                            peer: name(end(l.link).1),
                            demand: l.outstanding,
                            live: l.live,
                            queued: l.queued,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

impl fmt::Display for DeadlockReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "deadlock at {} ns: nothing can run and no timer is pending, yet events are held \
             or demand is unmet",
            self.t_ns
        )?;
        for s in &self.stages {
            write!(
                f,
                "\n  {} ({}): {}; buffered {}, queued {}, mailbox {}",
                s.name, s.kind, s.status, s.buffered, s.queued, s.mailbox
            )?;
            let side = |f: &mut fmt::Formatter<'_>, label: &str, ls: &[LinkState]| {
                if ls.is_empty() {
                    return Ok(());
                }
                write!(f, "; {label}")?;
                for (i, l) in ls.iter().enumerate() {
                    let sep = if i == 0 { " " } else { ", " };
                    let state = if l.live { "live" } else { "ended" };
                    write!(f, "{sep}{} demand {} ({state})", l.peer, l.demand)?;
                }
                Ok(())
            };
            side(f, "from", &s.inputs)?;
            side(f, "to", &s.outputs)?;
        }
        // Events held for a subscriber that is gone: the usual cause (GenStage's
        // partition caveat), said in words.
        for s in &self.stages {
            for l in s.outputs.iter().filter(|l| l.queued > 0 && !l.live) {
                let why = self
                    .stages
                    .iter()
                    .find(|p| p.name == l.peer)
                    .map_or("it is gone", |p| p.status.as_str());
                write!(
                    f,
                    "\n  {} events wait in `{}`'s partition queue for `{}`, whose subscription \
                     ended ({}); they use the producer's demand, so the other partitions \
                     starve. Set `on_missing_partition = \"drop\"` on `{}` to count them as \
                     lost and keep the rest running.",
                    l.queued, s.name, l.peer, why, s.name
                )?;
            }
        }
        Ok(())
    }
}
