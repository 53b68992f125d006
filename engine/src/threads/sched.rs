//! The worker pool: stages as tasks on a few worker threads.
//!
//! A stage is a [`Task`]: its driver (a [`StageTask`]) and a small state machine that says
//! whether it is idle, waiting in a run queue, running, or running and sent more mail.
//! Sending a message to an idle stage's mailbox *schedules* it: the sender moves it to
//! `SCHEDULED` and pushes it on a run queue; a stage is in at most one queue at a time and
//! run by one worker at a time. A worker runs a stage for a bounded budget of messages
//! ([`BUDGET`], like the BEAM's reductions), then puts it at the back of the global queue
//! if it has mail left, so no stage can keep a worker to itself.
//!
//! Run queues: each worker has a LIFO deque (the stage it just woke runs next, while its
//! mail is warm in the cache), idle workers steal from the other end of the others'
//! deques, and stages woken from outside a worker (a pool job, a dedicated thread) or
//! that used up their budget go to a global FIFO injector. Every 61st pick a worker takes
//! the oldest work first, so a pair of stages handing messages back and forth cannot
//! starve a third.
//!
//! No lost wake-ups: a stage that finds its mailbox empty returns [`Poll::Idle`]; the
//! worker then moves it from `RUNNING` to `IDLE` with a compare-and-swap, and a sender that
//! came in between has turned `RUNNING` into `NOTIFIED`, so the swap fails and the stage is
//! queued again. An idle worker spins briefly, then sleeps on a condition variable after it
//! has announced itself (`sleeping`) and looked at the queues once more; a sender pushes,
//! then looks at `sleeping` (both behind `SeqCst` fences), so either the sender sees the
//! sleeper and rings, or the sleeper sees the work. The loom models in `loom_models.rs`
//! check both protocols and show that a broken variant is caught.
//!
//! Timers (a stage's next arrival or timer) are a heap shared by the workers: a stage that
//! goes idle with a deadline registers it, a sleeping worker sleeps no longer than the
//! earliest one, and a due timer schedules its stage. (The run's cut is not a stage timer:
//! one thread halts every stage when it comes.)

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use crate::sync::{fence, lock, AtomicBool, AtomicU64, AtomicUsize, Condvar, Mutex, Ordering};

/// Messages a stage handles before it yields its worker.
pub(crate) const BUDGET: usize = 64;

/// A slice longer than this spills the worker's slot to its deque.
const LONG_SLICE_NS: u64 = 20_000;

/// What one slice of a stage's work ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Poll {
    /// The budget ran out; there may be mail left.
    Yield,
    /// The mailbox is empty: nothing to do until mail comes or `deadline` passes.
    Idle {
        /// When a timer or an arrival is due.
        deadline: Option<Instant>,
    },
    /// The stage has stopped.
    Done,
}

/// A stage's driver, run by a worker (or by a thread of its own).
pub(crate) trait StageTask: Send {
    /// Handles at most `budget` messages (timers and arrivals count as messages).
    fn poll(&mut self, budget: usize) -> Poll;
    /// How long the last `poll` took, in nanoseconds.
    fn last_slice_ns(&self) -> u64;
    /// On a thread of its own: blocks until mail comes or `deadline` passes.
    fn wait(&mut self, deadline: Option<Instant>);
    /// Stopped: accounts for what is left and reports the stage's figures.
    fn finish(&mut self);
    /// `poll` or `finish` panicked (a bug of the runtime): tells the neighbours and
    /// reports the failure.
    fn failed(&mut self, what: String);
}

/// Drives a stage on a thread of its own until it stops.
pub(crate) fn drive_on_thread(task: &mut dyn StageTask) {
    let driven = guarded(|| {
        loop {
            match task.poll(usize::MAX) {
                Poll::Done => break,
                Poll::Yield => {}
                Poll::Idle { deadline } => task.wait(deadline),
            }
        }
        task.finish();
    });
    if let Err(what) = driven {
        task.failed(what);
    }
}

/// Runs `f`, turning a panic into its message.
pub(crate) fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| panic_text(p.as_ref()))
}

pub(crate) fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_string())
}

const IDLE: usize = 0;
const SCHEDULED: usize = 1;
const RUNNING: usize = 2;
const NOTIFIED: usize = 3;
const DONE: usize = 4;

/// A stage as the pool sees it.
pub(crate) struct Task {
    id: usize,
    state: AtomicUsize,
    body: Mutex<Option<Box<dyn StageTask>>>,
    /// The wake-up time registered in the timer heap (ns since the start), `u64::MAX`
    /// for none. Written under the heap's lock; read without it, so that a stage going
    /// idle with the deadline it already registered takes no lock.
    timer_at: AtomicU64,
}

/// How a mailbox wakes its stage: the stage's task and the pool that runs it.
pub(crate) struct Waker {
    pub task: Arc<Task>,
    pub sched: Arc<Sched>,
}

impl Waker {
    /// Schedules the stage if it is idle (mail has come).
    pub(crate) fn wake(&self) {
        self.sched.notify(&self.task);
    }
}

struct SleepState {
    /// (due, task), earliest first; entries whose time is no longer the task's
    /// `timer_at` are stale.
    timers: BinaryHeap<Reverse<(u64, usize)>>,
}

impl SleepState {
    /// The earliest registered time, `u64::MAX` for none.
    fn earliest(&self) -> u64 {
        self.timers.peek().map_or(u64::MAX, |Reverse((at, _))| *at)
    }
}

/// The pool's shared state.
pub(crate) struct Sched {
    tasks: Vec<Arc<Task>>,
    queue: RunQueue,
    sleep: Mutex<SleepState>,
    bell: Condvar,
    sleeping: AtomicUsize,
    searching: AtomicUsize,
    stop: AtomicBool,
    started: Instant,
    /// The earliest registered timer (ns since `started`), `u64::MAX` for none.
    next_timer: AtomicU64,
    /// Whether an idle worker spins before it sleeps (workers do not outnumber cores).
    spin: bool,
    /// A deliberate bug, for the loom models that show loom catches it.
    #[cfg(flowbench_loom)]
    pub(crate) flaw: Flaw,
}

/// Deliberate bugs the loom models plant to show they are caught.
#[cfg(flowbench_loom)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flaw {
    None,
    /// A stage that found no mail is stored `IDLE` without the compare-and-swap, losing a
    /// `NOTIFIED` mark set meanwhile.
    IdleWithoutSwap,
    /// A worker sleeps without looking at the queues after it announced itself.
    SleepWithoutLooking,
}

/// How many rounds an idle worker looks for work before it sleeps.
#[cfg(not(flowbench_loom))]
const SPIN_ROUNDS: u32 = 200;
#[cfg(flowbench_loom)]
const SPIN_ROUNDS: u32 = 1;

impl Sched {
    /// A pool for `stages` tasks (bodies set later with [`Sched::set_body`]) and
    /// `workers` workers; returns the workers' local queues too.
    pub(crate) fn new(
        stages: usize,
        workers: usize,
        started: Instant,
        spin: bool,
    ) -> (Arc<Sched>, Vec<Local>) {
        let (queue, locals) = RunQueue::new(workers.max(1));
        let tasks = (0..stages)
            .map(|id| {
                Arc::new(Task {
                    id,
                    state: AtomicUsize::new(IDLE),
                    body: Mutex::new(None),
                    timer_at: AtomicU64::new(u64::MAX),
                })
            })
            .collect();
        let sched = Sched {
            tasks,
            queue,
            sleep: Mutex::new(SleepState {
                timers: BinaryHeap::new(),
            }),
            bell: Condvar::new(),
            sleeping: AtomicUsize::new(0),
            searching: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            started,
            next_timer: AtomicU64::new(u64::MAX),
            spin,
            #[cfg(flowbench_loom)]
            flaw: Flaw::None,
        };
        (Arc::new(sched), locals)
    }

    /// The task of stage `i`.
    pub(crate) fn task(&self, i: usize) -> &Arc<Task> {
        &self.tasks[i]
    }

    /// Gives stage `i` its driver.
    pub(crate) fn set_body(&self, i: usize, body: Box<dyn StageTask>) {
        *lock(&self.tasks[i].body) = Some(body);
    }

    /// Schedules `t` unless it is already scheduled (or done); a running task is marked
    /// so that its worker runs it again.
    pub(crate) fn notify(&self, t: &Task) {
        let mut s = t.state.load(Ordering::SeqCst);
        let next = loop {
            let next = match s {
                IDLE => SCHEDULED,
                RUNNING => NOTIFIED,
                _ => return,
            };
            match t
                .state
                .compare_exchange_weak(s, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => break next,
                Err(now) => s = now,
            }
        };
        if next == SCHEDULED && self.queue.push(t.id) {
            self.wake_one();
        }
    }

    /// Rings for a sleeping worker if there is one and no worker is looking for work.
    fn wake_one(&self) {
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst) > 0 && self.searching.load(Ordering::SeqCst) == 0 {
            let _g = lock(&self.sleep);
            self.bell.notify_one();
        }
    }

    /// Worker `me`'s loop, until [`Sched::shutdown`].
    pub(crate) fn work(&self, me: usize, local: Local) {
        self.queue.enter(me, local);
        let mut tick = 0u32;
        while !self.stop.load(Ordering::SeqCst) {
            self.fire_timers();
            tick = tick.wrapping_add(1);
            if let Some(id) = self.queue.pop(me, tick).or_else(|| self.idle(me)) {
                self.run(id);
            }
        }
        self.queue.leave();
    }

    /// Runs one slice of stage `id`.
    pub(crate) fn run(&self, id: usize) {
        let t = &*self.tasks[id];
        t.state.store(RUNNING, Ordering::SeqCst);
        let mut body = lock(&t.body);
        let Some(b) = body.as_mut() else {
            // Only a done task has no body, and a done task is never queued.
            t.state.store(DONE, Ordering::SeqCst);
            return;
        };
        let polled = guarded(|| b.poll(BUDGET));
        if b.last_slice_ns() > LONG_SLICE_NS && self.queue.spill() {
            // The stages it woke have waited a long slice behind it: let another
            // worker take them.
            self.wake_one();
        }
        match polled {
            Ok(Poll::Yield) => {
                drop(body);
                t.state.store(SCHEDULED, Ordering::SeqCst);
                self.queue.push_global(id);
                self.wake_one();
            }
            Ok(Poll::Idle { deadline }) => {
                if let Some(d) = deadline {
                    self.add_timer(t, d);
                }
                drop(body);
                #[cfg(flowbench_loom)]
                if self.flaw == Flaw::IdleWithoutSwap {
                    t.state.store(IDLE, Ordering::SeqCst);
                    return;
                }
                if t.state
                    .compare_exchange(RUNNING, IDLE, Ordering::SeqCst, Ordering::SeqCst)
                    .is_err()
                {
                    // Mail came after it looked: run it again.
                    t.state.store(SCHEDULED, Ordering::SeqCst);
                    if self.queue.push(id) {
                        self.wake_one();
                    }
                }
            }
            Ok(Poll::Done) => {
                t.state.store(DONE, Ordering::SeqCst);
                if let Err(what) = guarded(|| b.finish()) {
                    b.failed(what);
                }
                *body = None;
            }
            Err(what) => {
                t.state.store(DONE, Ordering::SeqCst);
                b.failed(what);
                *body = None;
            }
        }
    }

    fn has_work(&self) -> bool {
        !self.queue.is_empty()
    }

    /// No task found: look again for a while (at last in the other workers' slots),
    /// then sleep until work, a timer or the stop.
    fn idle(&self, me: usize) -> Option<usize> {
        if self.spin {
            self.searching.fetch_add(1, Ordering::SeqCst);
            let mut step = 1u32;
            for _ in 0..SPIN_ROUNDS {
                if self.has_work() || self.timer_due() {
                    break;
                }
                for _ in 0..step {
                    std::hint::spin_loop();
                }
                step = (step * 2).min(64);
            }
            self.searching.fetch_sub(1, Ordering::SeqCst);
        }
        if let Some(t) = self.queue.steal_slot(me) {
            return Some(t);
        }
        let g = lock(&self.sleep);
        self.sleeping.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        #[cfg(flowbench_loom)]
        let looks = self.flaw != Flaw::SleepWithoutLooking;
        #[cfg(not(flowbench_loom))]
        let looks = true;
        if looks && (self.has_work() || self.stop.load(Ordering::SeqCst) || self.timer_due()) {
            self.sleeping.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        let g = match Some(g.earliest()).filter(|&at| at != u64::MAX) {
            None => match self.bell.wait(g) {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            },
            Some(at) => {
                let wait = std::time::Duration::from_nanos(at.saturating_sub(self.now_ns()));
                match self.bell.wait_timeout(g, wait) {
                    Ok((g, _)) => g,
                    Err(p) => p.into_inner().0,
                }
            }
        };
        self.sleeping.fetch_sub(1, Ordering::SeqCst);
        drop(g);
        None
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX - 1)
    }

    fn timer_due(&self) -> bool {
        let next = self.next_timer.load(Ordering::SeqCst);
        next != u64::MAX && self.now_ns() >= next
    }

    /// Registers `t`'s next deadline (keeps an earlier one).
    fn add_timer(&self, t: &Task, at: Instant) {
        let ns = u64::try_from(at.saturating_duration_since(self.started).as_nanos())
            .unwrap_or(u64::MAX - 1);
        if ns >= t.timer_at.load(Ordering::SeqCst) {
            // Already due as early: no lock.
            return;
        }
        let mut g = lock(&self.sleep);
        if ns >= t.timer_at.load(Ordering::SeqCst) {
            return;
        }
        t.timer_at.store(ns, Ordering::SeqCst);
        g.timers.push(Reverse((ns, t.id)));
        let earliest = g.earliest();
        self.next_timer.store(earliest, Ordering::SeqCst);
        if earliest == ns && self.sleeping.load(Ordering::SeqCst) > 0 {
            // A sleeper may sleep past it: let it recompute its timeout.
            self.bell.notify_one();
        }
    }

    /// Schedules the stages whose timers are due.
    fn fire_timers(&self) {
        if !self.timer_due() {
            return;
        }
        let now = self.now_ns();
        let mut due = Vec::new();
        {
            let mut g = lock(&self.sleep);
            while let Some(&Reverse((at, id))) = g.timers.peek() {
                if at > now {
                    break;
                }
                g.timers.pop();
                let timer_at = &self.tasks[id].timer_at;
                if timer_at.load(Ordering::SeqCst) == at {
                    timer_at.store(u64::MAX, Ordering::SeqCst);
                    due.push(id);
                }
            }
            self.next_timer.store(g.earliest(), Ordering::SeqCst);
        }
        for id in due {
            self.notify(&self.tasks[id]);
        }
    }

    /// Stops the workers (once every stage has stopped).
    pub(crate) fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _g = lock(&self.sleep);
        self.bell.notify_all();
    }
}

#[cfg(not(flowbench_loom))]
mod queue {
    use std::cell::RefCell;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use crossbeam_deque::{Injector, Steal, Stealer, Worker};
    use crossbeam_utils::CachePadded;

    /// A worker's own deque of stage ids.
    pub(crate) type Local = Worker<usize>;

    /// An empty slot.
    const NONE: usize = usize::MAX;

    /// Steals until the steal succeeds or finds nothing (a lost race is retried).
    fn settle(steal: impl Fn() -> Steal<usize>) -> Option<usize> {
        std::iter::repeat_with(steal)
            .find(|s| !s.is_retry())
            .and_then(Steal::success)
    }

    static NEXT_POOL: AtomicUsize = AtomicUsize::new(0);

    /// What a worker thread keeps to itself.
    struct Mine {
        pool: usize,
        me: usize,
        deque: Local,
    }

    thread_local! {
        static LOCAL: RefCell<Option<Mine>> = const { RefCell::new(None) };
    }

    /// A worker's slot: the id of the stage it runs next, or [`NONE`]. Only its worker
    /// puts a stage in; anyone may take one out (with a swap, so that one taker gets it).
    struct Slot(CachePadded<AtomicUsize>);

    impl Slot {
        fn take(&self) -> Option<usize> {
            if self.0.load(Ordering::Relaxed) == NONE {
                // Nobody but its worker fills a slot: empty stays empty for a taker.
                return None;
            }
            Some(self.0.swap(NONE, Ordering::AcqRel)).filter(|&id| id != NONE)
        }

        /// Its worker puts `id` in; returns the stage it displaces.
        fn put(&self, id: usize) -> Option<usize> {
            if self.0.load(Ordering::Relaxed) == NONE {
                // Only this worker fills the slot, so it is still empty: a plain store
                // (a taker that swaps meanwhile finds `NONE` or this id, never both).
                self.0.store(id, Ordering::Release);
                return None;
            }
            Some(self.0.swap(id, Ordering::AcqRel)).filter(|&old| old != NONE)
        }
    }

    /// The global injector, every worker's stealer and every worker's slot. The queues
    /// hold stage ids (indices into the pool's tasks), so that queueing a stage moves no
    /// reference count.
    ///
    /// A worker's slot holds the stage it woke last: that stage runs next on the same
    /// worker, while its mail is warm in the core's cache, instead of being stolen by an
    /// idle worker the moment it is pushed (which makes a `max_demand = 1` pipeline bounce
    /// between cores on every message). The stage it displaces goes to the deque, where
    /// idle workers steal it; an idle worker takes a slot only once it has looked for other
    /// work for a while, and a long slice spills the slot to the deque.
    pub(crate) struct RunQueue {
        id: usize,
        injector: Injector<usize>,
        stealers: Vec<Stealer<usize>>,
        slots: Vec<Slot>,
    }

    impl RunQueue {
        pub(crate) fn new(workers: usize) -> (RunQueue, Vec<Local>) {
            let locals: Vec<Local> = (0..workers).map(|_| Worker::new_lifo()).collect();
            let q = RunQueue {
                id: NEXT_POOL.fetch_add(1, Ordering::Relaxed),
                injector: Injector::new(),
                stealers: locals.iter().map(Worker::stealer).collect(),
                slots: (0..workers)
                    .map(|_| Slot(CachePadded::new(AtomicUsize::new(NONE))))
                    .collect(),
            };
            (q, locals)
        }

        pub(crate) fn enter(&self, me: usize, local: Local) {
            LOCAL.with(|l| {
                *l.borrow_mut() = Some(Mine {
                    pool: self.id,
                    me,
                    deque: local,
                })
            });
        }

        pub(crate) fn leave(&self) {
            if let Some(m) = LOCAL.with(|l| l.borrow_mut().take()) {
                self.slots[m.me].take();
            }
        }

        /// On one of this pool's workers: its slot (the previous occupant to its deque);
        /// elsewhere: the injector. `true` if another worker can take the work now.
        pub(crate) fn push(&self, id: usize) -> bool {
            LOCAL.with(|l| match l.try_borrow().ok().as_deref() {
                Some(Some(m)) if m.pool == self.id => {
                    if let Some(old) = self.slots[m.me].put(id) {
                        m.deque.push(old);
                    }
                    // One stage waiting behind this worker's slice is not worth a
                    // sleeper's wake-up (microseconds); a backlog is.
                    m.deque.len() > 1
                }
                _ => {
                    self.injector.push(id);
                    true
                }
            })
        }

        /// To the back of the global queue (a stage that used up its budget).
        pub(crate) fn push_global(&self, id: usize) {
            self.injector.push(id);
        }

        /// Moves this worker's slot to its deque, where others can steal it; `true` if
        /// its deque now holds more than this worker takes next (the slot's stage, which
        /// it pops first): only then does a sleeper's wake-up buy parallel work rather
        /// than a worker that wakes, finds nothing and sleeps again.
        pub(crate) fn spill(&self) -> bool {
            LOCAL.with(|l| match l.try_borrow().ok().as_deref() {
                Some(Some(m)) if m.pool == self.id => {
                    if let Some(id) = self.slots[m.me].take() {
                        m.deque.push(id);
                    }
                    m.deque.len() > 1
                }
                _ => false,
            })
        }

        pub(crate) fn pop(&self, me: usize, tick: u32) -> Option<usize> {
            LOCAL.with(|l| {
                let b = l.borrow();
                let m = b.as_ref()?;
                if tick.is_multiple_of(61) {
                    // The oldest work first, now and then: a pair of stages waking each
                    // other through the slot cannot starve the rest (tested in
                    // `tests/pool.rs`).
                    if let Some(id) = self.steal_global(&m.deque).or_else(|| self.steal_one(me)) {
                        return Some(id);
                    }
                }
                self.slots[me]
                    .take()
                    .or_else(|| m.deque.pop())
                    .or_else(|| self.steal_global(&m.deque))
                    .or_else(|| self.steal_others(me))
            })
        }

        /// An idle worker's last look: another worker's slot.
        pub(crate) fn steal_slot(&self, me: usize) -> Option<usize> {
            let n = self.slots.len();
            (1..n).find_map(|k| self.slots[(me + k) % n].take())
        }

        fn steal_global(&self, w: &Local) -> Option<usize> {
            settle(|| self.injector.steal_batch_and_pop(w))
        }

        fn steal_one(&self, from: usize) -> Option<usize> {
            settle(|| self.stealers[from].steal())
        }

        fn steal_others(&self, me: usize) -> Option<usize> {
            let n = self.stealers.len();
            (1..n).find_map(|k| self.steal_one((me + k) % n))
        }

        pub(crate) fn is_empty(&self) -> bool {
            self.injector.is_empty() && self.stealers.iter().all(Stealer::is_empty)
        }
    }
}

/// Under loom: one locked FIFO of stage ids (crossbeam's deques are not
/// loom-instrumented); the models check the scheduling and parking protocols around it.
#[cfg(flowbench_loom)]
mod queue {
    use std::collections::VecDeque;

    use crate::sync::{lock, Mutex};

    pub(crate) type Local = ();

    pub(crate) struct RunQueue {
        q: Mutex<VecDeque<usize>>,
    }

    impl RunQueue {
        pub(crate) fn new(workers: usize) -> (RunQueue, Vec<Local>) {
            let q = RunQueue {
                q: Mutex::new(VecDeque::new()),
            };
            (q, vec![(); workers])
        }
        pub(crate) fn enter(&self, _me: usize, _local: Local) {}
        pub(crate) fn leave(&self) {}
        pub(crate) fn push(&self, id: usize) -> bool {
            lock(&self.q).push_back(id);
            true
        }
        pub(crate) fn push_global(&self, id: usize) {
            self.push(id);
        }
        pub(crate) fn spill(&self) -> bool {
            false
        }
        pub(crate) fn steal_slot(&self, _me: usize) -> Option<usize> {
            None
        }
        pub(crate) fn pop(&self, _me: usize, _tick: u32) -> Option<usize> {
            lock(&self.q).pop_front()
        }
        pub(crate) fn is_empty(&self) -> bool {
            lock(&self.q).is_empty()
        }
    }
}

pub(crate) use queue::{Local, RunQueue};

#[cfg(all(test, not(flowbench_loom)))]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::{Poll, Sched, StageTask};

    /// A stage whose driver panics in its first slice (a runtime bug), and records what
    /// the pool tells it.
    struct Panics {
        failed: Arc<Mutex<Option<String>>>,
        sched: Option<Arc<Sched>>,
    }

    impl StageTask for Panics {
        fn poll(&mut self, _budget: usize) -> Poll {
            panic!("a bug in the driver");
        }
        fn last_slice_ns(&self) -> u64 {
            0
        }
        fn wait(&mut self, _deadline: Option<std::time::Instant>) {}
        fn finish(&mut self) {
            unreachable!("a panicking slice is not a finished stage");
        }
        fn failed(&mut self, what: String) {
            *self.failed.lock().expect("lock") = Some(what);
            if let Some(s) = self.sched.take() {
                s.shutdown();
            }
        }
    }

    #[test]
    fn a_panic_in_a_slice_fails_the_stage_and_leaves_the_worker_running() {
        let (sched, locals) = Sched::new(1, 1, std::time::Instant::now(), false);
        let failed = Arc::new(Mutex::new(None));
        sched.set_body(
            0,
            Box::new(Panics {
                failed: Arc::clone(&failed),
                sched: Some(Arc::clone(&sched)),
            }),
        );
        sched.notify(sched.task(0));
        let s = Arc::clone(&sched);
        let local = locals.into_iter().next().expect("one worker");
        // The worker returns (rather than unwinding) once the failed stage stops the pool.
        std::thread::spawn(move || s.work(0, local))
            .join()
            .expect("the worker did not panic");
        assert_eq!(
            failed.lock().expect("lock").as_deref(),
            Some("a bug in the driver")
        );
        assert!(lock_body_is_empty(&sched));
    }

    fn lock_body_is_empty(s: &Sched) -> bool {
        crate::sync::lock(&s.task(0).body).is_none()
    }
}
