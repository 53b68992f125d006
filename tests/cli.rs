//! The `flowbench` binary: JSON summaries, exit codes and error messages.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

fn flowbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flowbench"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs")
}

fn json(out: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {text}"))
}

fn tmp_file(name: &str, text: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flowbench-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write temp file");
    p
}

#[test]
fn run_threads_json_carries_the_summary_fields() {
    let out = flowbench(&["run", "--runtime", "threads", "--events", "20000", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    for key in [
        "scenario",
        "runtime",
        "elapsed_s",
        "events_delivered",
        "throughput_eps",
        "balanced",
        "stages",
    ] {
        assert!(v.get(key).is_some(), "missing `{key}` in {v}");
    }
    assert_eq!(v["runtime"], "threads");
    assert_eq!(v["balanced"], true);
    let stages = v["stages"].as_array().expect("stages array");
    assert!(!stages.is_empty());
    for st in stages {
        for key in [
            "name",
            "kind",
            "emitted",
            "delivered",
            "received",
            "dropped",
            "lost",
            "buffered",
            "mailbox_peak",
            "buffer_peak",
            "asks",
            "batches",
        ] {
            assert!(st.get(key).is_some(), "missing stage field `{key}` in {st}");
        }
    }
    // Everything the producer emitted was delivered: the default scenario drops nothing.
    assert_eq!(stages[0]["emitted"], 20_000);
    assert_eq!(stages[0]["delivered"], 20_000);
}

#[test]
fn run_threads_table_ends_with_the_verdict() {
    let out = flowbench(&["run", "scenarios/demand-3.toml", "--runtime", "threads"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("verdict: balanced"), "{text}");
    assert!(text.contains("emitted"), "{text}");
}

#[test]
fn check_accepts_every_scenario() {
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios")).expect("dir")
    {
        let path = entry.expect("entry").path();
        let out = flowbench(&["check", path.to_str().expect("utf-8 path")]);
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn bad_scenario_exits_2_naming_file_line_and_field() {
    let p = tmp_file(
        "bad-demand.toml",
        b"[[stage]]\nname = \"p\"\nkind = \"producer\"\nsource = { range = [1, 10] }\n\n[[stage]]\nname = \"c\"\nkind = \"consumer\"\n\n[[subscription]]\nproducer = \"p\"\nconsumer = \"c\"\nmax_demand = 10\nmin_demand = 10\n",
    );
    for cmd in ["check", "run"] {
        let out = flowbench(&[cmd, p.to_str().expect("utf-8")]);
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("bad-demand.toml:14:"), "{err}");
        assert!(err.contains("min_demand"), "{err}");
        assert!(err.contains("at most 9"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn missing_file_and_bad_flags_exit_2() {
    let out = flowbench(&["check", "no/such/file.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no/such/file.toml"));
    let out = flowbench(&["run", "--events", "many"]);
    assert_eq!(out.status.code(), Some(2));
    let out = flowbench(&["run", "--until", "5 parsecs"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_is_available_everywhere() {
    for args in [&["--help"][..], &["run", "--help"], &["check", "--help"]] {
        let out = flowbench(args);
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{args:?}"
        );
    }
}

fn sim_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["run", "--json"];
    all.extend_from_slice(args);
    let out = flowbench(&all);
    assert!(
        out.status.success(),
        "{all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    json(&out)
}

#[test]
fn run_sim_is_the_default_and_json_carries_the_sim_fields() {
    let v = sim_json(&["--events", "20000"]);
    assert_eq!(v["runtime"], "sim");
    assert_eq!(v["balanced"], true);
    let hash = v["trace_hash"].as_str().expect("trace_hash is a string");
    assert_eq!(hash.len(), 16, "{hash}");
    assert!(hash
        .chars()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    assert!(v["seed"].is_u64());
    assert!(v["virtual_time_s"].as_f64().expect("virtual_time_s") > 0.0);
    for q in ["p50", "p90", "p99", "max"] {
        assert!(v["latency_us"][q].is_number(), "latency_us.{q} in {v}");
    }
    assert!(
        v["memory_peak_events"]
            .as_u64()
            .expect("memory_peak_events")
            > 0
    );
    for st in v["stages"].as_array().expect("stages") {
        assert!(st["busy_fraction"].is_number(), "{st}");
        assert!(st["excess"].is_u64(), "{st}");
    }
}

#[test]
fn sim_trace_hash_is_the_same_in_two_processes() {
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios")).expect("dir")
    {
        let path = entry.expect("entry").path();
        let p = path.to_str().expect("utf-8 path");
        let a = sim_json(&[p, "--events", "5000"]);
        let b = sim_json(&[p, "--events", "5000"]);
        assert_eq!(a["trace_hash"], b["trace_hash"], "{p}");
        assert_eq!(a["balanced"], true, "{p}");
    }
}

#[test]
fn sim_seed_changes_the_hash_of_a_random_scenario() {
    let a = sim_json(&["scenarios/pool.toml", "--seed", "1"]);
    let b = sim_json(&["scenarios/pool.toml", "--seed", "2"]);
    assert_ne!(a["trace_hash"], b["trace_hash"]);
    assert_eq!(a["seed"], 1);
}

#[test]
fn sim_trace_file_is_json_lines_with_the_documented_kinds() {
    let dir = std::env::temp_dir().join(format!("flowbench-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let trace = dir.join("demand.jsonl");
    let t = trace.to_str().expect("utf-8");
    let v = sim_json(&["scenarios/demand-3.toml", "--trace", t]);
    let text = std::fs::read_to_string(&trace).expect("trace written");
    let mut kinds = std::collections::BTreeSet::new();
    let mut last_seq = None;
    for line in text.lines() {
        let r: serde_json::Value = serde_json::from_str(line).expect("each line is JSON");
        assert!(r["t_ns"].is_u64() && r["seq"].is_u64(), "{line}");
        if let Some(prev) = last_seq {
            assert!(r["seq"].as_u64() > Some(prev), "seq increases");
        }
        last_seq = r["seq"].as_u64();
        kinds.insert(r["kind"].as_str().expect("kind").to_string());
    }
    for k in ["subscribe", "ask", "events", "handle", "demand", "cancel"] {
        assert!(kinds.contains(k), "no `{k}` record in the trace");
    }
    assert_eq!(v["balanced"], true);
}

/// Regression (one plan): only the simulator used to refuse a never-ending source.
#[test]
fn unbounded_source_without_bound_is_bad_input_on_threads_too() {
    let p = tmp_file(
        "counter-threads.toml",
        b"[[stage]]\nname = \"p\"\nkind = \"producer\"\nsource = { counter = 0 }\n\n[[stage]]\nname = \"c\"\nkind = \"consumer\"\n\n[[subscription]]\nproducer = \"p\"\nconsumer = \"c\"\n",
    );
    let path = p.to_str().expect("utf-8");
    let out = flowbench(&["run", path, "--runtime", "threads"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unbounded source (counter)"), "{err}");
    let out = flowbench(&["run", path, "--runtime", "threads", "--events", "1000"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What threads does not model is said once, on stderr, and the run goes on.
#[test]
fn threads_names_each_thing_it_does_not_model_once() {
    let p = tmp_file(
        "limits.toml",
        b"cores = 1\n[[stage]]\nname = \"p\"\nkind = \"producer\"\nsource = { range = [1, 1000] }\n\n[[stage]]\nname = \"c\"\nkind = \"consumer\"\n\n[[stage.fault]]\ncrash_after_events = 100\nrestart_after_us = 10\n\n[[stage.fault]]\ncrash_after_events = 300\nrestart_after_us = 10\n\n[[subscription]]\nproducer = \"p\"\nconsumer = \"c\"\nmax_demand = 10\nlatency = { dist = \"fixed\", ns = 1000 }\n",
    );
    let out = flowbench(&["run", p.to_str().expect("utf-8"), "--runtime", "threads"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let notes: Vec<&str> = err.lines().filter(|l| l.starts_with("note: ")).collect();
    assert_eq!(notes.len(), 3, "{err}");
    assert_eq!(notes.iter().filter(|l| l.contains("restart")).count(), 1);
    assert!(notes.iter().any(|l| l.contains("`p` -> `c`")), "{err}");
    assert!(notes.iter().any(|l| l.contains("cores = 1")), "{err}");
    // On the simulator all three are modelled: nothing to say.
    let out = flowbench(&["run", p.to_str().expect("utf-8")]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("note: "));
}

#[test]
fn unbounded_source_without_bound_is_bad_input_on_sim() {
    let p = tmp_file(
        "counter.toml",
        b"[[stage]]\nname = \"p\"\nkind = \"producer\"\nsource = { counter = 0 }\n\n[[stage]]\nname = \"c\"\nkind = \"consumer\"\n\n[[subscription]]\nproducer = \"p\"\nconsumer = \"c\"\n",
    );
    let out = flowbench(&["run", p.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--events") || err.contains("--until"), "{err}");
    // With a bound it runs.
    let out = flowbench(&["run", p.to_str().expect("utf-8"), "--events", "1000"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sim_deadlock_fails_with_a_replay_line() {
    // Partition 1's consumer crashes for good. Events for partition 1 then wait in its
    // queue for a new subscriber, using up the producer's demand, so partition 0 starves
    // (GenStage's partition caveat). Nothing can run: the sim reports a deadlock.
    let p = tmp_file("stall.toml", common::starving_partitions("").as_bytes());
    let file = p.to_str().expect("utf-8");
    let out = flowbench(&["run", file, "--seed", "5"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("deadlock"), "{err}");
    assert!(
        err.contains(&format!(
            "replay: flowbench run {file} --runtime sim --seed 5"
        )),
        "{err}"
    );
    assert!(
        err.contains("c0 (consumer)"),
        "the report shows each stage: {err}"
    );
}

/// A calibration profile makes the simulator charge the threads runtime's own costs:
/// the same scenario then runs slower in virtual time, reproducibly.
#[test]
fn run_with_a_calibration_profile_charges_the_runtime_costs() {
    let profile = tmp_file(
        "cal.json",
        br#"{"costs":{"message_ns":2000,"crowded_message_ns":4000,"event_ps":2000,"cores":2},
            "machine":{"cpu":"test","cores":2},"date":"2026-12-01T00:00:00Z",
            "one_by_one_eps":1,"batched_eps":1,"crowded_eps":1}"#,
    );
    let free = sim_json(&["scenarios/log-pipeline.toml", "--events", "20000"]);
    let args = [
        "scenarios/log-pipeline.toml",
        "--events",
        "20000",
        "--calibration",
        profile.to_str().expect("utf-8"),
    ];
    let charged = sim_json(&args);
    let again = sim_json(&args);
    let eps = |v: &serde_json::Value| v["virtual_throughput_eps"].as_f64().expect("a number");
    assert!(
        eps(&charged) < eps(&free),
        "{} vs {}",
        eps(&charged),
        eps(&free)
    );
    assert_eq!(charged["trace_hash"], again["trace_hash"]);
    let bad = tmp_file("bad-cal.json", b"{}");
    let out = flowbench(&["run", "--calibration", bad.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a flowbench calibration profile"));
}

#[test]
fn tune_without_a_scenario_recommends_and_writes_its_report() {
    let dir = std::env::temp_dir().join(format!("flowbench-tune-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let out = Command::new(env!("CARGO_BIN_EXE_flowbench"))
        .args(["tune", "--grid", "4x2", "--seeds", "1", "--events", "2000"])
        .current_dir(&dir)
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("recommendation: "), "{text}");
    assert!(err.contains("report: flowbench-report"), "{err}");
    // No profile in a fresh directory: the user is told what that means.
    assert!(err.contains("no calibration profile"), "{err}");
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("flowbench-report/tune.json")).expect("tune.json"),
    )
    .expect("JSON");
    assert!(json["recommendation"]["settings"][0]["max_demand"].is_u64());
    let csv = std::fs::read_to_string(dir.join("flowbench-report/points.csv")).expect("csv");
    assert_eq!(
        csv.lines().count(),
        1 + json["points"].as_array().map_or(0, Vec::len)
    );
}

#[test]
fn workers_sets_the_pool_and_zero_is_refused() {
    for w in ["1", "3"] {
        let out = flowbench(&[
            "run",
            "--runtime",
            "threads",
            "--events",
            "20000",
            "--workers",
            w,
            "--json",
        ]);
        assert!(out.status.success(), "--workers {w}");
        assert_eq!(json(&out)["ok"], true, "--workers {w} balances");
    }
    let out = flowbench(&["run", "--runtime", "threads", "--workers", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--workers"));
}
