//! One stage thread: a thin driver around the stage's [`StageCore`].
//!
//! It takes messages from its mailbox, lets the core handle them one at a time, calls the
//! stage's [`StageHook`] after each step, fires its timers and push arrivals when their
//! wall-clock time comes, and carries the core's messages to the other stages' mailboxes.
//! It decides nothing about demand, dispatch or accounting: that is the core's.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::sched::{Poll, StageTask, Waker};
use super::{guarded, Control, Mailbox, Shared, StageHook, StageProbe, StepInfo};
use crate::core::{Effects, Input, StageCore, StageStats, Status};
use crate::logic::Job;
use crate::observe::NoObserver;
use crate::protocol::{CancelReason, Downstream, LinkId, Outgoing, StageId, SubRef, Upstream};
use crate::report::StageFigures;
use crate::sync::{lock, thread, Ordering};

/// What a stage's mailbox carries.
pub(crate) enum Envelope<I> {
    Up(Upstream),
    Down(Downstream<I>),
    JobDone(SubRef),
    Shutdown,
    Crash(CancelReason),
    /// Stop where you are (a cut or a deadlock).
    Halt,
}

/// Sends upstream messages to a producer whatever its input type.
pub(crate) trait UpPort: Send + Sync {
    fn send_up(&self, m: Upstream) -> bool;
    fn send_shutdown(&self) -> bool;
    fn send_halt(&self) -> bool;
    fn set_waker(&self, w: Option<Waker>);
}

impl<I: Send> UpPort for Mailbox<Envelope<I>> {
    fn send_up(&self, m: Upstream) -> bool {
        self.send(Envelope::Up(m)).is_ok()
    }

    fn send_shutdown(&self) -> bool {
        self.send(Envelope::Shutdown).is_ok()
    }

    fn send_halt(&self) -> bool {
        self.send(Envelope::Halt).is_ok()
    }

    fn set_waker(&self, w: Option<Waker>) {
        Mailbox::set_waker(self, w);
    }
}

/// A producer's way to one consumer: the link, the consumer's mailbox, and the link's
/// dispatcher options (consumed when the core is built).
pub(crate) type DownPort<O> = (
    LinkId,
    Arc<Mailbox<Envelope<O>>>,
    crate::core::OutLinkConfig<O>,
);

/// A push producer's schedule of arrivals.
pub(crate) type PushFn<O> = Box<dyn FnMut() -> Option<(Duration, Vec<O>)> + Send>;

/// A consumer pool's job and how many may run at once.
pub(crate) struct PoolSpec<I> {
    pub job: Arc<dyn Job<I>>,
    pub width: usize,
}

/// A running pool: workers are started as the number of jobs in progress grows.
struct Pool<I> {
    spec: PoolSpec<I>,
    jobs: Arc<Mailbox<(SubRef, I)>>,
    workers: Vec<thread::JoinHandle<()>>,
    in_progress: usize,
}

/// Everything a runner is made of.
pub(crate) struct Parts<I, O> {
    pub name: String,
    pub id: StageId,
    pub core: StageCore<I, O>,
    pub mailbox: Arc<Mailbox<Envelope<I>>>,
    pub downs: Vec<(LinkId, Arc<Mailbox<Envelope<O>>>)>,
    pub ups: Vec<(LinkId, Arc<dyn super::runner::UpPort>)>,
    pub shared: Arc<Shared>,
    pub probe: Arc<StageProbe>,
    pub pool: Option<PoolSpec<I>>,
    pub push: Option<PushFn<O>>,
    pub timers: VecDeque<(Duration, Control)>,
    pub hook: Option<Box<dyn StageHook>>,
    /// Run by the worker pool (else on a thread of its own).
    pub pooled: bool,
}

pub(crate) struct Runner<I, O> {
    p: Parts<I, O>,
    pool: Option<Pool<I>>,
    fx: Effects<I, O>,
    next_arrival: Option<(Duration, Vec<O>)>,
    clock: BusyClock,
    /// Messages since the clock was last looked at for the run's cut.
    since_look: u32,
    local: VecDeque<Envelope<I>>,
    /// Stopped where it was (a cut or a deadlock), not by its core.
    halted: bool,
    started: bool,
    /// Marked idle for the watchdog when its last slice ended (on the worker pool).
    marked_idle: bool,
}

/// What one input did, for the hook: events handled or emitted, batches received or
/// `handle_demand` calls.
fn work(s: &StageStats) -> (u64, u64, u64) {
    (s.handled, s.emitted, s.batches_in + s.demand_calls)
}

impl<I: Send + 'static, O: Clone + Send + 'static> Runner<I, O> {
    pub(crate) fn new(mut p: Parts<I, O>) -> Self {
        let seed = u64::from(p.id);
        let pool = p.pool.take().map(|spec| Pool {
            spec,
            jobs: Arc::new(Mailbox::new()),
            workers: Vec::new(),
            in_progress: 0,
        });
        Runner {
            p,
            pool,
            fx: Effects::default(),
            next_arrival: None,
            clock: BusyClock::new(seed),
            since_look: 0,
            local: VecDeque::new(),
            halted: false,
            started: false,
            marked_idle: false,
        }
    }

    /// Handles the next message (or due timer or arrival); `None` when there is none.
    /// `look`: look at the clock for the run's cut.
    fn one(&mut self, look: bool) -> Option<Poll> {
        if self.p.core.is_stopped() || self.cut_due(look) {
            return Some(Poll::Done);
        }
        if self.fire_due() {
            return None;
        }
        // On the pool an empty mailbox is seen without its lock: a message sent after the
        // look finds the stage running and has its worker run it again.
        if self.local.is_empty()
            && ((self.p.pooled && self.p.mailbox.depth() == 0)
                || !self.p.mailbox.try_recv_all(&mut self.local))
        {
            return Some(Poll::Idle {
                deadline: self.next_deadline(),
            });
        }
        let env = self.local.pop_front()?;
        self.p.mailbox.processed(1);
        let input = match env {
            Envelope::Up(m) => Input::Up(m),
            Envelope::Down(m) => Input::Down(m),
            Envelope::JobDone(sub) => {
                if let Some(pool) = self.pool.as_mut() {
                    pool.in_progress = pool.in_progress.saturating_sub(1);
                }
                Input::JobDone { sub }
            }
            Envelope::Shutdown => Input::Shutdown,
            Envelope::Crash(r) => Input::Crash(r),
            Envelope::Halt => {
                self.halted = true;
                return Some(Poll::Done);
            }
        };
        self.step(input);
        None
    }

    /// When the stage must look again even without mail: its next timer or arrival.
    fn next_deadline(&self) -> Option<Instant> {
        self.pending().map(|d| self.p.shared.started + d)
    }

    /// The next timer or arrival.
    fn pending(&self) -> Option<Duration> {
        [
            self.next_arrival.as_ref().map(|a| a.0),
            self.p.timers.front().map(|t| t.0),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Nothing but mail can wake this stage: the watchdog may count it idle.
    fn only_mail_wakes(&self) -> bool {
        self.pending().is_none() && self.pool.as_ref().is_none_or(|p| p.in_progress == 0)
    }

    /// `true` once the run is halted: cut at its `until` time or stopped by the
    /// deadlock watchdog. Both send a halt, which wakes a stage waiting for mail; a busy
    /// stage also looks at the clock itself if `look` (see [`Runner::poll`]), so that it
    /// stops within microseconds of the cut.
    fn cut_due(&mut self, look: bool) -> bool {
        let shared = &self.p.shared;
        if look && shared.cut_at.is_some_and(|t| shared.started.elapsed() >= t) {
            shared.halted.store(true, Ordering::SeqCst);
        }
        if shared.halted.load(Ordering::SeqCst) {
            self.halted = true;
        }
        self.halted
    }

    /// Fires the earliest timer or arrival whose time has come, if any (one per call, so
    /// that a source whose arrivals outpace the stage cannot starve its mail or its
    /// timers). Returns `true` if it fired one.
    fn fire_due(&mut self) -> bool {
        if self.p.timers.is_empty() && self.next_arrival.is_none() {
            // Nothing timed: no clock read.
            return false;
        }
        let now = self.p.shared.started.elapsed();
        let timer_due = self.p.timers.front().is_some_and(|t| t.0 <= now);
        let arrival_due = self.next_arrival.as_ref().is_some_and(|a| a.0 <= now);
        let timer_first = match (self.p.timers.front(), self.next_arrival.as_ref()) {
            (Some(t), Some(a)) => t.0 <= a.0,
            _ => true,
        };
        if timer_due && (timer_first || !arrival_due) {
            let Some((_, what)) = self.p.timers.pop_front() else {
                return false;
            };
            let input = match what {
                Control::Forward => Input::Forward,
                Control::Crash(r) => Input::Crash(r),
                Control::Shutdown => {
                    self.next_arrival = None;
                    self.p.push = None;
                    Input::Shutdown
                }
            };
            self.step(input);
            return true;
        }
        if arrival_due {
            if let Some((_, events)) = self.next_arrival.take() {
                self.step(Input::Arrive(events));
                self.next_push();
            }
            return true;
        }
        false
    }

    /// Takes the next arrival from the push schedule; at its end, shuts the producer down
    /// (unless it has already stopped taking arrivals).
    fn next_push(&mut self) {
        if !self.p.core.takes_arrivals() {
            self.p.push = None;
            return;
        }
        let Some(push) = self.p.push.as_mut() else {
            return;
        };
        match guarded(push) {
            Ok(Some(a)) => self.next_arrival = Some(a),
            Ok(None) => {
                self.p.push = None;
                self.step(Input::Shutdown);
            }
            Err(msg) => {
                self.p.push = None;
                self.step(Input::Crash(CancelReason::error(format!(
                    "panic in the push schedule: {msg}"
                ))));
            }
        }
    }

    /// The core handles one input; then the hook runs, and the messages leave.
    fn step(&mut self, input: Input<I, O>) {
        // What the step did and when are only needed by a hook: no counter reads and no
        // clock read per message without one.
        let before = self
            .p
            .hook
            .is_some()
            .then(|| (work(self.p.core.stats()), Instant::now()));
        self.p.core.handle(input, &mut self.fx, &mut NoObserver);
        if let (Some(hook), Some(((h0, e0, b0), t0))) = (self.p.hook.as_mut(), before) {
            let (h1, e1, b1) = work(self.p.core.stats());
            let events = (h1 - h0).max(e1 - e0);
            let batches = b1 - b0;
            if events > 0 || batches > 0 {
                let info = StepInfo {
                    events,
                    batches,
                    progress: h1.max(e1),
                    at: t0.saturating_duration_since(self.p.shared.started),
                };
                let crash = match guarded(|| hook.after_step(&info)) {
                    Ok(c) => c,
                    Err(msg) => Some(CancelReason::error(format!("panic in a stage hook: {msg}"))),
                };
                if let Some(reason) = crash {
                    if !self.p.core.is_stopped() {
                        self.p
                            .core
                            .handle(Input::Crash(reason), &mut self.fx, &mut NoObserver);
                    }
                }
            }
        }
        self.route();
        // Probes once the mail taken at once is handled (and after every step while
        // nothing is queued): live for a reader, without a store per link per message.
        // On the pool the end of the slice publishes them.
        if self.local.is_empty() && !self.p.pooled {
            self.clock.lap();
            self.p.probe.publish(&self.p.core, self.clock.busy_ns);
        }
    }

    /// Carries the core's messages to their mailboxes and its jobs to the pool.
    fn route(&mut self) {
        for o in self.fx.out.drain(..) {
            match o {
                Outgoing::Up(m) => route_up(&self.p, m),
                Outgoing::Down(m) => {
                    let link = m.sub().link;
                    let Ok(i) = self.p.downs.binary_search_by_key(&link, |(l, _)| *l) else {
                        continue;
                    };
                    if let Err(Envelope::Down(Downstream::Events { batch, .. })) =
                        self.p.downs[i].1.send(Envelope::Down(m))
                    {
                        // After a cut the consumer stopped where it was: in flight.
                        let shared = &self.p.shared;
                        let to = if shared.halted.load(Ordering::SeqCst) {
                            &shared.in_flight
                        } else {
                            &shared.undeliverable
                        };
                        to[link as usize].fetch_add(batch.len() as u64, Ordering::Relaxed);
                    }
                }
            }
        }
        if let Some(pool) = self.pool.as_mut() {
            for job in self.fx.jobs.drain(..) {
                pool.in_progress += 1;
                if pool.in_progress > pool.workers.len() && pool.workers.len() < pool.spec.width {
                    let w = start_worker(
                        &self.p.name,
                        pool.workers.len(),
                        &pool.jobs,
                        &pool.spec.job,
                        &self.p.mailbox,
                    );
                    pool.workers.extend(w);
                }
                let _ = pool.jobs.send(job);
            }
        }
        self.fx.clear();
    }

    /// Stopped: refuses new mail, and lets the stopped core account for what is left
    /// (events are counted lost, late subscriptions are answered with a cancel).
    fn figures(&mut self) -> StageFigures {
        let exit = match self.p.core.status() {
            Status::Stopped(r) => r.clone(),
            _ => CancelReason::Normal,
        };
        *lock(&self.p.shared.exits[self.p.id as usize]) = Some(exit);
        let rest = self.p.mailbox.close();
        let local = std::mem::take(&mut self.local);
        let n = (local.len() + rest.len()) as u64;
        for env in local.into_iter().chain(rest) {
            if self.halted {
                // Cut where it stood: what it had not taken yet is in flight.
                if let Envelope::Down(Downstream::Events { sub, batch }) = env {
                    self.p.shared.in_flight[sub.link as usize]
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                }
                continue;
            }
            let input = match env {
                Envelope::Up(m) => Input::Up(m),
                Envelope::Down(m) => Input::Down(m),
                _ => continue,
            };
            self.p.core.handle(input, &mut self.fx, &mut NoObserver);
            self.route();
        }
        self.p.mailbox.processed(n);
        if let Some(pool) = self.pool.take() {
            pool.jobs.close();
            for w in pool.workers {
                let _ = w.join();
            }
        }
        self.p.probe.publish(&self.p.core, self.clock.busy_ns);
        let mut f = StageFigures::capture(&self.p.name, &self.p.core);
        f.mailbox_peak = self.p.mailbox.peak();
        // Sampled slices estimate: never more than the run has lasted.
        let lasted = ns_between(self.p.shared.started, Instant::now());
        f.busy_ns = self.clock.busy_ns.min(lasted);
        f
    }
}

impl<I: Send + 'static, O: Clone + Send + 'static> StageTask for Runner<I, O> {
    fn poll(&mut self, budget: usize) -> Poll {
        let me = self.p.id as usize;
        if std::mem::take(&mut self.marked_idle) {
            self.p.shared.watch.woke(me);
        }
        self.clock.begin(self.p.hook.is_some());
        if !self.started {
            self.started = true;
            self.step(Input::Start);
            self.next_push();
        }
        let mut n = 0;
        let polled = loop {
            if n >= budget {
                break Poll::Yield;
            }
            // The cut is looked for on the clock every 64 messages and after every step
            // of a stage with a hook (an emulated service time may have run into it), not
            // per message; an idle stage is woken by the cut's halt.
            self.since_look = (self.since_look + 1) % 64;
            let look = self.since_look == 0 || self.p.hook.is_some();
            if let Some(p) = self.one(look) {
                break p;
            }
            n += 1;
        };
        self.clock.end();
        if self.p.pooled {
            self.p.probe.publish(&self.p.core, self.clock.busy_ns);
            if matches!(polled, Poll::Idle { .. }) {
                // Marked before its worker lets it go idle; the next slice counts the
                // wake-up.
                self.p.shared.watch.waiting(me, self.only_mail_wakes());
                self.marked_idle = true;
            }
        }
        polled
    }

    fn last_slice_ns(&self) -> u64 {
        self.clock.last_slice_ns
    }

    fn wait(&mut self, deadline: Option<Instant>) {
        if deadline.is_some_and(|d| d <= Instant::now()) {
            // Something is already due: do not wait.
            return;
        }
        let shared = &self.p.shared;
        let me = self.p.id as usize;
        shared.watch.waiting(me, self.only_mail_wakes());
        self.p
            .mailbox
            .recv_all_spinning(&mut self.local, deadline, shared.spin);
        shared.watch.woke(me);
    }

    fn finish(&mut self) {
        let f = self.figures();
        let shared = Arc::clone(&self.p.shared);
        shared.stage_ended(self.p.id as usize, Ok(f));
    }

    fn failed(&mut self, what: String) {
        // Its neighbours must not wait for it forever: its mailbox is closed and its
        // consumers are told it is gone.
        drop(self.p.mailbox.close());
        let reason = CancelReason::error("the stage's thread panicked");
        for (link, mb) in &self.p.downs {
            let sub = SubRef::first(*link);
            let _ = mb.send(Envelope::Down(Downstream::Cancel {
                sub,
                reason: reason.clone(),
            }));
        }
        if let Some(pool) = self.pool.take() {
            // Its job workers must not wait for jobs forever either.
            drop(pool.jobs.close());
        }
        let shared = Arc::clone(&self.p.shared);
        shared.stage_ended(self.p.id as usize, Err(what));
    }
}

/// A stage's busy time, timed per slice of work rather than per message.
///
/// Two clock reads cost about as much as handling a message, so once a stage has run 1024
/// slices only one in 32, drawn at random (so that no periodic pattern of long and
/// short slices can bias it), is timed, and counts 32 times. A stage with a hook (an
/// emulated service time) reads the clock anyway: every slice of it is timed.
struct BusyClock {
    /// Busy nanoseconds so far (estimated once slices are sampled).
    busy_ns: u64,
    /// The length of the last slice, if it was timed (else 0).
    last_slice_ns: u64,
    /// When the current slice began, if it is timed.
    slice_at: Option<Instant>,
    /// When the current timed slice began or was last added to `busy_ns`.
    lap_at: Option<Instant>,
    slices: u64,
    /// xorshift64 state: a cheap, fixed-seed draw; the figure it estimates is not part
    /// of any run's semantics.
    draw: u64,
    /// What the current slice's time counts for.
    weight: u64,
}

impl BusyClock {
    /// Slices timed exactly before sampling starts.
    const EXACT: u64 = 1024;
    /// One slice in this many is timed after that (a clock read costs 25-30 ns on a
    /// VM's clock source: at one in eight, a `max_demand = 1` hand-off paid 5 % for it).
    const ONE_IN: u64 = 32;

    fn new(seed: u64) -> Self {
        BusyClock {
            busy_ns: 0,
            last_slice_ns: 0,
            slice_at: None,
            lap_at: None,
            slices: 0,
            draw: 0x9E37_79B9_7F4A_7C15 ^ seed,
            weight: 1,
        }
    }

    /// A slice begins; `always`: time it whatever the sampling says.
    fn begin(&mut self, always: bool) {
        self.slices += 1;
        let timed = if always || self.slices <= Self::EXACT {
            self.weight = 1;
            true
        } else {
            let mut x = self.draw;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.draw = x;
            self.weight = Self::ONE_IN;
            x.is_multiple_of(Self::ONE_IN)
        };
        self.slice_at = timed.then(Instant::now);
        self.lap_at = self.slice_at;
    }

    /// Adds the time since the slice began (or since the last lap) to the busy time, if
    /// the slice is timed; returns the time read.
    fn lap(&mut self) -> Option<Instant> {
        let t0 = self.lap_at?;
        let now = Instant::now();
        self.lap_at = Some(now);
        self.busy_ns = self
            .busy_ns
            .saturating_add(ns_between(t0, now).saturating_mul(self.weight));
        Some(now)
    }

    /// The slice ends.
    fn end(&mut self) {
        let end = self.lap();
        self.last_slice_ns = match (self.slice_at.take(), end) {
            (Some(a), Some(b)) => ns_between(a, b),
            _ => 0,
        };
        self.lap_at = None;
    }
}

fn ns_between(a: Instant, b: Instant) -> u64 {
    u64::try_from(b.saturating_duration_since(a).as_nanos()).unwrap_or(u64::MAX)
}

fn route_up<I: Send + 'static, O: Clone + Send + 'static>(p: &Parts<I, O>, m: Upstream) {
    let link = m.sub().link;
    let producer = p.shared.links[link as usize].0;
    if producer == p.id {
        // A refund the producer sends itself.
        let _ = p.mailbox.send(Envelope::Up(m));
        return;
    }
    let Some((_, port)) = p.ups.iter().find(|(l, _)| *l == link) else {
        return;
    };
    let subscribe = match &m {
        Upstream::Subscribe { sub } => Some(*sub),
        _ => None,
    };
    if !port.send_up(m) {
        if let Some(sub) = subscribe {
            // Subscribing to a stage that is gone: answer like a monitor.
            let reason = p.shared.exit_of(producer);
            let _ = p
                .mailbox
                .send(Envelope::Down(Downstream::Cancel { sub, reason }));
        }
    }
}

fn start_worker<I: Send + 'static>(
    name: &str,
    w: usize,
    jobs: &Arc<Mailbox<(SubRef, I)>>,
    job: &Arc<dyn Job<I>>,
    back: &Arc<Mailbox<Envelope<I>>>,
) -> Option<thread::JoinHandle<()>> {
    let jobs = Arc::clone(jobs);
    let job = Arc::clone(job);
    let back = Arc::clone(back);
    thread::Builder::new()
        .name(format!("{name}-worker-{w}"))
        .spawn(move || {
            while let Some((sub, e)) = jobs.recv_one() {
                let msg = match guarded(|| job.run_from(sub, e)) {
                    Ok(()) => Envelope::JobDone(sub),
                    Err(_) => Envelope::Crash(CancelReason::error("panic in a pool job")),
                };
                let _ = back.send(msg);
            }
        })
        .ok()
}

#[cfg(test)]
mod tests {
    use super::BusyClock;

    #[test]
    fn busy_clock_times_every_slice_first_then_about_one_in_32() {
        let mut c = BusyClock::new(3);
        let mut timed = 0u64;
        let n = BusyClock::EXACT + 320_000;
        for i in 1..=n {
            c.begin(false);
            let t = c.slice_at.is_some();
            if i <= BusyClock::EXACT {
                assert!(t, "slice {i} is timed");
                assert_eq!(c.weight, 1);
            } else {
                assert_eq!(c.weight, BusyClock::ONE_IN);
                timed += u64::from(t);
            }
            c.end();
            assert!(c.slice_at.is_none() && c.lap_at.is_none());
        }
        // 320 000 draws: one in 32 is 10 000; a broken draw (always or never, or a
        // short cycle) is far from it.
        assert!((9_000..=11_000).contains(&timed), "{timed} of 320000 timed");
        // A stage with a hook is timed every slice, with weight 1.
        c.begin(true);
        assert!(c.slice_at.is_some());
        assert_eq!(c.weight, 1);
    }
}
