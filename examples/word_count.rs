//! The word count as a flow, next to the slide: `cargo run --release --example word_count -- FILE`
use std::collections::HashMap;
use std::io::{BufRead, BufReader};

use flowbench_engine::flow::{Flow, Partition};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let file = std::env::args().nth(1).ok_or("usage: word_count FILE")?;
    let lines = BufReader::new(std::fs::File::open(&file)?)
        .lines()
        .map(|l| l.map_err(|e| e.to_string()));
    let mut counts = Flow::from_iter(lines)
        .try_map(|line| line)
        .flat_map(|line: String| {
            line.split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .partition_with(Partition::by_key(|word: &String| word.clone()))
        .reduce(HashMap::new, |acc: &mut HashMap<String, u64>, word| {
            *acc.entry(word).or_default() += 1
        })
        .emit_events()
        .collect()?;
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    for (word, n) in counts.iter().take(10) {
        println!("{n:>9} {word}");
    }
    Ok(())
}
