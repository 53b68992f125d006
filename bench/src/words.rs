//! The word count, three ways: the example every Flow talk starts with.
//!
//! - [`generate`] writes a reproducible text of Zipf-distributed words;
//! - [`count`] counts its words [eagerly](Mode::Eager) (read the whole file, count in one
//!   thread), [lazily](Mode::Lazy) (stream lines, count in one thread) or as a
//!   [flow](Mode::Flow) on the stage engine (read in chunks, count each chunk in parallel,
//!   partition the words, reduce).
//!
//! All three split on ASCII whitespace and give the same counts ([`Counts::digest`]).
//!
//! ```
//! use flowbench_bench::words::{count, generate, Mode, Options};
//! let dir = std::env::temp_dir().join(format!("words-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let file = dir.join("text.txt");
//! generate(&file, 200_000, 42, &mut |_| {}).unwrap();
//! let eager = count(&file, Mode::Eager, &Options::default()).unwrap();
//! let flow = count(&file, Mode::Flow, &Options::default()).unwrap();
//! assert_eq!(eager.digest(), flow.digest());
//! assert_eq!(eager.total(), flow.total());
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flowbench_engine::flow::{Flow, Partition};
use flowbench_engine::hash::{mix64, stable_hash, SplitMix64};
use rustc_hash::FxHashMap;

/// How [`count`] counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Read the whole file into memory, then count in one thread.
    Eager,
    /// Read line by line, counting as it goes, in one thread.
    Lazy,
    /// Read in chunks; count each chunk in parallel; partition the words by hash;
    /// merge the counts per partition — on the stage engine's threads runtime.
    Flow,
}

impl Mode {
    /// The mode's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Eager => "eager",
            Mode::Lazy => "lazy",
            Mode::Flow => "flow",
        }
    }
}

/// Progress callback: bytes read (or written) so far.
pub type Progress = Arc<dyn Fn(u64) + Send + Sync>;

/// Options of [`count`].
#[derive(Clone)]
pub struct Options {
    /// Flow mode: stages per layer (default: the available cores).
    pub stages: Option<usize>,
    /// Flow mode: bytes per chunk (default 1 MiB), cut after the last whitespace.
    pub chunk: usize,
    /// Called with the bytes read so far.
    pub progress: Option<Progress>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            stages: None,
            chunk: 1 << 20,
            progress: None,
        }
    }
}

/// Word counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Every word and its count.
    pub words: FxHashMap<String, u64>,
    /// Bytes read.
    pub bytes: u64,
}

impl Counts {
    /// Words in all (with repeats).
    pub fn total(&self) -> u64 {
        self.words.values().sum()
    }

    /// The `n` most frequent words, most frequent first (ties by word).
    pub fn top(&self, n: usize) -> Vec<(&str, u64)> {
        let mut v: Vec<(&str, u64)> = self.words.iter().map(|(w, &c)| (w.as_str(), c)).collect();
        v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v.truncate(n);
        v
    }

    /// A digest of every (word, count), independent of order: two counts agree exactly
    /// when their digests and totals do (up to hash collisions).
    pub fn digest(&self) -> u64 {
        self.words.iter().fold(0u64, |acc, (w, &c)| {
            acc.wrapping_add(mix64(
                flowbench_engine::hash::fnv1a64(w.as_bytes()) ^ mix64(c),
            ))
        })
    }
}

/// Why a count or a generation failed: the file and what went wrong.
#[derive(Clone, Debug)]
pub struct WordsError {
    /// The file.
    pub path: PathBuf,
    /// What happened.
    pub message: String,
}

impl std::fmt::Display for WordsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

impl std::error::Error for WordsError {}

fn err(path: &Path, message: impl std::fmt::Display) -> WordsError {
    WordsError {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

fn not_utf8(path: &Path, at: u64) -> WordsError {
    err(path, format!("not UTF-8 text (at byte {at})"))
}

/// Counts the words of `path` in `mode`.
pub fn count(path: &Path, mode: Mode, opts: &Options) -> Result<Counts, WordsError> {
    match mode {
        Mode::Eager => eager(path, opts),
        Mode::Lazy => lazy(path, opts),
        Mode::Flow => flow(path, opts),
    }
}

fn open(path: &Path) -> Result<File, WordsError> {
    File::open(path).map_err(|e| err(path, e))
}

fn eager(path: &Path, opts: &Options) -> Result<Counts, WordsError> {
    let mut bytes = Vec::new();
    open(path)?
        .read_to_end(&mut bytes)
        .map_err(|e| err(path, e))?;
    if let Some(p) = &opts.progress {
        p(bytes.len() as u64);
    }
    let text = std::str::from_utf8(&bytes).map_err(|e| not_utf8(path, e.valid_up_to() as u64))?;
    let mut counts: FxHashMap<&str, u64> = FxHashMap::default();
    for w in text.split_ascii_whitespace() {
        *counts.entry(w).or_default() += 1;
    }
    Ok(Counts {
        words: counts
            .into_iter()
            .map(|(w, c)| (w.to_string(), c))
            .collect(),
        bytes: bytes.len() as u64,
    })
}

/// Adds the words of `text` to `counts`, allocating only for new words.
fn add_words(counts: &mut FxHashMap<String, u64>, text: &str) {
    for w in text.split_ascii_whitespace() {
        match counts.get_mut(w) {
            Some(c) => *c += 1,
            None => {
                counts.insert(w.to_string(), 1);
            }
        }
    }
}

fn lazy(path: &Path, opts: &Options) -> Result<Counts, WordsError> {
    let mut r = BufReader::with_capacity(1 << 16, open(path)?);
    let mut line = Vec::new();
    let mut counts = FxHashMap::default();
    let mut read = 0u64;
    loop {
        line.clear();
        let n = r.read_until(b'\n', &mut line).map_err(|e| err(path, e))?;
        if n == 0 {
            break;
        }
        let text = std::str::from_utf8(&line)
            .map_err(|e| not_utf8(path, read + e.valid_up_to() as u64))?;
        add_words(&mut counts, text);
        read += n as u64;
        if let Some(p) = &opts.progress {
            if read % (1 << 20) < n as u64 {
                p(read);
            }
        }
    }
    if let Some(p) = &opts.progress {
        p(read);
    }
    Ok(Counts {
        words: counts,
        bytes: read,
    })
}

/// The file as chunks of about `size` bytes, each ending after ASCII whitespace (or at
/// the end), so no word is cut in two.
pub struct Chunks {
    path: PathBuf,
    file: File,
    size: usize,
    carry: Vec<u8>,
    offset: u64,
    done: bool,
    progress: Option<Progress>,
}

impl Chunks {
    /// Opens `path`.
    pub fn open(path: &Path, size: usize, progress: Option<Progress>) -> Result<Self, WordsError> {
        Ok(Chunks {
            path: path.to_path_buf(),
            file: open(path)?,
            size: size.max(1),
            carry: Vec::new(),
            offset: 0,
            done: false,
            progress,
        })
    }

    fn next_chunk(&mut self) -> Result<Option<String>, WordsError> {
        let mut buf = std::mem::take(&mut self.carry);
        loop {
            let start = buf.len();
            let want = (start + self.size).max(start + 4096);
            buf.resize(want, 0);
            let n = read_full(&mut self.file, &mut buf[start..]).map_err(|e| err(&self.path, e))?;
            buf.truncate(start + n);
            if n == 0 {
                self.done = true;
                break;
            }
            if let Some(cut) = buf.iter().rposition(u8::is_ascii_whitespace) {
                self.carry = buf.split_off(cut + 1);
                break;
            }
        }
        if buf.is_empty() {
            return Ok(None);
        }
        let at = self.offset;
        self.offset += buf.len() as u64;
        if let Some(p) = &self.progress {
            p(self.offset);
        }
        String::from_utf8(buf)
            .map(Some)
            .map_err(|e| not_utf8(&self.path, at + e.utf8_error().valid_up_to() as u64))
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match f.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

impl Iterator for Chunks {
    type Item = Result<String, WordsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done && self.carry.is_empty() {
            return None;
        }
        match self.next_chunk() {
            Ok(Some(c)) => Some(Ok(c)),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                self.carry.clear();
                Some(Err(e))
            }
        }
    }
}

/// The words of one chunk that belong to one partition: `(start, len, count)` of each
/// distinct word, as byte ranges of the chunk, which they share (no word is copied).
#[derive(Clone, Debug)]
pub struct Piece {
    text: Arc<str>,
    words: Vec<(u32, u32, u64)>,
}

/// Counts one chunk and splits the counts by partition (`stable_hash(word) % parts`).
fn split_counts(chunk: String, parts: usize) -> Vec<(usize, Piece)> {
    let text: Arc<str> = Arc::from(chunk);
    let mut counts: FxHashMap<&str, u64> = FxHashMap::default();
    counts.reserve(1 << 14);
    for w in text.split_ascii_whitespace() {
        *counts.entry(w).or_default() += 1;
    }
    let base = text.as_ptr() as usize;
    let mut pieces: Vec<Vec<(u32, u32, u64)>> = vec![Vec::new(); parts];
    for (w, c) in counts {
        let p = (stable_hash(w) % parts as u64) as usize;
        pieces[p].push(((w.as_ptr() as usize - base) as u32, w.len() as u32, c));
    }
    pieces
        .into_iter()
        .enumerate()
        .filter(|(_, words)| !words.is_empty())
        .map(|(p, words)| {
            (
                p,
                Piece {
                    text: Arc::clone(&text),
                    words,
                },
            )
        })
        .collect()
}

/// Adds a piece's counts; a word is copied only the first time this partition sees it.
fn merge_piece(acc: &mut FxHashMap<String, u64>, piece: &Piece) {
    for &(start, len, c) in &piece.words {
        let w = &piece.text[start as usize..(start + len) as usize];
        match acc.get_mut(w) {
            Some(n) => *n += c,
            None => {
                acc.insert(w.to_string(), c);
            }
        }
    }
}

/// The flow of [`Mode::Flow`], `stages` wide: chunks → `flat_map` (count the chunk, one
/// [`Piece`] per partition) → `partition` (by the piece's partition) → `reduce` (merge
/// the counts) → the `(word, count)` pairs.
pub fn flow_of(chunks: Chunks, stages: usize) -> Flow<(String, u64), (usize, Piece)> {
    let parts = stages.max(1);
    Flow::from_iter(chunks)
        .stages(stages)
        // A chunk is a big event (1 MiB): ask for one or two at a time, so every stage
        // gets its share.
        .demand(2, 1)
        .try_map(|chunk: Result<String, WordsError>| chunk)
        .flat_map(move |chunk: String| split_counts(chunk, parts))
        .partition_with(Partition::by_index(|e: &(usize, Piece)| e.0).stages(parts))
        .reduce(
            FxHashMap::default,
            |acc: &mut FxHashMap<String, u64>, (_, piece)| merge_piece(acc, &piece),
        )
        .emit_events()
}

fn flow(path: &Path, opts: &Options) -> Result<Counts, WordsError> {
    let stages = opts
        .stages
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |c| c.get()));
    let chunks = Chunks::open(path, opts.chunk, opts.progress.clone())?;
    let bytes = std::fs::metadata(path).map_err(|e| err(path, e))?.len();
    let words = flow_of(chunks, stages).collect().map_err(|e| match e {
        flowbench_engine::flow::FlowError::Stage { message, .. } => WordsError {
            path: path.to_path_buf(),
            message: message
                .strip_prefix(&format!("{}: ", path.display()))
                .unwrap_or(&message)
                .to_string(),
        },
        other => err(path, other),
    })?;
    Ok(Counts {
        words: words.into_iter().collect(),
        bytes,
    })
}

/// The vocabulary of [`generate`]: `n` distinct lowercase words from `seed`, short ones
/// more likely.
pub fn vocabulary(n: usize, seed: u64) -> Vec<String> {
    let mut rng = SplitMix64::new(seed);
    let mut seen = std::collections::HashSet::with_capacity(n);
    let mut words = Vec::with_capacity(n);
    while words.len() < n {
        let len = 2 + rng.below(4) + rng.below(4) + rng.below(3);
        let w: String = (0..len)
            .map(|_| char::from(b'a' + rng.below(26) as u8))
            .collect();
        if seen.insert(w.clone()) {
            words.push(w);
        }
    }
    words
}

/// Words in the vocabulary of [`generate`].
pub const VOCABULARY: usize = 50_000;

/// Writes about `size` bytes of text to `path` (whole lines of 4 to 16 words): words of
/// a 50 000-word [`vocabulary`] drawn with Zipf's law (the `k`-th most frequent word has
/// weight `1/k`), all from `seed`. Same size and seed, same file. The file is written
/// aside and renamed, and an existing file is never replaced. `progress` gets the bytes
/// written so far.
pub fn generate(
    path: &Path,
    size: u64,
    seed: u64,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, WordsError> {
    if path.exists() {
        return Err(err(path, "already exists; not replacing it"));
    }
    let vocab = vocabulary(VOCABULARY, seed);
    let mut cdf = Vec::with_capacity(vocab.len());
    let mut total = 0f64;
    for k in 0..vocab.len() {
        total += 1.0 / (k + 1) as f64;
        cdf.push(total);
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "words".into());
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let mut write = || -> io::Result<u64> {
        let mut out = io::BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        let mut rng = SplitMix64::new(seed ^ 0x005e_ed0f_7e47);
        let mut written = 0u64;
        let mut line = String::with_capacity(256);
        let mut next_report = 0u64;
        while written < size {
            line.clear();
            let n = 4 + rng.below(13);
            for i in 0..n {
                if i > 0 {
                    line.push(' ');
                }
                let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * total;
                let k = cdf.partition_point(|&c| c < u).min(vocab.len() - 1);
                line.push_str(&vocab[k]);
            }
            line.push('\n');
            out.write_all(line.as_bytes())?;
            written += line.len() as u64;
            if written >= next_report {
                progress(written);
                next_report = written + (1 << 20);
            }
        }
        out.flush()?;
        progress(written);
        Ok(written)
    };
    match write() {
        Ok(n) => {
            if path.exists() {
                let _ = std::fs::remove_file(&tmp);
                return Err(err(path, "appeared while writing; not replacing it"));
            }
            std::fs::rename(&tmp, path).map_err(|e| err(path, e))?;
            Ok(n)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(err(path, e))
        }
    }
}

/// Parses a size such as `200MB`, `1.5GiB`, `64k` or `1000` (bytes). Decimal units are
/// powers of 1000, binary ones (`KiB`, `MiB`, `GiB`) of 1024.
///
/// ```
/// use flowbench_bench::words::parse_size;
/// assert_eq!(parse_size("200MB"), Ok(200_000_000));
/// assert_eq!(parse_size("2MiB"), Ok(2 << 20));
/// assert_eq!(parse_size("1500"), Ok(1500));
/// assert!(parse_size("12 parsecs").is_err());
/// ```
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (e.g. 200MB, 64KiB, 1000)"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => {
            return Err(format!(
                "`{s}`: unknown unit (B, KB, MB, GB, KiB, MiB, GiB)"
            ))
        }
    };
    let v = n * mult;
    if !v.is_finite() || !(1.0..=1e15).contains(&v) {
        return Err(format!("`{s}`: a size from 1 byte to 1 PB"));
    }
    Ok(v.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("flowbench-words-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn the_three_modes_agree_on_a_generated_file() {
        let dir = temp("agree");
        let file = dir.join("t.txt");
        let n = generate(&file, 3_000_000, 42, &mut |_| {}).expect("generate");
        assert!(n >= 3_000_000);
        // Small chunks so the flow has many.
        let opts = Options {
            chunk: 64 << 10,
            stages: Some(3),
            ..Options::default()
        };
        let e = count(&file, Mode::Eager, &opts).expect("eager");
        let l = count(&file, Mode::Lazy, &opts).expect("lazy");
        let f = count(&file, Mode::Flow, &opts).expect("flow");
        assert_eq!(e.words, l.words);
        assert_eq!(e.words, f.words);
        assert_eq!(e.bytes, n);
        assert!(e.words.len() > 10_000, "{} distinct words", e.words.len());
        // Zipf: the most frequent word is about twice as frequent as the second.
        let top = e.top(2);
        let ratio = top[0].1 as f64 / top[1].1 as f64;
        assert!((1.7..2.3).contains(&ratio), "{ratio}");
        std::fs::remove_dir_all(&dir).expect("clean");
    }

    #[test]
    fn generation_is_reproducible_and_never_replaces_a_file() {
        let dir = temp("repro");
        let (a, b) = (dir.join("a.txt"), dir.join("b.txt"));
        generate(&a, 100_000, 7, &mut |_| {}).expect("a");
        generate(&b, 100_000, 7, &mut |_| {}).expect("b");
        assert_eq!(
            std::fs::read(&a).expect("read a"),
            std::fs::read(&b).expect("read b")
        );
        let before = std::fs::read(&a).expect("read a");
        let e = generate(&a, 10, 8, &mut |_| {}).expect_err("exists");
        assert!(e.to_string().contains("already exists"), "{e}");
        assert_eq!(std::fs::read(&a).expect("read a"), before);
        std::fs::remove_dir_all(&dir).expect("clean");
    }

    #[test]
    fn a_file_that_is_not_text_is_an_error_naming_the_byte() {
        let dir = temp("binary");
        let file = dir.join("bin.txt");
        let mut bytes = b"hello world\n".repeat(1000);
        bytes.extend_from_slice(&[b'x', 0xff, 0xfe, b'\n']);
        std::fs::write(&file, &bytes).expect("write");
        for mode in [Mode::Eager, Mode::Lazy, Mode::Flow] {
            let e = count(
                &file,
                mode,
                &Options {
                    chunk: 100,
                    ..Options::default()
                },
            )
            .expect_err("not text");
            assert!(
                e.to_string().contains("not UTF-8 text (at byte 12001)"),
                "{mode:?}: {e}"
            );
        }
        std::fs::remove_dir_all(&dir).expect("clean");
    }

    #[test]
    fn chunks_never_cut_a_word() {
        let dir = temp("chunks");
        let file = dir.join("c.txt");
        std::fs::write(&file, "alpha beta\ngamma  delta\tepsilon zeta").expect("write");
        let chunks: Vec<String> = Chunks::open(&file, 3, None)
            .expect("open")
            .map(|c| c.expect("chunk"))
            .collect();
        assert_eq!(chunks.concat(), "alpha beta\ngamma  delta\tepsilon zeta");
        for c in &chunks[..chunks.len() - 1] {
            assert!(c.ends_with(|ch: char| ch.is_ascii_whitespace()), "{c:?}");
        }
        std::fs::remove_dir_all(&dir).expect("clean");
    }
}
