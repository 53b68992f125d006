//! The binary never destroys what the user owns and never half-says a failure: traces
//! are written aside and renamed, failures are one JSON object with `--json`, replay lines
//! repeat the run exactly, durations need a unit, and names cannot drive the terminal.

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

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("flowbench-hardening-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn file(name: &str, text: &str) -> PathBuf {
    let p = dir().join(name);
    std::fs::write(&p, text).expect("write");
    p
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const SMALL: &str = r#"[[stage]]
name = "p"
kind = "producer"
source = { range = [1, 100] }

[[stage]]
name = "c"
kind = "consumer"

[[subscription]]
producer = "p"
consumer = "c"
"#;

#[test]
fn trace_refuses_the_scenario_file_and_leaves_it_as_it_was() {
    let s = file("self.toml", SMALL);
    let path = s.to_str().expect("utf-8");
    let out = flowbench(&["run", path, "--trace", path]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("is the scenario file"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&s).expect("still there"), SMALL);
}

#[test]
fn a_refused_run_leaves_an_existing_trace_untouched() {
    let t = file("keep.jsonl", "earlier trace\n");
    let counter = file(
        "counter.toml",
        &SMALL.replace("range = [1, 100]", "counter = 0"),
    );
    let out = flowbench(&[
        "run",
        counter.to_str().expect("utf-8"),
        "--trace",
        t.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&t).expect("kept"),
        "earlier trace\n"
    );
    let leftovers = std::fs::read_dir(dir())
        .expect("dir")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        })
        .count();
    assert_eq!(leftovers, 0, "no temporary trace is left behind");
    // A run that ends replaces it.
    let s = file("ok.toml", SMALL);
    let out = flowbench(&[
        "run",
        s.to_str().expect("utf-8"),
        "--trace",
        t.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&t).expect("written");
    assert!(text.starts_with("{\"t_ns\":0"), "{text}");
}

#[test]
fn a_trace_write_failure_is_reported_once() {
    if !std::path::Path::new("/dev/full").exists() {
        return;
    }
    let s = file("full.toml", SMALL);
    let out = flowbench(&["run", s.to_str().expect("utf-8"), "--trace", "/dev/full"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.matches("No space left").count(), 1, "{err}");
}

#[test]
fn the_replay_line_repeats_every_option_that_shaped_the_run() {
    let s = file("stall.toml", &common::starving_partitions(""));
    let path = s.to_str().expect("utf-8");
    let args = [
        "run", path, "--seed", "5", "--events", "900", "--until", "1.5s", "--sample", "250us",
    ];
    let out = flowbench(&args);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let replay = err
        .lines()
        .find_map(|l| l.strip_prefix("replay: "))
        .expect("a replay line")
        .to_string();
    assert_eq!(
        replay,
        format!("flowbench run {path} --runtime sim --seed 5 --events 900 --until 1500ms --sample 250us")
    );
    // Running it gives the same failure.
    let words: Vec<&str> = replay.split(' ').skip(1).collect();
    let again = flowbench(&words);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(stderr(&again), err);
}

#[test]
fn with_json_a_failure_is_one_object_with_ok_false() {
    let s = file("stall-json.toml", &common::starving_partitions(""));
    let out = flowbench(&["run", s.to_str().expect("utf-8"), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("one JSON object on stdout");
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["kind"], "deadlock");
    assert!(v["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("deadlock")));
    assert!(v["error"]["replay"]
        .as_str()
        .is_some_and(|r| r.starts_with("flowbench run ")));
    assert_eq!(v["summary"]["balanced"], true);

    let counter = file(
        "counter-json.toml",
        &SMALL.replace("range = [1, 100]", "counter = 0"),
    );
    let out = flowbench(&["run", counter.to_str().expect("utf-8"), "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["kind"], "bad_input");

    let ok = file("ok-json.toml", SMALL);
    let out = flowbench(&["run", ok.to_str().expect("utf-8"), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["ok"], true);
}

#[test]
fn check_json_says_invalid_with_the_position() {
    let bad = file("bad.toml", "[[stage]]\nname = \"s\"\nkind = \"sink\"\n");
    let out = flowbench(&["check", bad.to_str().expect("utf-8"), "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["valid"], false);
    assert_eq!(v["error"]["line"], 3);
    assert_eq!(v["error"]["field"], "stage[0].kind");
}

#[test]
fn durations_need_a_unit_and_take_decimals() {
    let out = flowbench(&["run", "--until", "5"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("has no unit"), "{}", stderr(&out));
    let out = flowbench(&["run", "--until", "1.5ms", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["virtual_time_s"], 0.0015);
}

#[test]
fn control_characters_in_names_are_shown_escaped() {
    // Stage names are letters, digits, `_` and `-`; the scenario's own name is free text.
    let s = file(
        "escape.toml",
        &format!("name = \"x\\u001b[31mred\"\n{SMALL}"),
    );
    for runtime in ["sim", "threads"] {
        let out = flowbench(&["run", s.to_str().expect("utf-8"), "--runtime", runtime]);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            !text.contains('\u{1b}'),
            "raw escape in the table on {runtime}"
        );
        assert!(text.contains("x\\u{1b}[31mred"), "{text}");
    }
}

#[test]
fn an_endless_file_is_refused_without_reading_it_whole() {
    if !std::path::Path::new("/dev/zero").exists() {
        return;
    }
    let out = flowbench(&["check", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("larger than 64 MiB"),
        "{}",
        stderr(&out)
    );
}
