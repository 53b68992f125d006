//! The word count on one file, four ways in one run: eager, lazy and flow (flowbench's
//! three modes) and the peer, a hand-written rayon + FxHash version.
//!
//! ```sh
//! cargo run --release -p flowbench -- words gen /tmp/words.txt --size 200MB --seed 42
//! cargo run --release -p flowbench-bench --example words -- /tmp/words.txt
//! ```
//!
//! Every figure is MB/s of file (10^6 bytes per second of wall time, file read
//! included, from the page cache after a first read), the best of three runs, each in
//! a fresh process, the versions interleaved; every version's counts are checked
//! against the eager one's (digest and total).

use std::path::Path;
use std::time::{Duration, Instant};

use flowbench_bench::words::{count, Counts, Mode, Options};
use rayon::prelude::*;
use rustc_hash::FxHashMap;

/// The peer: read the file, cut it into pieces at whitespace, count each piece in a
/// rayon task into an FxHashMap of `&str`, merge the maps.
fn rayon_count(path: &Path) -> Counts {
    let bytes = std::fs::read(path).expect("read the file");
    let text = std::str::from_utf8(&bytes).expect("UTF-8 text");
    let pieces = rayon::current_num_threads() * 8;
    let step = text.len() / pieces + 1;
    let mut cuts = vec![0];
    let mut at = 0;
    while at < text.len() {
        let mut end = (at + step).min(text.len());
        while end < text.len() && !text.as_bytes()[end].is_ascii_whitespace() {
            end += 1;
        }
        cuts.push(end);
        at = end;
    }
    let merged = cuts
        .par_windows(2)
        .map(|w| {
            let mut m: FxHashMap<&str, u64> = FxHashMap::default();
            for word in text[w[0]..w[1]].split_ascii_whitespace() {
                *m.entry(word).or_default() += 1;
            }
            m
        })
        .reduce(FxHashMap::default, |mut a, b| {
            let (mut big, small) = if a.len() >= b.len() {
                (a, b)
            } else {
                (b, std::mem::take(&mut a))
            };
            for (w, c) in small {
                *big.entry(w).or_default() += c;
            }
            big
        });
    Counts {
        words: merged
            .into_iter()
            .map(|(w, c)| (w.to_string(), c))
            .collect(),
        bytes: bytes.len() as u64,
    }
}

fn measure(path: &Path, version: &str) -> (Duration, Counts) {
    let opts = Options::default();
    let t = Instant::now();
    let c = match version {
        "eager" => count(path, Mode::Eager, &opts).expect("eager"),
        "lazy" => count(path, Mode::Lazy, &opts).expect("lazy"),
        "flow" => count(path, Mode::Flow, &opts).expect("flow"),
        _ => rayon_count(path),
    };
    (t.elapsed(), c)
}

const VERSIONS: [&str; 4] = ["eager", "lazy", "flow", "rayon"];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(file) = args.first() else {
        eprintln!("usage: words FILE (make one with `flowbench words gen FILE`)");
        std::process::exit(2);
    };
    let path = Path::new(file);
    // One measurement per process (`words FILE --one VERSION`): a process that has
    // already counted once runs later counts measurably slower (its heap), which would
    // favour whichever version goes first.
    if let Some(v) = args
        .iter()
        .position(|a| a == "--one")
        .and_then(|i| args.get(i + 1))
    {
        let (t, c) = measure(path, v);
        println!("{} {:016x} {}", t.as_nanos(), c.digest(), c.total());
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let (_, eager) = measure(path, "eager");
    let exe = std::env::current_exe().expect("own path");
    let mut best = [Duration::MAX; 4];
    for _round in 0..3 {
        for (i, v) in VERSIONS.iter().enumerate() {
            let out = std::process::Command::new(&exe)
                .args([file.as_str(), "--one", v])
                .output()
                .expect("run a measurement");
            let text = String::from_utf8_lossy(&out.stdout);
            let f: Vec<&str> = text.split_whitespace().collect();
            assert_eq!(
                f.len(),
                3,
                "{v}: {text} {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                (f[1], f[2]),
                (
                    format!("{:016x}", eager.digest()).as_str(),
                    eager.total().to_string().as_str()
                ),
                "{v} counts differ from eager"
            );
            let t = Duration::from_nanos(f[0].parse().expect("nanoseconds"));
            best[i] = best[i].min(t);
        }
    }
    let mb = eager.bytes as f64 / 1e6;
    let rate = |t: Duration| mb / t.as_secs_f64();
    println!(
        "{} ({:.0} MB, {} words, {} distinct), {cores} cores, best of 3, one process each:",
        path.display(),
        mb,
        eager.total(),
        eager.words.len()
    );
    println!("| version | MB/s | vs lazy | vs rayon + FxHash |");
    println!("| --- | --- | --- | --- |");
    let names = ["eager", "lazy", "flow", "rayon + FxHash (peer)"];
    for (name, t) in names.iter().zip(best) {
        println!(
            "| {name} | {:.0} | {:.2}x | {:.2}x |",
            rate(t),
            best[1].as_secs_f64() / t.as_secs_f64(),
            best[3].as_secs_f64() / t.as_secs_f64()
        );
    }
}
