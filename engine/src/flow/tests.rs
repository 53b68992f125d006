//! Flow: each operation, window and trigger on deterministic sources, the ways a flow
//! ends, and its errors.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::hash::SplitMix64;

type SumFold = fn(&mut u64, u64);

fn sum_reduce() -> (fn() -> u64, SumFold) {
    (|| 0, |acc, e| *acc += e)
}

#[test]
fn one_stage_per_layer_keeps_the_order() {
    let v = Flow::from_iter(0..100_000u64)
        .stages(1)
        .map(|x| x * 3)
        .partition()
        .stages(1)
        .filter(|x| x % 2 == 0)
        .collect()
        .unwrap();
    let want: Vec<u64> = (0..100_000u64)
        .map(|x| x * 3)
        .filter(|x| x % 2 == 0)
        .collect();
    assert_eq!(v, want);
}

#[test]
fn many_stages_lose_and_duplicate_nothing() {
    let mut v = Flow::from_iters(vec![0..30_000u64, 30_000..60_000, 60_000..100_000])
        .stages(3)
        .demand(7, 3)
        .map(|x| x + 1)
        .partition_with(Partition::hashed().stages(4).demand(50, 10))
        .collect()
        .unwrap();
    v.sort_unstable();
    assert_eq!(v, (1..=100_000u64).collect::<Vec<_>>());
}

#[test]
fn a_key_lives_in_exactly_one_partition() {
    let per_stage = Flow::from_iter(0..20_000u64)
        .map(|x| (x % 97, x))
        .partition_with(Partition::by_key(|e: &(u64, u64)| e.0).stages(3))
        .reduce(BTreeSet::new, |keys: &mut BTreeSet<u64>, e: (u64, u64)| {
            keys.insert(e.0);
        })
        .on_trigger(|keys, t| vec![(t.stage, keys.clone())])
        .collect()
        .unwrap();
    assert_eq!(per_stage.len(), 3);
    let mut all = BTreeSet::new();
    for (_, keys) in &per_stage {
        for k in keys {
            assert!(all.insert(*k), "key {k} in two partitions");
        }
    }
    assert_eq!(all, (0..97).collect());
}

#[test]
fn an_unbounded_source_is_stopped_by_a_limit() {
    let v = Flow::from_iter(0u64..)
        .stages(2)
        .limit(12_345)
        .collect()
        .unwrap();
    let mut v = v;
    v.sort_unstable();
    assert_eq!(v, (0..12_345).collect::<Vec<_>>());
    // The limit is shared by all sources.
    let n = Flow::from_iters(vec![0u64.., 1_000_000u64..])
        .limit(5_000)
        .collect()
        .unwrap()
        .len();
    assert_eq!(n, 5_000);
}

#[test]
fn an_unbounded_source_is_stopped_by_a_time_and_hands_out_its_reduce() {
    let sums = Flow::from_iter(std::iter::repeat(1u64))
        .stages(2)
        .stop_after(Duration::from_millis(30))
        .reduce(|| 0u64, |acc: &mut u64, e| *acc += e)
        .emit_state()
        .collect()
        .unwrap();
    assert_eq!(sums.len(), 2, "one total per stage");
    assert!(sums.iter().sum::<u64>() > 0);
}

#[test]
fn a_stop_handle_stops_an_unbounded_flow_from_another_thread() {
    let flow = Flow::from_iter(0u64..).stages(1);
    let stop = flow.stop_handle();
    let seen = Arc::new(AtomicU64::new(0));
    let s = Arc::clone(&seen);
    let out = flow
        .inspect(move |_| {
            if s.fetch_add(1, Ordering::Relaxed) == 50_000 {
                stop.stop();
            }
        })
        .run()
        .unwrap();
    assert!(seen.load(Ordering::Relaxed) > 50_000);
    assert!(out.balanced());
}

#[test]
fn dropping_the_live_iterator_stops_an_unbounded_flow() {
    let flow = Flow::from_iter(0u64..).stages(2).sink_demand(4, 2);
    let stop = flow.stop_handle();
    let mut it = flow.iter();
    let first: Vec<u64> = it.by_ref().take(1000).map(Result::unwrap).collect();
    assert_eq!(first.len(), 1000);
    assert!(!stop.is_stopped());
    drop(it);
    // The sources see this at their next demand and finish (a_stop_handle_stops_… shows
    // a stopped flow ends).
    assert!(stop.is_stopped());
}

#[test]
fn the_live_iterator_ends_with_the_error() {
    let results: Vec<Result<u64, FlowError>> = Flow::from_iter(0..100u64)
        .stages(1)
        .map(|x| if x == 50 { panic!("fifty") } else { x })
        .iter()
        .collect();
    let last = results.last().unwrap();
    assert!(matches!(last, Err(FlowError::Stage { message, .. }) if message.contains("fifty")));
    assert!(results[..results.len() - 1].iter().all(Result::is_ok));
}

#[test]
fn the_sink_demand_is_the_callers() {
    let asks = |flow: Flow<u64>| {
        let out = flow.run().unwrap();
        out.stages.last().unwrap().stats.asks_sent
    };
    let small = asks(Flow::from_iter(0..1000u64).stages(1).sink_demand(10, 5));
    let default = asks(Flow::from_iter(0..1000u64).stages(1));
    assert!(small >= 1000 / 5, "{small} asks with demand 10/5");
    assert!(default <= 3, "{default} asks with demand 1000/500");
}

#[test]
fn global_window_with_trigger_every_emits_running_totals() {
    let (init, fold) = sum_reduce();
    let v = Flow::from_iter(1..=100u64)
        .stages(1)
        .window(Window::global().trigger_every(10))
        .reduce(init, fold)
        .emit_state()
        .collect()
        .unwrap();
    assert_eq!(
        v,
        [55, 210, 465, 820, 1275, 1830, 2485, 3240, 4095, 5050, 5050]
    );
}

#[test]
fn a_trigger_that_resets_emits_each_slice_once() {
    let (init, fold) = sum_reduce();
    let v = Flow::from_iter(1..=100u64)
        .stages(1)
        .window(Window::global().trigger_every(10).reset_on_trigger())
        .reduce(init, fold)
        .emit_state()
        .collect()
        .unwrap();
    let want: Vec<u64> = (0..10u64)
        .map(|k| (k * 10 + 1..=k * 10 + 10).sum())
        .chain([0])
        .collect();
    assert_eq!(v, want);
}

#[test]
fn count_windows_flush_the_last_empty_window() {
    let (init, fold) = sum_reduce();
    let v = Flow::from_iter(1..=100u64)
        .stages(1)
        .window(Window::count(10))
        .reduce(init, fold)
        .emit_state()
        .collect()
        .unwrap();
    assert_eq!(v, [55, 155, 255, 355, 455, 555, 655, 755, 855, 955, 0]);
}

#[test]
fn periodic_windows_follow_their_clock() {
    // The clock is set from each event by the stage that reduces it, so the windows do
    // not depend on thread timing.
    let clock = ManualClock::new();
    let c = clock.clone();
    let (init, fold) = sum_reduce();
    let v = Flow::from_iter(0..100u64)
        .stages(1)
        .inspect(move |&e| c.set(Duration::from_millis(e)))
        .window(Window::periodic(Duration::from_millis(10)).clock(Clock::from(&clock)))
        .reduce(init, fold)
        .on_trigger(|acc, t| vec![(t.window, t.kind, *acc)])
        .collect()
        .unwrap();
    let want: Vec<_> = (0..10u64)
        .map(|k| {
            (
                WindowId::Periodic(k),
                TriggerKind::Done,
                (k * 10..k * 10 + 10).sum::<u64>(),
            )
        })
        .collect();
    assert_eq!(v, want);
}

#[test]
fn periodic_triggers_emit_the_windows_that_changed() {
    let clock = ManualClock::new();
    let c = clock.clone();
    let (init, fold) = sum_reduce();
    // One event per batch (demand 1), the clock one millisecond per event: a trigger
    // every 25 ms fires after events 25, 50 and 75, then the end.
    let v = Flow::from_iter(1..=100u64)
        .stages(1)
        .demand(1, 0)
        .inspect(move |&e| c.set(Duration::from_millis(e)))
        .window(
            Window::global()
                .trigger_periodically(Duration::from_millis(25))
                .clock(Clock::from(&clock)),
        )
        .reduce(init, fold)
        .on_trigger(|acc, t| vec![(t.kind, *acc)])
        .collect()
        .unwrap();
    let sum = |n: u64| n * (n + 1) / 2;
    assert_eq!(
        v,
        [
            (TriggerKind::Periodically, sum(25)),
            (TriggerKind::Periodically, sum(50)),
            (TriggerKind::Periodically, sum(75)),
            (TriggerKind::Periodically, sum(100)),
            (TriggerKind::Done, sum(100)),
        ]
    );
}

type Counts = BTreeMap<&'static str, u64>;

fn word_counts(window: Window<(&'static str, u64)>, data: Vec<(&'static str, u64)>) -> Vec<Counts> {
    Flow::from_iter(data)
        .stages(1)
        .demand(5, 2)
        .window(window)
        .reduce(Counts::new, |acc: &mut Counts, (w, _)| {
            *acc.entry(w).or_default() += 1
        })
        .emit_state()
        .collect()
        .unwrap()
}

fn hour() -> Duration {
    Duration::from_secs(3600)
}

fn by_ms(e: &(&'static str, u64)) -> Duration {
    Duration::from_millis(e.1)
}

#[test]
fn fixed_windows_count_words_per_hour() {
    // Flow's documentation example (window.ex): timestamps in milliseconds.
    let data = vec![
        ("elixir", 0),
        ("elixir", 1_000),
        ("erlang", 60_000),
        ("concurrency", 3_200_000),
        ("elixir", 4_000_000),
        ("erlang", 5_000_000),
        ("erlang", 6_000_000),
    ];
    let v = word_counts(Window::fixed(hour(), by_ms), data);
    assert_eq!(
        v,
        [
            Counts::from([("concurrency", 1), ("elixir", 2), ("erlang", 1)]),
            Counts::from([("elixir", 1), ("erlang", 2)]),
        ]
    );
}

#[test]
fn late_events_are_dropped_unless_lateness_is_allowed() {
    let data = vec![
        ("a", 0),
        ("b", 3_700_000),
        ("late", 1_000),
        ("c", 3_800_000),
    ];
    let v = word_counts(Window::fixed(hour(), by_ms), data.clone());
    assert_eq!(
        v,
        [Counts::from([("a", 1)]), Counts::from([("b", 1), ("c", 1)])]
    );
    // With five minutes of lateness the first hour fires at its end (watermark), takes
    // the late event, and is done at the end of the data.
    let v = word_counts(
        Window::fixed(hour(), by_ms).allowed_lateness(Duration::from_secs(300)),
        data,
    );
    assert_eq!(
        v,
        [
            Counts::from([("a", 1)]),
            Counts::from([("a", 1), ("late", 1)]),
            Counts::from([("b", 1), ("c", 1)]),
        ]
    );
}

#[test]
fn a_fixed_window_waits_for_every_upstream_stage() {
    // Two sources feed one reducer: the first hour closes only when both have passed it.
    let fast = vec![("x", 0u64), ("x", 3_700_000), ("x", 7_300_000)];
    let slow = vec![("y", 10u64), ("y", 20)];
    let v = Flow::from_iters(vec![fast, slow])
        .stages(1)
        .window(Window::fixed(hour(), by_ms))
        .reduce(Counts::new, |acc: &mut Counts, (w, _)| {
            *acc.entry(w).or_default() += 1
        })
        .on_trigger(|acc, t| vec![(t.window, acc.clone())])
        .collect()
        .unwrap();
    let first = v.iter().find(|(w, _)| {
        *w == WindowId::Fixed {
            start: Duration::ZERO,
        }
    });
    assert_eq!(
        first.map(|f| f.1.clone()),
        Some(Counts::from([("x", 1), ("y", 2)]))
    );
    assert_eq!(v.len(), 3);
}

#[test]
fn departition_merges_every_partition_per_window() {
    let v = Flow::from_iter(1..=1000u64)
        .partition_with(Partition::hashed().stages(4))
        .window(Window::count(50))
        .reduce(|| 0u64, |acc: &mut u64, e| *acc += e)
        .departition(|| 0u64, |sum: &mut u64, part| *sum += part, |sum| sum)
        .collect()
        .unwrap();
    assert_eq!(v.iter().sum::<u64>(), 500_500);
}

#[test]
fn word_count_agrees_with_a_sequential_count() {
    let mut rng = SplitMix64::new(7);
    let words = ["a", "bb", "ccc", "dd", "e", "ffff", "g", "hh"];
    let lines: Vec<String> = (0..2000)
        .map(|_| {
            (0..rng.below(12))
                .map(|_| words[rng.below(words.len() as u64) as usize])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let mut want: HashMap<String, u64> = HashMap::new();
    for l in &lines {
        for w in l.split_whitespace() {
            *want.entry(w.to_string()).or_default() += 1;
        }
    }
    let got: HashMap<String, u64> = Flow::from_iter(lines)
        .demand(10, 5)
        .flat_map(|l: String| l.split_whitespace().map(String::from).collect::<Vec<_>>())
        .partition_with(Partition::by_key(|w: &String| w.clone()).stages(3))
        .reduce(HashMap::new, |acc: &mut HashMap<String, u64>, w| {
            *acc.entry(w).or_default() += 1
        })
        .emit_events()
        .collect()
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(got, want);
}

fn stage_error<T: std::fmt::Debug>(r: Result<T, FlowError>) -> (String, String, String) {
    match r {
        Err(FlowError::Stage {
            stage,
            ops,
            message,
        }) => (stage, ops, message),
        other => panic!("expected a stage error, got {other:?}"),
    }
}

#[test]
fn a_panic_in_a_mapper_names_its_stage() {
    let (stage, ops, message) = stage_error(
        Flow::from_iter(0..1_000_000u64)
            .stages(2)
            .map(|x| x + 1)
            .partition()
            .stages(2)
            .map(|x| if x == 777 { panic!("boom at {x}") } else { x })
            .collect(),
    );
    assert!(stage.starts_with("layer2-"), "{stage}");
    assert_eq!(ops, "map");
    assert_eq!(message, "panic: boom at 777");
}

#[test]
fn a_panic_in_a_source_or_the_sink_names_it() {
    let mut n = 0u64;
    let source = std::iter::from_fn(move || {
        n += 1;
        if n == 500 {
            panic!("source broke");
        }
        Some(n)
    });
    let (stage, _, message) = stage_error(Flow::from_iter(source).collect());
    assert_eq!(
        (stage.as_str(), message.as_str()),
        ("source-0", "panic: source broke")
    );
    let (stage, _, message) = stage_error(
        Flow::from_iter(0..1000u64)
            .stages(1)
            .for_each(|e| assert!(e < 10, "sink saw {e}")),
    );
    assert_eq!(stage, "sink");
    assert!(message.contains("sink saw 10"), "{message}");
}

#[test]
fn a_panic_in_a_reduce_at_the_end_is_an_error() {
    let (stage, ops, message) = stage_error(
        Flow::from_iter(0..100u64)
            .stages(1)
            .reduce(|| 0u64, |acc: &mut u64, e| *acc += e)
            .on_trigger(|_, _| -> Vec<u64> { panic!("no trigger today") })
            .collect(),
    );
    assert_eq!(stage, "layer1-0");
    assert!(ops.contains("reduce"), "{ops}");
    assert!(message.contains("no trigger today"));
}

#[test]
fn invalid_plans_are_refused_before_anything_runs() {
    let plan_error = |r: Result<Vec<u64>, FlowError>| match r {
        Err(FlowError::Plan(m)) => m,
        other => panic!("{other:?}"),
    };
    let m = plan_error(
        Flow::from_iter(0..10u64)
            .reduce(|| 0u64, |a: &mut u64, e| *a += e)
            .emit_state()
            .reduce(|| 0u64, |a: &mut u64, e| *a += e)
            .emit_state()
            .collect(),
    );
    assert!(m.contains("one reduce"), "{m}");
    let m = plan_error(
        Flow::from_iter(0..10u64)
            .map(|x| x)
            .map_batch(|b| b)
            .collect(),
    );
    assert!(m.contains("map_batch"), "{m}");
    assert!(plan_error(Flow::from_iter(0..10u64).stages(0).collect()).contains("stage"));
    assert!(
        plan_error(Flow::from_iter(0..10u64).partition().stages(0).collect()).contains("stage")
    );
    assert!(plan_error(Flow::from_iter(0..10u64).sink_demand(0, 0).collect()).contains("sink"));
    let none: Vec<std::ops::Range<u64>> = Vec::new();
    assert!(plan_error(Flow::from_iters(none).collect()).contains("source"));
}

#[test]
fn explain_lists_every_layer() {
    let plan = Flow::from_iters(vec![0..10u64, 10..20])
        .stages(2)
        .flat_map(|x| [x, x])
        .partition_with(Partition::by_key(|x: &u64| *x).stages(3).demand(100, 50))
        .reduce(|| 0u64, |a: &mut u64, e| *a += e)
        .emit_state()
        .sink_demand(10, 5)
        .explain();
    let lines: Vec<&str> = plan.lines().collect();
    assert_eq!(lines.len(), 4, "{plan}");
    assert_eq!(lines[0], "source: 2 stages (from_iter), demand dispatcher");
    assert!(
        lines[1].starts_with("layer 1: 2 stages: flat_map;"),
        "{plan}"
    );
    assert!(lines[2].starts_with("layer 2: 3 stages, partitioned by key: reduce (global window), emit state; subscribes with max_demand 100, min_demand 50"), "{plan}");
    assert_eq!(
        lines[3],
        "sink: 1 stage; subscribes with max_demand 10, min_demand 5"
    );
}

#[cfg(feature = "scenario")]
#[test]
fn an_exported_flow_is_a_valid_scenario_with_its_demand() {
    let toml = Flow::from_iter(0..50_000u64)
        .stages(2)
        .map(|x| x.wrapping_mul(31))
        .partition_with(Partition::hashed().stages(3).demand(200, 100))
        .to_scenario("exported")
        .unwrap();
    let s = crate::scenario::parse_str(&toml, "exported.toml").unwrap();
    // 1 source, 2 mappers, 3 partitions, the sink.
    assert_eq!(s.stages.len(), 7, "{toml}");
    assert!(
        toml.contains("dispatcher = \"partition\"\npartitions = 3"),
        "{toml}"
    );
    assert!(
        toml.contains("max_demand = 200\nmin_demand = 100"),
        "{toml}"
    );
    assert!(toml.contains("source = { range = [1, 50000] }"), "{toml}");
}
