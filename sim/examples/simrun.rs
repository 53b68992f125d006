//! Runs a scenario file on the simulator and prints the summary table (or JSON).
//!
//! `cargo run --release -p flowbench-sim --example simrun -- FILE [--events N] [--seed N]
//! [--until-ns T] [--trace OUT.jsonl] [--range-last N] [--json]`
//!
//! `--range-last N` replaces the last id of every `range` source, to make a big run from a
//! small scenario file. Until the `flowbench` CLI is wired to the simulator this is the
//! quickest way to try it.

use std::io::Write;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut file = None;
    let mut opts = flowbench_sim::SimOptions::default();
    let mut trace_path = None;
    let mut range_last = None;
    let mut json = false;
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--events" => opts.events = Some(value()?.parse()?),
            "--seed" => opts.seed = Some(value()?.parse()?),
            "--until-ns" => opts.until_ns = Some(value()?.parse()?),
            "--trace" => trace_path = Some(value()?),
            "--range-last" => range_last = Some(value()?.parse::<u64>()?),
            "--json" => json = true,
            _ => file = Some(a),
        }
    }
    let file = file.unwrap_or_else(|| "scenarios/log-pipeline.toml".to_string());
    let mut scenario = flowbench_engine::scenario::load(std::path::Path::new(&file))?;
    if let Some(n) = range_last {
        for st in &mut scenario.stages {
            if let Some(flowbench_engine::scenario::SourceDef::Range { last, .. }) = &mut st.source
            {
                *last = n;
            }
        }
    }
    let mut trace = match &trace_path {
        Some(p) => Some(std::io::BufWriter::new(std::fs::File::create(p)?)),
        None => None,
    };
    let result = flowbench_sim::run(
        &scenario,
        &opts,
        trace.as_mut().map(|w| w as &mut dyn Write),
    );
    let out = match result {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            eprintln!("{}", e.replay_hint(&file));
            std::process::exit(1);
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&out.summary())?);
    } else {
        print!("{}", out.table());
        println!(
            "wall {:.3} s: {:.2} M messages/s, {:.2} M events/s, {} trace records",
            out.wall_s(),
            out.messages() as f64 / out.wall_s() / 1e6,
            out.events_delivered() as f64 / out.wall_s() / 1e6,
            out.trace_records()
        );
    }
    Ok(())
}
