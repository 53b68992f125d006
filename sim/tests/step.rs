//! A run driven step by step is the run: same trace hash and summary as `run`, however
//! it is stepped, and its snapshots agree with what the run reports.

mod common;

use flowbench_engine::scenario::{load, Scenario};
use flowbench_sim::{run, SimOptions, Stepper};

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
