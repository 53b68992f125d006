//! `flowbench tune`'s sweep: the same numbers whatever the jobs or the sharding, a
//! frontier that is not dominated, and a recommendation that follows its objective.

use flowbench_bench::tune::{merge, tune, Objective, TuneOptions};
use flowbench_engine::scenario::{parse_str, Scenario};

fn scenario() -> Scenario {
    parse_str(
        r#"
name = "tune-test"
seed = 5

[[stage]]
name = "src"
kind = "producer"
source = { range = [1, 5000] }

[[stage]]
name = "work"
kind = "producer_consumer"
per_batch = { dist = "fixed", ns = 2000 }
per_event = { dist = "exp", mean_ns = 100 }

[[stage]]
name = "sink"
kind = "consumer"
per_event = { dist = "fixed", ns = 150 }

[[subscription]]
producer = "src"
consumer = "work"

[[subscription]]
producer = "work"
consumer = "sink"
latency = { dist = "fixed", ns = 5000 }
"#,
        "tune-test.toml",
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn opts() -> TuneOptions {
    TuneOptions {
        grid: (6, 3),
        seeds: 2,
        events: 5_000,
        ..TuneOptions::default()
    }
}

fn quiet(_: usize, _: usize) {}

#[test]
fn the_same_sweep_gives_the_same_result_with_any_jobs_or_shards() {
    let s = scenario();
    let one = tune(&s, &opts(), 1, None, &quiet).expect("runs");
    let two = tune(&s, &opts(), 2, None, &quiet).expect("runs");
    let json = |r| serde_json::to_string(r).expect("JSON");
    assert_eq!(json(&one), json(&two));
    let shards: Vec<_> = (0..3)
        .map(|i| tune(&s, &opts(), 2, Some((i, 3)), &quiet).expect("runs"))
        .collect();
    assert!(shards.iter().all(|r| r.recommendation.is_none()));
    // Through JSON, as shards travel between machines.
    let shards = shards
        .iter()
        .map(|r| serde_json::from_str(&json(r)).expect("a shard reads back"))
        .collect();
    let merged = merge(&s, shards).expect("merges");
    assert_eq!(json(&merged), json(&one));
    // A missing shard is refused.
    let partial = vec![tune(&s, &opts(), 1, Some((0, 3)), &quiet).expect("runs")];
    assert!(merge(&s, partial).is_err());
}

#[test]
fn the_frontier_is_not_dominated_and_the_objectives_hold() {
    let s = scenario();
    let r = tune(&s, &opts(), 2, None, &quiet).expect("runs");
    assert!(!r.pareto.is_empty());
    for &i in &r.pareto {
        let a = &r.points[i];
        assert!(!r.points.iter().any(|b| b.throughput_eps > a.throughput_eps
            && b.p99_us < a.p99_us
            && b.memory_peak_events < a.memory_peak_events));
    }
    let best = r
        .points
        .iter()
        .map(|p| p.throughput_eps)
        .fold(0.0, f64::max);
    for objective in [Objective::Throughput, Objective::P99, Objective::Memory] {
        let o = TuneOptions {
            objective,
            ..opts()
        };
        let r = tune(&s, &o, 2, None, &quiet).expect("runs");
        let rec = r.recommendation.expect("a recommendation");
        let floor = if objective == Objective::Throughput {
            0.98
        } else {
            0.95
        };
        assert!(
            rec.throughput_eps >= floor * best,
            "{objective:?}: {}",
            rec.reason
        );
        let keep: Vec<_> = r
            .points
            .iter()
            .filter(|p| p.throughput_eps >= floor * best)
            .collect();
        match objective {
            Objective::P99 => assert!(keep.iter().all(|p| p.p99_us >= rec.p99_us)),
            Objective::Memory => {
                assert!(keep
                    .iter()
                    .all(|p| p.memory_peak_events >= rec.memory_peak_events))
            }
            _ => assert!(keep
                .iter()
                .all(|p| p.settings[0].max_demand >= rec.settings[0].max_demand)),
        }
        assert!(rec.reason.contains("max_demand"), "{}", rec.reason);
    }
}

#[test]
fn a_named_subscription_that_does_not_exist_is_refused() {
    let o = TuneOptions {
        subscriptions: vec![("src".into(), "nope".into())],
        ..opts()
    };
    let err = tune(&scenario(), &o, 1, None, &quiet).expect_err("no such subscription");
    assert!(err.to_string().contains("src:work"), "{err}");
}

/// On three example scenarios the recommendation of the default (coarse) grid is within
/// 5 % of the best value of its objective found on an exhaustive fine grid.
#[test]
fn the_coarse_recommendation_is_within_5_percent_of_a_fine_grid() {
    let costs = flowbench_sim::RuntimeCosts {
        message_ns: 2_000,
        crowded_message_ns: 4_000,
        event_ps: 2_000,
        cores: 2,
        ..flowbench_sim::RuntimeCosts::default()
    };
    for (name, text) in [
        (
            "log-pipeline",
            include_str!("../../scenarios/log-pipeline.toml"),
        ),
        ("demand-3", include_str!("../../scenarios/demand-3.toml")),
        ("pool", include_str!("../../scenarios/pool.toml")),
    ] {
        let s = parse_str(text, name).unwrap_or_else(|e| panic!("{e}"));
        let coarse = TuneOptions {
            seeds: 1,
            events: 4_000,
            objective: Objective::Throughput,
            costs: Some(costs),
            ..TuneOptions::default()
        };
        let fine = TuneOptions {
            grid: (25, 10),
            ..coarse.clone()
        };
        let rec = tune(&s, &coarse, 2, None, &quiet)
            .expect("runs")
            .recommendation
            .expect("a recommendation");
        let best = tune(&s, &fine, 2, None, &quiet)
            .expect("runs")
            .points
            .iter()
            .map(|p| p.throughput_eps)
            .fold(0.0, f64::max);
        assert!(
            rec.throughput_eps >= 0.95 * best,
            "{name}: recommended {} events/s, fine grid best {best}",
            rec.throughput_eps
        );
    }
}

#[test]
fn the_best_points_are_re_measured_on_threads() {
    let s = scenario();
    let mut r = tune(&s, &opts(), 2, None, &quiet).expect("runs");
    flowbench_bench::tune::measure_on_threads(&s, &mut r, 2, 1, Default::default());
    assert!(!r.threads.is_empty() && r.threads.len() <= 2);
    let rec = r.recommendation.as_ref().expect("a recommendation").point;
    assert_eq!(r.threads[0].point, rec, "the recommendation first");
    for c in &r.threads {
        assert!(c.measured_eps > 0.0);
        let p = &r.points[c.point];
        assert_eq!(c.predicted_eps, p.throughput_eps);
        let err = (c.predicted_eps - c.measured_eps) / c.measured_eps * 100.0;
        assert!((err - c.error_pct).abs() < 1e-6);
    }
}
