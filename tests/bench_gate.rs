//! `flowbench bench` bites: an unchanged run passes against its own baseline, a slower
//! or differently behaving scenario fails with exit 1 naming the metric, and a tampered
//! or foreign baseline is refused with exit 2.

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
    let d = std::env::temp_dir().join(format!("flowbench-gate-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn write(name: &str, text: &str) -> String {
    let p = dir().join(name);
    std::fs::write(&p, text).expect("write");
    p.display().to_string()
}

fn out(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

const PIPELINE: &str = r#"
name = "gate"
seed = 3

[[stage]]
name = "src"
kind = "producer"
source = { range = [1, 20000] }

[[stage]]
name = "work"
kind = "producer_consumer"
per_event = { dist = "exp", mean_ns = 500 }

[[stage]]
name = "sink"
kind = "consumer"
per_event = { dist = "fixed", ns = 200 }

[[subscription]]
producer = "src"
consumer = "work"
max_demand = 200

[[subscription]]
producer = "work"
consumer = "sink"
max_demand = 100
latency = { dist = "fixed", ns = 20000 }
"#;

/// Saves a baseline of `PIPELINE` under the file name the doctored copies reuse.
fn baseline(tag: &str) -> (String, String) {
    let scenario = write(&format!("{tag}.toml"), PIPELINE);
    let base = dir().join(format!("{tag}.json")).display().to_string();
    let o = flowbench(&["bench", "--scenario", &scenario, "--save", &base]);
    assert!(o.status.success(), "{}", out(&o));
    (scenario, base)
}

#[test]
fn an_unchanged_scenario_passes_against_its_own_baseline() {
    let (scenario, base) = baseline("same");
    let o = flowbench(&["bench", "--scenario", &scenario, "--baseline", &base]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(out(&o).contains("bench: ok: 0 of"), "{}", out(&o));
    let o = flowbench(&[
        "bench",
        "--scenario",
        &scenario,
        "--baseline",
        &base,
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["ok"], true);
    assert!(v["rows"].as_array().is_some_and(|r| !r.is_empty()));
}

#[test]
fn a_slower_stage_is_caught_naming_the_metric() {
    let (scenario, base) = baseline("slower");
    std::fs::write(&scenario, PIPELINE.replace("ns = 200 }", "ns = 400 }")).expect("doctor");
    let o = flowbench(&["bench", "--scenario", &scenario, "--baseline", &base]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let text = out(&o);
    let line = text
        .lines()
        .find(|l| l.contains("/virtual_throughput_eps"))
        .expect("the throughput row");
    assert!(line.ends_with("REGRESSED"), "{line}");
    assert!(text.contains("bench: FAIL:"), "{text}");
}

#[test]
fn less_demand_on_a_link_with_latency_is_caught() {
    // 20 us of latency needs more outstanding demand than 5 to keep the sink busy: the
    // bandwidth-delay product.
    let (scenario, base) = baseline("bdp");
    std::fs::write(
        &scenario,
        PIPELINE.replace("max_demand = 100\nlatency", "max_demand = 5\nlatency"),
    )
    .expect("doctor");
    let o = flowbench(&["bench", "--scenario", &scenario, "--baseline", &base]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(
        out(&o)
            .lines()
            .any(|l| l.contains("/virtual_throughput_eps") && l.ends_with("REGRESSED")),
        "{}",
        out(&o)
    );
}

#[test]
fn a_tampered_or_foreign_baseline_is_refused() {
    let (scenario, base) = baseline("foreign");
    let text = std::fs::read_to_string(&base).expect("saved");
    // Malformed.
    let broken = write("broken.json", &text[..text.len() / 2]);
    let o = flowbench(&["bench", "--scenario", &scenario, "--baseline", &broken]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(out(&o).contains("not a flowbench baseline"), "{}", out(&o));
    // Another suite version.
    let ours = format!("\"suite_version\": {}", flowbench_bench::SUITE_VERSION);
    assert!(text.contains(&ours), "the saved baseline says its version");
    let v = text.replace(&ours, "\"suite_version\": 999");
    let other = write("other-version.json", &v);
    let o = flowbench(&["bench", "--scenario", &scenario, "--baseline", &other]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(out(&o).contains("suite version 999"), "{}", out(&o));
    // Other cases: the baseline of another scenario file.
    let elsewhere = write("elsewhere.toml", PIPELINE);
    let o = flowbench(&["bench", "--scenario", &elsewhere, "--baseline", &base]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(out(&o).contains("its cases differ"), "{}", out(&o));
    // A missing file.
    let o = flowbench(&[
        "bench",
        "--scenario",
        &scenario,
        "--baseline",
        "/no/such.json",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
}
