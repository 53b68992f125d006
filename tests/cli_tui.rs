//! `flowbench tui` without a terminal: screenshots, and bad input refused with exit 2
//! and a message (the view itself is tested in `tui/tests/` and, in a real terminal, by
//! `scripts/tui-e2e.sh`).

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn flowbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flowbench"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs")
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("flowbench-cli-tui-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Width and height of a PNG, from its IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[1..4], b"PNG");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

#[test]
fn a_screenshot_is_a_png_of_the_frame_and_never_overwrites() {
    let d = dir("shot");
    let png = d.join("frame.png");
    let p = png.to_str().expect("utf-8 path");
    let out = flowbench(&[
        "tui",
        "--lesson",
        "3",
        "--screenshot",
        p,
        "--at",
        "500us",
        "--size",
        "90x28",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let bytes = std::fs::read(&png).expect("written");
    assert_eq!(png_size(&bytes), (90 * 9, 28 * 18));
    let again = flowbench(&["tui", "--screenshot", p]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("exists"), "{}", stderr(&again));
    assert_eq!(std::fs::read(&png).expect("still there"), bytes);
    let svg = d.join("frame.svg");
    let out = flowbench(&[
        "tui",
        "--screenshot",
        svg.to_str().expect("utf-8"),
        "--at",
        "1ms",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&svg).expect("written");
    assert!(
        text.starts_with("<svg") && text.contains("parse"),
        "the default scenario"
    );
    std::fs::remove_dir_all(&d).expect("clean up");
}

#[test]
fn bad_input_is_refused_with_a_message() {
    let d = dir("bad");
    let shot = d.join("x.png");
    let s = shot.to_str().expect("utf-8 path");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["tui", "--lesson", "9", "--screenshot", s],
            "lessons 1 to 5",
        ),
        (
            vec!["tui", "--lesson", "1", "scenarios/pool.toml"],
            "--lesson runs its own scenario",
        ),
        (vec!["tui", "--speed", "0", "--screenshot", s], "--speed"),
        (
            vec!["tui", "--size", "10x5", "--screenshot", s],
            "WIDTHxHEIGHT",
        ),
        (vec!["tui", "--screenshot", "x.bmp"], ".png or .svg"),
        (vec!["tui", "--lesson", "1"], "needs a terminal"),
    ];
    for (args, want) in cases {
        let out = flowbench(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
    }
    // A trace that is not one, and the trace of another scenario.
    let bad = d.join("bad.jsonl");
    std::fs::write(&bad, "{\"t_ns\":0,\"seq\":0,\"kind\":\"ask\"}\nnot json\n").expect("write");
    let out = flowbench(&[
        "tui",
        "--replay",
        bad.to_str().expect("utf-8"),
        "--screenshot",
        s,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bad.jsonl:2"), "{}", stderr(&out));
    let trace = d.join("t.jsonl");
    let t = trace.to_str().expect("utf-8");
    let run = flowbench(&["run", "scenarios/demand-3.toml", "--trace", t]);
    assert!(run.status.success(), "{}", stderr(&run));
    let out = flowbench(&[
        "tui",
        "scenarios/pool.toml",
        "--replay",
        t,
        "--screenshot",
        s,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("another scenario"),
        "{}",
        stderr(&out)
    );
    // The right scenario: a frame of the replay.
    let out = flowbench(&[
        "tui",
        "scenarios/demand-3.toml",
        "--replay",
        t,
        "--screenshot",
        s,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::remove_dir_all(&d).expect("clean up");
}
