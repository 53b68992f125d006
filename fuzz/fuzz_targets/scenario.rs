//! Arbitrary bytes into the scenario parser: it must never panic, and every error it
//! returns must point into the text it was given.
//!
//! Bytes that are not UTF-8 are decoded lossily: `parse_str` takes text, and files that
//! are not UTF-8 are refused by `load` before they reach it.

#![no_main]

use flowbench_engine::scenario::parse_str;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Err(err) = parse_str(&text, "fuzz.toml") {
        let lines = text.lines().count();
        assert!(
            (1..=lines + 1).contains(&err.line()) && err.column() >= 1,
            "the error points outside the text ({lines} lines): {err}"
        );
        assert!(!err.field().is_empty(), "an error without a field: {err}");
        assert!(
            !err.message().is_empty(),
            "an error without a message: {err}"
        );
    }
});
