//! The worked examples of SEMANTICS.md, end to end through the simulator, read back from
//! the trace: the asks the producer receives and the chunks the consumer handles.

mod common;

use common::*;
use flowbench_sim::SimOptions;

fn opts() -> SimOptions {
    SimOptions::default()
}

#[test]
fn demand_max10_min5_asks_ten_then_twenty_fives_in_chunks_of_five() {
    let s = scenario(
        r#"
[[stage]]
name = "source"
kind = "producer"
source = { range = [1, 100] }

[[stage]]
name = "sink"
kind = "consumer"

[[subscription]]
producer = "source"
consumer = "sink"
max_demand = 10
min_demand = 5
"#,
    );
    let t = run_traced(&s, &opts());
    let mut expected = vec![10];
    expected.extend([5; 20]);
    assert_eq!(asks_to(&t.records, "source"), expected);
    assert_eq!(chunks_of(&t.records, "sink"), vec![5; 20]);
    let handled: Vec<u64> = t
        .records
        .iter()
        .filter(|r| kind(r) == "handle")
        .flat_map(ids)
        .collect();
    assert_eq!(handled, (1..=100).collect::<Vec<u64>>());
    assert!(t.outcome.balanced());
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

/// Three consumers subscribed with `max_demand = m1, m2, m3`; `[1, 2, 3, 4]` arrives once
/// every one of them has asked.
fn demand_dispatch(m: [u64; 3]) -> Vec<Vec<Vec<u64>>> {
    let s = scenario(&format!(
        r#"
[[stage]]
name = "source"
kind = "producer"
source = {{ script = [{{ at_us = 1, first = 1, last = 4 }}] }}

[[stage]]
name = "c1"
kind = "consumer"
per_event = {{ dist = "fixed", ns = 1000000 }}

[[stage]]
name = "c2"
kind = "consumer"
per_event = {{ dist = "fixed", ns = 1000000 }}

[[stage]]
name = "c3"
kind = "consumer"
per_event = {{ dist = "fixed", ns = 1000000 }}

[[subscription]]
producer = "source"
consumer = "c1"
max_demand = {}

[[subscription]]
producer = "source"
consumer = "c2"
max_demand = {}

[[subscription]]
producer = "source"
consumer = "c3"
max_demand = {}
"#,
        m[0], m[1], m[2]
    ));
    let t = run_traced(&s, &opts());
    assert!(t.outcome.balanced());
    // Only the deliveries made when the arrival came in (at 1 us).
    ["c1", "c2", "c3"]
        .iter()
        .map(|c| {
            t.records
                .iter()
                .filter(|r| kind(r) == "events" && text(r, "to") == *c && num(r, "t_ns") == 1000)
                .map(ids)
                .collect()
        })
        .collect()
}

#[test]
fn demand_dispatcher_gives_a_batch_to_the_largest_demand_first() {
    // Three consumers that each asked 10: all four events go to the first.
    assert_eq!(
        demand_dispatch([10, 10, 10]),
        [vec![vec![1, 2, 3, 4]], vec![], vec![]]
    );
    // Asks of 1, 1, 1: [1], [2], [3], and 4 waits in the buffer.
    assert_eq!(
        demand_dispatch([1, 1, 1]),
        [vec![vec![1]], vec![vec![2]], vec![vec![3]]]
    );
    // Asks of 1, 2, 3: [1, 2, 3] to the third, [4] to the second.
    assert_eq!(
        demand_dispatch([1, 2, 3]),
        [vec![], vec![vec![4]], vec![vec![1, 2, 3]]]
    );
}

#[test]
fn partition_rem3_routes_1_to_6_as_in_the_example() {
    let s = scenario(
        r#"
[[stage]]
name = "source"
kind = "producer"
source = { range = [1, 6] }
dispatcher = "partition"
partitions = 3
hash = "rem"

[[stage]]
name = "p0"
kind = "consumer"

[[stage]]
name = "p1"
kind = "consumer"

[[stage]]
name = "p2"
kind = "consumer"

[[subscription]]
producer = "source"
consumer = "p0"
partition = 0
max_demand = 10

[[subscription]]
producer = "source"
consumer = "p1"
partition = 1
max_demand = 10

[[subscription]]
producer = "source"
consumer = "p2"
partition = 2
max_demand = 10
"#,
    );
    let t = run_traced(&s, &opts());
    assert_eq!(batches_to(&t.records, "p0"), [vec![3, 6]]);
    assert_eq!(batches_to(&t.records, "p1"), [vec![1, 4]]);
    assert_eq!(batches_to(&t.records, "p2"), [vec![2, 5]]);
    assert!(t.outcome.balanced());
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
