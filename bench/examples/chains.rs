//! Chains of stages on threads, under each scheduling, next to the batched crossbeam
//! pipeline of the same shape, in one run:
//!
//! ```sh
//! cargo run --release -p flowbench-bench --example chains            # 2, 3, 5 and 8 stages
//! cargo run --release -p flowbench-bench --example chains -- 3 8     # only these
//! cargo run --release -p flowbench-bench --example chains -- 3 pool md1   # one cell
//! ```
//!
//! Words select columns (`pool`, `own`, `auto`, `peer`) and rows (`default`, `md1`);
//! `W=1` in the environment gives the `pool` column one worker instead of one per core.
//!
//! Every figure is `u64` events per second of wall time, the best of three runs.

use std::time::Duration;

use flowbench_bench::pipelines::{crossbeam_chain, flowbench_chain_on, peer_shape};
use flowbench_engine::threads::Scheduling;
use flowbench_engine::Demand;

fn best(mut f: impl FnMut() -> Duration, events: u64) -> f64 {
    let t = (0..3).map(|_| f()).min().unwrap_or(Duration::MAX);
    events as f64 / t.as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let stages: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let words: Vec<&str> = args
        .iter()
        .filter(|a| a.parse::<usize>().is_err())
        .map(String::as_str)
        .collect();
    let cols = ["pool", "own", "auto", "peer"];
    let want = |w: &str| {
        let group: &[&str] = if cols.contains(&w) {
            &cols
        } else {
            &["default", "md1"]
        };
        !words.iter().any(|x| group.contains(x)) || words.contains(&w)
    };
    let cell = |on: bool, f: &mut dyn FnMut() -> Duration, events: u64| {
        if on {
            best(f, events) / 1e6
        } else {
            f64::NAN
        }
    };
    let stages = if stages.is_empty() {
        vec![2, 3, 5, 8]
    } else {
        stages
    };
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    println!("{cores} cores; M events/s, best of 3");
    println!(
        "{:<7} {:<16} {:>10} {:>10} {:>10} {:>10}",
        "stages", "demand", "pool", "own thread", "auto", "crossbeam"
    );
    for &n in &stages {
        for (label, max, min, events) in [
            ("1000/500", 1000u64, 500u64, 20_000_000u64),
            ("1/0", 1, 0, 200_000),
        ] {
            if !want(if max == 1 { "md1" } else { "default" }) {
                continue;
            }
            let demand = match Demand::new(max, Some(min)) {
                Ok(d) => d,
                Err(e) => panic!("demand: {e}"),
            };
            let on = |s| flowbench_chain_on(n, events, demand, s);
            let pool = cell(
                want("pool"),
                &mut || {
                    on(Scheduling::Pool {
                        workers: std::env::var("W")
                            .ok()
                            .and_then(|w| w.parse().ok())
                            .unwrap_or(cores),
                    })
                },
                events,
            );
            let own = cell(want("own"), &mut || on(Scheduling::ThreadPerStage), events);
            let auto = cell(want("auto"), &mut || on(Scheduling::Auto), events);
            let (batch, cap) = peer_shape(max, min);
            let peer = cell(
                want("peer"),
                &mut || crossbeam_chain(n, events, batch, cap),
                events,
            );
            println!("{n:<7} {label:<16} {pool:>10.2} {own:>10.3} {auto:>10.2} {peer:>10.2}");
        }
    }
}
