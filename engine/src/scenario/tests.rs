//! Scenario parsing, through two helpers: [`parse`] for files that must be accepted and
//! [`check_err`] for files that must be rejected with a given error.
//!
//! Test texts start on the line after `r#"`, so the first line of the literal is line 1.

use super::*;
use crate::buffer::Keep;
use crate::core::{DemandMode, StageKind};
use crate::dispatcher::OnMissing;
use crate::opts::{CancelMode, Demand};

/// The text of a test literal: without the newline that follows `r#"`.
fn text(literal: &str) -> &str {
    literal.strip_prefix('\n').unwrap_or(literal)
}

/// Parses a file that must be accepted.
#[track_caller]
fn parse(literal: &str) -> Scenario {
    match parse_str(text(literal), "t.toml") {
        Ok(scenario) => scenario,
        Err(err) => panic!("expected a scenario, got: {err}"),
    }
}

/// Parses a file that must be rejected with an error whose line (`t.toml:line:column:
/// field: message`) contains `expected`: most tests give the whole line.
#[track_caller]
fn check_err(literal: &str, expected: &str) {
    let err = match parse_str(text(literal), "t.toml") {
        Ok(scenario) => panic!("expected an error with {expected:?}, got {scenario:#?}"),
        Err(err) => err.to_string(),
    };
    assert!(err.contains(expected), "expected {expected:?} in\n{err}");
}

/// A producer `src` feeding a consumer `sink`; lines 10 to 12 are the subscription, so
/// lines appended to it belong to the subscription and start at line 13.
const PAIR: &str = r#"
[[stage]]
name = "src"
kind = "producer"
source = { range = [1, 100] }

[[stage]]
name = "sink"
kind = "consumer"

[[subscription]]
producer = "src"
consumer = "sink"
"#;

/// [`PAIR`] with `extra` appended to its subscription (from line 13).
fn pair_with(extra: &str) -> String {
    format!("{PAIR}{extra}")
}

const FULL: &str = r#"
name = "full"
description = "every key"
seed = 7
cores = 2

[[stage]]
name = "src"
kind = "producer"
source = { poisson = { rate_per_s = 20000.0, batch = 2, first_id = 10, total = 1000 } }
dispatcher = "demand"
shuffle_demands_on_first_dispatch = true
buffer_size = 0
buffer_keep = "first"
demand = "accumulate"
forward_at_us = 500
per_batch = { dist = "uniform", min_ns = 10, max_ns = 20 }

[[stage.fault]]
crash_after_events = 5000
restart_after_us = 1000

[[stage.fault]]
slow_at_us = 1000
factor = 4

[[stage]]
name = "mid"
kind = "producer_consumer"
dispatcher = "partition"
partitions = 2
hash = "rem"
hash_modulus = 3
per_event = { dist = "lognormal", median_ns = 100, sigma = 0.5 }

[[stage]]
name = "fan"
kind = "producer_consumer"
dispatcher = "broadcast"
buffer_size = 50

[[stage]]
name = "p0"
kind = "consumer"
per_event = { dist = "exp", mean_ns = 5000 }

[[stage.fault]]
crash_at_us = 2000

[[stage]]
name = "pool"
kind = "consumer_pool"

[[stage]]
name = "b0"
kind = "consumer"

[[subscription]]
producer = "src"
consumer = "mid"
max_demand = 100
min_demand = 10
cancel = "transient"
latency = { dist = "fixed", ns = 1000 }

[[subscription]]
producer = "mid"
consumer = "p0"
partition = 0

[[subscription]]
producer = "mid"
consumer = "fan"
partition = 1
cancel = "temporary"

[[subscription]]
producer = "fan"
consumer = "pool"
selector = { modulus = 2, remainder = 1 }

[[subscription]]
producer = "fan"
consumer = "b0"
"#;

fn stage(name: &str, kind: StageKind) -> StageDef {
    StageDef {
        name: name.to_owned(),
        kind,
        source: None,
        dispatcher: DispatcherDef::Demand { shuffle: false },
        buffer_size: None,
        buffer_keep: Keep::Last,
        demand_mode: DemandMode::Forward,
        forward_at_ns: None,
        per_event: None,
        per_batch: None,
        faults: Vec::new(),
    }
}

fn link(producer: usize, consumer: usize) -> LinkDef {
    LinkDef {
        producer,
        consumer,
        demand: Demand::default(),
        cancel: CancelMode::Permanent,
        partition: None,
        selector: None,
        latency: None,
    }
}

#[test]
fn full_example_parses_into_the_model() {
    let src = StageDef {
        source: Some(SourceDef::Push(PushDef::Poisson {
            rate_per_s: 20000.0,
            batch: 2,
            first_id: 10,
            total: Some(1000),
        })),
        dispatcher: DispatcherDef::Demand { shuffle: true },
        buffer_size: Some(0),
        buffer_keep: Keep::First,
        demand_mode: DemandMode::Accumulate,
        forward_at_ns: Some(500_000),
        per_batch: Some(Dist::Uniform {
            min_ns: 10,
            max_ns: 20,
        }),
        faults: vec![
            Fault::Crash {
                trigger: CrashTrigger::AfterEvents(5000),
                restart_after_ns: Some(1_000_000),
            },
            Fault::Slow {
                at_ns: 1_000_000,
                factor: 4.0,
            },
        ],
        ..stage("src", StageKind::Producer)
    };
    let mid = StageDef {
        dispatcher: DispatcherDef::Partition {
            partitions: 2,
            hash: HashDef::Rem { modulus: 3 },
            on_missing: OnMissing::Hold,
        },
        per_event: Some(Dist::LogNormal {
            median_ns: 100.0,
            sigma: 0.5,
        }),
        ..stage("mid", StageKind::ProducerConsumer)
    };
    let fan = StageDef {
        dispatcher: DispatcherDef::Broadcast,
        buffer_size: Some(50),
        ..stage("fan", StageKind::ProducerConsumer)
    };
    let p0 = StageDef {
        per_event: Some(Dist::Exp { mean_ns: 5000.0 }),
        faults: vec![Fault::Crash {
            trigger: CrashTrigger::AtNs(2_000_000),
            restart_after_ns: None,
        }],
        ..stage("p0", StageKind::Consumer)
    };
    let expected = Scenario {
        name: "full".to_owned(),
        description: Some("every key".to_owned()),
        seed: Some(7),
        cores: Some(2),
        stages: vec![
            src,
            mid,
            fan,
            p0,
            stage("pool", StageKind::ConsumerPool),
            stage("b0", StageKind::Consumer),
        ],
        links: vec![
            LinkDef {
                demand: Demand::new(100, Some(10)).expect("valid demand"),
                cancel: CancelMode::Transient,
                latency: Some(Dist::Fixed { ns: 1000 }),
                ..link(0, 1)
            },
            LinkDef {
                partition: Some(0),
                ..link(1, 3)
            },
            LinkDef {
                partition: Some(1),
                cancel: CancelMode::Temporary,
                ..link(1, 2)
            },
            LinkDef {
                selector: Some(SelectorDef {
                    modulus: 2,
                    remainder: 1,
                }),
                ..link(2, 4)
            },
            link(2, 5),
        ],
    };
    assert_eq!(parse(FULL), expected);
}

#[test]
fn defaults_fill_in_what_the_file_leaves_out() {
    let scenario = parse(PAIR);
    assert_eq!(scenario.name, "t", "the name defaults to the file stem");
    assert_eq!((scenario.seed, scenario.cores), (None, None));
    assert_eq!(scenario.stages[0].buffer_size, Some(10_000));
    assert_eq!(
        scenario.links[0].demand,
        Demand::new(1000, Some(500)).expect("valid demand")
    );

    let scenario = parse(
        r#"
[[stage]]
name = "src"
kind = "producer"
source = { counter = 5 }
dispatcher = "partition"
partitions = 2

[[stage]]
name = "pc"
kind = "producer_consumer"
dispatcher = "broadcast"

[[stage]]
name = "a"
kind = "consumer"

[[stage]]
name = "b"
kind = "consumer"

[[subscription]]
producer = "src"
consumer = "pc"
partition = 0
max_demand = 7

[[subscription]]
producer = "src"
consumer = "a"
partition = 1

[[subscription]]
producer = "pc"
consumer = "b"
selector = { modulus = 3 }
"#,
    );
    let partition = DispatcherDef::Partition {
        partitions: 2,
        hash: HashDef::Mix { modulus: 2 },
        on_missing: OnMissing::Hold,
    };
    assert_eq!(scenario.stages[0].dispatcher, partition);
    assert_eq!(
        scenario.stages[0].source,
        Some(SourceDef::Counter { start: 5 })
    );
    assert_eq!(scenario.stages[1].buffer_size, None, "pcs are unbounded");
    assert_eq!(
        scenario.links[0].demand.min(),
        3,
        "min_demand = max_demand / 2"
    );
    let selector = SelectorDef {
        modulus: 3,
        remainder: 0,
    };
    assert_eq!(
        scenario.links[2].selector,
        Some(selector),
        "remainder defaults to 0"
    );
}

#[test]
fn sources_of_every_kind_parse() {
    let with_source = |source: &str| {
        let file = PAIR.replace("{ range = [1, 100] }", source);
        match parse_str(text(&file), "t.toml") {
            Ok(scenario) => scenario.stages[0].source.clone(),
            Err(err) => panic!("{source}: {err}"),
        }
    };
    assert_eq!(
        with_source("{ range = [3, 3] }"),
        Some(SourceDef::Range { first: 3, last: 3 })
    );
    assert_eq!(
        with_source("{ bursts = { every_us = 1000, size = 500, count = 20 } }"),
        Some(SourceDef::Push(PushDef::Bursts {
            every_ns: 1_000_000,
            size: 500,
            count: Some(20),
            first_id: 0,
        }))
    );
    assert_eq!(
        with_source("{ poisson = { rate_per_s = 10 } }"),
        Some(SourceDef::Push(PushDef::Poisson {
            rate_per_s: 10.0,
            batch: 1,
            first_id: 0,
            total: None,
        }))
    );
    let script = "{ script = [{ at_us = 0, first = 11, last = 20 }, \
                  { at_us = 0, first = 1, last = 10 }, { at_us = 5, first = 21, last = 21 }] }";
    assert_eq!(
        with_source(script),
        Some(SourceDef::Push(PushDef::Script(vec![
            ScriptBatch {
                at_ns: 0,
                first: 11,
                last: 20
            },
            ScriptBatch {
                at_ns: 0,
                first: 1,
                last: 10
            },
            ScriptBatch {
                at_ns: 5000,
                first: 21,
                last: 21
            },
        ])))
    );
}

#[test]
fn default_scenario_parses() {
    let scenario = match parse_str(DEFAULT_SCENARIO, DEFAULT_SCENARIO_FILE) {
        Ok(scenario) => scenario,
        Err(err) => panic!("{err}"),
    };
    assert_eq!(scenario.name, "log-pipeline");
    let names: Vec<&str> = scenario.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["lines", "parse", "agg-0", "agg-1", "agg-2", "agg-3"]
    );
    assert_eq!(
        scenario.stages[1].dispatcher,
        DispatcherDef::Partition {
            partitions: 4,
            hash: HashDef::Mix { modulus: 4 },
            on_missing: OnMissing::Hold,
        }
    );
}

#[test]
fn every_file_in_the_scenario_corpus_parses() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("the scenarios folder exists")
        .map(|entry| entry.expect("readable folder entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 6, "corpus too small: {paths:?}");
    for path in &paths {
        if let Err(err) = load(path) {
            panic!("{err}");
        }
        let first = std::fs::read_to_string(path).expect("readable corpus file");
        assert!(
            first.starts_with("# "),
            "{} must start with comment lines saying what it shows",
            path.display()
        );
    }
}

#[test]
fn corpus_files_show_what_their_names_say() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let load = |name: &str| match load(&dir.join(name)) {
        Ok(scenario) => scenario,
        Err(err) => panic!("{err}"),
    };

    let demand = load("demand-3.toml");
    assert_eq!(demand.links.len(), 3);
    assert_eq!(
        demand.links[0].demand,
        Demand::new(10, Some(5)).expect("valid demand")
    );
    assert_eq!(demand.links[1].demand, Demand::default());

    let broadcast = load("broadcast-3.toml");
    assert_eq!(broadcast.stages[0].dispatcher, DispatcherDef::Broadcast);
    let selectors: Vec<_> = broadcast.links.iter().filter_map(|l| l.selector).collect();
    assert_eq!(selectors.len(), 1);
    assert_eq!(selectors[0].modulus, 2);

    let partition = load("partition-rem3.toml");
    assert_eq!(
        partition.stages[0].dispatcher,
        DispatcherDef::Partition {
            partitions: 3,
            hash: HashDef::Rem { modulus: 3 },
            on_missing: OnMissing::Hold,
        }
    );
    assert_eq!(
        partition.stages[0].source,
        Some(SourceDef::Range {
            first: 1,
            last: 99999
        })
    );

    let bursty = load("bursty-overflow.toml");
    assert_eq!(bursty.stages[0].buffer_size, Some(1000));
    assert_eq!(bursty.stages[0].buffer_keep, Keep::First);
    assert!(matches!(
        bursty.stages[0].source,
        Some(SourceDef::Push(PushDef::Bursts { .. }))
    ));

    let pool = load("pool.toml");
    assert_eq!(pool.stages[1].kind, StageKind::ConsumerPool);
    assert_eq!(
        pool.links[0].demand,
        Demand::new(8, Some(2)).expect("valid demand")
    );
    assert_eq!(
        pool.stages[1].per_event,
        Some(Dist::Exp { mean_ns: 5000.0 })
    );
}

#[test]
fn format_reference_example_parses() {
    let doc = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let doc = std::fs::read_to_string(doc).expect("README.md exists");
    let reference = doc
        .split("## Scenario format reference")
        .nth(1)
        .expect("the README has the format reference");
    let example = reference
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the reference starts with a complete example");
    match parse_str(example, "example.toml") {
        Ok(scenario) => assert_eq!(scenario.name, "two-aggregators"),
        Err(err) => panic!("{err}"),
    }
}

// ---- shape: syntax, types, unknown and missing keys -------------------------------------

#[test]
fn syntax_error_is_reported_with_its_position() {
    check_err(
        r#"
name = "x"
seed = [1,
"#,
        "t.toml:2:11: seed: unclosed array, expected `]`",
    );
    check_err(
        "name = \n",
        "t.toml:1:8: name: a value is missing after `=`: write a \"string\", a number, true \
         or false, an [array] or an { inline = \"table\" }",
    );
    check_err(
        "name = x\n",
        "t.toml:1:8: name: string values must be quoted",
    );
}

#[test]
fn empty_key_is_named_as_written() {
    check_err(
        "seed = 1\n= 2\n",
        "t.toml:2:1: \"\": unquoted keys cannot be empty",
    );
}

#[test]
fn unclosed_string_says_which_quote_ends_it() {
    check_err(
        "name = \"x\ndescription = \"y\"\n",
        "t.toml:1:10: name: the string is not closed: end it with `\"` (only strings in \
         \"\"\" or ''' may go on over several lines)",
    );
    check_err(
        "name = '''x\n",
        "t.toml:2:1: name: the string is not closed: end it with `'''`",
    );
}

#[test]
fn unclosed_inline_table_points_back_at_its_opening_brace() {
    check_err(
        r#"
[[stage]]
name = "src"
kind = "producer"
source = { range = [1, 100]

[[stage]]
"#,
        "t.toml:6:1: stage[0].source: expected `,` and another key, or `}` to close the \
         inline table opened at line 4, column 10",
    );
}

#[test]
fn nesting_beyond_the_toml_limit_says_how_deep_scenarios_go() {
    let deep = format!("seed = {}1{}\n", "[".repeat(200), "]".repeat(200));
    let err = parse_str(&deep, "t.toml").expect_err("too deep");
    assert_eq!((err.line(), err.column()), (1, 88));
    assert!(err.field().starts_with("seed[0][0]"), "{err}");
    assert!(
        err.message()
            .starts_with("arrays and inline tables are nested more than 80 deep"),
        "{err}"
    );
    let header = format!("seed = 1\n\n[{}]\n", vec!["a"; 100].join("."));
    check_err(
        &header,
        "t.toml:3:1: (syntax): a dotted key or table header has 80 or more parts, which the \
         TOML reader refuses; scenario keys have at most two (e.g. [[stage.fault]])",
    );
}

#[test]
fn duplicate_key_is_a_syntax_error() {
    check_err(
        r#"
seed = 1
seed = 2
"#,
        "t.toml:2:1: seed: duplicate key `seed`: a key may appear only once in a table",
    );
}

#[test]
fn duplicate_key_names_the_table_it_is_in() {
    check_err(
        r#"
[[stage]]
name = "src"
kind = "producer"
source = { range = [1, 100] }
kind = "consumer"

[[stage]]
name = "sink"
kind = "consumer"

[[stage.fault]]
crash_at_us = 1
crash_at_us = 2
"#,
        "t.toml:5:1: stage[0].kind: duplicate key `kind`",
    );
    check_err(
        r#"
[[stage]]
name = "sink"
kind = "consumer"

[[stage.fault]]
crash_at_us = 1
crash_at_us = 2
"#,
        "t.toml:7:1: stage[0].fault[0].crash_at_us: duplicate key `crash_at_us`",
    );
    check_err(
        r#"
[[stage]]
name = "src"
kind = "producer"
source = { range = [1, 100], range = [1, 2] }
"#,
        "t.toml:4:30: stage[0].source.range: duplicate key `range`",
    );
}

#[test]
fn table_header_defined_twice_says_where_to_look() {
    check_err(
        r#"
[[stage.fault]]
crash_at_us = 1

[[stage]]
name = "src"
"#,
        "t.toml:4:3: stage: duplicate key `stage`: a table named `stage` is already defined \
         above (look for [stage] with single brackets, or a [[stage.…]] header before the \
         first [[stage]])",
    );
}

#[test]
fn wrong_type_is_rejected() {
    check_err(
        r#"
[[stage]]
name = "src"
kind = 5
"#,
        "t.toml:3:8: stage[0].kind: invalid type: integer `5`, expected one of `producer`, \
         `producer_consumer`, `consumer`, `consumer_pool`",
    );
    check_err(
        &pair_with("max_demand = 1.5\n"),
        "t.toml:13:14: subscription[0].max_demand: invalid type: floating point `1.5`, \
         expected a whole number",
    );
    check_err(
        &pair_with("cancel = \"sometimes\"\n"),
        "t.toml:13:10: subscription[0].cancel: unknown variant `sometimes`, expected one of \
         `permanent`, `transient`, `temporary`",
    );
}

#[test]
fn single_bracket_stage_table_is_rejected() {
    check_err(
        r#"
[stage]
name = "src"
"#,
        "t.toml:1:1: stage: `stage` must be an array of tables: start each one with [[stage]] \
         (double brackets)",
    );
    check_err(
        &pair_with("latency = 5\n"),
        "t.toml:13:11: subscription[0].latency: invalid type: integer `5`, expected a table",
    );
    check_err(
        &pair_with("[subscription.selector]\nmodulus = [2]\n"),
        "t.toml:14:11: subscription[0].selector.modulus: invalid type: array, expected a \
         whole number",
    );
}

#[test]
fn unknown_field_is_rejected() {
    check_err(
        r#"
[[stage]]
name = "src"
kind = "producer"
sauce = { range = [1, 2] }
"#,
        "t.toml:4:1: stage[0].sauce: unknown field `sauce`, expected one of `name`, `kind`, \
         `source`, `dispatcher`, `partitions`, `hash`, `hash_modulus`, \
         `shuffle_demands_on_first_dispatch`, `on_missing_partition`, `buffer_size`, \
         `buffer_keep`, `demand`, `forward_at_us`, `per_event`, `per_batch`, `fault`",
    );
    check_err(
        "seeed = 1\n",
        "t.toml:1:1: seeed: unknown field `seeed`, expected one of `name`, `description`, \
         `seed`, `cores`, `stage`, `subscription`",
    );
    check_err(
        &pair_with("latency = { dist = \"fixed\", ns = 1, jitter = 2 }\n"),
        "t.toml:13:37: subscription[0].latency.jitter: unknown field `jitter`",
    );
}

#[test]
fn missing_required_key_is_rejected() {
    check_err(
        r#"
[[stage]]
name = "src"
"#,
        "t.toml:1:1: stage[0].kind: required key `kind` is missing",
    );
    check_err(
        &PAIR.replace("consumer = \"sink\"\n", ""),
        "t.toml:10:1: subscription[0].consumer: required key `consumer` is missing",
    );
}

#[test]
fn empty_file_is_rejected() {
    check_err(
        "",
        "t.toml:1:1: stage: a scenario needs at least one [[stage]] table, found none",
    );
    check_err(
        "# nothing but a comment\n",
        "t.toml:1:1: stage: a scenario needs at least one [[stage]] table, found none",
    );
}

#[test]
fn scenario_without_stages_is_rejected() {
    check_err(
        r#"
name = "nothing"

[[subscription]]
producer = "src"
consumer = "sink"
"#,
        "t.toml:1:1: stage: a scenario needs at least one [[stage]] table, found none",
    );
}

// ---- numbers --------------------------------------------------------------------------

#[test]
fn huge_numbers_are_rejected() {
    check_err(
        &pair_with("max_demand = 99999999999999999999\n"),
        "t.toml:13:14: subscription[0].max_demand: max_demand must be at most \
         18446744073709551615, got 99999999999999999999",
    );
    check_err(
        &pair_with("partition = 99999999999999999999999999999999999999999\n"),
        "t.toml:13:13: subscription[0].partition: this whole number is too large; numbers in \
         scenario files must be at most 18446744073709551615",
    );
    check_err(
        &format!("seed = 18446744073709551616\n{PAIR}"),
        "t.toml:1:8: seed: seed must be at most 18446744073709551615, got 18446744073709551616",
    );
}

#[test]
fn negative_numbers_are_rejected() {
    check_err(
        &pair_with("max_demand = -5\n"),
        "t.toml:13:14: subscription[0].max_demand: max_demand must be at least 1, got -5",
    );
    check_err(
        &pair_with("min_demand = -1\n"),
        "t.toml:13:14: subscription[0].min_demand: min_demand must be at least 0, got -1",
    );
    check_err(
        &PAIR.replace("[1, 100]", "[-1, 100]"),
        "t.toml:4:21: stage[0].source.range: first must be at least 0, got -1",
    );
}

#[test]
fn time_that_overflows_nanoseconds_is_rejected() {
    check_err(
        &PAIR.replace(
            "{ range = [1, 100] }",
            "{ bursts = { every_us = 9223372036854775807, size = 1 } }",
        ),
        "t.toml:4:34: stage[0].source.bursts.every_us: every_us must be at most \
         18446744073709551 (larger times overflow u64 nanoseconds), got 9223372036854775807",
    );
}

#[test]
fn cores_must_be_at_least_one() {
    check_err(
        &format!("cores = 0\n{PAIR}"),
        "t.toml:1:9: cores: cores must be from 1 to 4294967295, got 0",
    );
}

// ---- stages -----------------------------------------------------------------------------

#[test]
fn duplicate_stage_names_are_rejected() {
    check_err(
        r#"
[[stage]]
name = "src"
kind = "producer"
source = { counter = 0 }

[[stage]]
name = "src"
kind = "consumer"

[[subscription]]
producer = "src"
consumer = "src"
"#,
        "t.toml:7:8: stage[1].name: duplicate stage name `src`: stage[0] already uses it; \
         stage names must be unique",
    );
}

#[test]
fn stage_name_with_other_characters_is_rejected() {
    check_err(
        &PAIR.replace("name = \"sink\"", "name = \"my sink\""),
        "t.toml:7:8: stage[1].name: stage names must be non-empty and use only letters A-Z \
         a-z, digits, `_` and `-`, got \"my sink\"",
    );
}

#[test]
fn producer_without_source_is_rejected() {
    check_err(
        &PAIR.replace("source = { range = [1, 100] }\n", ""),
        "t.toml:1:1: stage[0].source: producer `src` needs a `source`: { range = [first, \
         last] }, { counter = start }, { poisson = { … } }, { bursts = { … } } or { script = \
         [ … ] }",
    );
}

#[test]
fn source_on_a_non_producer_is_rejected() {
    check_err(
        &PAIR.replace(
            "kind = \"consumer\"",
            "kind = \"consumer\"\nsource = { counter = 1 }",
        ),
        "t.toml:9:10: stage[1].source: `source` applies only to producers; `sink` is a \
         consumer and gets its events from its subscriptions",
    );
}

#[test]
fn source_needs_exactly_one_kind() {
    check_err(
        &PAIR.replace("{ range = [1, 100] }", "{ range = [1, 100], counter = 1 }"),
        "t.toml:4:40: stage[0].source.counter: source takes exactly one of `range`, \
         `counter`, `poisson`, `bursts`, `script`, got both `range` and `counter`",
    );
    check_err(
        &PAIR.replace("{ range = [1, 100] }", "{}"),
        "t.toml:4:10: stage[0].source: source needs exactly one of `range`, `counter`, \
         `poisson`, `bursts`, `script`, got none",
    );
}

#[test]
fn bad_source_params_are_rejected() {
    let with = |source: &str| PAIR.replace("{ range = [1, 100] }", source);
    check_err(
        &with("{ range = [10, 5] }"),
        "t.toml:4:25: stage[0].source.range: range must have first <= last, got [10, 5]",
    );
    check_err(
        &with("{ range = [1, 2, 3] }"),
        "t.toml:4:20: stage[0].source.range: range must be [first, last] (two ids), got 3 \
         values",
    );
    check_err(
        &with("{ poisson = { rate_per_s = 0 } }"),
        "t.toml:4:37: stage[0].source.poisson.rate_per_s: rate_per_s must be a finite \
         number greater than 0, got 0",
    );
    check_err(
        &with("{ poisson = { rate_per_s = inf } }"),
        "rate_per_s must be a finite number greater than 0, got inf",
    );
    check_err(
        &with("{ poisson = { rate_per_s = 1, batch = 0 } }"),
        "stage[0].source.poisson.batch: batch must be at least 1, got 0",
    );
    check_err(
        &with("{ bursts = { every_us = 0, size = 5 } }"),
        "stage[0].source.bursts.every_us: every_us must be at least 1, got 0",
    );
    check_err(
        &with("{ bursts = { every_us = 10, size = 5, count = 0 } }"),
        "stage[0].source.bursts.count: count must be at least 1, got 0",
    );
    check_err(
        &with("{ script = [] }"),
        "t.toml:4:21: stage[0].source.script: script needs at least one batch { at_us, \
         first, last }",
    );
}

#[test]
fn bad_script_is_rejected() {
    let with = |batches: &str| {
        let source = format!("{{ script = [\n{batches}\n] }}");
        PAIR.replace("{ range = [1, 100] }", &source)
    };
    check_err(
        &with("{ at_us = 0, first = 5, last = 4 },"),
        "t.toml:5:32: stage[0].source.script[0].last: last must be at least first (5), got 4",
    );
    check_err(
        &with("{ at_us = 10, first = 1, last = 4 },\n{ at_us = 5, first = 5, last = 6 },"),
        "t.toml:6:11: stage[0].source.script[1].at_us: script batches must be in time order: \
         at_us must be at least 10 (the previous batch's), got 5",
    );
    check_err(
        &with(
            "{ at_us = 0, first = 1, last = 4 },\n\
             { at_us = 0, first = 10, last = 20 },\n\
             { at_us = 1, first = 20, last = 30 },",
        ),
        "t.toml:7:1: stage[0].source.script[2]: ids 20..=30 overlap script[1] (10..=20); \
         each id may arrive only once",
    );
}

#[test]
fn dispatcher_option_on_a_consumer_is_rejected() {
    check_err(
        &PAIR.replace(
            "kind = \"consumer\"",
            "kind = \"consumer\"\ndispatcher = \"broadcast\"",
        ),
        "t.toml:9:14: stage[1].dispatcher: `dispatcher` applies only to producers and \
         producer_consumers; `sink` is a consumer",
    );
    check_err(
        &PAIR.replace(
            "kind = \"consumer\"",
            "kind = \"consumer_pool\"\nbuffer_size = 5",
        ),
        "t.toml:9:15: stage[1].buffer_size: `buffer_size` applies only to producers and \
         producer_consumers; `sink` is a consumer_pool",
    );
}

#[test]
fn demand_mode_on_a_non_producer_is_rejected() {
    check_err(
        &PAIR.replace(
            "kind = \"consumer\"",
            "kind = \"consumer\"\ndemand = \"accumulate\"",
        ),
        "t.toml:9:10: stage[1].demand: `demand` applies only to producers; `sink` is a \
         consumer",
    );
}

#[test]
fn forward_at_us_without_accumulate_is_rejected() {
    check_err(
        &PAIR.replace("[1, 100] }", "[1, 100] }\nforward_at_us = 5"),
        "t.toml:5:17: stage[0].forward_at_us: `forward_at_us` applies only with demand = \
         \"accumulate\"",
    );
}

#[test]
fn option_of_another_dispatcher_is_rejected() {
    check_err(
        &PAIR.replace("[1, 100] }", "[1, 100] }\npartitions = 3"),
        "t.toml:5:14: stage[0].partitions: `partitions` applies only to dispatcher = \
         \"partition\"; `src` uses dispatcher = \"demand\"",
    );
    check_err(
        &PAIR.replace(
            "[1, 100] }",
            "[1, 100] }\ndispatcher = \"broadcast\"\nshuffle_demands_on_first_dispatch = true",
        ),
        "t.toml:6:37: stage[0].shuffle_demands_on_first_dispatch: \
         `shuffle_demands_on_first_dispatch` applies only to dispatcher = \"demand\"; `src` \
         uses dispatcher = \"broadcast\"",
    );
}

#[test]
fn partition_dispatcher_needs_valid_partitions() {
    let with = |options: &str| PAIR.replace("[1, 100] }", &format!("[1, 100] }}\n{options}"));
    check_err(
        &with("dispatcher = \"partition\""),
        "t.toml:5:14: stage[0].partitions: dispatcher = \"partition\" needs `partitions` \
         (from 1 to 1024)",
    );
    check_err(
        &with("dispatcher = \"partition\"\npartitions = 2000"),
        "t.toml:6:14: stage[0].partitions: partitions must be from 1 to 1024, got 2000",
    );
    check_err(
        &with("dispatcher = \"partition\"\npartitions = 4\nhash_modulus = 3"),
        "t.toml:7:16: stage[0].hash_modulus: hash_modulus must be at least partitions (4), \
         got 3; hash values from partitions up to hash_modulus - 1 are dropped",
    );
}

#[test]
fn bad_distribution_params_are_rejected() {
    let with = |dist: &str| {
        PAIR.replace(
            "kind = \"consumer\"",
            &format!("kind = \"consumer\"\nper_event = {dist}"),
        )
    };
    check_err(
        &with("{ dist = \"uniform\", min_ns = 10, max_ns = 5 }"),
        "t.toml:9:55: stage[1].per_event.max_ns: max_ns must be at least min_ns (10), got 5",
    );
    check_err(
        &with("{ dist = \"exp\", mean_ns = 0 }"),
        "t.toml:9:39: stage[1].per_event.mean_ns: mean_ns must be a finite number greater \
         than 0, got 0",
    );
    check_err(
        &with("{ dist = \"exp\", ns = 5 }"),
        "t.toml:9:13: stage[1].per_event.mean_ns: dist = \"exp\" needs `mean_ns` (it takes \
         `mean_ns`)",
    );
    check_err(
        &with("{ dist = \"exp\", mean_ns = 5, ns = 5 }"),
        "t.toml:9:47: stage[1].per_event.ns: `ns` does not apply to dist = \"exp\", which \
         takes `mean_ns`",
    );
    check_err(
        &with("{ dist = \"lognormal\", median_ns = 5, sigma = -1 }"),
        "t.toml:9:58: stage[1].per_event.sigma: sigma must be a finite number of at least 0, \
         got -1",
    );
    check_err(
        &with("{ dist = \"gamma\" }"),
        "t.toml:9:22: stage[1].per_event.dist: unknown variant `gamma`, expected one of \
         `fixed`, `uniform`, `exp`, `lognormal`",
    );
}

#[test]
fn bad_fault_params_are_rejected() {
    let with = |fault: &str| format!("{PAIR}\n[[stage.fault]]\n{fault}\n");
    // The fault belongs to the last stage before it: `sink`; its table is on line 14.
    check_err(
        &with("restart_after_us = 5"),
        "t.toml:14:1: stage[1].fault[0]: a fault needs exactly one of `crash_after_events`, \
         `crash_at_us`, `slow_at_us`, got none",
    );
    check_err(
        &with("crash_at_us = 5\nslow_at_us = 7\nfactor = 2"),
        "t.toml:16:14: stage[1].fault[0].slow_at_us: a fault takes exactly one of \
         `crash_after_events`, `crash_at_us`, `slow_at_us`, got both `crash_at_us` and \
         `slow_at_us`",
    );
    check_err(
        &with("crash_after_events = 0"),
        "t.toml:15:22: stage[1].fault[0].crash_after_events: crash_after_events must be at \
         least 1, got 0",
    );
    check_err(
        &with("slow_at_us = 5\nfactor = 0"),
        "t.toml:16:10: stage[1].fault[0].factor: factor must be a finite number greater \
         than 0, got 0",
    );
    check_err(
        &with("slow_at_us = 5"),
        "t.toml:14:1: stage[1].fault[0].factor: a slow fault needs `factor` (a finite number \
         greater than 0)",
    );
    check_err(
        &with("slow_at_us = 5\nfactor = 2\nrestart_after_us = 1"),
        "t.toml:17:20: stage[1].fault[0].restart_after_us: `restart_after_us` applies only \
         to crash faults (with `crash_after_events` or `crash_at_us`)",
    );
    check_err(
        &with("crash_at_us = 5\nfactor = 2"),
        "t.toml:16:10: stage[1].fault[0].factor: `factor` applies only to slow faults (with \
         `slow_at_us`)",
    );
}

// ---- subscriptions ----------------------------------------------------------------------

#[test]
fn unknown_stage_in_a_subscription_is_rejected() {
    check_err(
        &PAIR.replace("consumer = \"sink\"", "consumer = \"snik\""),
        "t.toml:12:12: subscription[0].consumer: unknown stage `snik`; known stages: `src`, \
         `sink`",
    );
}

#[test]
fn max_demand_zero_is_rejected() {
    check_err(
        &pair_with("max_demand = 0\n"),
        "t.toml:13:14: subscription[0].max_demand: max_demand must be at least 1, got 0",
    );
}

#[test]
fn min_demand_at_least_max_is_rejected() {
    check_err(
        &pair_with("max_demand = 10\nmin_demand = 10\n"),
        "t.toml:14:14: subscription[0].min_demand: min_demand must be at most 9 (max_demand \
         - 1), got 10",
    );
    check_err(
        &pair_with("min_demand = 1000\n"),
        "t.toml:13:14: subscription[0].min_demand: min_demand must be at most 999 \
         (max_demand - 1), got 1000",
    );
}

#[test]
fn producer_as_a_subscription_consumer_is_rejected() {
    check_err(
        r#"
[[stage]]
name = "a"
kind = "producer"
source = { counter = 0 }

[[stage]]
name = "b"
kind = "producer"
source = { counter = 0 }

[[stage]]
name = "sink"
kind = "consumer"

[[subscription]]
producer = "a"
consumer = "sink"

[[subscription]]
producer = "a"
consumer = "b"
"#,
        "t.toml:21:12: subscription[1].consumer: stage `b` is a producer, and a producer \
         cannot have subscriptions; `consumer` must name a producer_consumer, consumer or \
         consumer_pool: `sink`",
    );
}

#[test]
fn consumer_as_a_subscription_producer_is_rejected() {
    check_err(
        &pair_with("\n[[subscription]]\nproducer = \"sink\"\nconsumer = \"sink\"\n"),
        "t.toml:15:12: subscription[1].producer: stage `sink` is a consumer and sends no \
         events; `producer` must name a producer or producer_consumer: `src`",
    );
}

#[test]
fn same_pair_subscribed_twice_is_rejected() {
    check_err(
        &pair_with("\n[[subscription]]\nproducer = \"src\"\nconsumer = \"sink\"\n"),
        "t.toml:16:12: subscription[1].consumer: `src` -> `sink` is already subscribed by \
         subscription[0]; a consumer may subscribe to the same producer only once",
    );
}

#[test]
fn selector_on_a_non_broadcast_producer_is_rejected() {
    check_err(
        &pair_with("selector = { modulus = 2 }\n"),
        "t.toml:13:12: subscription[0].selector: `selector` applies only when the producer's \
         dispatcher is \"broadcast\"; `src` uses dispatcher = \"demand\"",
    );
}

#[test]
fn bad_selector_is_rejected() {
    let broadcast = PAIR.replace("[1, 100] }", "[1, 100] }\ndispatcher = \"broadcast\"");
    check_err(
        &format!("{broadcast}selector = {{ modulus = 2, remainder = 2 }}\n"),
        "t.toml:14:39: subscription[0].selector.remainder: remainder must be less than \
         modulus (2), got 2",
    );
    check_err(
        &format!("{broadcast}selector = {{ modulus = 0 }}\n"),
        "t.toml:14:24: subscription[0].selector.modulus: modulus must be at least 1, got 0",
    );
}

#[test]
fn partition_on_a_non_partition_producer_is_rejected() {
    check_err(
        &pair_with("partition = 0\n"),
        "t.toml:13:13: subscription[0].partition: `partition` applies only when the \
         producer's dispatcher is \"partition\"; `src` uses dispatcher = \"demand\"",
    );
}

/// A partition producer with 2 partitions and two consumers; the subscriptions start on
/// lines 16 and 21 and end without a `partition` key.
const PARTITIONED: &str = r#"
[[stage]]
name = "src"
kind = "producer"
source = { range = [1, 100] }
dispatcher = "partition"
partitions = 2

[[stage]]
name = "a"
kind = "consumer"

[[stage]]
name = "b"
kind = "consumer"

[[subscription]]
producer = "src"
consumer = "a"
partition = 0

[[subscription]]
producer = "src"
consumer = "b"
"#;

#[test]
fn partition_missing_on_a_partition_producer_is_rejected() {
    check_err(
        PARTITIONED,
        "t.toml:21:1: subscription[1].partition: `partition` is required: `src` has \
         dispatcher = \"partition\" with 2 partitions; give a partition from 0 to 1",
    );
}

#[test]
fn partition_out_of_range_is_rejected() {
    check_err(
        &format!("{PARTITIONED}partition = 2\n"),
        "t.toml:24:13: subscription[1].partition: partition must be from 0 to 1 (`src` has 2 \
         partitions), got 2",
    );
}

#[test]
fn partition_taken_twice_is_rejected() {
    check_err(
        &format!("{PARTITIONED}partition = 0\n"),
        "t.toml:24:13: subscription[1].partition: partition 0 of `src` is already taken by \
         subscription[0]; each partition takes exactly one subscription",
    );
}

#[test]
fn partition_without_subscriber_is_rejected() {
    check_err(
        &(PARTITIONED.replace("partitions = 2", "partitions = 4") + "partition = 2\n"),
        "t.toml:6:14: stage[0].partitions: partitions 1, 3 of `src` have no subscriber; each \
         of its 4 partitions (0 to 3) needs exactly one subscription",
    );
}

// ---- topology ---------------------------------------------------------------------------

#[test]
fn consumer_without_subscription_is_rejected() {
    check_err(
        &PAIR.replace(
            "consumer = \"sink\"",
            "consumer = \"sink\"\n\n[[stage]]\nname = \"idle\"\nkind = \"consumer_pool\"",
        ),
        "t.toml:14:1: stage[2]: consumer_pool `idle` has no subscription: add a \
         [[subscription]] with consumer = \"idle\"",
    );
}

#[test]
fn producer_without_subscriber_is_rejected() {
    check_err(
        &format!(
            "{PAIR}\n[[stage]]\nname = \"spare\"\nkind = \"producer\"\nsource = {{ counter = 0 }}\n"
        ),
        "t.toml:14:1: stage[2]: producer `spare` has no subscriber: add a [[subscription]] \
         with producer = \"spare\"",
    );
}

#[test]
fn cycle_in_subscriptions_is_rejected() {
    check_err(
        r#"
[[stage]]
name = "src"
kind = "producer"
source = { counter = 0 }

[[stage]]
name = "a"
kind = "producer_consumer"

[[stage]]
name = "b"
kind = "producer_consumer"

[[stage]]
name = "sink"
kind = "consumer"

[[subscription]]
producer = "src"
consumer = "a"

[[subscription]]
producer = "b"
consumer = "sink"

[[subscription]]
producer = "a"
consumer = "b"

[[subscription]]
producer = "b"
consumer = "a"
"#,
        "t.toml:26:1: subscription[2]: subscriptions form a cycle: `a` -> `b` -> `a`; events \
         must flow from producers towards consumers without coming back",
    );
}

#[test]
fn stage_subscribed_to_itself_is_a_cycle() {
    check_err(
        r#"
[[stage]]
name = "src"
kind = "producer"
source = { counter = 0 }

[[stage]]
name = "loop"
kind = "producer_consumer"

[[subscription]]
producer = "src"
consumer = "loop"

[[subscription]]
producer = "loop"
consumer = "loop"
"#,
        "t.toml:14:1: subscription[1]: subscriptions form a cycle: `loop` -> `loop`",
    );
}

// ---- reporting --------------------------------------------------------------------------

#[test]
fn first_error_in_file_order_is_reported() {
    // Subscriptions are checked after stages, but the subscription comes first here.
    check_err(
        r#"
[[subscription]]
producer = "src"
consumer = "sink"
max_demand = 0

[[stage]]
name = "src"
kind = "producer"
source = { range = [5, 1] }

[[stage]]
name = "sink"
kind = "consumer"
"#,
        "t.toml:4:14: subscription[0].max_demand: max_demand must be at least 1, got 0",
    );
    // Two problems in one table: the earlier line wins, whatever the check order.
    check_err(
        &PAIR.replace(
            "[1, 100] }",
            "[1, 100] }\nforward_at_us = 5\npartitions = 2",
        ),
        "t.toml:5:17: stage[0].forward_at_us:",
    );
}

#[test]
fn one_mistake_is_not_reported_twice() {
    // The bad `partitions` must not also make the subscriptions' `partition` keys wrong.
    check_err(
        &(PARTITIONED.replace("partitions = 2", "partitions = 0") + "partition = 1\n"),
        "t.toml:6:14: stage[0].partitions: partitions must be from 1 to 1024, got 0",
    );
    // An unknown producer name is one problem, not also "src has no subscriber".
    check_err(
        &PAIR.replace("producer = \"src\"", "producer = \"scr\""),
        "t.toml:11:12: subscription[0].producer: unknown stage `scr`",
    );
}

#[test]
fn error_accessors_match_the_display() {
    let err = parse_str(text(&pair_with("max_demand = 0\n")), "dir/t.toml")
        .expect_err("max_demand = 0 is refused");
    assert_eq!(err.file(), "dir/t.toml");
    assert_eq!((err.line(), err.column()), (13, 14));
    assert_eq!(err.field(), "subscription[0].max_demand");
    assert_eq!(err.message(), "max_demand must be at least 1, got 0");
    assert_eq!(
        err.to_string(),
        "dir/t.toml:13:14: subscription[0].max_demand: max_demand must be at least 1, got 0"
    );
    let source: &dyn std::error::Error = &err;
    assert!(source.source().is_none());
}

#[test]
fn columns_count_characters_not_bytes() {
    check_err("description = \"héllo\" ; oops\n", "t.toml:1:23: (syntax):");
}

// ---- files ------------------------------------------------------------------------------

/// A file in the temp folder, removed when dropped.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str, bytes: &[u8]) -> Self {
        let path =
            std::env::temp_dir().join(format!("flowbench-scenario-{}-{name}", std::process::id()));
        std::fs::write(&path, bytes).expect("the temp folder is writable");
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn non_utf8_file_is_reported_at_its_first_invalid_byte() {
    let file = TempFile::new("latin1.toml", b"name = \"x\"\ndescription = \"caf\xe9\"\n");
    let err = load(&file.0).expect_err("latin-1 is refused");
    assert_eq!((err.line(), err.column()), (2, 19));
    assert_eq!(err.field(), "(encoding)");
    assert_eq!(
        err.message(),
        "the file is not valid UTF-8 (byte 0xe9); scenario files must be UTF-8 text"
    );
    assert_eq!(err.file(), file.0.display().to_string());
}

#[test]
fn loaded_file_is_named_after_its_stem() {
    let file = TempFile::new("my-pipe.toml", text(PAIR).as_bytes());
    let scenario = load(&file.0).expect("PAIR is valid");
    assert!(scenario.name.ends_with("my-pipe"), "{}", scenario.name);
}

#[test]
fn missing_file_is_reported() {
    let err = load(std::path::Path::new("/no/such/dir/x.toml")).expect_err("no such file");
    assert_eq!(err.field(), "(file)");
    assert_eq!((err.line(), err.column()), (1, 1));
    assert!(
        err.message().starts_with("cannot read the scenario file: "),
        "{err}"
    );
}

// ---- no panics --------------------------------------------------------------------------

#[test]
fn no_input_panics() {
    let weird = [
        "\u{feff}",
        "[[stage]]\n[[stage]]\n[[stage]]\n",
        "stage = []\nsubscription = []\n",
        "stage = [1, 2]\n",
        "[[stage]]\nname = \"\"\nkind = \"producer\"\nsource = { range = [] }\n",
        "[[stage]]\nname = \"a\"\nkind = \"producer\"\nsource = { range = [0, 18446744073709551615] }\n",
        "[[stage]]\nname = \"a\"\nkind = \"producer\"\nsource = { counter = -9223372036854775808 }\n",
        "[[stage]]\nname = \"a\"\nkind = \"producer\"\nsource = { script = [{ at_us = 18446744073709551615, first = 0, last = 18446744073709551615 }] }\n",
        "[[stage]]\nname = \"a\"\nkind = \"producer\"\nsource = { poisson = { rate_per_s = nan } }\n",
        "[[stage]]\nname = \"a\"\nkind = \"producer\"\nsource = { counter = 0 }\ndispatcher = \"partition\"\npartitions = 1024\nhash_modulus = 18446744073709551615\n",
        "a.b.c.d.e = 1\n",
        "[[subscription]]\nproducer = \"x\"\nconsumer = \"x\"\npartition = -1\nselector = { modulus = 0, remainder = -1 }\n",
        "\0\0\0",
        "[[stage.fault]]\ncrash_at_us = 1\n",
    ];
    for input in weird {
        let _ = parse_str(input, "t.toml");
    }
    let deep = "x = ".to_owned() + &"[".repeat(10_000) + &"]".repeat(10_000);
    let _ = parse_str(&deep, "t.toml");
    let _ = parse_str(&"[".repeat(10_000), "t.toml");
}

#[test]
fn every_prefix_of_a_full_file_parses_or_fails_without_panicking() {
    let full = text(FULL);
    for end in (0..=full.len()).filter(|&i| full.is_char_boundary(i)) {
        if let Err(err) = parse_str(&full[..end], "t.toml") {
            assert!(err.line() >= 1 && err.column() >= 1, "{err}");
        }
    }
}
