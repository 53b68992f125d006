//! The `flowbench` binary: JSON summaries, exit codes and error messages.

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
