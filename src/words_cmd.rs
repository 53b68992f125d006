//! `flowbench words`: generate a text and count its words eager, lazy or as a flow.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::{Subcommand, ValueEnum};
use flowbench_bench::words::{self, Mode, Options};
use serde_json::json;

use crate::Failure;

#[derive(Subcommand, Debug)]
pub enum WordsCmd {
    /// Write a reproducible text of Zipf-distributed words (vocabulary 50 000).
    Gen {
        /// The file to write (an existing file is never replaced).
        file: PathBuf,
        /// How much text, e.g. 200MB, 64MiB, 1000000.
        #[arg(long, value_parser = words::parse_size, default_value = "200MB")]
        size: u64,
        /// Seed of the vocabulary and the draw.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Count the words of a file and print the most frequent.
    Count {
        /// The text file (UTF-8; words are split on ASCII whitespace).
        file: PathBuf,
        /// eager: read all, count in one thread; lazy: stream lines in one thread; flow:
        /// chunks counted in parallel, partitioned by word, reduced, on the engine.
        #[arg(long, value_enum, default_value_t = ModeArg::Flow)]
        mode: ModeArg,
        /// Flow mode: stages per layer [default: available cores].
        #[arg(long, value_name = "N")]
        stages: Option<usize>,
        /// How many of the most frequent words to print.
        #[arg(long, default_value_t = 20)]
        top: usize,
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ModeArg {
    Eager,
    Lazy,
    Flow,
}

impl From<ModeArg> for Mode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::Eager => Mode::Eager,
            ModeArg::Lazy => Mode::Lazy,
            ModeArg::Flow => Mode::Flow,
        }
    }
}

impl WordsCmd {
    pub fn json(&self) -> bool {
        matches!(self, WordsCmd::Count { json: true, .. })
    }
}

fn bar(len: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style);
    }
    bar
}

pub fn words(cmd: &WordsCmd) -> Result<bool, Failure> {
    match cmd {
        WordsCmd::Gen { file, size, seed } => {
            let b = bar(*size);
            let n = words::generate(file, *size, *seed, &mut |w| b.set_position(w))
                .map_err(|e| Failure::BadInput(e.into()))?;
            b.finish_and_clear();
            out(&format!(
                "{}: {n} bytes of words (seed {seed})\n",
                file.display()
            ))
        }
        WordsCmd::Count {
            file,
            mode,
            stages,
            top,
            json,
        } => {
            if *stages == Some(0) {
                return Err(Failure::BadInput(anyhow::anyhow!("--stages: at least 1")));
            }
            let len = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
            let b = bar(len);
            let progress_bar = b.clone();
            let opts = Options {
                stages: *stages,
                progress: Some(Arc::new(move |n| progress_bar.set_position(n))),
                ..Options::default()
            };
            let mode = Mode::from(*mode);
            let start = Instant::now();
            let counts =
                words::count(file, mode, &opts).map_err(|e| Failure::BadInput(e.into()))?;
            let secs = start.elapsed().as_secs_f64();
            b.finish_and_clear();
            let mbps = counts.bytes as f64 / 1e6 / secs.max(1e-9);
            let best = counts.top(*top);
            let mut text = String::new();
            if *json {
                let v = json!({
                    "mode": mode.name(),
                    "file": file.display().to_string(),
                    "bytes": counts.bytes,
                    "words": counts.total(),
                    "distinct": counts.words.len(),
                    "seconds": secs,
                    "mb_per_s": mbps,
                    "digest": format!("{:016x}", counts.digest()),
                    "top": best.iter().map(|(w, c)| json!({"word": w, "count": c})).collect::<Vec<_>>(),
                });
                let _ = writeln!(text, "{v}");
            } else {
                let _ = writeln!(
                    text,
                    "{}: {} bytes, {} words, {} distinct, counted {} in {secs:.3} s ({mbps:.1} MB/s)",
                    file.display(),
                    counts.bytes,
                    counts.total(),
                    counts.words.len(),
                    mode.name(),
                );
                let width = best.first().map_or(5, |b| b.1.to_string().len().max(5));
                let _ = writeln!(text, "{:>width$}  word", "count");
                for (w, c) in &best {
                    let _ = writeln!(text, "{c:>width$}  {}", crate::terminal_safe(w));
                }
                let _ = writeln!(
                    text,
                    "digest {:016x} (of every word and its count: equal digests, equal counts)",
                    counts.digest()
                );
            }
            out(&text)
        }
    }
}

/// Writes the command's output; a reader that went away (`| head`) ends it quietly.
fn out(text: &str) -> Result<bool, Failure> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(true),
        Err(e) => Err(Failure::run(
            "output",
            anyhow::anyhow!("cannot write the output: {e}"),
        )),
    }
}
