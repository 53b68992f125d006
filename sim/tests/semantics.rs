//! SEMANTICS.md's rules end to end through the simulator, read back from the trace: where
//! each ask falls between the chunks, refunds, the final cancel. The worked examples' asks,
//! chunks and events are in the shared corpus (`engine/testdata/semantics/`), checked on
//! every driver by the workspace test `tests/corpus.rs`.

mod common;

use common::*;
use flowbench_sim::SimOptions;

fn opts() -> SimOptions {
    SimOptions::default()
}

#[test]
fn demand_max1000_min750_asks_300_only_after_the_third_batch_of_100() {
    let s = scenario(
        r#"
[[stage]]
name = "source"
kind = "producer"
source = { script = [
  { at_us = 1, first = 1, last = 100 },
  { at_us = 2, first = 101, last = 200 },
  { at_us = 3, first = 201, last = 300 },
] }

[[stage]]
name = "sink"
kind = "consumer"

[[subscription]]
producer = "source"
consumer = "sink"
max_demand = 1000
min_demand = 750
"#,
    );
    let t = run_traced(&s, &opts());
    assert_eq!(chunks_of(&t.records, "sink"), [100, 100, 100]);
    assert_eq!(asks_to(&t.records, "source"), [1000, 300]);
    // The ask of 300 follows the third chunk, not an earlier one.
    let order: Vec<String> = t
        .records
        .iter()
        .filter(|r| matches!(kind(r), "handle" | "ask"))
        .map(|r| format!("{} {}", kind(r), num(r, "n")))
        .collect();
    assert_eq!(
        order,
        [
            "ask 1000",
            "handle 100",
            "handle 100",
            "handle 100",
            "ask 300"
        ]
    );
    assert!(t.outcome.balanced());
}

#[test]
fn demand_max100_min20_chunks_80_20_80_ask_80_then_100() {
    let s = scenario(
        r#"
[[stage]]
name = "source"
kind = "producer"
source = { script = [
  { at_us = 1, first = 1, last = 100 },
  { at_us = 2, first = 101, last = 180 },
] }

[[stage]]
name = "sink"
kind = "consumer"

[[subscription]]
producer = "source"
consumer = "sink"
max_demand = 100
min_demand = 20
"#,
    );
    let t = run_traced(&s, &opts());
    assert_eq!(chunks_of(&t.records, "sink"), [80, 20, 80]);
    assert_eq!(asks_to(&t.records, "source"), [100, 80, 100]);
    let order: Vec<String> = t
        .records
        .iter()
        .filter(|r| matches!(kind(r), "handle" | "ask"))
        .map(|r| format!("{} {}", kind(r), num(r, "n")))
        .collect();
    assert_eq!(
        order,
        [
            "ask 100",
            "handle 80",
            "handle 20",
            "ask 80",
            "handle 80",
            "ask 100"
        ]
    );
}

#[test]
fn broadcast_selector_rejections_come_back_as_refund_records() {
    let s = scenario(
        r#"
[[stage]]
name = "source"
kind = "producer"
source = { range = [1, 20] }
dispatcher = "broadcast"
demand = "accumulate"

[[stage]]
name = "all"
kind = "consumer"

[[stage]]
name = "evens"
kind = "consumer"

[[subscription]]
producer = "source"
consumer = "all"
max_demand = 10

[[subscription]]
producer = "source"
consumer = "evens"
max_demand = 10
selector = { modulus = 2, remainder = 0 }
"#,
    );
    let t = run_traced(&s, &opts());
    let all: Vec<u64> = batches_to(&t.records, "all").concat();
    let evens: Vec<u64> = batches_to(&t.records, "evens").concat();
    assert_eq!(all, (1..=20).collect::<Vec<u64>>());
    assert_eq!(evens, (2..=20).step_by(2).collect::<Vec<u64>>());
    let refunds: u64 = t
        .records
        .iter()
        .filter(|r| kind(r) == "refund")
        .inspect(|r| {
            assert_eq!(text(r, "from"), "evens");
            assert_eq!(text(r, "to"), "source");
        })
        .map(|r| num(r, "n"))
        .sum();
    assert_eq!(refunds, 10);
    assert!(t.outcome.balanced());
}

#[test]
fn bounded_producer_cancels_normal_after_its_last_batch() {
    let s = scenario(
        r#"
[[stage]]
name = "source"
kind = "producer"
source = { range = [1, 25] }

[[stage]]
name = "sink"
kind = "consumer"

[[subscription]]
producer = "source"
consumer = "sink"
max_demand = 10
"#,
    );
    let t = run_traced(&s, &opts());
    let to_sink: Vec<&str> = t
        .records
        .iter()
        .filter(|r| matches!(kind(r), "events" | "cancel") && r["to"] == "sink")
        .map(kind)
        .collect();
    assert_eq!(to_sink.last(), Some(&"cancel"));
    let cancel = t
        .records
        .iter()
        .find(|r| kind(r) == "cancel")
        .expect("a cancel record");
    assert_eq!(text(cancel, "reason"), "normal");
    assert_eq!(
        batches_to(&t.records, "sink").concat(),
        (1..=25).collect::<Vec<u64>>()
    );
}
