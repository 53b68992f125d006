//! The built-in lessons: each a scenario and a short text with what to watch and what to
//! try. `flowbench tui --lesson N` opens lesson N; without a scenario the view starts
//! with a menu of them.

/// One lesson.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lesson {
    /// Its number, from 1.
    pub number: usize,
    /// Its title.
    pub title: &'static str,
    /// The scenario it runs (TOML).
    pub scenario: &'static str,
    /// The scenario's file name, for errors and for `s` (save).
    pub file: &'static str,
    /// What it shows.
    pub intro: &'static str,
    /// What to watch.
    pub watch: &'static [&'static str],
    /// What to try, with the keys.
    pub try_this: &'static [&'static str],
}

/// Every lesson, in order.
pub const LESSONS: [Lesson; 5] = [
    Lesson {
        number: 1,
        title: "Eager, lazy and concurrent",
        scenario: include_str!("../lessons/1-eager-lazy-concurrent.toml"),
        file: "lesson-1-eager-lazy-concurrent.toml",
        intro: "The same 20,000 events three ways. 'eager' asks for everything at once, as Enum \
                would; 'lazy' asks for one event at a time, as Stream would; 'flow-*' are four \
                consumers sharing one producer, as Flow does.",
        watch: &[
            "eager: demand 20000/20000 at once, then a long wait while all of it is made",
            "lazy: demand 1/1, and every event pays a 1 us round trip on its link",
            "flow-*: four sparklines at once, about four times lazy's throughput",
        ],
        try_this: &[
            "select lazy -> 'lazy' (Tab, then [ ]) and press > a few times: max_demand 2, 4, 8...",
            "press < on eager -> 'eager' to bound what it holds",
        ],
    },
    Lesson {
        number: 2,
        title: "What max_demand and min_demand do",
        scenario: include_str!("../lessons/2-max-min-demand.toml"),
        file: "lesson-2-max-min-demand.toml",
        intro: "A consumer asks for max_demand events, handles them in chunks of max_demand - \
                min_demand, and asks again once what it is owed falls to min_demand. The link \
                takes 20 us each way and the consumer 1 us per event.",
        watch: &[
            "the log: 'pending fell to 5 <= min_demand 5, so it tops up to max_demand 10'",
            "sink's busy gauge: with max_demand 10 it mostly waits for the next batch",
            "demand on source -> sink never goes above max_demand",
        ],
        try_this: &[
            "press > to double max_demand until sink is busy all the time (the round trip is covered)",
            "press , and . to move min_demand: 0 asks only when everything has arrived",
            "press n (paused) to step one message at a time and read the log",
        ],
    },
    Lesson {
        number: 3,
        title: "The three dispatchers",
        scenario: include_str!("../lessons/3-dispatchers.toml"),
        file: "lesson-3-dispatchers.toml",
        intro: "Three producers, each with a fast consumer (1 us per event) and a slow one \
                (4 us). 'demand' gives each event to one consumer that has demand; 'broadcast' \
                gives every event to every consumer; 'partition' gives each event to the \
                consumer of its partition (id % 2).",
        watch: &[
            "demand: d-fast handles about four times what d-slow does",
            "broadcast: b-fast keeps pace with b-slow (it waits for it)",
            "partition: p-fast idles while p-slow's partition drains",
        ],
        try_this: &[
            "select d-slow and press w to slow it more: d-fast takes up the slack",
            "select b-slow and press x to crash it: b-fast runs free; r restarts it",
        ],
    },
    Lesson {
        number: 4,
        title: "Buffer overflow and buffer_keep",
        scenario: include_str!("../lessons/4-buffer-overflow.toml"),
        file: "lesson-4-buffer-overflow.toml",
        intro: "Events arrive from outside in bursts of 500 every 600 us, whatever the demand; \
                the worker needs 5 us per event. The producer keeps at most buffer_size 400 \
                events; buffer_keep = \"last\" drops the oldest when a burst does not fit.",
        watch: &[
            "bursts' buffer gauge filling to 400/400 with each burst",
            "the drop counter turning red with a ! marker, and 'dropped' lines in the log",
        ],
        try_this: &[
            "select worker and press W to make it faster: fewer drops",
            "press > on bursts -> worker: more demand does not help a consumer that is busy",
        ],
    },
    Lesson {
        number: 5,
        title: "Partition skew and a slow consumer",
        scenario: include_str!("../lessons/5-partition-skew.toml"),
        file: "lesson-5-partition-skew.toml",
        intro: "'split' sends even ids to 'route', which partitions them over four aggregators \
                by id % 4 -- so only partitions 0 and 2 ever get events. agg-0 is also three \
                times slower than the others.",
        watch: &[
            "agg-1 and agg-3: no events at all (a hot spot on the other two)",
            "route's queued events for agg-0 growing, then route's demand from split stalling",
            "agg-0 busy 100%: the bottleneck",
        ],
        try_this: &[
            "select agg-0 and press W twice: everything downstream of split speeds up",
            "select agg-1 and press x: nothing changes, it had nothing to do",
        ],
    },
];

/// Lesson `n` (from 1).
pub fn lesson(n: usize) -> Option<&'static Lesson> {
    LESSONS.iter().find(|l| l.number == n)
}
