//! The threads runtime against its peers, each group measured in one run so that every
//! figure is also a ratio:
//!
//! - `p2c/md{N}`: producer → consumer, `u64` events, `max_demand` N (default min); peers
//!   crossbeam-channel and `std::sync::mpsc::sync_channel`, one item per message and in
//!   `Vec` batches of `max_demand - min_demand` with the same events in flight;
//! - `chain3`: producer → producer-consumer (map) → consumer; peer: three threads on
//!   batched crossbeam channels;
//! - `fanout4/{dispatcher}`: one producer to four consumers under each dispatcher; peer:
//!   one thread sending batches on four crossbeam channels (round-robin, a copy each,
//!   split by `e % 4`).
//!
//! `cargo bench -p flowbench-bench --bench threads` (criterion's HTML report:
//! `target/criterion/report/index.html`).

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use flowbench_bench::pipelines::{self, Fanout};
use flowbench_engine::Demand;

/// Events per iteration for `max_demand = n`: fewer where each event is a message.
fn events_for(max_demand: u64) -> u64 {
    match max_demand {
        1 => 20_000,
        10 => 200_000,
        _ => 2_000_000,
    }
}

/// Times `f` per iteration (each call runs a whole pipeline and returns its wall time).
fn timed(b: &mut criterion::Bencher<'_>, f: impl Fn() -> Duration) {
    b.iter_custom(|iters| (0..iters).map(|_| f()).sum());
}

fn p2c(c: &mut Criterion) {
    for max in [1u64, 10, 100, 1000, 10_000] {
        let min = max / 2;
        let events = events_for(max);
        let demand = match Demand::new(max, Some(min)) {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        };
        let (batch, cap) = pipelines::peer_shape(max, min);
        let items = usize::try_from(max).unwrap_or(usize::MAX);
        let mut g = c.benchmark_group(format!("p2c/md{max}"));
        g.throughput(Throughput::Elements(events));
        g.sample_size(10);
        g.bench_function("flowbench", |b| {
            timed(b, || pipelines::flowbench_chain(2, events, demand))
        });
        g.bench_function("crossbeam_batches", |b| {
            timed(b, || pipelines::crossbeam_chain(2, events, batch, cap))
        });
        g.bench_function("crossbeam_items", |b| {
            timed(b, || pipelines::crossbeam_items(events, items))
        });
        g.bench_function("mpsc_batches", |b| {
            timed(b, || pipelines::mpsc_batches(events, batch, cap))
        });
        g.bench_function("mpsc_items", |b| {
            timed(b, || pipelines::mpsc_items(events, items))
        });
        g.finish();
    }
}

fn chain3(c: &mut Criterion) {
    let events = 2_000_000;
    let mut g = c.benchmark_group("chain3");
    g.throughput(Throughput::Elements(events));
    g.sample_size(10);
    let demand = Demand::default();
    let (batch, cap) = pipelines::peer_shape(demand.max(), demand.min());
    g.bench_function("flowbench", |b| {
        timed(b, || pipelines::flowbench_chain(3, events, demand))
    });
    g.bench_function("crossbeam_batches", |b| {
        timed(b, || pipelines::crossbeam_chain(3, events, batch, cap))
    });
    g.finish();
}

fn fanout(c: &mut Criterion) {
    let events = 1_000_000;
    let batch = Demand::default().max() - Demand::default().min();
    for kind in Fanout::ALL {
        let mut g = c.benchmark_group(format!("fanout4/{}", kind.name()));
        g.throughput(Throughput::Elements(kind.delivered(events)));
        g.sample_size(10);
        g.bench_function(BenchmarkId::new("flowbench", events), |b| {
            timed(b, || pipelines::flowbench_fanout(kind, events))
        });
        g.bench_function(BenchmarkId::new("crossbeam_batches", events), |b| {
            timed(b, || pipelines::crossbeam_fanout(kind, events, batch))
        });
        g.finish();
    }
}

criterion_group!(threads, p2c, chain3, fanout);
criterion_main!(threads);
