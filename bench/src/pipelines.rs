//! The pipelines every measurement runs, on flowbench's threads runtime and on its peers
//! (crossbeam-channel, `std::sync::mpsc`), so that the criterion benches and the gate
//! measure the same thing. Each function moves `events` `u64`s from a source through the
//! shape and returns the wall time it took; the events are summed at the end so nothing
//! is optimised away, and the sum is checked.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flowbench_engine::threads::{ProducerOptions, Scheduling, Topology};
use flowbench_engine::{
    Chunk, Ctx, Demand, DispatcherSpec, Emit, OnMissing, PartitionFn, SubRef, SubscribeOpts,
};

/// `0 + 1 + … + (n - 1)`, what every pipeline's sink must add up to.
pub fn expected_sum(n: u64) -> u64 {
    if n == 0 {
        0
    } else {
        (n - 1).wrapping_mul(n) / 2
    }
}

fn counter(events: u64) -> impl FnMut(u64, &mut Emit<u64>) + Send {
    let mut next = 0u64;
    move |n: u64, emit: &mut Emit<u64>| {
        let end = next.saturating_add(n).min(events);
        emit.extend(next..end);
        next = end;
        if next == events {
            emit.finish();
        }
    }
}

/// A chain of `stages` stages on flowbench threads: a counter producer, `stages - 2`
/// pass-through producer-consumers and a summing consumer, every link with `demand`.
pub fn flowbench_chain(stages: usize, events: u64, demand: Demand) -> Duration {
    flowbench_chain_on(stages, events, demand, Scheduling::Auto)
}

/// [`flowbench_chain`] under a given [`Scheduling`].
pub fn flowbench_chain_on(
    stages: usize,
    events: u64,
    demand: Demand,
    scheduling: Scheduling,
) -> Duration {
    let stages = stages.max(2);
    let mut t = Topology::new();
    t.scheduling(scheduling);
    let src = t.producer("src", ProducerOptions::default(), counter(events));
    let opts = || SubscribeOpts::default().demand(demand);
    let total = Arc::new(AtomicU64::new(0));
    let sum = Arc::clone(&total);
    let mut acc = 0u64;
    let sink = t.consumer("sink", move |events: Chunk<'_, u64>, _: &mut Ctx| {
        acc = acc.wrapping_add(events.as_slice().iter().sum::<u64>());
        sum.store(acc, Ordering::Relaxed);
    });
    let mut mids = Vec::new();
    for i in 0..stages - 2 {
        mids.push(t.producer_consumer(
            &format!("map-{i}"),
            ProducerOptions::default(),
            |events: Chunk<'_, u64>, _: SubRef, emit: &mut Emit<u64>| emit.forward(events),
        ));
    }
    let started = Instant::now();
    let outcome = match mids.first() {
        None => {
            ok(t.subscribe(&src, &sink, opts()));
            t.run()
        }
        Some(first) => {
            ok(t.subscribe(&src, first, opts()));
            for w in mids.windows(2) {
                ok(t.subscribe(&w[0], &w[1], opts()));
            }
            if let Some(last) = mids.last() {
                ok(t.subscribe(last, &sink, opts()));
            }
            t.run()
        }
    };
    let took = started.elapsed();
    let balanced = outcome.is_ok_and(|o| o.balanced());
    assert!(balanced, "the bench pipeline balances");
    assert_eq!(total.load(Ordering::Relaxed), expected_sum(events));
    took
}

fn ok<T, E: std::fmt::Debug>(r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("bench pipeline: {e:?}"),
    }
}

/// The peer of [`flowbench_chain`]: the same number of threads in a line, each passing
/// `Vec` batches of `batch` events on a bounded crossbeam channel of `cap` batches.
pub fn crossbeam_chain(stages: usize, events: u64, batch: u64, cap: usize) -> Duration {
    let stages = stages.max(2);
    let batch = batch.max(1);
    let started = Instant::now();
    let (tx, mut rx) = crossbeam_channel::bounded::<Vec<u64>>(cap);
    let src = std::thread::spawn(move || {
        let mut next = 0u64;
        while next < events {
            let end = (next + batch).min(events);
            if tx.send((next..end).collect()).is_err() {
                return;
            }
            next = end;
        }
    });
    let mut mids = Vec::new();
    for _ in 0..stages - 2 {
        let (tx, next_rx) = crossbeam_channel::bounded::<Vec<u64>>(cap);
        let inp = std::mem::replace(&mut rx, next_rx);
        mids.push(std::thread::spawn(move || {
            for b in inp {
                if tx.send(black_box(b)).is_err() {
                    return;
                }
            }
        }));
    }
    let mut acc = 0u64;
    for b in rx {
        acc = acc.wrapping_add(b.iter().sum::<u64>());
    }
    let took = started.elapsed();
    let _ = src.join();
    for m in mids {
        let _ = m.join();
    }
    assert_eq!(acc, expected_sum(events));
    took
}

/// One event per message through a bounded crossbeam channel of `cap` items.
pub fn crossbeam_items(events: u64, cap: usize) -> Duration {
    let (tx, rx) = crossbeam_channel::bounded::<u64>(cap.max(1));
    let started = Instant::now();
    let src = std::thread::spawn(move || {
        for e in 0..events {
            if tx.send(e).is_err() {
                return;
            }
        }
    });
    let acc = rx.iter().fold(0u64, u64::wrapping_add);
    let took = started.elapsed();
    let _ = src.join();
    assert_eq!(acc, expected_sum(events));
    took
}

/// One event per message through `std::sync::mpsc::sync_channel` of `cap` items.
pub fn mpsc_items(events: u64, cap: usize) -> Duration {
    let (tx, rx) = std::sync::mpsc::sync_channel::<u64>(cap.max(1));
    let started = Instant::now();
    let src = std::thread::spawn(move || {
        for e in 0..events {
            if tx.send(e).is_err() {
                return;
            }
        }
    });
    let acc = rx.iter().fold(0u64, u64::wrapping_add);
    let took = started.elapsed();
    let _ = src.join();
    assert_eq!(acc, expected_sum(events));
    took
}

/// `Vec` batches of `batch` events through `std::sync::mpsc::sync_channel` of `cap`.
pub fn mpsc_batches(events: u64, batch: u64, cap: usize) -> Duration {
    let batch = batch.max(1);
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u64>>(cap);
    let started = Instant::now();
    let src = std::thread::spawn(move || {
        let mut next = 0u64;
        while next < events {
            let end = (next + batch).min(events);
            if tx.send((next..end).collect()).is_err() {
                return;
            }
            next = end;
        }
    });
    let mut acc = 0u64;
    for b in rx {
        acc = acc.wrapping_add(b.iter().sum::<u64>());
    }
    let took = started.elapsed();
    let _ = src.join();
    assert_eq!(acc, expected_sum(events));
    took
}

/// A dispatcher of the 1 → 4 fan-out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fanout {
    /// Demand dispatcher: each event to one consumer.
    Demand,
    /// Broadcast: every event to every consumer.
    Broadcast,
    /// Partition by `e % 4`.
    Partition,
}

impl Fanout {
    /// The three, in order.
    pub const ALL: [Fanout; 3] = [Fanout::Demand, Fanout::Broadcast, Fanout::Partition];

    /// `demand`, `broadcast`, `partition`.
    pub fn name(self) -> &'static str {
        match self {
            Fanout::Demand => "demand",
            Fanout::Broadcast => "broadcast",
            Fanout::Partition => "partition",
        }
    }

    /// Events the four consumers handle in all for `events` emitted.
    pub fn delivered(self, events: u64) -> u64 {
        match self {
            Fanout::Broadcast => events * 4,
            _ => events,
        }
    }
}

/// One producer to four consumers on flowbench threads, under `kind`, default demand.
pub fn flowbench_fanout(kind: Fanout, events: u64) -> Duration {
    let mut t = Topology::new();
    let dispatcher = match kind {
        Fanout::Demand => DispatcherSpec::default(),
        Fanout::Broadcast => DispatcherSpec::Broadcast,
        Fanout::Partition => DispatcherSpec::Partition {
            partitions: 4,
            hash: PartitionFn::new(|e: &u64| Some((e % 4) as u32)),
            on_missing: OnMissing::Hold,
        },
    };
    let mut opts = ProducerOptions::default().dispatcher(dispatcher);
    if kind == Fanout::Broadcast {
        // Every consumer subscribes before the first event, as a broadcast needs.
        opts = opts.accumulate_until_subscribed();
    }
    let src = t.producer("src", opts, counter(events));
    let total = Arc::new(AtomicU64::new(0));
    for i in 0..4u32 {
        let sum = Arc::clone(&total);
        let c = t.consumer(
            &format!("c{i}"),
            move |events: Chunk<'_, u64>, _: &mut Ctx| {
                sum.fetch_add(events.as_slice().iter().sum::<u64>(), Ordering::Relaxed);
            },
        );
        let mut o = SubscribeOpts::default();
        if kind == Fanout::Partition {
            o = o.partition(i);
        }
        ok(t.subscribe(&src, &c, o));
    }
    let started = Instant::now();
    let outcome = t.run();
    let took = started.elapsed();
    assert!(outcome.is_ok_and(|o| o.balanced()));
    let want = match kind {
        Fanout::Broadcast => expected_sum(events).wrapping_mul(4),
        _ => expected_sum(events),
    };
    assert_eq!(total.load(Ordering::Relaxed), want);
    took
}

/// The peer of [`flowbench_fanout`]: one thread sending `Vec` batches of `batch` events
/// on four bounded crossbeam channels — round-robin (demand), a copy to each (broadcast)
/// or split by `e % 4` (partition).
pub fn crossbeam_fanout(kind: Fanout, events: u64, batch: u64) -> Duration {
    let batch = batch.max(1);
    let started = Instant::now();
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..4)
        .map(|_| crossbeam_channel::bounded::<Vec<u64>>(2))
        .unzip();
    let src = std::thread::spawn(move || {
        let mut next = 0u64;
        let mut turn = 0usize;
        while next < events {
            let end = (next + batch).min(events);
            match kind {
                Fanout::Demand => {
                    let _ = txs[turn % 4].send((next..end).collect());
                    turn += 1;
                }
                Fanout::Broadcast => {
                    let b: Vec<u64> = (next..end).collect();
                    for tx in &txs {
                        let _ = tx.send(b.clone());
                    }
                }
                Fanout::Partition => {
                    let mut parts: [Vec<u64>; 4] = Default::default();
                    for e in next..end {
                        parts[(e % 4) as usize].push(e);
                    }
                    for (tx, p) in txs.iter().zip(parts) {
                        let _ = tx.send(p);
                    }
                }
            }
            next = end;
        }
    });
    let sinks: Vec<_> = rxs
        .into_iter()
        .map(|rx| {
            std::thread::spawn(move || {
                rx.iter()
                    .fold(0u64, |a, b| a.wrapping_add(b.iter().sum::<u64>()))
            })
        })
        .collect();
    let total = sinks
        .into_iter()
        .map(|h| h.join().unwrap_or_default())
        .fold(0u64, u64::wrapping_add);
    let took = started.elapsed();
    let _ = src.join();
    let want = match kind {
        Fanout::Broadcast => expected_sum(events).wrapping_mul(4),
        _ => expected_sum(events),
    };
    assert_eq!(total, want);
    took
}

/// The batch size and channel capacity (in batches) that keep as many events in flight
/// as a subscription with `max_demand`/`min_demand` allows: batches of
/// `max_demand - min_demand`, enough of them for `max_demand` events.
pub fn peer_shape(max_demand: u64, min_demand: u64) -> (u64, usize) {
    let batch = (max_demand - min_demand).max(1);
    let cap = max_demand.div_ceil(batch).max(1);
    (batch, usize::try_from(cap).unwrap_or(usize::MAX))
}
