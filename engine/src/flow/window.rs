//! Windows and triggers: when a reduce hands out what it accumulated.
//!
//! Elixir Flow's `Flow.Window`: a reduce keeps one accumulator per window, per stage. A
//! window ends (trigger [`TriggerKind::Done`]) when it is over: at the end of the data
//! (global), every `n` events (count), when the clock passes its end (periodic), or when
//! every upstream stage has sent an event past its end (fixed, event time). A trigger can
//! also fire inside a window — every `n` events or every period — to emit partial
//! results; the accumulator is kept (default) or reset after it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::protocol::{LinkId, SubRef};

use super::ops::{Op, Out};
use super::StageInfo;

/// A clock for processing-time windows and triggers: the time since some start.
///
/// ```
/// use std::time::Duration;
/// use flowbench_engine::flow::{Clock, ManualClock};
///
/// let manual = ManualClock::new();
/// let clock = Clock::from(&manual);
/// manual.advance(Duration::from_millis(5));
/// assert_eq!(clock.now(), Duration::from_millis(5));
/// assert!(Clock::wall().now() < Duration::from_secs(3600));
/// ```
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> Duration + Send + Sync>);

impl Clock {
    /// Wall time since this call.
    pub fn wall() -> Self {
        let start = Instant::now();
        Clock(Arc::new(move || start.elapsed()))
    }

    /// Any function of time (it must not go backwards).
    pub fn from_fn(f: impl Fn() -> Duration + Send + Sync + 'static) -> Self {
        Clock(Arc::new(f))
    }

    /// The time now.
    pub fn now(&self) -> Duration {
        (self.0)()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Clock")
    }
}

/// A clock moved by hand: deterministic periodic windows in tests and demonstrations.
#[derive(Clone, Debug, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock at zero.
    pub fn new() -> Self {
        ManualClock::default()
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(nanos(d), Ordering::SeqCst);
    }

    /// Sets the clock to `t` (it is not checked to go forward).
    pub fn set(&self, t: Duration) {
        self.0.store(nanos(t), Ordering::SeqCst);
    }

    /// The time now.
    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::SeqCst))
    }
}

impl From<&ManualClock> for Clock {
    fn from(m: &ManualClock) -> Self {
        let m = m.clone();
        Clock::from_fn(move || m.now())
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Which window a trigger is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WindowId {
    /// The one window of all the data.
    Global,
    /// The `k`-th window of `n` events of this stage (from 0).
    Count(u64),
    /// The processing-time window `[k·period, (k+1)·period)` (from the clock's start).
    Periodic(u64),
    /// The event-time window that starts at `start`.
    Fixed {
        /// Its start, in the event-time unit of the window's function.
        start: Duration,
    },
}

/// Why a trigger fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TriggerKind {
    /// `n` more events reached the window ([`Window::trigger_every`]).
    Every(u64),
    /// A period passed ([`Window::trigger_periodically`]).
    Periodically,
    /// A fixed window's end passed, its lateness period has not
    /// ([`Window::allowed_lateness`]).
    Watermark,
    /// The window is over: its accumulator is discarded after this trigger.
    Done,
}

/// What a trigger hands to the reduce's emit function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TriggerInfo {
    /// This stage's index in its layer.
    pub stage: usize,
    /// The layer's number of stages.
    pub stages: usize,
    /// The window.
    pub window: WindowId,
    /// Why it fired.
    pub kind: TriggerKind,
}

impl TriggerInfo {
    /// `true` for [`TriggerKind::Done`]: the window's last trigger.
    pub fn is_done(&self) -> bool {
        self.kind == TriggerKind::Done
    }
}

type TimeFn<T> = Arc<dyn Fn(&T) -> Duration + Send + Sync>;

enum Kind<T> {
    Global,
    Count(u64),
    Periodic(Duration, Clock),
    Fixed {
        size: Duration,
        by: TimeFn<T>,
        lateness: Duration,
    },
}

impl<T> Clone for Kind<T> {
    fn clone(&self) -> Self {
        match self {
            Kind::Global => Kind::Global,
            Kind::Count(n) => Kind::Count(*n),
            Kind::Periodic(d, c) => Kind::Periodic(*d, c.clone()),
            Kind::Fixed { size, by, lateness } => Kind::Fixed {
                size: *size,
                by: Arc::clone(by),
                lateness: *lateness,
            },
        }
    }
}

/// How a reduce splits its events into windows and when it hands out results: Elixir
/// Flow's `Flow.Window`. Give it to [`Flow::window`](super::Flow::window) before
/// `reduce`.
///
/// ```
/// use std::time::Duration;
/// use flowbench_engine::flow::Window;
///
/// let every_10 = Window::<u64>::global().trigger_every(10);
/// let counts = Window::<u64>::count(100);
/// let minutes = Window::<(u64, String)>::fixed(Duration::from_secs(60), |e| Duration::from_millis(e.0))
///     .allowed_lateness(Duration::from_secs(5));
/// let ticks = Window::<u64>::periodic(Duration::from_secs(1)).trigger_periodically(Duration::from_millis(100));
/// # let _ = (every_10, counts, minutes, ticks);
/// ```
pub struct Window<T> {
    kind: Kind<T>,
    every: Option<u64>,
    periodically: Option<(Duration, Clock)>,
    reset: bool,
}

impl<T> Clone for Window<T> {
    fn clone(&self) -> Self {
        Window {
            kind: self.kind.clone(),
            every: self.every,
            periodically: self.periodically.clone(),
            reset: self.reset,
        }
    }
}

impl<T> fmt::Debug for Window<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl<T> Window<T> {
    /// One window over all the data; it is done when the data ends (the default).
    pub fn global() -> Self {
        Self::of(Kind::Global)
    }

    /// A new window every `n` events, per stage (`n` of 0 counts as 1). At the end the
    /// current window is handed out even if it is empty, as in Flow.
    pub fn count(n: u64) -> Self {
        Self::of(Kind::Count(n.max(1)))
    }

    /// Processing-time windows of `period` on the wall clock: an event belongs to the
    /// window in progress when it is handled. A window is handed out when the first
    /// event of a later window arrives, or at the end (there is no timer: a stage that
    /// receives nothing hands nothing out).
    pub fn periodic(period: Duration) -> Self {
        Self::of(Kind::Periodic(
            period.max(Duration::from_nanos(1)),
            Clock::wall(),
        ))
    }

    /// Event-time windows of `size`, by the time `by` reads from each event (any unit
    /// that fits a `Duration`, e.g. milliseconds since an epoch). Events are expected in
    /// time order from each upstream stage; a window is done when every upstream stage
    /// has sent an event at or past its end (or at the end of the data). Events for a
    /// window that is done are late and dropped, unless lateness is allowed.
    pub fn fixed(size: Duration, by: impl Fn(&T) -> Duration + Send + Sync + 'static) -> Self {
        Self::of(Kind::Fixed {
            size: size.max(Duration::from_nanos(1)),
            by: Arc::new(by),
            lateness: Duration::ZERO,
        })
    }

    fn of(kind: Kind<T>) -> Self {
        Window {
            kind,
            every: None,
            periodically: None,
            reset: false,
        }
    }

    /// Fixed windows: keep a window open `lateness` past its end. Its end fires a
    /// [`TriggerKind::Watermark`] trigger; events up to `lateness` late still count; the
    /// window is done when every upstream stage has passed `end + lateness`. Other
    /// windows ignore it.
    pub fn allowed_lateness(mut self, lateness: Duration) -> Self {
        if let Kind::Fixed { lateness: l, .. } = &mut self.kind {
            *l = lateness;
        }
        self
    }

    /// Also fires a trigger every `n` events of a window, per stage.
    pub fn trigger_every(mut self, n: u64) -> Self {
        self.every = Some(n.max(1));
        self
    }

    /// Also fires a trigger, for every window that changed, when `period` of wall time
    /// has passed since the last one; looked at after each batch a stage handles.
    pub fn trigger_periodically(mut self, period: Duration) -> Self {
        self.periodically = Some((period, Clock::wall()));
        self
    }

    /// Resets the accumulator after every trigger that is not `Done` (default: kept, so
    /// each trigger hands out the running total).
    pub fn reset_on_trigger(mut self) -> Self {
        self.reset = true;
        self
    }

    /// Uses `clock` instead of the wall clock for periodic windows and periodic
    /// triggers (a [`ManualClock`] makes them deterministic).
    pub fn clock(mut self, clock: Clock) -> Self {
        if let Kind::Periodic(_, c) = &mut self.kind {
            *c = clock.clone();
        }
        if let Some((_, c)) = &mut self.periodically {
            *c = clock;
        }
        self
    }

    pub(crate) fn describe(&self) -> String {
        let mut s = match &self.kind {
            Kind::Global => "global window".to_string(),
            Kind::Count(n) => format!("count window of {n}"),
            Kind::Periodic(d, _) => format!("periodic window of {d:?}"),
            Kind::Fixed { size, lateness, .. } if lateness.is_zero() => {
                format!("fixed window of {size:?}")
            }
            Kind::Fixed { size, lateness, .. } => {
                format!("fixed window of {size:?}, lateness {lateness:?}")
            }
        };
        if let Some(n) = self.every {
            s.push_str(&format!(", trigger every {n}"));
        }
        if let Some((d, _)) = &self.periodically {
            s.push_str(&format!(", trigger every {d:?}"));
        }
        if self.reset {
            s.push_str(", reset on trigger");
        }
        s
    }
}

pub(crate) type InitFn<A> = Arc<dyn Fn() -> A + Send + Sync>;
pub(crate) type FoldFn<T, A> = Arc<dyn Fn(&mut A, T) + Send + Sync>;
pub(crate) type EmitFn<A, E> = Arc<dyn Fn(&mut A, &TriggerInfo) -> Vec<E> + Send + Sync>;

struct Slot<A> {
    acc: A,
    since_trigger: u64,
    changed: bool,
    watermarked: bool,
}

impl<A> Slot<A> {
    fn new(acc: A) -> Self {
        Slot {
            acc,
            since_trigger: 0,
            changed: false,
            watermarked: false,
        }
    }
}

/// A reduce as one stage runs it: the open windows and their accumulators.
pub(crate) struct Reduce<T, A, E> {
    stage: usize,
    stages: usize,
    window: Window<T>,
    init: InitFn<A>,
    fold: FoldFn<T, A>,
    emit: EmitFn<A, E>,
    open: BTreeMap<u64, Slot<A>>,
    /// Count windows: the current window and its events so far.
    count_id: u64,
    count_seen: u64,
    /// Periodic windows: the latest window seen.
    periodic_id: u64,
    /// Fixed windows: windows below this are done; the latest event time per upstream.
    closed_below: u64,
    latest: Vec<(LinkId, u64)>,
    upstreams: usize,
    last_periodic: Duration,
}

impl<T, A, E> Reduce<T, A, E> {
    pub(crate) fn new(
        info: &StageInfo,
        window: Window<T>,
        init: InitFn<A>,
        fold: FoldFn<T, A>,
        emit: EmitFn<A, E>,
    ) -> Self {
        let last_periodic = window
            .periodically
            .as_ref()
            .map_or(Duration::ZERO, |(_, c)| c.now());
        Reduce {
            stage: info.index,
            stages: info.total,
            window,
            init,
            fold,
            emit,
            open: BTreeMap::new(),
            count_id: 0,
            count_seen: 0,
            periodic_id: 0,
            closed_below: 0,
            latest: Vec::new(),
            upstreams: info.upstreams.max(1),
            last_periodic,
        }
    }

    fn id_of(&self, key: u64) -> WindowId {
        match &self.window.kind {
            Kind::Global => WindowId::Global,
            Kind::Count(_) => WindowId::Count(key),
            Kind::Periodic(..) => WindowId::Periodic(key),
            Kind::Fixed { size, .. } => WindowId::Fixed {
                start: Duration::from_nanos(key.saturating_mul(nanos(*size))),
            },
        }
    }

    fn fire(&mut self, key: u64, kind: TriggerKind, out: Out<'_, E>) {
        let info = TriggerInfo {
            stage: self.stage,
            stages: self.stages,
            window: self.id_of(key),
            kind,
        };
        let reset = self.window.reset;
        let Some(slot) = self.open.get_mut(&key) else {
            return;
        };
        for e in (self.emit)(&mut slot.acc, &info) {
            out(e);
        }
        if kind == TriggerKind::Done {
            self.open.remove(&key);
        } else {
            slot.since_trigger = 0;
            slot.changed = false;
            if reset {
                slot.acc = (self.init)();
            }
        }
    }

    fn slot(&mut self, key: u64) -> &mut Slot<A> {
        let init = &self.init;
        self.open.entry(key).or_insert_with(|| Slot::new(init()))
    }

    /// Fixed windows: fire what every upstream has passed.
    fn advance_watermark(&mut self, out: Out<'_, E>) {
        let Kind::Fixed { size, lateness, .. } = &self.window.kind else {
            return;
        };
        if self.latest.len() < self.upstreams {
            return;
        }
        let (size, lateness) = (nanos(*size), nanos(*lateness));
        let mark = self.latest.iter().map(|l| l.1).min().unwrap_or(0);
        let end_of = |key: u64| key.saturating_add(1).saturating_mul(size);
        // Usually none: an empty Vec does not allocate.
        let passed: Vec<u64> = self
            .open
            .keys()
            .copied()
            .take_while(|&k| end_of(k) <= mark)
            .collect();
        for key in passed {
            let end = end_of(key);
            if end.saturating_add(lateness) <= mark {
                self.fire(key, TriggerKind::Done, out);
                self.closed_below = self.closed_below.max(key + 1);
            } else if let Some(slot) = self.open.get_mut(&key) {
                if !slot.watermarked {
                    slot.watermarked = true;
                    self.fire(key, TriggerKind::Watermark, out);
                }
            }
        }
        // A window that never got an event is done too once the mark passes it.
        let done_below = mark.saturating_sub(lateness) / size;
        self.closed_below = self.closed_below.max(done_below);
    }
}

impl<T: Send, A: Send, E: Send> Op<T, E> for Reduce<T, A, E> {
    fn event(&mut self, e: T, from: SubRef, out: Out<'_, E>) {
        let key = match &self.window.kind {
            Kind::Global => 0,
            Kind::Count(_) => self.count_id,
            Kind::Periodic(period, clock) => {
                let k = nanos(clock.now()) / nanos(*period);
                if k > self.periodic_id {
                    let old: Vec<u64> = self.open.keys().copied().filter(|&w| w < k).collect();
                    for w in old {
                        self.fire(w, TriggerKind::Done, out);
                    }
                    self.periodic_id = k;
                }
                self.periodic_id
            }
            Kind::Fixed { size, by, .. } => {
                let t = nanos(by(&e));
                let k = t / nanos(*size);
                match self.latest.iter_mut().find(|l| l.0 == from.link) {
                    Some(l) => l.1 = l.1.max(t),
                    None => self.latest.push((from.link, t)),
                }
                if k < self.closed_below {
                    // Late: dropped, as in Flow.
                    self.advance_watermark(out);
                    return;
                }
                k
            }
        };
        let Reduce {
            open, init, fold, ..
        } = self;
        let slot = open.entry(key).or_insert_with(|| Slot::new(init()));
        fold(&mut slot.acc, e);
        slot.since_trigger += 1;
        slot.changed = true;
        let since = slot.since_trigger;
        if self.window.every == Some(since) {
            self.fire(key, TriggerKind::Every(since), out);
        }
        if let Kind::Count(n) = self.window.kind {
            self.count_seen += 1;
            if self.count_seen == n {
                self.fire(key, TriggerKind::Done, out);
                self.count_id += 1;
                self.count_seen = 0;
            }
        }
        if matches!(self.window.kind, Kind::Fixed { .. }) {
            self.advance_watermark(out);
        }
    }

    fn after_chunk(&mut self, out: Out<'_, E>) {
        let Some((period, clock)) = &self.window.periodically else {
            return;
        };
        let now = clock.now();
        if now.saturating_sub(self.last_periodic) < *period {
            return;
        }
        self.last_periodic = now;
        let changed: Vec<u64> = self
            .open
            .iter()
            .filter(|(_, s)| s.changed)
            .map(|(&k, _)| k)
            .collect();
        for key in changed {
            self.fire(key, TriggerKind::Periodically, out);
        }
    }

    fn done(&mut self, out: Out<'_, E>) {
        match self.window.kind {
            Kind::Global => {
                self.slot(0);
            }
            Kind::Count(_) => {
                let k = self.count_id;
                self.slot(k);
            }
            _ => {}
        }
        let keys: Vec<u64> = self.open.keys().copied().collect();
        for key in keys {
            self.fire(key, TriggerKind::Done, out);
        }
    }
}
