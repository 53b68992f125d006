//! The bad-input corpus: every file in `tests/bad/` must be refused by the `flowbench`
//! binary with exit code 2 and one error line, `error: {file}:{line}:{column}: {field}:
//! {message}`, equal to the snapshot stored next to it in `NN-short-name.stderr`.
//!
//! Each `NN-short-name.toml` starts with a `#` comment saying what is wrong with it (after a
//! byte order mark in the file about byte order marks); the exception is
//! `01-empty-file.toml`, which is empty because that is its point. `10-not-utf8.toml` is
//! not UTF-8 on purpose (`tests/bad/.gitattributes` marks it binary).
//!
//! The binary runs in the package root with the relative path `tests/bad/NN-….toml`, so the
//! file name in the messages does not depend on where the repository is checked out. Both
//! `flowbench check` and `flowbench run --runtime threads` are run: a bad file must be
//! refused before anything runs, with the same line from both.
//!
//! To (re)write the snapshots after a deliberate change of the messages, run
//!
//! ```text
//! FLOWBENCH_BLESS=1 cargo test --test bad_input
//! ```
//!
//! and review the diff of `tests/bad/*.stderr` by eye: each message must say what is
//! wrong and what is allowed. Blessing still checks everything but the snapshot text.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The corpus folder, relative to the package root.
const BAD: &str = "tests/bad";

/// The file that is empty on purpose, and so has no `#` comment.
const EMPTY_FILE: &str = "01-empty-file.toml";

/// The UTF-8 byte order mark.
const BOM: &[u8] = b"\xef\xbb\xbf";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn blessing() -> bool {
    std::env::var_os("FLOWBENCH_BLESS").is_some_and(|v| v == "1")
}

fn flowbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flowbench"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("the flowbench binary runs")
}

/// The corpus files with the given extension (`toml` or `stderr`), sorted by name.
fn corpus(ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(BAD))
        .expect("tests/bad exists")
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

fn file_name(path: &Path) -> &str {
    path.file_name()
        .and_then(|name| name.to_str())
        .expect("corpus file names are UTF-8")
}

/// What is wrong with one error line (empty if nothing is): it must name the file, a line
/// within the file (or just past its end), a column, a field and a message.
fn error_line_problems(rel: &str, bytes: &[u8], stderr: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if stderr.contains("panicked") {
        problems.push("stderr mentions a panic".to_owned());
    }
    if stderr.lines().count() != 1 || !stderr.ends_with('\n') {
        problems.push("stderr is not exactly one line".to_owned());
    }
    let Some(rest) = stderr
        .strip_prefix("error: ")
        .and_then(|rest| rest.strip_prefix(rel))
        .and_then(|rest| rest.strip_prefix(':'))
    else {
        problems.push(format!("stderr does not start with `error: {rel}:`"));
        return problems;
    };
    let mut parts = rest.trim_end().splitn(4, ": ");
    let position = parts.next().unwrap_or_default();
    let field = parts.next().unwrap_or_default();
    let message = parts.next().unwrap_or_default();
    let (line, column) = position.split_once(':').unwrap_or_default();
    let lines_in_file = bytes.split(|&b| b == b'\n').count();
    match line.parse::<usize>() {
        Ok(line) if (1..=lines_in_file + 1).contains(&line) => {}
        _ => problems.push(format!(
            "line `{line}` is not from 1 to {} (the file's lines + 1)",
            lines_in_file + 1
        )),
    }
    if !column.parse::<usize>().is_ok_and(|c| c >= 1) {
        problems.push(format!("column `{column}` is not a number of at least 1"));
    }
    if field.is_empty() || field.contains(char::is_whitespace) {
        problems.push(format!("field `{field}` is not a key path"));
    }
    if message.trim().is_empty() {
        problems.push("the message is empty".to_owned());
    }
    problems
}

#[test]
fn every_bad_file_exits_2_with_its_snapshot_error() {
    let files = corpus("toml");
    let mut failures = Vec::new();
    for path in &files {
        let name = file_name(path);
        let rel = format!("{BAD}/{name}");
        let bytes = std::fs::read(path).expect("a readable corpus file");
        let check = flowbench(&["check", &rel]);
        let run = flowbench(&["run", &rel, "--runtime", "threads"]);
        let check_err = String::from_utf8_lossy(&check.stderr).into_owned();
        let run_err = String::from_utf8_lossy(&run.stderr).into_owned();
        let mut problems = Vec::new();
        for (cmd, out, err) in [("check", &check, &check_err), ("run", &run, &run_err)] {
            if out.status.code() != Some(2) {
                problems.push(format!(
                    "`{cmd}` exited with {:?}, not 2",
                    out.status.code()
                ));
            }
            if !out.stdout.is_empty() {
                problems.push(format!("`{cmd}` printed on stdout"));
            }
            for problem in error_line_problems(&rel, &bytes, err) {
                problems.push(format!("`{cmd}`: {problem}"));
            }
        }
        if run_err != check_err {
            problems.push(format!(
                "`run` printed another error than `check`: {run_err}"
            ));
        }
        let snapshot = path.with_extension("stderr");
        if blessing() {
            std::fs::write(&snapshot, &check_err).expect("the snapshot is writable");
        } else {
            match std::fs::read_to_string(&snapshot) {
                Ok(expected) if expected == check_err => {}
                Ok(expected) => problems.push(format!("the snapshot says\n  {expected}")),
                Err(err) => problems.push(format!(
                    "no snapshot {} ({err}); write it with FLOWBENCH_BLESS=1",
                    snapshot.display()
                )),
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{rel}\n  stderr: {check_err}  - {}",
                problems.join("\n  - ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} bad files were not refused as expected \
         (after a deliberate message change: FLOWBENCH_BLESS=1 cargo test --test bad_input):\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}

#[test]
fn corpus_files_are_numbered_and_say_what_is_wrong() {
    let files = corpus("toml");
    assert!(
        files.len() >= 40,
        "only {} files in {BAD}: the corpus is meant to cover every rule of the format",
        files.len()
    );
    for path in &files {
        let name = file_name(path);
        let (number, short) = name
            .strip_suffix(".toml")
            .and_then(|stem| stem.split_once('-'))
            .unwrap_or_default();
        assert!(
            number.len() == 2 && number.chars().all(|c| c.is_ascii_digit()) && !short.is_empty(),
            "{name}: corpus files are named NN-short-name.toml"
        );
        let bytes = std::fs::read(path).expect("a readable corpus file");
        if name == EMPTY_FILE {
            assert!(bytes.is_empty(), "{name} must stay empty");
            continue;
        }
        let body = bytes.strip_prefix(BOM).unwrap_or(&bytes);
        assert!(
            body.starts_with(b"# "),
            "{name}: start the file with a `#` comment saying what is wrong with it"
        );
    }
}

#[test]
fn corpus_keeps_its_special_files() {
    let files = corpus("toml");
    let contents: Vec<Vec<u8>> = files
        .iter()
        .map(|path| std::fs::read(path).expect("a readable corpus file"))
        .collect();
    assert!(
        contents.iter().any(|bytes| bytes.is_empty()),
        "an empty file"
    );
    assert!(
        contents
            .iter()
            .any(|bytes| std::str::from_utf8(bytes).is_err()),
        "a file that is not UTF-8"
    );
    assert!(
        contents.iter().any(|bytes| bytes.starts_with(BOM)),
        "a file with a byte order mark"
    );
    assert!(
        contents
            .iter()
            .any(|bytes| bytes.split(|&b| b == b'\n').any(|line| line.len() > 10_000)),
        "a file with a very long line"
    );
}

#[test]
fn every_snapshot_has_its_bad_file() {
    for snapshot in corpus("stderr") {
        assert!(
            snapshot.with_extension("toml").exists(),
            "{} has no .toml next to it: remove it or restore its scenario",
            snapshot.display()
        );
    }
}
