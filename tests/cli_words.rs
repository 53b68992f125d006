//! `flowbench words`: generation, the three counting modes agreeing, and bad input.

use std::path::PathBuf;
use std::process::{Command, Output};

fn flowbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flowbench"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("flowbench-cli-words-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_three_modes_print_the_same_counts() {
    let d = dir("modes");
    let file = d.join("text.txt");
    let f = file.to_str().expect("utf-8 path");
    let out = flowbench(&["words", "gen", f, "--size", "2MB", "--seed", "9"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut seen = Vec::new();
    for mode in ["eager", "lazy", "flow"] {
        let out = flowbench(&["words", "count", f, "--mode", mode, "--top", "5", "--json"]);
        assert!(out.status.success(), "{mode}: {}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(v["mode"], mode);
        assert_eq!(v["top"].as_array().map(Vec::len), Some(5));
        seen.push((
            v["digest"].clone(),
            v["words"].clone(),
            v["distinct"].clone(),
            v["top"].clone(),
        ));
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[0], seen[2]);
    assert!(seen[0].1.as_u64().is_some_and(|w| w > 200_000));
    let text = flowbench(&[
        "words", "count", f, "--mode", "flow", "--stages", "3", "--top", "2",
    ]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("counted flow"), "{text}");
    assert_eq!(text.lines().count(), 5, "{text}");
    std::fs::remove_dir_all(&d).expect("clean");
}

#[test]
fn gen_never_replaces_a_file_and_bad_input_exits_2() {
    let d = dir("bad");
    let file = d.join("keep.txt");
    std::fs::write(&file, "mine\n").expect("write");
    let f = file.to_str().expect("utf-8 path");
    let out = flowbench(&["words", "gen", f, "--size", "1KB"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&file).expect("read"), "mine\n");

    let out = flowbench(&["words", "gen", "x.txt", "--size", "12 parsecs"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown unit"), "{}", stderr(&out));

    let missing = d.join("missing.txt");
    let m = missing.to_str().expect("utf-8 path");
    for mode in ["eager", "lazy", "flow"] {
        let out = flowbench(&["words", "count", m, "--mode", mode]);
        assert_eq!(out.status.code(), Some(2), "{mode}");
        assert!(
            stderr(&out).contains("missing.txt"),
            "{mode}: {}",
            stderr(&out)
        );
    }
    std::fs::write(d.join("bin.txt"), [b'a', b' ', 0xff, b'\n']).expect("write");
    let b = d.join("bin.txt");
    let out = flowbench(&[
        "words",
        "count",
        b.to_str().expect("utf-8"),
        "--mode",
        "flow",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not UTF-8 text (at byte 2)"),
        "{}",
        stderr(&out)
    );
    std::fs::remove_dir_all(&d).expect("clean");
}

#[test]
fn an_exported_flow_can_be_tuned() {
    use flowbench_engine::flow::{Flow, Partition};
    let d = dir("tune");
    let file = d.join("flow.toml");
    let toml = Flow::from_iter(0..20_000u64)
        .stages(2)
        .map(|x| x.wrapping_mul(31))
        .partition_with(Partition::hashed().stages(2))
        .to_scenario("exported")
        .expect("export");
    std::fs::write(&file, toml).expect("write");
    let f = file.to_str().expect("utf-8 path");
    let out = flowbench(&["tune", f, "--grid", "3x2", "--seeds", "1", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["scenario"], "exported");
    assert!(
        v["recommendation"]["settings"]
            .as_array()
            .is_some_and(|s| !s.is_empty()),
        "{v}"
    );
    std::fs::remove_dir_all(&d).expect("clean");
}
