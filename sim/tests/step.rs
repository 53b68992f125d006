//! A run driven step by step is the run: same trace hash and summary as `run`, however
//! it is stepped, and its snapshots agree with what the run reports.

mod common;

use flowbench_engine::scenario::{load, Scenario};
use flowbench_sim::{run, Change, SimOptions, Stepper};

fn scenarios() -> Vec<(String, Scenario)> {
    common::corpus()
        .into_iter()
        .map(|p| {
            let s = load(&p).unwrap_or_else(|e| panic!("{e}"));
            (p.display().to_string(), s)
        })
        .collect()
}

fn opts() -> SimOptions {
    SimOptions {
        events: Some(20_000),
        ..SimOptions::default()
    }
}

#[test]
fn stepping_gives_the_same_run_as_run() {
    for (name, s) in scenarios() {
        let want = run(&s, &opts(), None).unwrap_or_else(|e| panic!("{name}: {e}"));
        // One item at a time.
        let mut a = Stepper::new(&s, &opts()).expect("set up");
        let mut steps = 0u64;
        while a.step().expect("step").is_some() {
            steps += 1;
        }
        let a = a.finish().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(steps > 0);
        assert_eq!(
            a.trace_hash(),
            want.trace_hash(),
            "{name}: one step at a time"
        );
        // In uneven jumps of virtual time, looking at every snapshot.
        let mut b = Stepper::new(&s, &opts()).expect("set up");
        let mut t = 0u64;
        let mut last = b.snapshot();
        let mut jump = 1u64;
        while b.advance_to(t).expect("advance") {
            let snap = b.snapshot();
            assert_eq!(snap.t_ns, t, "{name}");
            for (now, before) in snap.stages.iter().zip(&last.stages) {
                assert!(
                    now.handled >= before.handled && now.emitted >= before.emitted,
                    "{name}"
                );
            }
            for l in &snap.links {
                assert!(l.outstanding <= l.max_demand, "{name}: {l:?}");
            }
            last = snap;
            jump = (jump * 3 + 7) % 50_000 + 1;
            t += jump;
        }
        let end = b.snapshot();
        let b = b.finish().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(b.trace_hash(), want.trace_hash(), "{name}: in jumps");
        assert_eq!(b.summary().base.stages.len(), end.stages.len());
        for (row, view) in b.summary().base.stages.iter().zip(&end.stages) {
            assert_eq!(row.name, view.name);
            assert_eq!(row.emitted, view.emitted, "{name}: {}", view.name);
            assert_eq!(row.dropped, view.dropped, "{name}: {}", view.name);
        }
    }
}

const CHAIN: &str = r#"
[[stage]]
name = "p"
kind = "producer"
source = { range = [1, 5000] }

[[stage]]
name = "c"
kind = "consumer"
per_event = { dist = "exp", mean_ns = 1000 }

[[subscription]]
producer = "p"
consumer = "c"
max_demand = 100
min_demand = 50
"#;

#[test]
fn the_records_read_while_stepping_are_the_trace_run_writes() {
    for (name, s) in scenarios() {
        let traced = common::run_traced(&s, &opts());
        let mut stepped = Stepper::with_records(&s, &opts()).expect("set up");
        let mut got = Vec::new();
        let mut t = 0;
        while stepped.advance_to(t).expect("advance") {
            got.extend(stepped.take_records(usize::MAX).records);
            t += 3_001;
        }
        let rest = stepped.take_records(usize::MAX);
        assert_eq!(rest.skipped, 0);
        got.extend(rest.records);
        assert_eq!(got.len(), traced.records.len(), "{name}");
        for (r, v) in got.iter().zip(&traced.records) {
            assert_eq!(r.seq, v["seq"].as_u64().expect("seq"), "{name}");
            assert_eq!(r.kind, v["kind"].as_str().expect("kind"), "{name}");
            assert_eq!(r.t_ns, v["t_ns"].as_u64().expect("t_ns"), "{name}");
        }
    }
}

#[test]
fn take_records_keeps_the_newest_and_counts_the_rest() {
    let s = common::scenario(CHAIN);
    let mut run = Stepper::with_records(&s, &SimOptions::default()).expect("set up");
    run.advance_to(200_000).expect("advance");
    let all = common::run_traced(&s, &SimOptions::default()).records;
    let r = run.take_records(5);
    assert_eq!(r.records.len(), 5);
    let first = r.records[0].seq;
    assert_eq!(first, r.skipped);
    assert_eq!(r.records[4].seq, first + 4);
    assert_eq!(
        r.records[0].kind,
        all[first as usize]["kind"].as_str().expect("kind")
    );
    // Nothing new since: nothing to read.
    assert_eq!(run.take_records(5), flowbench_sim::Records::default());
    // Without `with_records`, nothing is kept.
    let mut plain = Stepper::new(&s, &SimOptions::default()).expect("set up");
    plain.advance_to(200_000).expect("advance");
    assert!(plain.take_records(10).records.is_empty());
}

/// Runs CHAIN to `at`, makes `changes` there, and finishes with records.
fn changed(at: u64, changes: &[Change]) -> (flowbench_sim::SimOutcome, Vec<flowbench_sim::Record>) {
    let s = common::scenario(CHAIN);
    let mut run = Stepper::with_records(&s, &SimOptions::default()).expect("set up");
    run.advance_to(at).expect("advance");
    for c in changes {
        run.apply(c.clone()).expect("the change is allowed");
    }
    assert_eq!(run.changes().len(), changes.len());
    assert!(run.changes().iter().all(|a| a.t_ns == at));
    let mut records = Vec::new();
    while run.advance_to(run.now() + 100_000).expect("advance") {
        records.extend(run.take_records(usize::MAX).records);
    }
    records.extend(run.take_records(usize::MAX).records);
    (run.finish().expect("the run ends"), records)
}

#[test]
fn a_demand_change_is_recorded_and_later_asks_follow_it() {
    let retune = Change::Demand {
        link: 0,
        max_demand: 4,
        min_demand: 1,
    };
    let (out, records) = changed(300_000, std::slice::from_ref(&retune));
    let (again, _) = changed(300_000, std::slice::from_ref(&retune));
    let (plain, _) = changed(300_000, &[]);
    // Reproducible, and not the run without the change.
    assert_eq!(out.trace_hash(), again.trace_hash());
    assert_ne!(out.trace_hash(), plain.trace_hash());
    assert!(out.balanced());
    assert_eq!(out.events_delivered(), 5000);
    let at = records
        .iter()
        .position(|r| r.kind == "retune")
        .expect("a retune record");
    let r = &records[at];
    assert_eq!(
        (r.max_demand, r.min_demand, r.t_ns),
        (Some(4), Some(1), 300_000)
    );
    assert_eq!((r.from.as_deref(), r.to.as_deref()), (Some("p"), Some("c")));
    // Before: asks of 50 (max 100, min 50). After the asks in flight: at most 4 - 1 = 3...
    // and never more than the new max_demand.
    assert!(records[..at]
        .iter()
        .any(|r| r.kind == "ask" && r.n == Some(50)));
    // An ask sent before the change may still arrive at its time; later ones follow it.
    let later: Vec<u64> = records[at..]
        .iter()
        .filter(|r| r.kind == "ask" && r.t_ns > 300_000)
        .filter_map(|r| r.n)
        .collect();
    assert!(later.len() > 100, "many small asks follow: {}", later.len());
    // The first is the ask of the chunk the consumer was serving when the change came
    // (handled under the old bounds, sent when that service ends).
    assert_eq!(later[0], 50);
    assert!(later[1..].iter().all(|&n| n <= 4), "{later:?}");
}

#[test]
fn a_raised_max_demand_asks_at_once() {
    let s = common::scenario(CHAIN);
    let mut run = Stepper::with_records(&s, &SimOptions::default()).expect("set up");
    run.advance_to(300_000).expect("advance");
    let before = run.snapshot().links[0].outstanding;
    run.take_records(0);
    // min 2000 > pending: the consumer tops up to 3000 at once.
    run.apply(Change::Demand {
        link: 0,
        max_demand: 3000,
        min_demand: 2000,
    })
    .expect("allowed");
    let snap = run.snapshot();
    assert_eq!(
        (snap.links[0].max_demand, snap.links[0].min_demand),
        (3000, 2000)
    );
    assert_eq!(snap.links[0].outstanding, 3000);
    run.advance_to(400_000).expect("advance");
    let asks: Vec<_> = run
        .take_records(usize::MAX)
        .records
        .into_iter()
        .filter(|r| r.kind == "ask")
        .filter_map(|r| r.n)
        .collect();
    // The top-up leaves at once; per-link order puts it after the ask of the service
    // running now, which left first.
    assert_eq!(asks.last(), Some(&(3000 - before)), "{asks:?}");
    // A bad bound changes nothing.
    let err = run
        .apply(Change::Demand {
            link: 0,
            max_demand: 10,
            min_demand: 10,
        })
        .expect_err("min must be below max");
    assert!(err.to_string().contains("min"), "{err}");
    assert!(run
        .apply(Change::Demand {
            link: 9,
            max_demand: 10,
            min_demand: 1
        })
        .is_err());
    assert_eq!(run.changes().len(), 1);
}

#[test]
fn slowing_a_stage_slows_it_and_speeding_it_up_again_restores_it() {
    let s = common::scenario(CHAIN);
    let handled_at = |changes: &[(u64, f64)]| {
        let mut run = Stepper::new(&s, &SimOptions::default()).expect("set up");
        for &(t, f) in changes {
            run.advance_to(t).expect("advance");
            run.apply(Change::Slow {
                stage: 1,
                factor: f,
            })
            .expect("allowed");
        }
        run.advance_to(3_000_000).expect("advance");
        let slow = run.slowdown(1);
        (run.snapshot().stages[1].handled, slow)
    };
    let (plain, one) = handled_at(&[]);
    let (slowed, ten) = handled_at(&[(500_000, 10.0)]);
    let (back, again) = handled_at(&[(500_000, 10.0), (600_000, 0.1)]);
    assert_eq!(one, 1.0);
    assert!((ten - 10.0).abs() < 1e-9 && (again - 1.0).abs() < 1e-9);
    assert!(slowed < plain / 2, "{slowed} vs {plain}");
    assert!(
        back > slowed && back < plain,
        "{back}: between {slowed} and {plain}"
    );
    let mut run = Stepper::new(&s, &SimOptions::default()).expect("set up");
    assert!(run
        .apply(Change::Slow {
            stage: 1,
            factor: 0.0
        })
        .is_err());
    assert!(run
        .apply(Change::Slow {
            stage: 1,
            factor: f64::NAN
        })
        .is_err());
}

#[test]
fn a_crashed_consumer_comes_back_when_restarted() {
    // A second consumer keeps the producer going while the first is down (a producer
    // whose last consumer left has finished, and answers a new subscription with a cancel).
    let two = format!(
        "{CHAIN}\n[[stage]]\nname = \"d\"\nkind = \"consumer\"\nper_event = {{ dist = \"fixed\", ns = 2000 }}\n\
         [[subscription]]\nproducer = \"p\"\nconsumer = \"d\"\nmax_demand = 10\n"
    );
    let s = common::scenario(&two);
    let mut run = Stepper::with_records(&s, &SimOptions::default()).expect("set up");
    run.advance_to(1_000_000).expect("advance");
    run.apply(Change::Crash { stage: 1 }).expect("allowed");
    assert!(run.is_down(1));
    assert!(
        run.apply(Change::Crash { stage: 1 }).is_err(),
        "down already"
    );
    // Let the crash take effect (at the end of the service running at 1 ms).
    run.advance_to(1_100_000).expect("advance");
    let down = run.snapshot();
    assert!(
        down.stages[1]
            .exit
            .as_deref()
            .is_some_and(|e| e.contains("crash")),
        "{:?}",
        down.stages[1]
    );
    run.apply(Change::Restart { stage: 1 }).expect("allowed");
    let mut kinds = Vec::new();
    while run.advance_to(run.now() + 1_000_000).expect("advance") {
        kinds.extend(
            run.take_records(usize::MAX)
                .records
                .into_iter()
                .map(|r| r.kind),
        );
    }
    let rest = run.take_records(usize::MAX).records;
    kinds.extend(rest.into_iter().map(|r| r.kind));
    assert!(kinds.iter().any(|k| k == "restart"), "{kinds:?}");
    assert!(
        kinds.iter().any(|k| k == "subscribe"),
        "it subscribes again"
    );
    let out = run.finish().expect("the run ends");
    assert_eq!(out.stages()[1].exit, "normal");
    assert!(out.stages()[1].stats.handled > down.stages[1].handled);
    assert!(out.balanced());
}
