//! The view's state and what each key does to it, without a terminal: the loop in
//! [`crate::term`] feeds it keys and wall time and draws it with [`crate::ui`].

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use flowbench_engine::scenario::Scenario;
use flowbench_engine::threads::scenario::ScenarioRunOptions;
use flowbench_sim::{Change, Record, SimOptions};

use crate::explain::{explain, LogLine, Tone};
use crate::lessons::Lesson;
use crate::source::{Replay, SimSource, Source, State, ThreadsSource};
use crate::topo::Topo;

/// Log lines kept.
pub const LOG_LINES: usize = 200;
/// Samples kept per stage for its throughput sparkline.
pub const SPARK: usize = 48;

/// How fast virtual time runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Speed {
    /// Virtual time runs this many times as fast as wall time.
    Factor(f64),
    /// As fast as the machine steps it.
    Max,
}

/// The scenario file's text, to save it with the changes (`s`).
#[derive(Clone, Debug)]
pub struct SourceText {
    /// The TOML.
    pub text: String,
    /// The name errors use.
    pub file: String,
    /// Where the saved copy goes.
    pub dir: PathBuf,
    /// Its name without `.toml`.
    pub stem: String,
}

/// What a source is told to start with.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// The root seed (the scenario's, or 0, when `None`).
    pub seed: Option<u64>,
    /// Virtual ns per wall ns.
    pub speed: f64,
    /// Stop each producer after this many events.
    pub events: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seed: None,
            speed: 0.001,
            events: None,
        }
    }
}

/// The whole view.
pub struct App<'s> {
    /// What is drawn.
    pub topo: Topo,
    source: Source<'s>,
    text: Option<SourceText>,
    /// The latest state.
    pub state: State,
    /// Per stage: events per second over the recent samples (sparkline).
    pub rates: Vec<VecDeque<f64>>,
    /// Per stage: busy fraction over the last sample.
    pub busy: Vec<Option<f64>>,
    last: Option<(u64, Vec<u64>, Vec<Option<u64>>)>,
    next_sample: u64,
    /// The selected stage.
    pub sel: usize,
    /// The selected subscription (one of the selected stage's).
    pub sel_link: Option<usize>,
    /// Paused (space).
    pub paused: bool,
    /// How fast virtual time runs.
    pub speed: Speed,
    /// The log, oldest first.
    pub log: VecDeque<LogLine>,
    /// Records not shown because too many came at once.
    pub log_skipped: u64,
    /// The help screen is up.
    pub help: bool,
    /// The lesson being shown, if any.
    pub lesson: Option<&'static Lesson>,
    /// The lesson's text is up.
    pub show_lesson: bool,
    /// The seed (sim).
    pub seed: u64,
    /// Wall time spent running (not paused).
    pub wall: Duration,
    /// A line for the status bar (a save, a refused change).
    pub message: Option<(String, Tone)>,
    /// `q` was pressed.
    pub quit: bool,
    /// The scenario's name.
    pub name: String,
    logged: usize,
    /// The deadlock report of a stuck run is in the log.
    stuck_logged: bool,
}

impl<'s> App<'s> {
    fn with_source(topo: Topo, source: Source<'s>, name: String, seed: u64, speed: f64) -> Self {
        let n = topo.stages.len();
        let mut app = App {
            topo,
            source,
            text: None,
            state: State::default(),
            rates: vec![VecDeque::with_capacity(SPARK); n],
            busy: vec![None; n],
            last: None,
            next_sample: 0,
            sel: 0,
            sel_link: None,
            paused: false,
            speed: Speed::Factor(speed),
            log: VecDeque::with_capacity(LOG_LINES),
            log_skipped: 0,
            help: false,
            lesson: None,
            show_lesson: false,
            seed,
            wall: Duration::ZERO,
            message: None,
            quit: false,
            name,
            logged: 0,
            stuck_logged: false,
        };
        app.select_stage(0);
        app.refresh();
        app
    }

    /// A simulated run of `scenario`.
    pub fn sim(scenario: &'s Scenario, opts: &Options) -> Result<Self, String> {
        let sopts = SimOptions {
            seed: opts.seed,
            events: opts.events,
            ..SimOptions::default()
        };
        let seed = sopts.seed_for(scenario);
        let src = SimSource::new(scenario, &sopts)?;
        Ok(Self::with_source(
            Topo::of(scenario),
            Source::Sim(Box::new(src)),
            scenario.name.clone(),
            seed,
            opts.speed,
        ))
    }

    /// A run of `scenario` on real threads, its probes sampled live.
    pub fn threads(scenario: &'s Scenario, opts: &Options) -> Result<Self, String> {
        let seed = opts.seed.or(scenario.seed).unwrap_or(0);
        let topts = ScenarioRunOptions {
            events: opts.events,
            seed,
            ..ScenarioRunOptions::default()
        };
        let src = ThreadsSource::start(scenario, &topts)?;
        let mut app = Self::with_source(
            Topo::of(scenario),
            Source::Threads(Box::new(src)),
            scenario.name.clone(),
            seed,
            1.0,
        );
        app.push_log(LogLine {
            t_ns: 0,
            text: "on threads the view samples each stage's probes; protocol messages are not recorded".into(),
            tone: Tone::Normal,
        });
        Ok(app)
    }

    /// A trace played back; `topo` from its scenario, or from the trace itself.
    pub fn replay(records: Vec<Record>, topo: Option<Topo>, name: String, opts: &Options) -> Self {
        let topo = topo.unwrap_or_else(|| Topo::of_records(&records));
        let replay = Replay::new(records, topo.clone());
        Self::with_source(topo, Source::Replay(Box::new(replay)), name, 0, opts.speed)
    }

    /// Shows `lesson`'s text over the view.
    pub fn with_lesson(mut self, lesson: &'static Lesson) -> Self {
        self.lesson = Some(lesson);
        self.show_lesson = true;
        self
    }

    /// Lets `s` save the scenario with the changes.
    pub fn with_text(mut self, text: SourceText) -> Self {
        self.text = Some(text);
        self
    }

    /// The runtime's name.
    pub fn runtime(&self) -> &'static str {
        self.source.label()
    }

    /// Whether nothing more will happen.
    pub fn ended(&self) -> bool {
        self.source.ended()
    }

    /// The changes made to the run so far (only a simulated run takes any).
    pub fn changes(&self) -> usize {
        match &self.source {
            Source::Sim(s) => s.stepper().changes().len(),
            _ => 0,
        }
    }

    /// Whether the run ended without draining: it can make no progress.
    pub fn is_stuck(&self) -> bool {
        self.verdict().is_some_and(|v| v.starts_with("stuck"))
    }

    /// A replay's position and length, in records.
    pub fn replay_position(&self) -> Option<(usize, usize)> {
        match &self.source {
            Source::Replay(r) => Some((r.position(), r.len())),
            _ => None,
        }
    }

    /// Why the run ended, for the status line, once it has.
    pub fn verdict(&self) -> Option<String> {
        if !self.ended() {
            return None;
        }
        if let Source::Threads(t) = &self.source {
            return t.verdict.clone();
        }
        if let Source::Replay(_) = &self.source {
            return Some("end of the trace".into());
        }
        if let Source::Sim(s) = &self.source {
            if let Some(d) = s.stepper().deadlock() {
                return Some(format!(
                    "stuck at {}, see the log",
                    crate::ui::fmt_ns(d.t_ns)
                ));
            }
        }
        let held: Vec<&str> = self
            .state
            .stages
            .iter()
            .zip(&self.topo.stages)
            .filter(|(s, _)| {
                s.mailbox.unwrap_or(0) + s.buffered.unwrap_or(0) + s.queued.unwrap_or(0) > 0
            })
            .map(|(_, i)| i.name.as_str())
            .collect();
        Some(if held.is_empty() {
            "drained".into()
        } else {
            format!("stuck, events held at {}", held.join(", "))
        })
    }

    fn sample_every(&self) -> u64 {
        match self.speed {
            // Ten samples per wall second.
            Speed::Factor(f) => ((f * 1e8) as u64).max(1),
            Speed::Max => 1_000_000,
        }
    }

    /// Moves virtual time on to `t` (samples on the way), as if that much wall time had
    /// passed at the current speed. Deterministic: the state at `t` depends only on the
    /// scenario, the seed and the changes.
    pub fn advance_to(&mut self, t: u64) {
        self.advance_until(t, None);
    }

    fn advance_until(&mut self, t: u64, deadline: Option<Instant>) {
        if matches!(self.source, Source::Threads(_)) {
            self.refresh();
            self.sample();
            return;
        }
        let every = self.sample_every();
        if self.next_sample <= self.source.now() {
            self.next_sample = self.source.now() + every;
        }
        while self.next_sample <= t && !self.source.ended() {
            let at = self.next_sample;
            if let Err(e) = self.source.advance_to(at) {
                self.fail(e);
                return;
            }
            self.refresh();
            self.sample();
            self.next_sample = at + every;
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return;
            }
        }
        if let Err(e) = self.source.advance_to(t) {
            self.fail(e);
        }
        self.refresh();
    }

    fn fail(&mut self, e: String) {
        self.paused = true;
        self.message = Some((format!("the run failed: {e}"), Tone::Bad));
    }

    /// `dt` of wall time has passed: moves the run on by `dt` times the speed (for at
    /// most about 40 ms of wall time spent stepping).
    pub fn tick(&mut self, dt: Duration) {
        if self.paused || self.help {
            if matches!(self.source, Source::Threads(_)) {
                self.refresh();
            }
            return;
        }
        if !self.ended() {
            self.wall += dt;
        }
        let deadline = Instant::now() + Duration::from_millis(40);
        let now = self.source.now();
        let target = match self.speed {
            Speed::Factor(f) => now.saturating_add((dt.as_nanos() as f64 * f) as u64),
            Speed::Max => u64::MAX,
        };
        self.advance_until(target, Some(deadline));
    }

    /// Re-reads the state and the new records.
    fn refresh(&mut self) {
        self.state = self.source.state(self.topo.links.len());
        if let Source::Sim(s) = &self.source {
            match s.stepper().deadlock() {
                Some(d) if !self.stuck_logged => {
                    self.stuck_logged = true;
                    let text = d.to_string();
                    for part in text.split("; ") {
                        self.push_log(LogLine {
                            t_ns: d.t_ns,
                            text: format!("! {part}"),
                            tone: Tone::Bad,
                        });
                    }
                }
                Some(_) => {}
                None => self.stuck_logged = false,
            }
        }
        let (skipped, records) = self.source.take_records(LOG_LINES, &mut self.logged);
        if skipped > 0 {
            self.log_skipped += skipped;
            self.push_log(LogLine {
                t_ns: records.first().map_or(self.state.t_ns, |r| r.t_ns),
                text: format!("... {skipped} more protocol messages (pause and press n to follow them one by one)"),
                tone: Tone::Normal,
            });
        }
        for r in &records {
            let line = explain(r, &self.topo, &self.state);
            self.push_log(line);
        }
    }

    fn push_log(&mut self, line: LogLine) {
        if self.log.len() == LOG_LINES {
            self.log.pop_front();
        }
        self.log.push_back(line);
    }

    fn sample(&mut self) {
        let t = self.state.t_ns;
        let counts: Vec<u64> = self
            .state
            .stages
            .iter()
            .zip(&self.topo.stages)
            .map(|(s, i)| match i.kind {
                Some(k) if !k.consumes() => s.emitted,
                _ => s.handled.max(s.emitted),
            })
            .collect();
        let busy: Vec<Option<u64>> = self.state.stages.iter().map(|s| s.busy_ns).collect();
        if let Some((t0, c0, b0)) = &self.last {
            let dt = t.saturating_sub(*t0);
            if dt > 0 {
                for (i, (c, c_old)) in counts.iter().zip(c0).enumerate() {
                    let rate = c.saturating_sub(*c_old) as f64 * 1e9 / dt as f64;
                    let r = &mut self.rates[i];
                    if r.len() == SPARK {
                        r.pop_front();
                    }
                    r.push_back(rate);
                    let slots = self.state.stages[i].slots.max(1) as f64;
                    self.busy[i] = match (busy[i], b0[i]) {
                        (Some(b), Some(b_old)) => {
                            Some((b.saturating_sub(b_old) as f64 / (dt as f64 * slots)).min(1.0))
                        }
                        _ => None,
                    };
                }
            }
        }
        self.last = Some((t, counts, busy));
    }

    // ---- selection --------------------------------------------------------------------

    /// Selects stage `i` and its first subscription.
    pub fn select_stage(&mut self, i: usize) {
        if self.topo.stages.is_empty() {
            return;
        }
        self.sel = i.min(self.topo.stages.len() - 1);
        let st = &self.topo.stages[self.sel];
        self.sel_link = st.inputs.first().or(st.outputs.first()).copied();
    }

    /// The selected stage's subscriptions: inputs, then outputs.
    pub fn sel_links(&self) -> Vec<usize> {
        let st = &self.topo.stages[self.sel];
        st.inputs.iter().chain(&st.outputs).copied().collect()
    }

    fn cycle_link(&mut self, forward: bool) {
        let links = self.sel_links();
        if links.is_empty() {
            return;
        }
        let at = self
            .sel_link
            .and_then(|l| links.iter().position(|&x| x == l))
            .unwrap_or(0);
        let n = links.len();
        let next = if forward {
            (at + 1) % n
        } else {
            (at + n - 1) % n
        };
        self.sel_link = Some(links[next]);
    }

    fn move_layer(&mut self, right: bool) {
        let layer = self.topo.stages[self.sel].layer;
        let row = self.topo.layers[layer]
            .iter()
            .position(|&s| s == self.sel)
            .unwrap_or(0);
        let target = if right {
            layer + 1
        } else {
            layer.saturating_sub(1)
        };
        if let Some(l) = self.topo.layers.get(target) {
            if let Some(&s) = l.get(row.min(l.len().saturating_sub(1))) {
                self.select_stage(s);
            }
        }
    }

    fn move_row(&mut self, down: bool) {
        let layer = &self.topo.layers[self.topo.stages[self.sel].layer];
        let row = layer.iter().position(|&s| s == self.sel).unwrap_or(0);
        let next = if down {
            (row + 1).min(layer.len() - 1)
        } else {
            row.saturating_sub(1)
        };
        let s = layer[next];
        self.select_stage(s);
    }

    // ---- changes ---------------------------------------------------------------------

    fn change(&mut self, c: Change, what: String) {
        match self.source.apply(c) {
            Ok(()) => {
                self.message = Some((what, Tone::Change));
                self.refresh();
            }
            Err(e) => self.message = Some((format!("not changed: {e}"), Tone::Bad)),
        }
    }

    fn retune(&mut self, max_of: impl Fn(u64) -> u64, min_of: impl Fn(u64, u64) -> u64) {
        if let Err(e) = self.source.changeable() {
            self.message = Some((format!("not changed: {e}"), Tone::Bad));
            return;
        }
        let Some(l) = self.sel_link else {
            self.message = Some(("this stage has no subscription".into(), Tone::Bad));
            return;
        };
        let now = &self.state.links[l];
        let (Some(max), Some(min)) = (now.max_demand, now.min_demand) else {
            self.message = Some((
                "this subscription's demand is not known here".into(),
                Tone::Bad,
            ));
            return;
        };
        let new_max = max_of(max).clamp(1, 1 << 40);
        let new_min = min_of(new_max, min).min(new_max - 1);
        if (new_max, new_min) == (max, min) {
            self.message = Some(("already at its bound".into(), Tone::Normal));
            return;
        }
        let name = self.topo.link_name(l);
        self.change(
            Change::Demand {
                link: l,
                max_demand: new_max,
                min_demand: new_min,
            },
            format!("{name}: max_demand {new_max}, min_demand {new_min}"),
        );
    }

    fn save(&mut self) {
        let Some(t) = &self.text else {
            self.message = Some((
                "nothing to save: this view has no scenario file".into(),
                Tone::Bad,
            ));
            return;
        };
        let changes = match &self.source {
            Source::Sim(s) => s.stepper().changes().to_vec(),
            _ => Vec::new(),
        };
        let saved = crate::save::patched(
            &t.text,
            &t.file,
            self.topo.stages.len(),
            self.topo.links.len(),
            &changes,
        )
        .and_then(|text| crate::save::write_new(&t.dir, &t.stem, &text));
        self.message = Some(match saved {
            Ok(p) => (
                format!(
                    "saved the scenario with {} changes to {}",
                    changes.len(),
                    p.display()
                ),
                Tone::Change,
            ),
            Err(e) => (e, Tone::Bad),
        });
    }

    // ---- keys --------------------------------------------------------------------------

    /// Handles one key.
    pub fn key(&mut self, k: KeyEvent) {
        if k.kind == KeyEventKind::Release {
            return;
        }
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(k.code, KeyCode::Char('c')) {
            self.quit = true;
            return;
        }
        if self.help {
            // Any key closes the help (q still quits).
            self.help = false;
            if k.code == KeyCode::Char('q') {
                self.quit = true;
            }
            return;
        }
        let replay = matches!(self.source, Source::Replay(_));
        match k.code {
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Char('?') => self.help = true,
            KeyCode::Esc => {
                self.show_lesson = false;
                self.message = None;
            }
            KeyCode::Char('l') if self.lesson.is_some() => self.show_lesson = !self.show_lesson,
            KeyCode::Char(' ') => self.paused = !self.paused,
            KeyCode::Char('n') => {
                self.paused = true;
                match self.source.step() {
                    Ok(_) => self.refresh(),
                    Err(e) => self.fail(e),
                }
            }
            KeyCode::Char('+') | KeyCode::Char('=') => {
                self.speed = match self.speed {
                    Speed::Factor(f) => Speed::Factor((f * 2.0).min(1e6)),
                    Speed::Max => Speed::Max,
                }
            }
            KeyCode::Char('-') => {
                self.speed = match self.speed {
                    Speed::Factor(f) => Speed::Factor((f / 2.0).max(1e-9)),
                    Speed::Max => Speed::Factor(1.0),
                }
            }
            KeyCode::Char('f') => {
                self.speed = match self.speed {
                    Speed::Max => Speed::Factor(0.001),
                    Speed::Factor(_) => Speed::Max,
                }
            }
            KeyCode::Tab => {
                let n = self.topo.stages.len().max(1);
                self.select_stage((self.sel + 1) % n);
            }
            KeyCode::BackTab => {
                let n = self.topo.stages.len().max(1);
                self.select_stage((self.sel + n - 1) % n);
            }
            KeyCode::Right => self.move_layer(true),
            KeyCode::Left => self.move_layer(false),
            KeyCode::Down => self.move_row(true),
            KeyCode::Up => self.move_row(false),
            KeyCode::Char(']') => self.cycle_link(true),
            KeyCode::Char('[') => self.cycle_link(false),
            KeyCode::Char('>') if replay => self.seek(true),
            KeyCode::Char('<') if replay => self.seek(false),
            KeyCode::Home | KeyCode::Char('0') if replay => {
                if let Source::Replay(r) = &mut self.source {
                    r.seek_record(0);
                }
                self.after_seek();
            }
            KeyCode::End if replay => {
                if let Source::Replay(r) = &mut self.source {
                    let n = r.len();
                    r.seek_record(n);
                }
                self.after_seek();
            }
            KeyCode::Char('>') => self.retune(
                |m| m.saturating_mul(2),
                |new, min| {
                    // Keep min_demand's share of max_demand.
                    min.saturating_mul(2).min(new - 1)
                },
            ),
            KeyCode::Char('<') => {
                self.retune(|m| (m / 2).max(1), |new, min| (min / 2).min(new - 1))
            }
            KeyCode::Char('.') => self.retune(|m| m, |max, min| min + (max / 10).max(1)),
            KeyCode::Char(',') => {
                self.retune(|m| m, |max, min| min.saturating_sub((max / 10).max(1)))
            }
            KeyCode::Char('w') => self.slow(2.0),
            KeyCode::Char('W') => self.slow(0.5),
            KeyCode::Char('x') => {
                let name = self.topo.stages[self.sel].name.clone();
                self.change(Change::Crash { stage: self.sel }, format!("crashed {name}"));
            }
            KeyCode::Char('r') => {
                let name = self.topo.stages[self.sel].name.clone();
                self.change(
                    Change::Restart { stage: self.sel },
                    format!("restarting {name}"),
                );
            }
            KeyCode::Char('s') => self.save(),
            _ => {}
        }
    }

    fn slow(&mut self, factor: f64) {
        let name = self.topo.stages[self.sel].name.clone();
        let now = self.state.stages.get(self.sel).map_or(1.0, |s| s.slowdown) * factor;
        self.change(
            Change::Slow {
                stage: self.sel,
                factor,
            },
            format!("{name}: service times x{now} of its model's"),
        );
    }

    /// Moves a replay by a twentieth of its records.
    fn seek(&mut self, forward: bool) {
        if let Source::Replay(r) = &mut self.source {
            let step = (r.len() / 20).max(1);
            let at = r.position();
            r.seek_record(if forward {
                at.saturating_add(step)
            } else {
                at.saturating_sub(step)
            });
        }
        self.after_seek();
    }

    fn after_seek(&mut self) {
        self.last = None;
        self.next_sample = 0;
        self.log.clear();
        self.refresh();
    }

    /// Stops a threads run (on quit).
    pub fn stop(&mut self) {
        if let Source::Threads(t) = &mut self.source {
            t.stop();
        }
    }
}

/// The menu shown without a scenario: the lessons, then the default scenario.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Menu {
    /// The highlighted entry: 0..5 the lessons, 5 the default scenario.
    pub sel: usize,
}

/// What the menu chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// Lesson N (from 1).
    Lesson(usize),
    /// The embedded default scenario.
    Default,
    /// Leave.
    Quit,
}

impl Menu {
    /// Entries: the lessons and the default scenario.
    pub const ENTRIES: usize = crate::lessons::LESSONS.len() + 1;

    /// Handles a key; returns the choice once made.
    pub fn key(&mut self, k: KeyEvent) -> Option<Choice> {
        if k.kind == KeyEventKind::Release {
            return None;
        }
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        match k.code {
            KeyCode::Char('c') if ctrl => Some(Choice::Quit),
            KeyCode::Char('q') | KeyCode::Esc => Some(Choice::Quit),
            KeyCode::Up => {
                self.sel = self.sel.saturating_sub(1);
                None
            }
            KeyCode::Down | KeyCode::Tab => {
                self.sel = (self.sel + 1).min(Self::ENTRIES - 1);
                None
            }
            KeyCode::Char(c @ '1'..='9') => {
                let n = c as usize - '0' as usize;
                crate::lessons::lesson(n).map(|_| Choice::Lesson(n))
            }
            KeyCode::Char('d') => Some(Choice::Default),
            KeyCode::Enter => Some(if self.sel < crate::lessons::LESSONS.len() {
                Choice::Lesson(self.sel + 1)
            } else {
                Choice::Default
            }),
            _ => None,
        }
    }
}
