//! `flowbench tui`: the live terminal view (the crate `flowbench-tui`), and
//! `--screenshot FILE` to draw one frame of it as a picture without a terminal.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use flowbench_engine::scenario::{self, Scenario};
use flowbench_sim::Record;
use flowbench_tui::{lesson, ui, App, Choice, Options, SourceText, Topo, Tui};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;

use crate::{duration, Failure, Runtime};

#[derive(clap::Args, Debug)]
pub struct TuiArgs {
    /// The scenario file (TOML); without it (and without --lesson or --replay), a menu of
    /// the lessons and the embedded default scenario.
    scenario: Option<PathBuf>,
    /// Where the stages run: the simulator (stepped in virtual time, changes allowed) or
    /// real threads (probes sampled live; the view only watches).
    #[arg(long, value_enum, default_value_t = Runtime::Sim)]
    runtime: Runtime,
    /// Root seed of the run (default: the scenario's `seed`, else 0).
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Virtual seconds per wall second (sim and replay); + and - change it live.
    #[arg(long, value_name = "X", default_value_t = 0.001)]
    speed: f64,
    /// Stop each producer after N events.
    #[arg(long, value_name = "N")]
    events: Option<u64>,
    /// Play back a trace written by `flowbench run --trace` (give its scenario too for
    /// the stages' kinds and buffer sizes).
    #[arg(long, value_name = "TRACE")]
    replay: Option<PathBuf>,
    /// Open built-in lesson N (1 to 5).
    #[arg(long, value_name = "N")]
    lesson: Option<usize>,
    /// Draw one frame to FILE (.png or .svg) instead of opening the view, at --at.
    #[arg(long, value_name = "FILE")]
    screenshot: Option<PathBuf>,
    /// The virtual time of the screenshot, e.g. 200us, 1ms.
    #[arg(long, value_name = "DURATION", value_parser = duration::parse, default_value = "1ms")]
    at: Duration,
    /// The screenshot's size in cells, WIDTHxHEIGHT.
    #[arg(long, value_name = "WxH", default_value = "120x36", value_parser = parse_size)]
    size: (u16, u16),
}

fn parse_size(s: &str) -> Result<(u16, u16), String> {
    let bad = || format!("`{s}` is not WIDTHxHEIGHT (e.g. 120x36, each 20..=500)");
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let w: u16 = w.trim().parse().map_err(|_| bad())?;
    let h: u16 = h.trim().parse().map_err(|_| bad())?;
    if !(20..=500).contains(&w) || !(20..=500).contains(&h) {
        return Err(bad());
    }
    Ok((w, h))
}

fn bad(e: impl Into<anyhow::Error>) -> Failure {
    Failure::BadInput(e.into())
}

/// What the view shows: a scenario with its text (to save), or a trace.
struct Loaded {
    scenario: Option<Scenario>,
    text: Option<SourceText>,
    lesson: Option<&'static flowbench_tui::Lesson>,
    records: Option<Vec<Record>>,
}

fn text_of(path: &Path, text: String) -> SourceText {
    SourceText {
        text,
        file: path.display().to_string(),
        dir: match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        },
        stem: path
            .file_stem()
            .map_or("scenario".into(), |s| s.to_string_lossy().into_owned()),
    }
}

fn embedded(text: &'static str, file: &str) -> Result<(Scenario, SourceText), Failure> {
    let s = scenario::parse_str(text, file).map_err(bad)?;
    Ok((
        s,
        SourceText {
            text: text.to_string(),
            file: file.to_string(),
            dir: PathBuf::from("."),
            stem: file.trim_end_matches(".toml").to_string(),
        },
    ))
}

fn read_trace(path: &Path) -> Result<Vec<Record>, Failure> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read trace {}", path.display()))
        .map_err(bad)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let r =
            Record::parse(line).map_err(|e| bad(anyhow!("{}:{}: {e}", path.display(), i + 1)))?;
        out.push(r);
    }
    if out.is_empty() {
        return Err(bad(anyhow!("{}: the trace has no records", path.display())));
    }
    Ok(out)
}

fn load(args: &TuiArgs, choice: Option<Choice>) -> Result<Loaded, Failure> {
    let lesson_n = match choice {
        Some(Choice::Lesson(n)) => Some(n),
        _ => args.lesson,
    };
    if let Some(n) = lesson_n {
        let l = lesson(n).ok_or_else(|| {
            bad(anyhow!(
                "--lesson {n}: there are lessons 1 to {}",
                flowbench_tui::LESSONS.len()
            ))
        })?;
        let (s, text) = embedded(l.scenario, l.file)?;
        return Ok(Loaded {
            scenario: Some(s),
            text: Some(text),
            lesson: Some(l),
            records: None,
        });
    }
    let (scenario, text) = match &args.scenario {
        Some(p) => {
            let s = scenario::load(p).map_err(bad)?;
            let t = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))
                .map_err(bad)?;
            (Some(s), Some(text_of(p, t)))
        }
        None if args.replay.is_some() => (None, None),
        None => {
            let (s, t) = embedded(scenario::DEFAULT_SCENARIO, scenario::DEFAULT_SCENARIO_FILE)?;
            (Some(s), Some(t))
        }
    };
    let records = match &args.replay {
        Some(p) => {
            let r = read_trace(p)?;
            if let Some(s) = &scenario {
                for rec in &r {
                    for n in [&rec.stage, &rec.from, &rec.to].into_iter().flatten() {
                        if s.stage(n).is_none() {
                            return Err(bad(anyhow!(
                                "{}: record {} names stage `{n}`, which {} does not have: is it the trace of another scenario?",
                                p.display(),
                                rec.seq,
                                s.name
                            )));
                        }
                    }
                }
            }
            Some(r)
        }
        None => None,
    };
    Ok(Loaded {
        scenario,
        text,
        lesson: None,
        records,
    })
}

fn build<'s>(args: &TuiArgs, l: &'s Loaded) -> Result<App<'s>, Failure> {
    let opts = Options {
        seed: args.seed,
        speed: args.speed,
        events: args.events,
    };
    let mut app = match (&l.records, &l.scenario) {
        (Some(records), s) => {
            let name = args
                .replay
                .as_ref()
                .and_then(|p| p.file_name())
                .map_or("trace".into(), |n| n.to_string_lossy().into_owned());
            App::replay(records.clone(), s.as_ref().map(Topo::of), name, &opts)
        }
        (None, Some(s)) => match args.runtime {
            Runtime::Sim => App::sim(s, &opts).map_err(|e| bad(anyhow!(e)))?,
            Runtime::Threads => App::threads(s, &opts).map_err(|e| bad(anyhow!(e)))?,
        },
        (None, None) => return Err(bad(anyhow!("nothing to show"))),
    };
    if let Some(t) = &l.text {
        app = app.with_text(t.clone());
    }
    if let Some(lesson) = l.lesson {
        app = app.with_lesson(lesson);
    }
    Ok(app)
}

fn check_args(args: &TuiArgs) -> Result<(), Failure> {
    if !(args.speed.is_finite() && args.speed > 0.0) {
        return Err(bad(anyhow!(
            "--speed {}: give a number greater than 0 (virtual seconds per wall second)",
            args.speed
        )));
    }
    if args.lesson.is_some() && (args.scenario.is_some() || args.replay.is_some()) {
        return Err(bad(anyhow!(
            "--lesson runs its own scenario: give no SCENARIO and no --replay with it"
        )));
    }
    if args.replay.is_some() && matches!(args.runtime, Runtime::Threads) {
        return Err(bad(anyhow!(
            "--replay plays a simulator trace: --runtime threads does not apply"
        )));
    }
    Ok(())
}

fn screenshot(args: &TuiArgs, out: &Path) -> Result<bool, Failure> {
    if out.exists() {
        return Err(bad(anyhow!(
            "--screenshot {}: the file exists; remove it or choose another name",
            out.display()
        )));
    }
    let choice = (args.scenario.is_none() && args.lesson.is_none() && args.replay.is_none())
        .then_some(Choice::Default);
    let loaded = load(args, choice)?;
    let mut app = build(args, &loaded)?;
    app.show_lesson = false;
    let at = u64::try_from(args.at.as_nanos()).unwrap_or(u64::MAX);
    app.advance_to(at);
    let (w, h) = args.size;
    let mut buf = Buffer::empty(Rect::new(0, 0, w, h));
    ui::render(&app, buf.area, &mut buf);
    let svg = flowbench_tui::shot::svg(&buf, flowbench_reports::FONT_FAMILY);
    let bytes = match out.extension().and_then(|e| e.to_str()) {
        Some("svg") => svg.into_bytes(),
        Some("png") => flowbench_reports::svg_to_png(&svg).map_err(|e| bad(anyhow!(e.0)))?,
        _ => {
            return Err(bad(anyhow!(
                "--screenshot {}: name a .png or .svg file",
                out.display()
            )))
        }
    };
    std::fs::write(out, bytes)
        .with_context(|| format!("cannot write {}", out.display()))
        .map_err(bad)?;
    println!("{}", out.display());
    Ok(true)
}

/// Runs the command; `Ok(false)` (exit 1) if the run shown got stuck.
pub fn tui(args: &TuiArgs) -> Result<bool, Failure> {
    check_args(args)?;
    if let Some(out) = &args.screenshot {
        return screenshot(args, out);
    }
    if !std::io::stdout().is_terminal() {
        return Err(bad(anyhow!(
            "flowbench tui needs a terminal, and stdout is not one (--screenshot FILE draws one frame without)"
        )));
    }
    let mut term = Tui::start()
        .context("cannot set up the terminal")
        .map_err(bad)?;
    let choice = if args.scenario.is_none() && args.lesson.is_none() && args.replay.is_none() {
        match term.menu().context("terminal").map_err(bad)? {
            Choice::Quit => return Ok(true),
            c => Some(c),
        }
    } else {
        None
    };
    let loaded = load(args, choice)?;
    let mut app = build(args, &loaded)?;
    let result = term.run(&mut app);
    drop(term);
    result.context("terminal").map_err(bad)?;
    let verdict = app.verdict();
    println!(
        "flowbench tui: left {} at {} ({}){}",
        app.name,
        ui::fmt_ns(app.state.t_ns),
        flowbench_tui::explain::plural(app.changes() as u64, "change"),
        verdict
            .as_deref()
            .map_or(String::new(), |v| format!("; {v}"))
    );
    if let Some((m, _)) = &app.message {
        println!("last message: {m}");
    }
    Ok(!app.is_stuck())
}
