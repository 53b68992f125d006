//! Every scenario of the corpus runs on the threads runtime and balances; the typed API
//! delivers every event exactly once, in order per producer, under panics and pools.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use flowbench_engine::scenario;
use flowbench_engine::threads::scenario::{run_scenario, ScenarioRunOptions};
use flowbench_engine::threads::{ProducerOptions, Topology};
use flowbench_engine::{CancelMode, Chunk, Ctx, Demand, Emit, SubscribeOpts};

fn corpus() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("scenarios/ exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "the corpus has at least five scenarios");
    files
}

#[test]
fn every_scenario_runs_on_threads_balanced_without_duplicates_in_link_order() {
    for path in corpus() {
        let s = scenario::load(&path).expect("scenario is valid");
        // Several seeds: the emulated service times (busy work) and arrival gaps differ,
        // and so does the interleaving of the stage threads.
        for seed in 1..=4 {
            let opts = ScenarioRunOptions {
                scheduling: Default::default(),
                events: Some(20_000),
                seed,
                until: None,
                record: true,
            };
            let run = run_scenario(&s, &opts).expect("runs");
            let outcome = &run.outcome;
            let summary = outcome.summary(&s.name);
            let name = path.display();
            assert!(
                summary.balanced,
                "{name} seed {seed} did not balance:\n{}",
                summary.table()
            );
            assert!(summary.events_delivered > 0, "{name} delivered nothing");
            for (stage, got) in run.received.iter().enumerate() {
                let handled = outcome.stages[stage].stats.handled;
                if outcome.stages[stage].kind.produces() {
                    continue;
                }
                assert_eq!(
                    got.len() as u64,
                    handled,
                    "{name}: every handled event recorded"
                );
                let mut ids: Vec<u64> = got.iter().map(|&(_, e)| e).collect();
                ids.sort_unstable();
                ids.dedup();
                assert_eq!(
                    ids.len(),
                    got.len(),
                    "{name} seed {seed}: a consumer saw an event twice"
                );
                // Every source of the corpus numbers its events in increasing order, so
                // dispatch order on a link is increasing order. (A pool runs its jobs
                // concurrently: completion order is not arrival order.)
                if outcome.stages[stage].kind == flowbench_engine::StageKind::ConsumerPool {
                    continue;
                }
                for link in got
                    .iter()
                    .map(|&(l, _)| l)
                    .collect::<std::collections::BTreeSet<_>>()
                {
                    let on_link: Vec<u64> = got
                        .iter()
                        .filter(|&&(l, _)| l == link)
                        .map(|&(_, e)| e)
                        .collect();
                    assert!(
                        on_link.windows(2).all(|w| w[0] < w[1]),
                        "{name} seed {seed}: link {link} out of order"
                    );
                }
            }
        }
    }
}

/// A range producer of `0..n` for the typed API.
fn range(n: u64) -> impl FnMut(u64, &mut Emit<u64>) + Send {
    let mut next = 0;
    move |k: u64, emit: &mut Emit<u64>| {
        let end = (next + k).min(n);
        emit.extend(next..end);
        next = end;
        if next == n {
            emit.finish();
        }
    }
}

#[test]
fn threads_deliver_each_event_once_in_order_under_random_busy_work() {
    for round in 0..20u64 {
        let mut t = Topology::new();
        let src = t.producer("src", ProducerOptions::default(), range(20_000));
        let seen: Vec<Arc<Mutex<Vec<u64>>>> = (0..3).map(|_| Arc::default()).collect();
        for (i, got) in seen.iter().enumerate() {
            let got = Arc::clone(got);
            let mut x = round * 31 + i as u64;
            let c = t.consumer(
                &format!("c{i}"),
                move |events: Chunk<'_, u64>, _: &mut Ctx| {
                    // Uneven work: a few extra rounds of a xorshift per chunk.
                    x ^= x << 13;
                    x ^= x >> 7;
                    for _ in 0..(x % 2000) {
                        std::hint::black_box(x.wrapping_mul(3));
                    }
                    got.lock().expect("lock").extend(events);
                },
            );
            let max = 1 + (round + i as u64) % 50;
            t.subscribe(
                &src,
                &c,
                SubscribeOpts::default().demand(Demand::new(max, None).expect("valid")),
            )
            .expect("subscribes");
        }
        let outcome = t.run().expect("runs");
        assert!(outcome.balanced());
        let mut all = Vec::new();
        for got in &seen {
            let v = got.lock().expect("lock");
            assert!(v.windows(2).all(|w| w[0] < w[1]), "per-link order kept");
            all.extend(v.iter().copied());
        }
        all.sort_unstable();
        assert_eq!(
            all,
            (0..20_000).collect::<Vec<_>>(),
            "each event exactly once"
        );
    }
}

#[test]
fn panic_in_each_stage_kind_ends_the_run_balanced() {
    // producer
    let mut t = Topology::new();
    let mut next = 0u64;
    let p = t.producer(
        "p",
        ProducerOptions::default(),
        move |n: u64, emit: &mut Emit<u64>| {
            assert!(next < 5_000, "producer gives up");
            emit.extend(next..next + n);
            next += n;
        },
    );
    let c = t.consumer("c", |_: Chunk<'_, u64>, _: &mut Ctx| {});
    t.subscribe(&p, &c, SubscribeOpts::default())
        .expect("subscribes");
    let o = t.run().expect("runs");
    assert!(o.balanced());
    assert!(
        o.stages[0].exit.contains("panic in handle_demand"),
        "{}",
        o.stages[0].exit
    );

    // producer-consumer
    let mut t = Topology::new();
    let p = t.producer("p", ProducerOptions::default(), range(10_000));
    let pc = t.producer_consumer(
        "pc",
        ProducerOptions::default(),
        |events: Chunk<'_, u64>, _from, emit: &mut Emit<u64>| {
            for e in events {
                assert!(e != 4_321, "bad event");
                emit.push(e);
            }
        },
    );
    let c = t.consumer("c", |_: Chunk<'_, u64>, _: &mut Ctx| {});
    t.subscribe(&p, &pc, SubscribeOpts::default())
        .expect("subscribes");
    t.subscribe(&pc, &c, SubscribeOpts::default())
        .expect("subscribes");
    let o = t.run().expect("runs");
    assert!(o.balanced());
    assert!(
        o.stages[1].exit.contains("bad event"),
        "{}",
        o.stages[1].exit
    );

    // consumer, with a temporary subscription next to a healthy consumer
    let mut t = Topology::new();
    // Hold demand until both have subscribed, or `good` could take every event first.
    let p = t.producer(
        "p",
        ProducerOptions::default().accumulate_until_subscribed(),
        range(10_000),
    );
    // It panics on its first chunk: which events it gets depends on timing, that it gets
    // some does not (both consumers have demand until the source runs out).
    let bad = t.consumer("bad", |_: Chunk<'_, u64>, _: &mut Ctx| panic!("unlucky"));
    let good_seen = Arc::new(Mutex::new(0u64));
    let g = Arc::clone(&good_seen);
    let good = t.consumer("good", move |events: Chunk<'_, u64>, _: &mut Ctx| {
        *g.lock().expect("lock") += events.len() as u64;
    });
    t.subscribe(
        &p,
        &bad,
        SubscribeOpts::default().cancel(CancelMode::Temporary),
    )
    .expect("subscribes");
    t.subscribe(&p, &good, SubscribeOpts::default())
        .expect("subscribes");
    let o = t.run().expect("runs");
    assert!(o.balanced(), "{}", o.summary("panic").table());
    assert!(o.stages[1].exit.contains("unlucky"));
    assert!(*good_seen.lock().expect("lock") > 0);

    // consumer pool
    let mut t = Topology::new();
    let p = t.producer("p", ProducerOptions::default(), range(1_000));
    let pool = t.consumer_pool("pool", |e: u64| assert!(e != 500, "job fails"));
    t.subscribe(
        &p,
        &pool,
        SubscribeOpts::default().demand(Demand::new(8, Some(2)).expect("ok")),
    )
    .expect("subscribes");
    let o = t.run().expect("runs");
    assert!(o.balanced());
    assert!(
        o.stages[1].exit.contains("pool job"),
        "{}",
        o.stages[1].exit
    );
}

#[test]
fn probes_are_readable_while_running_and_final_after_join() {
    let mut t = Topology::new();
    let p = t.producer("p", ProducerOptions::default(), range(200_000));
    let c = t.consumer("c", |_: Chunk<'_, u64>, _: &mut Ctx| {});
    t.subscribe(&p, &c, SubscribeOpts::default())
        .expect("subscribes");
    let running = t.spawn().expect("spawns");
    let probes: Vec<_> = running.probes().to_vec();
    let first = probes[1].read();
    assert_eq!(first.name, "c");
    let outcome = running.join().expect("joins");
    let last = probes[1].read();
    assert!(last.stopped);
    assert_eq!(last.handled, 200_000);
    assert!(last.handled >= first.handled);
    assert_eq!(outcome.stages[1].stats.handled, 200_000);
}

#[test]
fn shutdown_stops_an_unbounded_pipeline_in_order() {
    let mut t = Topology::new();
    let mut next = 0u64;
    let p = t.producer(
        "p",
        ProducerOptions::default(),
        move |n: u64, emit: &mut Emit<u64>| {
            emit.extend(next..next + n);
            next += n;
        },
    );
    let got = Arc::new(Mutex::new(0u64));
    let g = Arc::clone(&got);
    let c = t.consumer("c", move |events: Chunk<'_, u64>, _: &mut Ctx| {
        *g.lock().expect("lock") += events.len() as u64;
    });
    t.subscribe(&p, &c, SubscribeOpts::default())
        .expect("subscribes");
    let running = t.spawn().expect("spawns");
    // Wait (by synchronising on the probe, not by sleeping) until events flow.
    while running.probes()[1].read().handled < 10_000 {
        std::thread::yield_now();
    }
    running.shutdown();
    let outcome = running.join().expect("joins");
    assert!(outcome.balanced());
    assert_eq!(outcome.stages[0].exit, "shutdown");
    assert_eq!(outcome.stages[1].stats.handled, *got.lock().expect("lock"));
}

/// Regression: a push source whose arrivals come faster than its stage handles them used
/// to starve the stage's mailbox and its stop timer, so the run never ended.
#[test]
fn fast_endless_push_source_stops_at_events_and_at_until() {
    let text = r#"
[[stage]]
name = "p"
kind = "producer"
source = { bursts = { every_us = 10, size = 2000 } }

[[stage]]
name = "c"
kind = "consumer"

[[subscription]]
producer = "p"
consumer = "c"
"#;
    let s = scenario::parse_str(text, "endless.toml").expect("valid");
    let by_events = ScenarioRunOptions {
        scheduling: Default::default(),
        events: Some(5_000),
        seed: 1,
        until: None,
        record: false,
    };
    let o = run_scenario(&s, &by_events).expect("runs").outcome;
    assert!(o.balanced());
    assert_eq!(o.stages[0].stats.emitted, 5_000);
    let by_time = ScenarioRunOptions {
        scheduling: Default::default(),
        events: None,
        until: Some(std::time::Duration::from_millis(50)),
        ..by_events
    };
    let o = run_scenario(&s, &by_time).expect("runs").outcome;
    assert!(o.balanced(), "{}", o.summary("endless").table());
    assert!(o.cut, "the run was cut at its until time");
    assert_eq!(o.stages[0].exit, "running");
}
