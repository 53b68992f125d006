//! Throughput of a producer → consumer pipeline of `u64` events with default demand
//! (max_demand 1000, min_demand 500), next to crossbeam-channel moving batches of the
//! same size between two threads, measured in the same run.
//!
//! Run: `cargo run --release --example throughput [EVENTS] [ROUNDS]`
//! (defaults: 200 000 000 events, 3 rounds; the best round of each is printed).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flowbench_engine::threads::{ProducerOptions, Topology};
use flowbench_engine::{Chunk, Ctx, Emit, SubscribeOpts};

/// flowbench: a counter producer and a summing consumer on two threads.
fn flowbench(events: u64) -> (Duration, u64) {
    let mut t = Topology::new();
    let mut next = 0u64;
    let src = t.producer(
        "counter",
        ProducerOptions::default().limit(events),
        move |n: u64, emit: &mut Emit<u64>| {
            emit.extend(next..next + n);
            next += n;
        },
    );
    let total = Arc::new(AtomicU64::new(0));
    let sum = Arc::clone(&total);
    let mut acc = 0u64;
    let sink = t.consumer("sum", move |events: Chunk<'_, u64>, _ctx: &mut Ctx| {
        acc = acc.wrapping_add(events.as_slice().iter().sum::<u64>());
        sum.store(acc, Ordering::Relaxed);
    });
    t.subscribe(&src, &sink, SubscribeOpts::default())
        .expect("subscribes");
    let start = Instant::now();
    let outcome = t.run().expect("pipeline runs");
    let took = start.elapsed();
    assert!(outcome.balanced(), "accounting must balance");
    (took, total.load(Ordering::Relaxed))
}

/// The peer: the same events in Vec batches of `batch` through a bounded crossbeam
/// channel of 2 batches (the same 1000 events in flight as max_demand allows).
fn crossbeam(events: u64, batch: u64) -> (Duration, u64) {
    let (tx, rx) = crossbeam_channel::bounded::<Vec<u64>>(2);
    let start = Instant::now();
    let producer = std::thread::spawn(move || {
        let mut next = 0u64;
        while next < events {
            let end = (next + batch).min(events);
            tx.send((next..end).collect()).expect("receiver alive");
            next = end;
        }
    });
    let mut acc = 0u64;
    for b in rx {
        acc = acc.wrapping_add(black_box(&b).iter().sum::<u64>());
    }
    producer.join().expect("producer");
    (start.elapsed(), acc)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let events: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000_000);
    let rounds: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let expect = (0..events).fold(0u64, |a, e| a.wrapping_add(e));
    let mut best_fb = Duration::MAX;
    let mut best_cb = Duration::MAX;
    for _ in 0..rounds {
        let (d, s) = flowbench(events);
        assert_eq!(s, expect, "flowbench lost or duplicated events");
        best_fb = best_fb.min(d);
        let (d, s) = crossbeam(events, 500);
        assert_eq!(s, expect, "crossbeam lost or duplicated events");
        best_cb = best_cb.min(d);
    }
    let rate = |d: Duration| events as f64 / d.as_secs_f64();
    let (fb, cb) = (rate(best_fb), rate(best_cb));
    println!(
        "events: {events}, rounds: {rounds}, cores: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "flowbench threads (max_demand 1000, min_demand 500): {:>8.1} M events/s",
        fb / 1e6
    );
    println!(
        "crossbeam-channel bounded(2), Vec batches of 500:    {:>8.1} M events/s",
        cb / 1e6
    );
    println!("ratio flowbench / crossbeam: {:.2}", fb / cb);
}
