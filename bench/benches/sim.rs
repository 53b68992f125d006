//! Simulator throughput: simulated protocol messages and events per second of wall time.
//!
//! Scenarios: a 5-stage pipeline (producer -> 3 producer_consumers -> consumer) and a
//! 1 -> 8 partition fan-out, each in a message-bound form (`max_demand = 1`: every event is
//! a batch and an ask on every link) and an event-bound form (GenStage's default demand),
//! plus the default scenario with 10 M events. The peer, measured in the same run, is a
//! bare `BinaryHeap` event loop pushing and popping entries of the same size as the
//! scheduler's: the cost of the event queue alone, per message.
//!
//! `cargo bench -p flowbench-bench --bench sim`

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::collections::BinaryHeap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use flowbench_engine::scenario::{parse_str, Scenario, SourceDef, DEFAULT_SCENARIO};
use flowbench_sim::{run, SimOptions};

fn pipeline5(events: u64, max_demand: u64) -> Scenario {
    let mut text = format!(
        "name = \"pipeline-5\"\n[[stage]]\nname = \"src\"\nkind = \"producer\"\nsource = {{ range = [1, {events}] }}\n"
    );
    for s in ["a", "b", "c"] {
        text += &format!("[[stage]]\nname = \"{s}\"\nkind = \"producer_consumer\"\n");
    }
    text += "[[stage]]\nname = \"sink\"\nkind = \"consumer\"\n";
    for (p, c) in [("src", "a"), ("a", "b"), ("b", "c"), ("c", "sink")] {
        text += &format!(
            "[[subscription]]\nproducer = \"{p}\"\nconsumer = \"{c}\"\nmax_demand = {max_demand}\n"
        );
    }
    parse_str(&text, "pipeline-5.toml").expect("valid bench scenario")
}

fn fanout8(events: u64, max_demand: u64) -> Scenario {
    let mut text = format!(
        "name = \"fanout-8\"\n[[stage]]\nname = \"src\"\nkind = \"producer\"\nsource = {{ range = [1, {events}] }}\ndispatcher = \"partition\"\npartitions = 8\nbuffer_size = 100000\n"
    );
    for p in 0..8 {
        text += &format!("[[stage]]\nname = \"p{p}\"\nkind = \"consumer\"\n");
    }
    for p in 0..8 {
        text += &format!(
            "[[subscription]]\nproducer = \"src\"\nconsumer = \"p{p}\"\npartition = {p}\nmax_demand = {max_demand}\n"
        );
    }
    parse_str(&text, "fanout-8.toml").expect("valid bench scenario")
}

fn default_with(events: u64) -> Scenario {
    let mut s = parse_str(DEFAULT_SCENARIO, "log-pipeline.toml").expect("valid default");
    for st in &mut s.stages {
        if let Some(SourceDef::Range { last, .. }) = &mut st.source {
            *last = events;
        }
    }
    s
}

fn opts() -> SimOptions {
    SimOptions {
        seed: Some(1),
        ..SimOptions::default()
    }
}

/// Benchmarks one scenario, counting `messages` or delivered events per iteration.
fn bench(c: &mut Criterion, group: &str, name: &str, s: &Scenario, messages: bool) {
    bench_with(c, group, name, s, messages, &opts());
}

/// [`bench`] with the trace hash off, as a tuning sweep runs (`name_no_trace_hash`).
fn bench_unhashed(c: &mut Criterion, group: &str, name: &str, s: &Scenario, messages: bool) {
    let o = SimOptions {
        trace_hash: false,
        ..opts()
    };
    bench_with(c, group, &format!("{name}_no_trace_hash"), s, messages, &o);
}

fn bench_with(
    c: &mut Criterion,
    group: &str,
    name: &str,
    s: &Scenario,
    messages: bool,
    opts: &SimOptions,
) {
    let probe = run(s, opts, None).expect("the bench scenario runs");
    assert!(probe.balanced());
    let n = if messages {
        probe.messages()
    } else {
        probe.events_delivered()
    };
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(n));
    if probe.wall_s() > 0.2 {
        g.sample_size(10);
    }
    g.bench_function(name, |b| {
        b.iter(|| black_box(run(black_box(s), opts, None).map(|o| o.trace_hash())))
    });
    g.finish();
}

/// The peer: a bare event loop over a `BinaryHeap` of 64-byte entries, `n` push + pop.
fn peer_heap(c: &mut Criterion) {
    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    struct Entry {
        key: std::cmp::Reverse<(u64, u64)>,
        payload: [u64; 6],
    }
    let n = 1_000_000u64;
    let mut g = c.benchmark_group("messages");
    g.throughput(Throughput::Elements(n));
    g.bench_function("peer_binary_heap_loop", |b| {
        b.iter(|| {
            let mut heap = BinaryHeap::with_capacity(64);
            let mut seq = 0u64;
            for t in 0..16u64 {
                heap.push(Entry {
                    key: std::cmp::Reverse((t, seq)),
                    payload: [t; 6],
                });
                seq += 1;
            }
            let mut sum = 0u64;
            for _ in 0..n {
                let Some(e) = heap.pop() else { break };
                let (t, _) = e.key.0;
                sum = sum.wrapping_add(e.payload[0]);
                heap.push(Entry {
                    key: std::cmp::Reverse((t + 1 + (sum & 7), seq)),
                    payload: e.payload,
                });
                seq += 1;
            }
            black_box(sum)
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    peer_heap(c);
    bench(
        c,
        "messages",
        "pipeline5_max_demand_1",
        &pipeline5(50_000, 1),
        true,
    );
    bench_unhashed(
        c,
        "messages",
        "pipeline5_max_demand_1",
        &pipeline5(50_000, 1),
        true,
    );
    bench(
        c,
        "messages",
        "fanout8_max_demand_1",
        &fanout8(50_000, 1),
        true,
    );
    bench(
        c,
        "events",
        "pipeline5_default_demand",
        &pipeline5(1_000_000, 1000),
        false,
    );
    bench(
        c,
        "events",
        "fanout8_default_demand",
        &fanout8(1_000_000, 1000),
        false,
    );
    bench(
        c,
        "events",
        "log_pipeline_10m",
        &default_with(10_000_000),
        false,
    );
    bench_unhashed(
        c,
        "events",
        "log_pipeline_10m",
        &default_with(10_000_000),
        false,
    );
}

criterion_group!(sim, benches);
criterion_main!(sim);
