//! Mutated scenario files: the parser either accepts a file, and then the threads runtime
//! runs it to a balanced end, or refuses it with a clean [`ScenarioError`] that points
//! into the file. It never panics.
//!
//! The seeds are the valid files of `scenarios/`. Each case applies one to four random
//! mutations to one of them: bytes deleted, duplicated or replaced; lines deleted,
//! duplicated or swapped; a number replaced by 0, -1 or a huge value; an identifier or a
//! string replaced by another token of the same file.
//!
//! 64 cases run by default; set `FLOWBENCH_PROPTEST_CASES=N` for more, e.g.
//!
//! ```text
//! FLOWBENCH_PROPTEST_CASES=5000 cargo test --test scenario_mutation
//! ```
//!
//! A failure prints the mutated text, writes it to a file in the temp folder and prints
//! `replay: flowbench check <that file>`. proptest keeps the seeds of failures in
//! `proptest-regressions/`; commit that folder when it appears.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::Duration;

use flowbench_engine::scenario::{parse_str, Fault, PushDef, Scenario, SourceDef};
use flowbench_engine::threads::scenario::{run_scenario, ScenarioRunOptions};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::FileFailurePersistence;

/// The name mutated texts are parsed under.
const FILE: &str = "mutated.toml";

/// Runs are skipped when a stage's mean service time (times its largest slowdown factor)
/// is above this: the threads runtime busy-waits service times, so a mutated
/// `ns = 18446744073709551615` would spin a core for centuries.
const MAX_MEAN_SERVICE_NS: f64 = 100_000.0;

/// Runs are skipped when a push source brings more events than this, in one arrival or in
/// all: the runtime collects every arrival into memory at once.
const MAX_PUSHED_EVENTS: u128 = 100_000;

/// How long a run may take before the test says it did not terminate. Runs stop their
/// producers after `until` (5 s, [`run_options`]), so this is far more than a healthy
/// run needs, even on 2 busy cores.
const RUN_DEADLINE: Duration = Duration::from_secs(60);

/// The options of every run.
fn run_options() -> ScenarioRunOptions {
    ScenarioRunOptions {
        events: Some(2_000),
        seed: 1,
        until: Some(Duration::from_secs(5)),
        ..ScenarioRunOptions::default()
    }
}

/// Numbers put in place of numbers of the file.
const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "1",
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775807",
    "-9223372036854775808",
    "99999999999999999999999999999999999999999",
    "1e308",
    "0.5",
    "nan",
    "-inf",
];

/// Bytes put in place of bytes of the file, besides arbitrary ones.
const BYTES: &[u8] = b"\"'[]{}=,.#\n -_0123456789\xff\xc3\\";

/// One of the valid scenario files.
struct Seed {
    path: String,
    text: String,
}

fn seeds() -> &'static [Seed] {
    static SEEDS: OnceLock<Vec<Seed>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("scenarios/ exists")
            .map(|entry| entry.expect("a readable directory entry").path())
            .filter(|path| path.extension().is_some_and(|e| e == "toml"))
            .collect();
        paths.sort();
        paths
            .into_iter()
            .map(|path| Seed {
                text: std::fs::read_to_string(&path).expect("seeds are UTF-8 files"),
                path: format!(
                    "scenarios/{}",
                    path.file_name().unwrap_or_default().to_string_lossy()
                ),
            })
            .collect()
    })
}

/// One edit of a file's bytes. Positions are taken modulo the number of bytes, lines or
/// tokens of the text they apply to, so every value means something; an edit of an empty
/// text, or of a text without numbers or tokens, does nothing.
#[derive(Clone, Debug)]
enum Mutation {
    DeleteByte(usize),
    DuplicateByte(usize),
    ReplaceByte(usize, u8),
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    ReplaceNumber(usize, &'static str),
    /// Replace the first token by the second (identifiers and quoted strings).
    ReplaceToken(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::DeleteByte),
        any::<usize>().prop_map(Mutation::DuplicateByte),
        (any::<usize>(), prop_oneof![select(BYTES), any::<u8>()])
            .prop_map(|(at, byte)| Mutation::ReplaceByte(at, byte)),
        any::<usize>().prop_map(Mutation::DeleteLine),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        (any::<usize>(), select(NUMBERS)).prop_map(|(at, n)| Mutation::ReplaceNumber(at, n)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::ReplaceToken(a, b)),
    ]
}

/// Byte ranges of the maximal runs of `bytes` that `starts` and `continues` accept.
fn spans(
    bytes: &[u8],
    starts: impl Fn(u8) -> bool,
    continues: impl Fn(u8) -> bool,
) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if starts(bytes[i]) && (i == 0 || !continues(bytes[i - 1])) {
            let end = (i + 1..bytes.len())
                .find(|&j| !continues(bytes[j]))
                .unwrap_or(bytes.len());
            out.push((i, end));
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

/// Identifiers (bare keys and words) and double-quoted strings on one line.
fn tokens(bytes: &[u8]) -> Vec<(usize, usize)> {
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    let mut out = spans(bytes, |b| b.is_ascii_alphabetic() || b == b'_', ident);
    let mut i = 0;
    while let Some(open) = bytes[i..].iter().position(|&b| b == b'"').map(|p| p + i) {
        let Some(close) = bytes[open + 1..]
            .iter()
            .position(|&b| b == b'"' || b == b'\n')
            .map(|p| p + open + 1)
        else {
            break;
        };
        if bytes[close] == b'"' {
            out.push((open, close + 1));
        }
        i = close + 1;
    }
    out
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let lines = |bytes: &[u8]| -> Vec<Vec<u8>> {
        bytes
            .split_inclusive(|&b| b == b'\n')
            .map(<[u8]>::to_vec)
            .collect()
    };
    match m {
        Mutation::DeleteByte(at) if !bytes.is_empty() => {
            bytes.remove(at % bytes.len());
        }
        Mutation::DuplicateByte(at) if !bytes.is_empty() => {
            let i = at % bytes.len();
            bytes.insert(i, bytes[i]);
        }
        Mutation::ReplaceByte(at, byte) if !bytes.is_empty() => {
            let i = at % bytes.len();
            bytes[i] = *byte;
        }
        Mutation::DeleteLine(at) if !bytes.is_empty() => {
            let mut ls = lines(bytes);
            ls.remove(at % ls.len());
            *bytes = ls.concat();
        }
        Mutation::DuplicateLine(at) if !bytes.is_empty() => {
            let mut ls = lines(bytes);
            let i = at % ls.len();
            let mut line = ls[i].clone();
            if !line.ends_with(b"\n") {
                line.push(b'\n');
            }
            ls.insert(i, line);
            *bytes = ls.concat();
        }
        Mutation::SwapLines(a, b) if !bytes.is_empty() => {
            let mut ls = lines(bytes);
            let (i, j) = (a % ls.len(), b % ls.len());
            ls.swap(i, j);
            *bytes = ls.concat();
        }
        Mutation::ReplaceNumber(at, number) => {
            let numbers = spans(
                bytes,
                |b| b.is_ascii_digit(),
                |b| b.is_ascii_digit() || b == b'.' || b == b'_',
            );
            if numbers.is_empty() {
                return;
            }
            let (start, end) = numbers[at % numbers.len()];
            bytes.splice(start..end, number.bytes());
        }
        Mutation::ReplaceToken(target, source) => {
            let tokens = tokens(bytes);
            if tokens.is_empty() {
                return;
            }
            let (start, end) = tokens[target % tokens.len()];
            let (from, to) = tokens[source % tokens.len()];
            let replacement = bytes[from..to].to_vec();
            bytes.splice(start..end, replacement);
        }
        _ => {}
    }
}

/// A failure: the mutated text is written to the temp folder (one file per process, so
/// that it holds the last, smallest failing case once proptest has shrunk it) and the
/// reason carries the text and the replay line.
fn failure(seed: &Seed, text: &str, why: &str) -> TestCaseError {
    let path = std::env::temp_dir().join(format!("flowbench-mutant-{}.toml", std::process::id()));
    let saved = match std::fs::write(&path, text) {
        Ok(()) => format!("replay: flowbench check {}", path.display()),
        Err(err) => format!("(could not write {}: {err})", path.display()),
    };
    TestCaseError::fail(format!(
        "{why}\nseed: {}\n--- mutated text ---\n{text}\n--- end ---\n{saved}",
        seed.path
    ))
}

/// Why running `scenario` on threads would take too long, if it would.
fn too_slow_to_run(scenario: &Scenario) -> Option<String> {
    for stage in &scenario.stages {
        let slowdown = stage
            .faults
            .iter()
            .map(|f| match f {
                Fault::Slow { factor, .. } => *factor,
                Fault::Crash { .. } => 1.0,
            })
            .fold(1.0_f64, f64::max);
        for dist in [&stage.per_event, &stage.per_batch].into_iter().flatten() {
            let mean = dist.mean_ns() * slowdown;
            if mean.is_nan() || mean > MAX_MEAN_SERVICE_NS {
                return Some(format!("`{}` takes {mean} ns on average", stage.name));
            }
        }
        let Some(SourceDef::Push(push)) = &stage.source else {
            continue;
        };
        // (events in one arrival, events in all, or None when there is no end)
        let (one, all) = match push {
            PushDef::Bursts { size, count, .. } => (
                u128::from(*size),
                count.map(|c| u128::from(*size) * u128::from(c)),
            ),
            PushDef::Poisson { batch, total, .. } => (u128::from(*batch), total.map(u128::from)),
            PushDef::Script(batches) => {
                let sizes = batches
                    .iter()
                    .map(|b| u128::from(b.last) - u128::from(b.first) + 1);
                (sizes.clone().max().unwrap_or(0), Some(sizes.sum()))
            }
        };
        if one > MAX_PUSHED_EVENTS || all.is_some_and(|n| n > MAX_PUSHED_EVENTS) {
            return Some(format!(
                "`{}` pushes {one} events at once, {all:?} in all",
                stage.name
            ));
        }
    }
    None
}

/// Parses `text` and checks the outcome: a balanced, finished run, or a clean error.
fn check_text(seed: &Seed, text: &str) -> Result<(), TestCaseError> {
    let parsed = catch_unwind(AssertUnwindSafe(|| parse_str(text, FILE)));
    let scenario = match parsed {
        Err(_) => return Err(failure(seed, text, "parse_str panicked")),
        Ok(Err(err)) => {
            let lines = text.lines().count();
            let shown = err.to_string();
            if !(1..=lines + 1).contains(&err.line()) || err.column() < 1 {
                let why = format!("the error points outside the file ({lines} lines): {shown}");
                return Err(failure(seed, text, &why));
            }
            if shown.contains("panicked") || err.field().is_empty() || err.message().is_empty() {
                return Err(failure(seed, text, &format!("an unclean error: {shown}")));
            }
            if !shown.starts_with(&format!("{FILE}:{}:{}: ", err.line(), err.column())) {
                return Err(failure(seed, text, &format!("a misshapen error: {shown}")));
            }
            return Ok(());
        }
        Ok(Ok(scenario)) => scenario,
    };
    if too_slow_to_run(&scenario).is_some() {
        return Ok(());
    }
    run_to_a_balanced_end(seed, text, scenario)
}

/// Runs `scenario` on threads in a helper thread, so that a run that does not end fails
/// the test instead of hanging it.
fn run_to_a_balanced_end(seed: &Seed, text: &str, scenario: Scenario) -> Result<(), TestCaseError> {
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let outcome = run_scenario(&scenario, &run_options());
        let _ = done.send(outcome.map(|o| o.outcome.summary(&scenario.name)));
    });
    match finished.recv_timeout(RUN_DEADLINE) {
        Ok(Ok(summary)) if summary.balanced => Ok(()),
        Ok(Ok(summary)) => Err(failure(
            seed,
            text,
            &format!("the run did not balance:\n{}", summary.table()),
        )),
        Ok(Err(err)) => Err(failure(
            seed,
            text,
            &format!("a valid scenario failed to run: {err}"),
        )),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(failure(
            seed,
            text,
            &format!("the run did not end within {RUN_DEADLINE:?} (until is 5 s)"),
        )),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(failure(seed, text, "the run panicked")),
    }
}

fn config() -> ProptestConfig {
    let cases = std::env::var("FLOWBENCH_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    ProptestConfig {
        cases,
        // The default (next to `src/`) finds no `src/` for a file in `tests/`; cargo runs
        // integration tests in the package root.
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/scenario_mutation.txt",
        ))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn mutated_scenarios_run_balanced_or_fail_cleanly(
        seed in any::<usize>(),
        mutations in prop::collection::vec(mutation(), 1..=4),
    ) {
        let seed = &seeds()[seed % seeds().len()];
        let mut bytes = seed.text.clone().into_bytes();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        check_text(seed, &String::from_utf8_lossy(&bytes))?;
    }
}

/// The seeds themselves take the "accepted" path: parsed, run and balanced (and not
/// skipped as too slow, which would leave that path untested).
#[test]
fn every_seed_runs_balanced() {
    assert!(seeds().len() >= 2, "scenarios/ holds the seeds");
    for seed in seeds() {
        let scenario = parse_str(&seed.text, &seed.path).expect("the seeds are valid");
        assert_eq!(too_slow_to_run(&scenario), None, "{}", seed.path);
        if let Err(err) = check_text(seed, &seed.text) {
            panic!("{err}");
        }
    }
}

/// The mutations do what they say, so a case's text is what its mutations describe.
#[test]
fn mutations_edit_the_text_as_named() {
    let text = b"a = 12\nb = \"x\"\n".to_vec();
    let first = 0;
    let second = 1;
    let edit = |m: Mutation| {
        let mut t = text.clone();
        apply(&mut t, &m);
        String::from_utf8_lossy(&t).into_owned()
    };
    assert_eq!(edit(Mutation::DeleteByte(first)), " = 12\nb = \"x\"\n");
    assert_eq!(edit(Mutation::DuplicateByte(first)), "aa = 12\nb = \"x\"\n");
    assert_eq!(
        edit(Mutation::ReplaceByte(first, b'#')),
        "# = 12\nb = \"x\"\n"
    );
    assert_eq!(edit(Mutation::DeleteLine(first)), "b = \"x\"\n");
    assert_eq!(
        edit(Mutation::DuplicateLine(second)),
        "a = 12\nb = \"x\"\nb = \"x\"\n"
    );
    assert_eq!(
        edit(Mutation::SwapLines(first, second)),
        "b = \"x\"\na = 12\n"
    );
    assert_eq!(
        edit(Mutation::ReplaceNumber(first, "-1")),
        "a = -1\nb = \"x\"\n"
    );
    // Tokens: `a`, `b`, `x`, then the string `"x"`.
    assert_eq!(tokens(&text).len(), 4);
    assert_eq!(
        edit(Mutation::ReplaceToken(first, 3)),
        "\"x\" = 12\nb = \"x\"\n"
    );
}
