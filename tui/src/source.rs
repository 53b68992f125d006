//! Where the picture comes from: a simulated run stepped in virtual time, a trace played
//! back, or a run on real threads whose probes are sampled live. Each gives a [`State`]
//! of the same shape; what a source cannot know is `None` and drawn as `-`.

use std::sync::Arc;
use std::time::Instant;

use flowbench_engine::scenario::Scenario;
use flowbench_engine::threads::scenario::{spawn_scenario, ScenarioRunOptions};
use flowbench_engine::threads::{Running, StageProbe};
use flowbench_sim::{Change, Record, SimOptions, Stepper};

use crate::topo::Topo;

/// One stage now.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StageNow {
    /// Messages in its mailbox.
    pub mailbox: Option<u64>,
    /// Events in its producer buffer.
    pub buffered: Option<u64>,
    /// Events in its partition queues and input queue.
    pub queued: Option<u64>,
    /// Time spent serving so far, ns.
    pub busy_ns: Option<u64>,
    /// Service slots (a pool's width).
    pub slots: u64,
    /// Events emitted (a trace: sent) so far.
    pub emitted: u64,
    /// Events handled so far.
    pub handled: u64,
    /// Events dropped so far.
    pub dropped: u64,
    /// Events lost at it so far.
    pub lost: u64,
    /// How it ended, once it has.
    pub exit: Option<String>,
    /// The product of its slowdowns now.
    pub slowdown: f64,
}

/// One subscription now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkNow {
    /// Its `max_demand`, when known.
    pub max_demand: Option<u64>,
    /// Its `min_demand`, when known.
    pub min_demand: Option<u64>,
    /// Events asked for and not received yet.
    pub outstanding: u64,
}

/// Every stage and subscription at time `t_ns` (virtual, or wall on threads).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct State {
    /// The time, ns.
    pub t_ns: u64,
    /// Per stage.
    pub stages: Vec<StageNow>,
    /// Per subscription.
    pub links: Vec<LinkNow>,
}

/// A simulated run driven in virtual time.
pub struct SimSource<'s> {
    run: Stepper<'s>,
}

impl<'s> SimSource<'s> {
    /// A run of `scenario` with `opts`, keeping its records for the log.
    pub fn new(scenario: &'s Scenario, opts: &SimOptions) -> Result<Self, String> {
        Stepper::with_records(scenario, opts)
            .map(|run| SimSource { run })
            .map_err(|e| e.to_string())
    }

    /// The stepper itself.
    pub fn stepper(&self) -> &Stepper<'s> {
        &self.run
    }

    fn state(&self) -> State {
        let snap = self.run.snapshot();
        State {
            t_ns: snap.t_ns,
            stages: snap
                .stages
                .iter()
                .enumerate()
                .map(|(i, v)| StageNow {
                    mailbox: Some(v.mailbox),
                    buffered: Some(v.buffered),
                    queued: Some(v.queued),
                    busy_ns: Some(v.busy_ns),
                    slots: v.slots,
                    emitted: v.emitted,
                    handled: v.handled,
                    dropped: v.dropped,
                    lost: v.lost,
                    exit: v.exit.clone(),
                    slowdown: self.run.slowdown(i),
                })
                .collect(),
            links: snap
                .links
                .iter()
                .map(|l| LinkNow {
                    max_demand: Some(l.max_demand),
                    min_demand: Some(l.min_demand),
                    outstanding: l.outstanding,
                })
                .collect(),
        }
    }
}

/// A trace played back: the state at any record is rebuilt from the records, from the
/// nearest keyframe.
pub struct Replay {
    records: Vec<Record>,
    /// Records applied so far (the next one to apply).
    pos: usize,
    now: State,
    /// `(records applied, state)` every [`KEYFRAME`] records.
    keyframes: Vec<(usize, State)>,
    /// Link per record (by its stage names), found once.
    topo: Topo,
    view_t: u64,
}

/// Records between two keyframes of a replay.
pub const KEYFRAME: usize = 4096;

impl Replay {
    /// A replay of `records` (a whole trace) on `topo`.
    pub fn new(records: Vec<Record>, topo: Topo) -> Self {
        let now = State {
            t_ns: 0,
            stages: vec![
                StageNow {
                    slots: 1,
                    slowdown: 1.0,
                    ..StageNow::default()
                };
                topo.stages.len()
            ],
            links: topo
                .links
                .iter()
                .map(|l| LinkNow {
                    max_demand: l.demand.map(|d| d.0),
                    min_demand: l.demand.map(|d| d.1),
                    outstanding: 0,
                })
                .collect(),
        };
        let mut r = Replay {
            records,
            pos: 0,
            now,
            keyframes: Vec::new(),
            topo,
            view_t: 0,
        };
        // Keyframes up front: one pass over the trace, then any seek is at most
        // KEYFRAME records from one.
        r.keyframes.push((0, r.now.clone()));
        while r.pos < r.records.len() {
            r.apply_next();
            if r.pos.is_multiple_of(KEYFRAME) {
                r.keyframes.push((r.pos, r.now.clone()));
            }
        }
        r.restore(0);
        r
    }

    /// How many records the trace has.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the trace is empty.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Records applied so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    fn restore(&mut self, target: usize) {
        let k = self
            .keyframes
            .iter()
            .rev()
            .find(|(p, _)| *p <= target)
            .cloned()
            .unwrap_or((0, self.keyframes[0].1.clone()));
        self.pos = k.0;
        self.now = k.1;
        while self.pos < target.min(self.records.len()) {
            self.apply_next();
        }
    }

    /// Goes to the state after `n` records (back or forth).
    pub fn seek_record(&mut self, n: usize) {
        self.restore(n.min(self.records.len()));
        self.view_t = self.now.t_ns;
    }

    /// Goes to virtual time `t`: every record at or before it applied.
    pub fn seek_time(&mut self, t: u64) {
        let n = self.records.partition_point(|r| r.t_ns <= t);
        self.restore(n);
        self.view_t = t;
    }

    fn apply_next(&mut self) {
        let Some(r) = self.records.get(self.pos) else {
            return;
        };
        self.pos += 1;
        let topo = &self.topo;
        let st = &mut self.now;
        st.t_ns = r.t_ns;
        let idx = |n: &Option<String>| n.as_deref().and_then(|n| topo.stage(n));
        let link = |a: &Option<String>, b: &Option<String>| match (a, b) {
            (Some(a), Some(b)) => topo.link(a, b),
            _ => None,
        };
        let n = r.n.unwrap_or(0);
        match r.kind.as_str() {
            "ask" => {
                if let Some(l) = link(&r.to, &r.from) {
                    st.links[l].outstanding += n;
                    if st.links[l].max_demand.is_none() {
                        // The first ask of an automatic subscription is its max_demand.
                        st.links[l].max_demand = Some(n);
                    }
                }
            }
            "events" => {
                if let Some(l) = link(&r.from, &r.to) {
                    st.links[l].outstanding = st.links[l].outstanding.saturating_sub(n);
                }
                if let Some(p) = idx(&r.from) {
                    st.stages[p].emitted += n;
                }
            }
            "cancel" => {
                let l = link(&r.from, &r.to).or_else(|| link(&r.to, &r.from));
                if let Some(l) = l {
                    st.links[l].outstanding = 0;
                }
            }
            "handle" => {
                if let Some(s) = idx(&r.stage) {
                    st.stages[s].handled += n;
                }
            }
            "drop" => {
                if let Some(s) = idx(&r.stage) {
                    st.stages[s].dropped += n;
                }
            }
            "lost" => {
                if let Some(s) = idx(&r.stage) {
                    st.stages[s].lost += n;
                }
            }
            "crash" => {
                if let Some(s) = idx(&r.stage) {
                    st.stages[s].exit = Some(r.reason.clone().unwrap_or_default());
                }
            }
            "restart" => {
                if let Some(s) = idx(&r.stage) {
                    st.stages[s].exit = None;
                }
            }
            "retune" => {
                if let Some(l) = link(&r.from, &r.to) {
                    st.links[l].max_demand = r.max_demand;
                    st.links[l].min_demand = r.min_demand;
                }
            }
            "slow" => {
                if let (Some(s), Some(f)) = (idx(&r.stage), r.factor) {
                    st.stages[s].slowdown *= f;
                }
            }
            _ => {}
        }
    }

    /// The records applied from `from` to the current position.
    pub fn records_since(&self, from: usize) -> &[Record] {
        &self.records[from.min(self.pos)..self.pos]
    }
}

/// A run on real threads, its probes sampled live.
pub struct ThreadsSource {
    running: Option<Running>,
    probes: Vec<Arc<StageProbe>>,
    started: Instant,
    /// Wall time at the end, once every stage has stopped.
    ended: Option<u64>,
    /// How the run ended (or why it could not be joined).
    pub verdict: Option<String>,
    /// What the scenario says that threads do not model.
    pub limitations: Vec<String>,
}

impl ThreadsSource {
    /// Starts `scenario` on threads.
    pub fn start(scenario: &Scenario, opts: &ScenarioRunOptions) -> Result<Self, String> {
        let (running, limitations) = spawn_scenario(scenario, opts).map_err(|e| e.to_string())?;
        Ok(ThreadsSource {
            probes: running.probes().to_vec(),
            running: Some(running),
            started: Instant::now(),
            ended: None,
            verdict: None,
            limitations: limitations.iter().map(|l| l.to_string()).collect(),
        })
    }

    /// Joins the run once every stage has stopped (never blocks before that).
    fn poll(&mut self) {
        if self.ended.is_some() || !self.probes.iter().all(|p| p.stopped()) {
            return;
        }
        self.ended = Some(self.elapsed());
        if let Some(r) = self.running.take() {
            self.verdict = Some(match r.join() {
                Ok(out) => match &out.deadlock {
                    Some(d) => format!("stuck, {d}"),
                    None => "every stage has stopped".to_string(),
                },
                Err(e) => e.to_string(),
            });
        }
    }

    fn elapsed(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Stops the run in order (producers shut down) and waits for it.
    pub fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown();
            let _ = r.join();
        }
    }

    fn state(&mut self, scenario_links: usize) -> State {
        self.poll();
        let readings: Vec<_> = self.probes.iter().map(|p| p.read()).collect();
        let mut links = vec![LinkNow::default(); scenario_links];
        for r in &readings {
            for &(link, pending) in &r.pending {
                if let Some(l) = links.get_mut(link as usize) {
                    l.outstanding = pending;
                }
            }
        }
        State {
            t_ns: self.ended.unwrap_or_else(|| self.elapsed()),
            stages: readings
                .iter()
                .map(|r| StageNow {
                    mailbox: Some(r.mailbox_depth),
                    buffered: Some(r.buffered),
                    queued: None,
                    busy_ns: Some(r.busy_ns),
                    slots: 1,
                    emitted: r.emitted,
                    handled: r.handled,
                    dropped: r.dropped,
                    lost: 0,
                    exit: r.stopped.then(|| "stopped".to_string()),
                    slowdown: 1.0,
                })
                .collect(),
            links,
        }
    }
}

impl Drop for ThreadsSource {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One of the three sources.
pub enum Source<'s> {
    /// A simulated run.
    Sim(Box<SimSource<'s>>),
    /// A trace played back.
    Replay(Box<Replay>),
    /// A run on threads.
    Threads(Box<ThreadsSource>),
}

impl Source<'_> {
    /// Moves on to time `t` (virtual; wall on threads, where it is ignored).
    pub fn advance_to(&mut self, t: u64) -> Result<(), String> {
        match self {
            Source::Sim(s) => s.run.advance_to(t).map(|_| ()).map_err(|e| e.to_string()),
            Source::Replay(r) => {
                let n = r.records.partition_point(|x| x.t_ns <= t);
                if n >= r.pos {
                    while r.pos < n {
                        r.apply_next();
                    }
                    r.view_t = r.view_t.max(t);
                } else {
                    r.seek_time(t);
                }
                Ok(())
            }
            Source::Threads(_) => Ok(()),
        }
    }

    /// Handles one scheduled item (one record in a replay). `false` at the end.
    pub fn step(&mut self) -> Result<bool, String> {
        match self {
            Source::Sim(s) => s.run.step().map(|t| t.is_some()).map_err(|e| e.to_string()),
            Source::Replay(r) => {
                if r.pos >= r.records.len() {
                    return Ok(false);
                }
                r.apply_next();
                r.view_t = r.now.t_ns;
                Ok(true)
            }
            Source::Threads(_) => Ok(false),
        }
    }

    /// The time now.
    pub fn now(&self) -> u64 {
        match self {
            Source::Sim(s) => s.run.snapshot().t_ns,
            Source::Replay(r) => r.view_t.max(r.now.t_ns),
            Source::Threads(t) => t.ended.unwrap_or_else(|| t.elapsed()),
        }
    }

    /// Whether nothing more will happen (until a change gives a simulated run more).
    pub fn ended(&self) -> bool {
        match self {
            Source::Sim(s) => s.run.ended(),
            Source::Replay(r) => r.pos >= r.records.len(),
            Source::Threads(t) => t.ended.is_some(),
        }
    }

    /// The state now.
    pub fn state(&mut self, links: usize) -> State {
        match self {
            Source::Sim(s) => s.state(),
            Source::Replay(r) => {
                let mut st = r.now.clone();
                st.t_ns = r.view_t.max(st.t_ns);
                st
            }
            Source::Threads(t) => t.state(links),
        }
    }

    /// `Err(why)` unless this source takes changes (simulated runs only).
    pub fn changeable(&self) -> Result<(), String> {
        match self {
            Source::Sim(_) => Ok(()),
            Source::Replay(_) => Err(
                "a replay plays what was recorded: changes need a live run (without --replay)"
                    .into(),
            ),
            Source::Threads(_) => Err(
                "live changes need the simulator (--runtime sim); on threads the view only watches"
                    .into(),
            ),
        }
    }

    /// Makes a change (simulated runs only).
    pub fn apply(&mut self, change: Change) -> Result<(), String> {
        self.changeable()?;
        match self {
            Source::Sim(s) => s.run.apply(change).map_err(|e| e.to_string()),
            _ => Ok(()),
        }
    }

    /// The records since the last call, the newest `keep` of them, and how many older
    /// ones were not kept. `logged` is the replay position the last call reached.
    pub fn take_records(&mut self, keep: usize, logged: &mut usize) -> (u64, Vec<Record>) {
        match self {
            Source::Sim(s) => {
                let r = s.run.take_records(keep);
                (r.skipped, r.records)
            }
            Source::Replay(r) => {
                if *logged > r.pos {
                    // Moved back: the log starts again from here.
                    *logged = r.pos;
                }
                let new = r.records_since(*logged);
                let from = new.len().saturating_sub(keep);
                *logged = r.pos;
                (from as u64, new[from..].to_vec())
            }
            Source::Threads(_) => (0, Vec::new()),
        }
    }

    /// The runtime's name for the status line.
    pub fn label(&self) -> &'static str {
        match self {
            Source::Sim(_) => "sim",
            Source::Replay(_) => "replay",
            Source::Threads(_) => "threads",
        }
    }
}
