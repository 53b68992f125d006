//! What the worker pool promises, checked by a pipeline's result (never by its timing).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use flowbench_engine::threads::{ProducerOptions, Scheduling, Topology};
use flowbench_engine::{Chunk, Ctx, Demand, Emit, SubscribeOpts};

/// A counter producer that stops at `bound` or once `stop` is set.
fn counter(bound: u64, stop: Option<Arc<AtomicBool>>) -> impl FnMut(u64, &mut Emit<u64>) + Send {
    let mut next = 0u64;
    move |n: u64, emit: &mut Emit<u64>| {
        let end = next.saturating_add(n).min(bound);
        emit.extend(next..end);
        next = end;
        if next == bound || stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) {
            emit.finish();
        }
    }
}

#[test]
fn a_pair_handing_messages_back_and_forth_cannot_starve_another_pipeline() {
    // One worker runs two pipelines. `busy` has `max_demand = 1`: its two stages wake
    // each other on every event, and the one just woken always runs next on the worker.
    // `busy` stops as soon as `small` has drained; if the pair could keep the worker to
    // itself, `small` would wait until `busy` reached its bound.
    const BOUND: u64 = 20_000_000;
    const SMALL: u64 = 1_000;
    let mut t = Topology::new();
    t.scheduling(Scheduling::Pool { workers: 1 });
    let small_done = Arc::new(AtomicBool::new(false));
    let busy = t.producer(
        "busy",
        ProducerOptions::default(),
        counter(BOUND, Some(Arc::clone(&small_done))),
    );
    let busy_got = Arc::new(AtomicU64::new(0));
    let got = Arc::clone(&busy_got);
    let busy_sink = t.consumer("busy-sink", move |events: Chunk<'_, u64>, _: &mut Ctx| {
        got.fetch_add(events.len() as u64, Ordering::SeqCst);
    });
    let one = Demand::new(1, Some(0)).expect("valid demand");
    t.subscribe(&busy, &busy_sink, SubscribeOpts::default().demand(one))
        .expect("subscribes");
    let small = t.producer("small", ProducerOptions::default(), counter(SMALL, None));
    let small_got = Arc::new(AtomicU64::new(0));
    let (got, done) = (Arc::clone(&small_got), Arc::clone(&small_done));
    let small_sink = t.consumer("small-sink", move |events: Chunk<'_, u64>, _: &mut Ctx| {
        if got.fetch_add(events.len() as u64, Ordering::SeqCst) + events.len() as u64 == SMALL {
            done.store(true, Ordering::SeqCst);
        }
    });
    t.subscribe(&small, &small_sink, SubscribeOpts::default())
        .expect("subscribes");
    let outcome = t.run().expect("runs");
    assert!(outcome.balanced());
    assert_eq!(small_got.load(Ordering::SeqCst), SMALL);
    let busy_events = busy_got.load(Ordering::SeqCst);
    assert!(
        busy_events < BOUND,
        "`busy` ran to its bound ({busy_events} events) before `small` drained"
    );
}
