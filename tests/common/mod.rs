//! Scenarios several end-to-end test files share.

// Each test file uses the helpers it needs.
#![allow(dead_code)]

/// Partition 1's consumer crashes for good after 10 events. Events for partition 1 then
/// wait in its queue, use up the producer's demand, and partition 0 starves (GenStage's
/// partition caveat): a deadlock, unless `producer_extra` sets
/// `on_missing_partition = "drop"`.
pub fn starving_partitions(producer_extra: &str) -> String {
    r#"
[[stage]]
name = "p"
kind = "producer"
source = { range = [1, 1000] }
dispatcher = "partition"
partitions = 2
hash = "rem"
PRODUCER_EXTRA

[[stage]]
name = "c0"
kind = "consumer"

[[stage]]
name = "c1"
kind = "consumer"

[[stage.fault]]
crash_after_events = 10

[[subscription]]
producer = "p"
consumer = "c0"
max_demand = 10
partition = 0

[[subscription]]
producer = "p"
consumer = "c1"
max_demand = 10
partition = 1
"#
    .replace("PRODUCER_EXTRA", producer_extra)
}
