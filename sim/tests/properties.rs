//! Property tests over generated scenarios: every rule of SEMANTICS.md that can be read
//! back from a simulated run's trace and figures, checked on whole pipelines drawn by the
//! swarm generator (`common/scenario_gen.rs`).
//!
//! Each `#[test]` is one rule. A case is a scenario TOML text plus a run seed; a failing
//! case is written to `$TMPDIR/flowbench-prop-<hash>.toml` and the failure names the
//! command that replays it (`replay: flowbench run … --runtime sim --seed … [--events …]`).
//! proptest keeps the seeds of failing cases in `proptest-regressions/properties.txt`
//! (commit it). The number of cases per property is `FLOWBENCH_PROPTEST_CASES`, default
//! [`DEFAULT_CASES`]; see the README ("Properties on generated pipelines") for the deep run.

#[path = "common/scenario_gen.rs"]
mod scenario_gen;
#[path = "common/trace_model.rs"]
mod trace_model;

use std::collections::HashMap;

use flowbench_engine::hash::fnv1a64;
use flowbench_engine::scenario::{parse_str, DispatcherDef, Fault, Scenario, SourceDef};
use flowbench_engine::{AutoAsk, DemandMode, StageKind};
use flowbench_sim::{run, Ended, SimOptions};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

use scenario_gen::{cases, Case, Profile};
use trace_model::{run_case, Ran, Rec, K};

/// Cases per property when `FLOWBENCH_PROPTEST_CASES` is not set: keeps the whole suite
/// well under two minutes in a debug build on two cores.
const DEFAULT_CASES: u32 = 128;

fn config() -> ProptestConfig {
    let cases = match std::env::var("FLOWBENCH_PROPTEST_CASES") {
        Ok(v) => v.trim().parse().unwrap_or_else(|_| {
            panic!("FLOWBENCH_PROPTEST_CASES must be a whole number of cases, got `{v}`")
        }),
        Err(_) => DEFAULT_CASES,
    };
    ProptestConfig {
        cases,
        // Relative to the crate (integration tests have no `lib.rs` beside them, so
        // proptest's default would put the file outside the repository).
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/properties.txt"
        )))),
        max_shrink_iters: 512,
        ..ProptestConfig::default()
    }
}

// ---- running a case ---------------------------------------------------------------------

/// The options a case runs with; `sample_ns` only changes the sampled series.
fn options(case: &Case, sample_ns: u64) -> SimOptions {
    SimOptions {
        seed: Some(case.sim_seed),
        events: case.events,
        until_ns: None,
        sample_ns,
        costs: None,
        trace_hash: true,
    }
}

/// Parses the case's scenario: a text the generator wrote must be valid.
fn scenario_of(case: &Case) -> Result<Scenario, TestCaseError> {
    parse_str(&case.text, "generated.toml").map_err(|e| {
        failure(
            case,
            "the generator writes valid scenarios",
            &format!("generator bug: the generated scenario does not parse: {e}"),
        )
    })
}

/// Writes the failing scenario to a file and returns the failure, with the replay line.
fn failure(case: &Case, property: &str, msg: &str) -> TestCaseError {
    let events = case
        .events
        .map_or(String::new(), |n| format!(" --events {n}"));
    let key = fnv1a64(format!("{}{}{events}", case.text, case.sim_seed).as_bytes());
    let path = std::env::temp_dir().join(format!("flowbench-prop-{key:016x}.toml"));
    let replay = format!(
        "replay: flowbench run {} --runtime sim --seed {}{events}",
        path.display(),
        case.sim_seed
    );
    let body = format!("# property: {property}\n# {replay}\n{}", case.text);
    let saved = match std::fs::write(&path, body) {
        Ok(()) => String::new(),
        Err(e) => format!("\n(could not write {}: {e})", path.display()),
    };
    TestCaseError::fail(format!(
        "{property}: {msg}\n{replay}{saved}\n(case seed {}, features {:?}, scale {})",
        case.seed, case.features, case.scale
    ))
}

/// Runs `case` with a trace and checks `rule` on the result.
fn check(
    case: &Case,
    property: &str,
    sample_ns: u64,
    rule: impl FnOnce(&Scenario, &Case, &Ran) -> Result<(), String>,
) -> Result<(), TestCaseError> {
    let s = scenario_of(case)?;
    let ran = run_case(&s, &options(case, sample_ns)).map_err(|e| failure(case, property, &e))?;
    rule(&s, case, &ran).map_err(|e| failure(case, property, &e))
}

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

// ---- facts about a scenario -------------------------------------------------------------

fn produces(s: &Scenario, i: usize) -> bool {
    s.stages[i].kind.produces()
}

fn name(s: &Scenario, i: usize) -> &str {
    &s.stages[i].name
}

fn link_name(s: &Scenario, l: usize) -> String {
    let k = &s.links[l];
    format!("{} -> {}", name(s, k.producer), name(s, k.consumer))
}

fn crashes(s: &Scenario, i: usize) -> bool {
    s.stages[i]
        .faults
        .iter()
        .any(|f| matches!(f, Fault::Crash { .. }))
}

/// Can one incarnation of stage `x` receive two copies of one event? Sources emit
/// distinct ids, except that a restarted `range` or `counter` source starts again from its
/// first id; and one incarnation of a stage takes its input on each path from one
/// incarnation of each stage upstream. So copies need two distinct paths down to `x` from
/// a broadcast stage or from a restarted range/counter source.
fn copies_possible(s: &Scenario, ran: &Ran, x: usize) -> bool {
    let n = s.stages.len();
    let restarted = |b: usize| {
        matches!(
            s.stages[b].source,
            Some(SourceDef::Range { .. } | SourceDef::Counter { .. })
        ) && ran
            .trace
            .iter()
            .any(|r| r.kind == K::Restart && r.stage == Some(b))
    };
    for b in 0..n {
        let broadcast = produces(s, b) && s.stages[b].dispatcher == DispatcherDef::Broadcast;
        if !broadcast && !restarted(b) {
            continue;
        }
        // paths[v]: number of paths from b to v (capped at 2), over the acyclic
        // subscriptions; n rounds of relaxation suffice (n is tiny).
        let mut paths = vec![0u64; n];
        paths[b] = 1;
        for _ in 0..n {
            let mut next = vec![0u64; n];
            next[b] = 1;
            for l in &s.links {
                next[l.consumer] = (next[l.consumer] + paths[l.producer]).min(2);
            }
            paths = next;
        }
        if paths[x] >= 2 {
            return true;
        }
    }
    false
}

/// Records of the trace by link, in order.
fn by_link<'a>(ran: &'a Ran, kind: K, link: usize) -> impl Iterator<Item = &'a Rec> + 'a {
    ran.trace
        .iter()
        .filter(move |r| r.kind == kind && r.link == Some(link))
}

fn ids_on(ran: &Ran, kind: K, link: usize) -> Vec<u64> {
    by_link(ran, kind, link)
        .flat_map(|r| r.ids.iter().copied())
        .collect()
}

// ---- the properties -----------------------------------------------------------------------

/// Accounting (SEMANTICS.md, "Accounting"): every producing stage balances, the summary
/// says so, and its rows agree with what the trace shows.
fn accounting(s: &Scenario, _case: &Case, ran: &Ran) -> Result<(), String> {
    let out = &ran.outcome;
    let sum = out.summary();
    ensure!(
        out.ended() == Ended::Drained,
        "the run did not drain: {:?}",
        out.ended()
    );
    ensure!(
        sum.base.balanced && out.balanced(),
        "unbalanced: {:?}",
        sum.base.accounting
    );
    let producing: Vec<usize> = (0..s.stages.len()).filter(|&i| produces(s, i)).collect();
    ensure!(
        sum.base.accounting.len() == producing.len(),
        "{} accounting rows for {} producing stages",
        sum.base.accounting.len(),
        producing.len()
    );
    for (row, &p) in sum.base.accounting.iter().zip(&producing) {
        ensure!(
            row.stage == name(s, p),
            "row {} for stage {}",
            row.stage,
            name(s, p)
        );
        ensure!(row.balanced && row.problems.is_empty(), "{row:?}");
        ensure!(row.in_flight == 0, "in flight at the end: {row:?}");
        if s.stages[p].dispatcher != DispatcherDef::Broadcast {
            ensure!(
                row.emitted == row.delivered + row.dropped + row.lost + row.buffered,
                "emitted != delivered + dropped + lost + buffered: {row:?}"
            );
        }
        // The trace tells the same story.
        let stage_recs = || ran.trace.iter().filter(|r| r.stage == Some(p));
        let from_p = |r: &&Rec| r.link.is_some_and(|l| s.links[l].producer == p);
        let dropped: u64 = stage_recs()
            .filter(|r| r.kind == K::Drop)
            .map(|r| r.n)
            .sum();
        ensure!(
            dropped == row.dropped,
            "drop records {dropped} != dropped: {row:?}"
        );
        let delivered: u64 = ran
            .trace
            .iter()
            .filter(|r| r.kind == K::Handle)
            .filter(from_p)
            .map(|r| r.n)
            .sum();
        ensure!(
            delivered == row.delivered,
            "handle records {delivered} != delivered: {row:?}"
        );
        let lost_out: u64 = stage_recs()
            .filter(|r| r.kind == K::Lost && r.link.is_none())
            .map(|r| r.n)
            .sum();
        let lost_in: u64 = ran
            .trace
            .iter()
            .filter(|r| r.kind == K::Lost)
            .filter(from_p)
            .map(|r| r.n)
            .sum();
        ensure!(
            lost_out + lost_in == row.lost,
            "lost records {lost_out} + {lost_in} != lost: {row:?}"
        );
        let emitted = match &s.stages[p].source {
            Some(SourceDef::Push(_)) => {
                let arrived: u64 = stage_recs()
                    .filter(|r| r.kind == K::Arrive)
                    .map(|r| r.n)
                    .sum();
                ensure!(
                    row.emitted <= arrived,
                    "emitted more than arrived ({arrived}): {row:?}"
                );
                None
            }
            _ => Some(emission(s, ran, p).len() as u64),
        };
        if let Some(e) = emitted {
            ensure!(e == row.emitted, "the trace shows {e} emitted: {row:?}");
        }
    }
    Ok(())
}

/// SEMANTICS.md, "Accounting": "Every consumer sees no event twice": no incarnation of a
/// consuming stage handles an id twice, on one subscription or across them (unless the
/// topology makes copies: see [`copies_possible`]). A restarted stage is a new consumer.
fn no_event_twice(s: &Scenario, _case: &Case, ran: &Ran) -> Result<(), String> {
    for c in 0..s.stages.len() {
        if !s.stages[c].kind.consumes() {
            continue;
        }
        let across = !copies_possible(s, ran, c);
        let per_link: Vec<bool> = s
            .links
            .iter()
            .map(|l| !copies_possible(s, ran, l.producer))
            .collect();
        let mut seen: HashMap<u64, usize> = HashMap::new();
        for r in &ran.trace {
            if r.stage != Some(c) {
                continue;
            }
            if r.kind == K::Restart {
                seen.clear();
                continue;
            }
            let (K::Handle, Some(l)) = (r.kind, r.link) else {
                continue;
            };
            for &id in &r.ids {
                if let Some(&other) = seen.get(&id) {
                    ensure!(
                        (other != l || !per_link[l]) && (other == l || !across),
                        "{} handled event {id} twice, on {} and on {} (record {})",
                        name(s, c),
                        link_name(s, other),
                        link_name(s, l),
                        r.seq
                    );
                }
                seen.insert(id, l);
            }
        }
    }
    Ok(())
}

/// Is `sub` a subsequence of the order given by `positions` (id -> its positions)?
fn follows_order(sub: &[u64], positions: &HashMap<u64, Vec<usize>>) -> Result<(), String> {
    let mut last: Option<usize> = None;
    for (k, id) in sub.iter().enumerate() {
        let Some(ps) = positions.get(id) else {
            return Err(format!("event {id} (#{k} on the link) was never emitted"));
        };
        let at = match last {
            None => ps.first().copied(),
            Some(prev) => ps.iter().copied().find(|&p| p > prev),
        };
        match at {
            Some(p) => last = Some(p),
            None => {
                return Err(format!(
                    "event {id} (#{k} on the link) arrives out of the producer's order"
                ))
            }
        }
    }
    Ok(())
}

/// Events on link `l` waiting in its consumer's input queue at the end.
fn queued_on(ran: &Ran, consumer: usize, l: usize) -> u64 {
    ran.outcome.stages()[consumer]
        .in_links
        .iter()
        .find(|x| x.link as usize == l)
        .map_or(0, |x| x.queued)
}

/// Matches `handled` in order against `delivered`; returns the delivered events that were
/// not handled, in delivery order, or where the order breaks.
fn unhandled_in_order(delivered: &[u64], handled: &[u64]) -> Result<Vec<u64>, String> {
    let mut rest = Vec::new();
    let mut h = 0;
    for &id in delivered {
        if handled.get(h) == Some(&id) {
            h += 1;
        } else {
            rest.push(id);
        }
    }
    match handled.get(h) {
        None => Ok(rest),
        Some(id) => Err(format!(
            "handled event {id} (#{h}) out of delivery order, or never delivered"
        )),
    }
}

/// The unhandled events are exactly the lost ones plus `queued` still waiting.
fn check_lost(unhandled: &[u64], lost: &[u64], queued: u64) -> Result<(), String> {
    let mut left: HashMap<u64, i64> = HashMap::new();
    for &id in unhandled {
        *left.entry(id).or_default() += 1;
    }
    for &id in lost {
        let n = left.entry(id).or_default();
        *n -= 1;
        if *n < 0 {
            return Err(format!("event {id} lost but not delivered (or lost twice)"));
        }
    }
    let rest: i64 = left.values().sum();
    if rest as u64 != queued {
        return Err(format!(
            "{rest} delivered events neither handled nor lost, but {queued} queued"
        ));
    }
    Ok(())
}

/// The ids producing stage `p` emitted, in order, over all its incarnations: a `range`
/// or `counter` source's from its `handle_demand` calls (a restart starts again from the
/// first id), a push source's arrivals, a producer-consumer's handled chunks (it passes
/// events through).
fn emission(s: &Scenario, ran: &Ran, p: usize) -> Vec<u64> {
    let recs = || ran.trace.iter().filter(move |r| r.stage == Some(p));
    match &s.stages[p].source {
        Some(SourceDef::Range { first, last }) => {
            let mut out = Vec::new();
            let mut next = *first;
            for r in recs() {
                match r.kind {
                    K::Restart => next = *first,
                    K::Demand if next <= *last => {
                        let end = (*last).min(next.saturating_add(r.n - 1));
                        out.extend(next..=end);
                        next = end + 1;
                    }
                    _ => {}
                }
            }
            out
        }
        Some(SourceDef::Counter { start }) => {
            let mut out = Vec::new();
            let mut next = *start;
            for r in recs() {
                match r.kind {
                    K::Restart => next = *start,
                    K::Demand => {
                        out.extend(next..next + r.n);
                        next += r.n;
                    }
                    _ => {}
                }
            }
            out
        }
        Some(SourceDef::Push(_)) => recs()
            .filter(|r| r.kind == K::Arrive)
            .flat_map(|r| r.ids.iter().copied())
            .collect(),
        None => recs()
            .filter(|r| r.kind == K::Handle)
            .flat_map(|r| r.ids.iter().copied())
            .collect(),
    }
}

/// SEMANTICS.md, "Accounting": "events from one producer arrive in the order that
/// producer dispatched them". Per link: the consumer handles (or loses) the delivered
/// events in delivery order, and the deliveries follow the producer's emission order.
fn dispatch_order(s: &Scenario, _case: &Case, ran: &Ran) -> Result<(), String> {
    for p in 0..s.stages.len() {
        if !produces(s, p) {
            continue;
        }
        // The producer's emission order, over all its incarnations.
        let emitted = emission(s, ran, p);
        let mut positions: HashMap<u64, Vec<usize>> = HashMap::new();
        for (i, id) in emitted.iter().enumerate() {
            positions.entry(*id).or_default().push(i);
        }
        for (l, link) in s.links.iter().enumerate() {
            if link.producer != p {
                continue;
            }
            let delivered = ids_on(ran, K::Events, l);
            follows_order(&delivered, &positions)
                .map_err(|e| format!("{}: {e}", link_name(s, l)))?;
            // The consumer handles delivered events in delivery order; the others are
            // lost (in whatever order they were lost: a stale arrival at once, a queued
            // batch when its stage stops) or, at a deadlock, still queued.
            let handled = ids_on(ran, K::Handle, l);
            let unhandled = unhandled_in_order(&delivered, &handled)
                .map_err(|e| format!("{}: {e}", link_name(s, l)))?;
            let queued = queued_on(ran, link.consumer, l);
            check_lost(&unhandled, &ids_on(ran, K::Lost, l), queued)
                .map_err(|e| format!("{}: {e}", link_name(s, l)))?;
        }
    }
    Ok(())
}

/// "A dispatcher never sends a subscription more events than its outstanding demand" and
/// the consumer never has more than `max_demand` outstanding. Per subscription and per
/// incarnation of its consumer, from the trace: asks − handled ≤ max_demand at every ask,
/// and delivered ≤ asked at every delivery.
fn demand_bounded(s: &Scenario, _case: &Case, ran: &Ran) -> Result<(), String> {
    for (l, link) in s.links.iter().enumerate() {
        let c = link.consumer;
        let max = link.demand.max();
        let restarts = ran
            .trace
            .iter()
            .any(|r| r.kind == K::Restart && r.stage == Some(c));
        let (mut active, mut asked, mut handled, mut delivered) = (false, 0u64, 0u64, 0u64);
        for r in &ran.trace {
            if r.kind == K::Restart && r.stage == Some(c) {
                active = false;
                continue;
            }
            if r.link != Some(l) {
                continue;
            }
            match r.kind {
                K::Subscribe => {
                    active = true;
                    (asked, handled, delivered) = (0, 0, 0);
                }
                K::Ask if active => {
                    asked += r.n;
                    ensure!(
                        asked - handled.min(asked) <= max,
                        "{}: {asked} asked and {handled} handled exceeds max_demand {max} (record {})",
                        link_name(s, l),
                        r.seq
                    );
                }
                K::Handle if active => handled += r.n,
                K::Events if active && !restarts => {
                    delivered += r.n;
                    ensure!(
                        delivered <= asked,
                        "{}: {delivered} events delivered but only {asked} asked (record {})",
                        link_name(s, l),
                        r.seq
                    );
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// `buffer_size` bounds every producer buffer: the peak the engine reports and every
/// sampled depth.
fn buffers_bounded(s: &Scenario, _case: &Case, ran: &Ran) -> Result<(), String> {
    let series = ran.outcome.series();
    for (i, st) in s.stages.iter().enumerate() {
        let fig = &ran.outcome.stages()[i];
        let peak = fig.stats.buffer_peak;
        let row = &ran.outcome.summary().base.stages[i];
        ensure!(
            row.buffer_peak == peak,
            "{}: summary peak {} != {peak}",
            st.name,
            row.buffer_peak
        );
        if let Some(cap) = st.buffer_size.filter(|_| produces(s, i)) {
            ensure!(
                peak <= cap,
                "{}: buffer peak {peak} > buffer_size {cap}",
                st.name
            );
        }
        for (k, &b) in series.stages[i].buffered.iter().enumerate() {
            ensure!(
                b <= peak,
                "{}: {b} buffered at {} ns, above the peak {peak}",
                st.name,
                series.t_ns[k]
            );
        }
        ensure!(
            fig.buffered <= peak,
            "{}: {} buffered at the end, above the peak {peak}",
            st.name,
            fig.buffered
        );
    }
    Ok(())
}

/// Partition dispatcher: every delivered event went to the partition its hash names, and
/// every hash drop had no partition.
fn partition_by_hash(s: &Scenario, _case: &Case, ran: &Ran) -> Result<(), String> {
    for r in &ran.trace {
        match r.kind {
            K::Events => {
                let l = r.link.unwrap_or(usize::MAX);
                let link = &s.links[l];
                let DispatcherDef::Partition {
                    partitions, hash, ..
                } = s.stages[link.producer].dispatcher
                else {
                    continue;
                };
                let want = link.partition;
                for &id in &r.ids {
                    let got = hash.partition(id, partitions);
                    ensure!(
                        got.is_some() && got == want,
                        "{}: event {id} hashes to {got:?}, delivered to partition {want:?} (record {})",
                        link_name(s, l),
                        r.seq
                    );
                }
            }
            K::Drop if r.text.as_deref() == Some("hash") => {
                let p = r.stage.unwrap_or(usize::MAX);
                let DispatcherDef::Partition {
                    partitions, hash, ..
                } = s.stages[p].dispatcher
                else {
                    return Err(format!(
                        "{}: a hash drop without a partition dispatcher",
                        name(s, p)
                    ));
                };
                for &id in &r.ids {
                    let got = hash.partition(id, partitions);
                    ensure!(
                        got.is_none(),
                        "{}: event {id} of partition {got:?} dropped by the hash",
                        name(s, p)
                    );
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Broadcast dispatcher: consumers see the same sequence. For two subscriptions of one
/// broadcast stage whose consumers neither crash nor cancel, taken by the same incarnation
/// of the producer, each filtered by the other's
/// selector, the later subscriber's sequence is a suffix of the earlier one's; equal when
/// the producer accumulates until every subscription is made. Every delivered event
/// passes the subscription's selector.
fn broadcast_same_sequence(s: &Scenario, _case: &Case, ran: &Ran) -> Result<(), String> {
    for b in 0..s.stages.len() {
        if !produces(s, b) || s.stages[b].dispatcher != DispatcherDef::Broadcast {
            continue;
        }
        let mut steady = Vec::new();
        for (l, link) in s.links.iter().enumerate() {
            if link.producer != b {
                continue;
            }
            let seq = ids_on(ran, K::Events, l);
            if let Some(sel) = link.selector {
                if let Some(id) = seq.iter().find(|&&id| !sel.accepts(id)) {
                    return Err(format!(
                        "{}: event {id} fails its selector",
                        link_name(s, l)
                    ));
                }
            }
            let cancelled = by_link(ran, K::Cancel, l).any(|r| !r.down);
            // The incarnation of `b` that took the subscription (a subscribe in flight
            // across a crash and restart of `b` reaches the new one).
            let subscribed = by_link(ran, K::Subscribe, l).next().map_or(0, |r| r.seq);
            let incarnation = ran
                .trace
                .iter()
                .filter(|r| r.kind == K::Restart && r.stage == Some(b) && r.seq < subscribed)
                .count();
            if !crashes(s, link.consumer) && !cancelled {
                steady.push((l, seq, incarnation));
            }
        }
        let together = s.stages[b].demand_mode == DemandMode::Accumulate
            && s.stages[b].forward_at_ns.is_none();
        for (i, (l1, seq1, inc1)) in steady.iter().enumerate() {
            for (l2, seq2, _) in steady[i + 1..].iter().filter(|x| x.2 == *inc1) {
                let keep = |seq: &[u64], other: usize| -> Vec<u64> {
                    match s.links[other].selector {
                        None => seq.to_vec(),
                        Some(sel) => seq.iter().copied().filter(|&id| sel.accepts(id)).collect(),
                    }
                };
                let a = keep(seq1, *l2);
                let b2 = keep(seq2, *l1);
                let (short, long) = if a.len() <= b2.len() {
                    (&a, &b2)
                } else {
                    (&b2, &a)
                };
                ensure!(
                    long.ends_with(short),
                    "{} and {} see different sequences ({} and {} events)",
                    link_name(s, *l1),
                    link_name(s, *l2),
                    a.len(),
                    b2.len()
                );
                ensure!(
                    !together || a == b2,
                    "{} and {} subscribed before any dispatch but saw {} and {} events",
                    link_name(s, *l1),
                    link_name(s, *l2),
                    a.len(),
                    b2.len()
                );
            }
        }
    }
    Ok(())
}

/// Does a stage spend time on a step (so its messages leave later than it decides)?
fn step_costs(s: &Scenario, i: usize) -> bool {
    let st = &s.stages[i];
    st.per_batch.is_some() || (st.kind != StageKind::ConsumerPool && st.per_event.is_some())
}

/// Liveness (SEMANTICS.md, "Liveness", and ARCHITECTURE.md: a finite pipeline delivers
/// every event): without faults or early stops, every run drains; every stage stops;
/// every source emits all its events; nothing is lost; and at every sampled quiescent
/// moment of a subscription no buffered event waits while its consumer has demand.
fn liveness(s: &Scenario, case: &Case, ran: &Ran) -> Result<(), String> {
    if let Some(d) = &ran.deadlock {
        return Err(format!("deadlock: {d}"));
    }
    let out = &ran.outcome;
    ensure!(out.ended() == Ended::Drained, "ended {:?}", out.ended());
    for (i, fig) in out.stages().iter().enumerate() {
        ensure!(
            fig.exit != "running" && !fig.exit.starts_with("draining"),
            "{} did not stop: {}",
            name(s, i),
            fig.exit
        );
        ensure!(
            fig.buffered + fig.dispatcher_queued + fig.input_queued == 0,
            "{} still holds events: {fig:?}",
            name(s, i)
        );
    }
    for row in &out.summary().base.accounting {
        ensure!(
            row.balanced && row.lost == 0 && row.buffered == 0,
            "{row:?}"
        );
    }
    for (i, st) in s.stages.iter().enumerate() {
        let emitted = out.stages()[i].stats.emitted;
        let limit = case.events.unwrap_or(u64::MAX);
        let want = match &st.source {
            Some(SourceDef::Range { first, last }) => (last - first + 1).min(limit),
            Some(SourceDef::Counter { .. }) => limit,
            Some(SourceDef::Push(_)) => ran
                .trace
                .iter()
                .filter(|r| r.kind == K::Arrive && r.stage == Some(i))
                .map(|r| r.n)
                .sum::<u64>()
                .min(limit),
            None => continue,
        };
        ensure!(
            emitted == want,
            "{} emitted {emitted} of {want} events",
            st.name
        );
    }
    // Sampled moments. A producer that spends no time on a step handles each message the
    // moment it takes it, and with an empty mailbox it has taken them all; on a link
    // without latency its events arrive the moment they leave. At a sample such a
    // producer's dispatcher therefore holds, for that link, exactly the asks recorded
    // before the sample minus the events recorded before it (a selector's refund gives
    // back what its consumer did not get). Then a buffered event must not wait while a
    // consumer that could take it has demand.
    let series = out.series();
    for p in 0..s.stages.len() {
        let dispatcher = &s.stages[p].dispatcher;
        if !produces(s, p)
            || step_costs(s, p)
            || matches!(dispatcher, DispatcherDef::Partition { .. })
        {
            continue;
        }
        let broadcast = *dispatcher == DispatcherDef::Broadcast;
        let outs: Vec<usize> = (0..s.links.len())
            .filter(|&l| s.links[l].producer == p)
            .collect();
        let instant = |l: usize| s.links[l].latency.is_none();
        // Broadcast places an event only when every subscriber has demand: all must be
        // known.
        if broadcast && !outs.iter().all(|&l| instant(l)) {
            continue;
        }
        // Accumulating producers hold asks until they forward.
        let forward_at = if s.stages[p].demand_mode == DemandMode::Accumulate {
            let kind = if s.stages[p].forward_at_ns.is_some() {
                K::Forward
            } else {
                K::Subscribe
            };
            ran.trace
                .iter()
                .filter(|r| r.kind == kind && r.stage == Some(p))
                .map(|r| r.t)
                .max()
                .unwrap_or(u64::MAX)
        } else {
            0
        };
        // Per link, (time, asked so far, delivered so far, open) after each record.
        let history: Vec<Vec<(u64, u64, u64, bool)>> = (0..s.links.len())
            .map(|l| {
                let (mut asked, mut sent, mut open) = (0, 0, false);
                let mut h = Vec::new();
                for r in ran.trace.iter().filter(|r| r.link == Some(l)) {
                    match r.kind {
                        K::Subscribe => open = true,
                        K::Cancel => open = false,
                        K::Ask => asked += r.n,
                        K::Events => sent += r.n,
                        _ => continue,
                    }
                    h.push((r.t, asked, sent, open));
                }
                h
            })
            .collect();
        // The dispatcher's view of link l just before time t: Some(outstanding) if open.
        let view = |l: usize, t: u64| -> Option<u64> {
            let h = &history[l];
            let i = h.partition_point(|x| x.0 < t);
            let &(_, asked, sent, open) = h.get(i.checked_sub(1)?)?;
            open.then(|| asked.saturating_sub(sent))
        };
        for (k, &t) in series.t_ns.iter().enumerate() {
            let buffered = series.stages[p].buffered[k];
            if t <= forward_at || buffered == 0 || series.stages[p].mailbox[k] > 0 {
                continue;
            }
            if broadcast {
                let open: Vec<u64> = outs.iter().filter_map(|&l| view(l, t)).collect();
                ensure!(
                    open.is_empty() || open.contains(&0),
                    "{}: {buffered} events buffered at {t} ns while every subscriber has demand ({open:?})",
                    name(s, p)
                );
            } else {
                for &l in outs.iter().filter(|&&l| instant(l)) {
                    let demand = view(l, t).unwrap_or(0);
                    ensure!(
                        demand == 0,
                        "{}: {buffered} events buffered at {t} ns while {} has demand {demand}",
                        name(s, p),
                        link_name(s, l)
                    );
                }
            }
        }
    }
    Ok(())
}

/// Liveness at a deadlock (SEMANTICS.md, "Liveness"): a deadlocked run is quiescent, and
/// its report gives each dispatcher's own view of every subscription. A buffered event must
/// not wait while a consumer that could take it has demand: under the demand dispatcher no
/// open subscription has demand; under broadcast, some open subscription has none.
/// (Deadlocks themselves are allowed here: faults can strand events for good.)
fn no_stranded_event_at_a_deadlock(s: &Scenario, _case: &Case, ran: &Ran) -> Result<(), String> {
    let Some(report) = &ran.deadlock else {
        return Ok(());
    };
    for (p, st) in report.stages.iter().enumerate() {
        if st.buffered == 0 || !produces(s, p) {
            continue;
        }
        let open: Vec<u64> = st
            .outputs
            .iter()
            .filter(|o| o.live)
            .map(|o| o.demand)
            .collect();
        let stranded = match s.stages[p].dispatcher {
            DispatcherDef::Demand { .. } => open.iter().any(|&d| d > 0),
            DispatcherDef::Broadcast => !open.is_empty() && open.iter().all(|&d| d > 0),
            DispatcherDef::Partition { .. } => false,
        };
        ensure!(
            !stranded,
            "{}: {} events buffered at the deadlock while subscribers have demand {open:?}\n{report}",
            st.name,
            st.buffered
        );
    }
    Ok(())
}

/// The ask algorithm (SEMANTICS.md): an automatic consumer cuts each batch into chunks of
/// `max - min` and asks exactly what `AutoAsk` says after each chunk; a pool asks
/// `max_demand` on subscribe, then `max(min_demand, 1)` per that many finished jobs; and
/// every incarnation of a consumer opens with an ask of `max_demand`.
fn ask_rule(s: &Scenario, _case: &Case, ran: &Ran) -> Result<(), String> {
    for (l, link) in s.links.iter().enumerate() {
        let c = link.consumer;
        let d = link.demand;
        let pool = s.stages[c].kind == StageKind::ConsumerPool;
        let recs: Vec<&Rec> = ran.trace.iter().filter(|r| r.link == Some(l)).collect();
        let first_restart = ran
            .trace
            .iter()
            .find(|r| r.kind == K::Restart && r.stage == Some(c))
            .map_or(usize::MAX, |r| r.seq);

        // Every subscribe is followed by an ask of max_demand (or nothing, or a cancel).
        for (i, r) in recs.iter().enumerate() {
            if r.kind != K::Subscribe {
                continue;
            }
            let next = recs[i + 1..]
                .iter()
                .find(|x| matches!(x.kind, K::Ask | K::Cancel | K::Subscribe) && !x.down);
            if let Some(x) = next {
                ensure!(
                    x.kind != K::Ask || x.n == d.max(),
                    "{}: the first ask after subscribing (record {}) is {}, not max_demand {}",
                    link_name(s, l),
                    x.seq,
                    x.n,
                    d.max()
                );
            }
        }

        // Chunks: each delivered batch is handled whole (pools) or in chunks of max - min
        // counted from its start (automatic consumers), in delivery order; a batch not
        // handled is lost (or, at a deadlock, still queued).
        let batches: Vec<&Rec> = recs
            .iter()
            .copied()
            .filter(|r| r.kind == K::Events)
            .collect();
        let handles: Vec<&Rec> = recs
            .iter()
            .copied()
            .filter(|r| r.kind == K::Handle)
            .collect();
        let mut h = 0usize;
        let mut unhandled = Vec::new();
        for batch in &batches {
            let ids = &batch.ids;
            if handles.get(h).is_some_and(|x| x.ids.first() == ids.first()) {
                let want: Vec<u64> = if pool {
                    vec![ids.len() as u64]
                } else {
                    AutoAsk::chunks(d, ids.len() as u64).collect()
                };
                let got: Vec<u64> = handles[h..].iter().take(want.len()).map(|x| x.n).collect();
                let got_ids: Vec<u64> = handles[h..]
                    .iter()
                    .take(want.len())
                    .flat_map(|x| x.ids.iter().copied())
                    .collect();
                ensure!(
                    got == want && &got_ids == ids,
                    "{}: batch of {} (record {}) handled in chunks {got:?}, expected {want:?}",
                    link_name(s, l),
                    ids.len(),
                    batch.seq
                );
                h += want.len();
            } else {
                unhandled.extend(ids.iter().copied());
            }
        }
        ensure!(
            h == handles.len(),
            "{}: handle record {} matches no delivered batch in order",
            link_name(s, l),
            handles.get(h).map_or(0, |x| x.seq)
        );
        check_lost(&unhandled, &ids_on(ran, K::Lost, l), queued_on(ran, c, l))
            .map_err(|e| format!("{}: {e}", link_name(s, l)))?;

        // Asks of the first incarnation, replayed from its handled chunks.
        let subs: Vec<usize> = recs
            .iter()
            .filter(|r| r.kind == K::Subscribe)
            .map(|r| r.seq)
            .collect();
        let Some(&sub0) = subs.first() else { continue };
        let sub1 = subs.get(1).copied().unwrap_or(usize::MAX);
        let asks: Vec<u64> = recs
            .iter()
            .filter(|r| r.kind == K::Ask && r.seq > sub0 && r.seq < sub1)
            .map(|r| r.n)
            .collect();
        let chunks: Vec<&Rec> = handles
            .iter()
            .copied()
            .filter(|r| r.seq < first_restart)
            .collect();
        if pool {
            let m = d.min().max(1);
            let jobs: u64 = chunks.iter().map(|r| r.n).sum();
            ensure!(
                asks.first() == Some(&d.max())
                    && asks[1..].iter().all(|&a| a == m)
                    && (asks.len() as u64 - 1) * m <= jobs,
                "{}: pool asks {asks:?} with max {} min {} after {jobs} jobs",
                link_name(s, l),
                d.max(),
                d.min()
            );
            continue;
        }
        let (mut auto, first) = AutoAsk::subscribe(d);
        let mut expected = vec![first];
        // Asks the consumer must have sent: those after chunks it handled before the
        // subscription could have ended.
        let cancel_down = recs
            .iter()
            .find(|r| r.kind == K::Cancel && r.down && r.seq > sub0)
            .map_or(usize::MAX, |r| r.seq);
        let cancel_up = recs
            .iter()
            .any(|r| r.kind == K::Cancel && !r.down && r.seq > sub0 && r.seq < sub1);
        let mut required = 1;
        for r in &chunks {
            if let Some(a) = auto.after_chunk(r.n) {
                expected.push(a);
                if r.seq < cancel_down && !cancel_up {
                    required = expected.len();
                }
            }
        }
        ensure!(
            asks.len() <= expected.len() && asks[..] == expected[..asks.len()],
            "{}: asks {asks:?} do not follow the rule, which gives {expected:?} (max {}, min {})",
            link_name(s, l),
            d.max(),
            d.min()
        );
        ensure!(
            asks.len() >= required,
            "{}: {} asks sent, but the handled chunks call for at least {required}: {expected:?}",
            link_name(s, l),
            asks.len()
        );
    }
    Ok(())
}

// ---- the generator ---------------------------------------------------------------------

/// The generator reaches every setting the properties are meant to cover, and every text it
/// writes parses. (A narrowed generator would let the properties pass vacuously.)
#[test]
fn generator_reaches_every_setting_and_writes_valid_scenarios() {
    use flowbench_engine::scenario::{CrashTrigger, Dist, HashDef, PushDef};
    use flowbench_engine::CancelMode;
    use scenario_gen::{generate, Features};

    let mut rng = flowbench_engine::hash::SplitMix64::new(7);
    let mut reached: HashMap<&'static str, u32> = HashMap::new();
    for i in 0..3_000 {
        let bits: [bool; 12] = std::array::from_fn(|_| rng.below(2) == 1);
        let profile = if i % 4 == 0 {
            Profile::Live
        } else {
            Profile::Full
        };
        let case = generate(
            rng.next(),
            Features::from_bits(bits),
            (i % 3) as u8,
            profile,
        );
        let s = parse_str(&case.text, "generated.toml")
            .unwrap_or_else(|e| panic!("generator bug: {e}\n{case:?}"));
        let mut hit = |what: &'static str, cond: bool| {
            if cond {
                *reached.entry(what).or_default() += 1;
            }
        };
        let n = |k: StageKind| s.stages.iter().filter(|st| st.kind == k).count();
        hit("3 producers", n(StageKind::Producer) == 3);
        hit("producer-consumers", n(StageKind::ProducerConsumer) > 0);
        hit(
            "8 consumers and pools",
            n(StageKind::Consumer) + n(StageKind::ConsumerPool) == 8,
        );
        hit("consumer pool", n(StageKind::ConsumerPool) > 0);
        hit("cores", s.cores.is_some());
        hit("event limit", case.events.is_some());
        for st in &s.stages {
            hit("range", matches!(st.source, Some(SourceDef::Range { .. })));
            hit(
                "counter",
                matches!(st.source, Some(SourceDef::Counter { .. })),
            );
            hit(
                "poisson with total",
                matches!(
                    st.source,
                    Some(SourceDef::Push(PushDef::Poisson { total: Some(_), .. }))
                ),
            );
            hit(
                "bursts with count",
                matches!(
                    st.source,
                    Some(SourceDef::Push(PushDef::Bursts { count: Some(_), .. }))
                ),
            );
            hit(
                "script",
                matches!(st.source, Some(SourceDef::Push(PushDef::Script(_)))),
            );
            hit(
                "shuffle",
                st.dispatcher == DispatcherDef::Demand { shuffle: true },
            );
            hit(
                "broadcast",
                st.dispatcher == DispatcherDef::Broadcast && st.kind.produces(),
            );
            if let DispatcherDef::Partition {
                partitions, hash, ..
            } = st.dispatcher
            {
                let (HashDef::Rem { modulus } | HashDef::Mix { modulus }) = hash;
                hit("partition rem", matches!(hash, HashDef::Rem { .. }));
                hit("partition mix", matches!(hash, HashDef::Mix { .. }));
                hit("4 partitions", partitions == 4);
                hit("hash drops", modulus > u64::from(partitions));
            }
            hit(
                "buffer_size 0",
                st.buffer_size == Some(0) && st.kind.produces(),
            );
            hit(
                "keep first",
                st.buffer_keep == flowbench_engine::Keep::First,
            );
            hit("accumulate", st.demand_mode == DemandMode::Accumulate);
            hit("forward_at", st.forward_at_ns.is_some());
            for d in [st.per_event, st.per_batch].into_iter().flatten() {
                hit("fixed", matches!(d, Dist::Fixed { .. }));
                hit("uniform", matches!(d, Dist::Uniform { .. }));
                hit("exp", matches!(d, Dist::Exp { .. }));
                hit("lognormal", matches!(d, Dist::LogNormal { .. }));
            }
            for f in &st.faults {
                match f {
                    Fault::Crash {
                        trigger,
                        restart_after_ns,
                    } => {
                        hit(
                            "crash after events",
                            matches!(trigger, CrashTrigger::AfterEvents(_)),
                        );
                        hit("crash at", matches!(trigger, CrashTrigger::AtNs(_)));
                        hit("restart", restart_after_ns.is_some());
                    }
                    Fault::Slow { .. } => hit("slowdown", true),
                }
            }
        }
        for l in &s.links {
            let (max, min) = (l.demand.max(), l.demand.min());
            hit("max_demand 1", max == 1);
            hit("max_demand 1000", max == 1000);
            hit("min_demand 0", min == 0 && max > 1);
            hit("min_demand max-1", min == max - 1 && max > 2);
            hit("selector", l.selector.is_some_and(|sel| sel.modulus > 1));
            hit("latency", l.latency.is_some());
            if crashes(&s, l.producer) {
                hit("crash, permanent", l.cancel == CancelMode::Permanent);
                hit("crash, transient", l.cancel == CancelMode::Transient);
                hit("crash, temporary", l.cancel == CancelMode::Temporary);
            }
        }
        let layers = s
            .stages
            .iter()
            .filter(|st| st.name.starts_with("mid2_"))
            .count();
        hit("2 layers", layers > 0);
        let live = profile == Profile::Live;
        hit(
            "live with faults (never)",
            live && s.stages.iter().any(|st| !st.faults.is_empty()),
        );
    }
    let want = [
        "3 producers",
        "producer-consumers",
        "8 consumers and pools",
        "consumer pool",
        "cores",
        "event limit",
        "range",
        "counter",
        "poisson with total",
        "bursts with count",
        "script",
        "shuffle",
        "broadcast",
        "partition rem",
        "partition mix",
        "4 partitions",
        "hash drops",
        "buffer_size 0",
        "keep first",
        "accumulate",
        "forward_at",
        "fixed",
        "uniform",
        "exp",
        "lognormal",
        "crash after events",
        "crash at",
        "restart",
        "slowdown",
        "max_demand 1",
        "max_demand 1000",
        "min_demand 0",
        "min_demand max-1",
        "selector",
        "latency",
        "crash, permanent",
        "crash, transient",
        "crash, temporary",
        "2 layers",
    ];
    let missing: Vec<&str> = want
        .iter()
        .copied()
        .filter(|w| !reached.contains_key(w))
        .collect();
    assert!(
        missing.is_empty(),
        "never generated: {missing:?} (reached: {reached:?})"
    );
    assert!(
        !reached.contains_key("live with faults (never)"),
        "the liveness profile has faults"
    );
}

// ---- the tests ----------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn prop_accounting_balances_for_every_producer(case in cases(Profile::Full)) {
        check(&case, "accounting balances for every producer", 0, accounting)?;
    }

    #[test]
    fn prop_no_consumer_receives_an_event_twice(case in cases(Profile::Full)) {
        check(&case, "no consumer receives an event twice", 0, no_event_twice)?;
    }

    #[test]
    fn prop_links_deliver_in_dispatch_order(case in cases(Profile::Full)) {
        check(&case, "events arrive in dispatch order", 0, dispatch_order)?;
    }

    #[test]
    fn prop_outstanding_demand_never_exceeds_max_demand(case in cases(Profile::Full)) {
        check(&case, "outstanding demand never exceeds max_demand", 0, demand_bounded)?;
    }

    #[test]
    fn prop_no_buffer_exceeds_buffer_size(case in cases(Profile::Full)) {
        check(&case, "no buffer exceeds buffer_size", 1_000, buffers_bounded)?;
    }

    #[test]
    fn prop_partition_delivers_each_event_to_its_hash_partition(case in cases(Profile::Full)) {
        check(&case, "partition follows the hash", 0, partition_by_hash)?;
    }

    #[test]
    fn prop_broadcast_consumers_see_the_same_sequence(case in cases(Profile::Full)) {
        check(&case, "broadcast consumers see the same sequence", 0, broadcast_same_sequence)?;
    }

    #[test]
    fn prop_bounded_pipelines_without_faults_drain_and_never_strand_buffered_events(
        case in cases(Profile::Live)
    ) {
        check(&case, "liveness", 500, liveness)?;
    }

    #[test]
    fn prop_a_deadlock_never_strands_a_buffered_event_beside_demand(case in cases(Profile::Full)) {
        check(&case, "no stranded event at a deadlock", 0, no_stranded_event_at_a_deadlock)?;
    }

    #[test]
    fn prop_consumers_ask_by_the_rule_of_semantics(case in cases(Profile::Full)) {
        check(&case, "the ask algorithm", 0, ask_rule)?;
    }

    #[test]
    fn prop_same_seed_gives_the_same_trace_hash(case in cases(Profile::Full)) {
        let s = scenario_of(&case)?;
        let opts = options(&case, 10_000);
        let property = "determinism";
        let fail = |m: String| failure(&case, property, &m);
        let traced = |s: &Scenario| -> Result<(flowbench_sim::SimOutcome, Vec<u8>), TestCaseError> {
            let mut buf = Vec::new();
            let o = match run(s, &opts, Some(&mut buf)) {
                Ok(o) => o,
                Err(e) => e.outcome().cloned().ok_or_else(|| fail(format!("the run failed: {e}")))?,
            };
            Ok((o, buf))
        };
        let (a, text_a) = traced(&s)?;
        let (c, text_c) = traced(&s)?;
        let b = match run(&s, &opts, None) {
            Ok(o) => o,
            Err(e) => e.outcome().cloned().ok_or_else(|| fail(format!("the run failed: {e}")))?,
        };
        let same = |x: &flowbench_sim::SimOutcome, y: &flowbench_sim::SimOutcome| {
            x.trace_hash() == y.trace_hash()
                && x.trace_records() == y.trace_records()
                && x.virtual_ns() == y.virtual_ns()
                && x.stages() == y.stages()
                && x.links() == y.links()
                && x.series() == y.series()
                && x.messages() == y.messages()
                && x.memory_peak_events() == y.memory_peak_events()
                && x.latency() == y.latency()
        };
        if !same(&a, &b) || !same(&a, &c) || text_a != text_c {
            return Err(fail(format!(
                "three runs differ: hashes {} / {} (untraced) / {}, records {} / {} / {}",
                a.trace_hash_hex(), b.trace_hash_hex(), c.trace_hash_hex(),
                a.trace_records(), b.trace_records(), c.trace_records()
            )));
        }
    }
}

// ---- bugs the properties found ------------------------------------------------------------
//
// The minimal forms of the failures the liveness property found (fixed in the engine; the
// generated scenarios themselves are kept in `tests/regressions/`). Named after the bug.

fn parse(text: &str) -> Scenario {
    parse_str(text, "finding.toml").expect("the finding's scenario is valid")
}

/// The `(to, ids)` of every `events` record from `from`, in order.
fn deliveries(ran: &Ran, s: &Scenario, from: &str) -> Vec<(String, Vec<u64>)> {
    ran.trace
        .iter()
        .filter(|r| r.kind == K::Events)
        .filter_map(|r| {
            let l = &s.links[r.link?];
            (name(s, l.producer) == from).then(|| (name(s, l.consumer).to_string(), r.ids.clone()))
        })
        .collect()
}

#[test]
fn partition_hash_drop_no_longer_stalls_a_bounded_producer() {
    // Was: `sink` asks 1, `src` emits event 1, the hash (`1 % 2`) drops it, and `src` was
    // never asked again (its demand was spent on the dropped event), so event 2 was never
    // emitted and the run deadlocked. Dropped events use no demand: `src` resupplies.
    let s = parse(
        r#"
[[stage]]
name = "src"
kind = "producer"
source = { range = [1, 2] }
dispatcher = "partition"
partitions = 1
hash = "rem"
hash_modulus = 2

[[stage]]
name = "sink"
kind = "consumer"

[[subscription]]
producer = "src"
consumer = "sink"
partition = 0
max_demand = 1
"#,
    );
    let ran = run_case(&s, &SimOptions::default()).expect("the run ends");
    assert!(ran.deadlock.is_none(), "{:?}", ran.deadlock);
    assert_eq!(deliveries(&ran, &s, "src"), [("sink".to_string(), vec![2])]);
    let src = &ran.outcome.stages()[0].stats;
    assert_eq!((src.emitted, src.dropped), (2, 1));
    assert!(ran.outcome.balanced(), "{}", ran.outcome.table());
}

#[test]
fn broadcast_producer_consumer_no_longer_stalls_with_input_queued_and_demand() {
    // Was: `a` asks 3 before `b` subscribes, so `mid` was asked for 3; `mid` sent [1] to
    // both and buffered [2] (no common demand left), counting event 2 against downstream
    // demand twice (when emitted and when it left the buffer). Its counter reached 0 while
    // the dispatcher still expected an event, and [3] stayed queued forever with demand 3
    // and 1 downstream.
    let s = parse(
        r#"
[[stage]]
name = "src"
kind = "producer"
source = { range = [1, 3] }

[[stage]]
name = "mid"
kind = "producer_consumer"
dispatcher = "broadcast"

[[stage]]
name = "a"
kind = "consumer"

[[stage]]
name = "b"
kind = "consumer"

[[subscription]]
producer = "src"
consumer = "mid"
max_demand = 2

[[subscription]]
producer = "mid"
consumer = "a"
max_demand = 3

[[subscription]]
producer = "mid"
consumer = "b"
max_demand = 1
"#,
    );
    let ran = run_case(&s, &SimOptions::default()).expect("the run ends");
    assert!(ran.deadlock.is_none(), "{:?}", ran.deadlock);
    for sink in ["a", "b"] {
        let got: Vec<u64> = deliveries(&ran, &s, "mid")
            .into_iter()
            .filter(|(to, _)| to == sink)
            .flat_map(|(_, ids)| ids)
            .collect();
        assert_eq!(got, [1, 2, 3], "{sink}");
    }
    assert!(ran.outcome.balanced(), "{}", ran.outcome.table());
}

#[test]
fn demand_shuffle_keeps_events_flowing_to_a_consumer_with_demand() {
    // Was (an engine bug, fixed in `dispatcher/demand.rs`): the liveness rule says a
    // buffered event never waits (and so is never dropped for want of room) while a
    // consumer that could take it has demand. Here `src` accumulates until both
    // subscriptions are made; at `b`'s subscribe it replays `a`'s ask of 2 and makes
    // events 1 and 2. The first dispatch shuffled the demand list
    // (`shuffle_demands_on_first_dispatch`) and put `b` (demand 0) before `a` (demand 2);
    // the dispatch stopped at a head without demand, so both events went to a buffer of
    // size 0 and were dropped, and the run deadlocked. Now the shuffle only reorders
    // consumers of equal demand: nothing is dropped and the run drains.
    let s = parse(
        r#"
[[stage]]
name = "src"
kind = "producer"
source = { range = [1, 100] }
demand = "accumulate"
shuffle_demands_on_first_dispatch = true
buffer_size = 0

[[stage]]
name = "a"
kind = "consumer"

[[stage]]
name = "b"
kind = "consumer"

[[subscription]]
producer = "src"
consumer = "a"
max_demand = 2
min_demand = 0

[[subscription]]
producer = "src"
consumer = "b"
max_demand = 1
min_demand = 0
"#,
    );
    // The shuffle's seed comes from the run's root seed; 5 puts `b` first.
    let opts = SimOptions {
        seed: Some(5),
        ..SimOptions::default()
    };
    let ran = run_case(&s, &opts).expect("the run ends");
    assert!(ran.deadlock.is_none(), "{}", ran.outcome.table());
    assert!(
        !ran.trace.iter().any(|r| r.kind == K::Drop),
        "nothing dropped"
    );
    let handled: u64 = ran.outcome.stages()[1..]
        .iter()
        .map(|st| st.stats.handled)
        .sum();
    assert_eq!(handled, 100, "a and b share every event");
    assert!(ran.outcome.balanced(), "{}", ran.outcome.table());
}

#[test]
fn restarted_producer_counts_what_every_incarnation_handed_out() {
    // Was (a sim bug, fixed in `sched.rs`): the figures of a restarted stage summed every
    // counter of its earlier incarnations except `handed_out`, so a producer that handed
    // out events, crashed, restarted and handed out more did not balance. Here `src`
    // hands out 4 events, crashes, restarts; `sink` crashes and restarts (it lives on
    // meanwhile through `later`), subscribes to the new `src` and gets all 10 again.
    let s = parse(
        r#"
[[stage]]
name = "src"
kind = "producer"
source = { range = [1, 10] }

[[stage.fault]]
crash_after_events = 4
restart_after_us = 1

[[stage]]
name = "later"
kind = "producer"
source = { script = [{ at_us = 50, first = 100, last = 100 }] }

[[stage]]
name = "sink"
kind = "consumer"

[[stage.fault]]
crash_at_us = 20
restart_after_us = 1

[[subscription]]
producer = "src"
consumer = "sink"
max_demand = 2
cancel = "temporary"

[[subscription]]
producer = "later"
consumer = "sink"
cancel = "temporary"
"#,
    );
    let ran = run_case(&s, &SimOptions::default()).expect("the run ends");
    assert!(ran.deadlock.is_none(), "{:?}", ran.deadlock);
    let restarts = ran.trace.iter().filter(|r| r.kind == K::Restart).count();
    assert_eq!(restarts, 2, "src and sink both restart");
    let src = &ran.outcome.stages()[0].stats;
    assert_eq!((src.emitted, src.handed_out), (14, 14));
    assert!(ran.outcome.balanced(), "{}", ran.outcome.table());
}

#[test]
fn restarted_accumulating_producer_forwards_again() {
    // Was (a sim bug, fixed in `sched.rs`): the simulator delivered `forward_at_us` once,
    // so a producer restarted after that time came back accumulating and held every ask
    // for ever. Here `src` forwards at 1 us, crashes after 5 events and restarts at 2 us;
    // `sink` (kept alive by `later`) crashes, restarts at 21 us and asks the new `src`,
    // which must serve it: 5 + 20 events, and the run drains.
    let s = parse(
        r#"
[[stage]]
name = "src"
kind = "producer"
source = { range = [1, 20] }
demand = "accumulate"
forward_at_us = 1

[[stage.fault]]
crash_after_events = 5
restart_after_us = 1

[[stage]]
name = "later"
kind = "producer"
source = { script = [{ at_us = 50, first = 100, last = 100 }] }

[[stage]]
name = "sink"
kind = "consumer"

[[stage.fault]]
crash_at_us = 20
restart_after_us = 1

[[subscription]]
producer = "src"
consumer = "sink"
max_demand = 5
cancel = "temporary"

[[subscription]]
producer = "later"
consumer = "sink"
cancel = "temporary"
"#,
    );
    let ran = run_case(&s, &SimOptions::default()).expect("the run ends");
    assert!(ran.deadlock.is_none(), "{:?}", ran.deadlock);
    let forwards: Vec<u64> = ran
        .trace
        .iter()
        .filter(|r| r.kind == K::Forward)
        .map(|r| r.t)
        .collect();
    assert_eq!(
        forwards,
        [1_000, 2_000],
        "at forward_at_us, then at the restart"
    );
    assert_eq!(ran.outcome.stages()[0].stats.emitted, 25);
    assert_eq!(ran.outcome.stages()[2].stats.handled, 25);
    assert!(ran.outcome.balanced(), "{}", ran.outcome.table());
}

#[test]
fn partition_resupply_without_a_holder_is_owed_to_the_next_subscription() {
    // Was (an engine bug, fixed in `core`): events a partition hash drops use no demand,
    // so the producer asks its source for as many again (a `resupply` to itself). Here
    // `a` (partition 0) asks 1; `src` makes event 2, which `rem 4` drops; `a` goes away
    // (it stops when `quick` ends) keeping its demand of 1 as pending; the resupply makes
    // event 3, dropped too, and with no live subscription that resupply used to be lost:
    // `src` made 2 events and was never asked again. Now it is owed to the next
    // subscription, so at `b`'s subscribe `src` makes event 4.
    //
    // Event 4 hashes to partition 0, which nobody holds any more: as SEMANTICS.md
    // specifies (as in GenStage), it waits in that partition's queue for a next
    // subscriber and uses the producer's remaining demand, so `b` (partition 1) still
    // waits and the run ends as a deadlock. That is the partition dispatcher's model, not
    // this bug; the report names it.
    let s = parse(
        r#"
[[stage]]
name = "src"
kind = "producer"
source = { range = [2, 10] }
dispatcher = "partition"
partitions = 2
hash = "rem"
hash_modulus = 4
per_batch = { dist = "fixed", ns = 1000 }

[[stage]]
name = "quick"
kind = "producer"
source = { range = [1000, 1000] }

[[stage]]
name = "a"
kind = "consumer"

[[stage]]
name = "b"
kind = "consumer"

[[subscription]]
producer = "src"
consumer = "a"
partition = 0
max_demand = 1
min_demand = 0

[[subscription]]
producer = "quick"
consumer = "a"
max_demand = 1

[[subscription]]
producer = "src"
consumer = "b"
partition = 1
max_demand = 1
min_demand = 0
latency = { dist = "fixed", ns = 5000 }
"#,
    );
    let ran = run_case(&s, &SimOptions::default()).expect("the run ends");
    let resupplies = ran.trace.iter().filter(|r| r.kind == K::Resupply).count();
    assert!(resupplies >= 1);
    assert_eq!(
        ran.outcome.stages()[0].stats.emitted,
        3,
        "the owed resupply made event 4"
    );
    let report = ran
        .deadlock
        .as_ref()
        .expect("partition 0's queue holds event 4");
    assert_eq!(report.stages[0].status, "running");
    assert_eq!(ran.outcome.stages()[3].stats.handled, 0);
    assert!(ran.outcome.balanced(), "{}", ran.outcome.table());
}
