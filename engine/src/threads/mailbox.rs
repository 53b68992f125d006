//! A stage's mailbox: an unbounded multi-producer, single-consumer FIFO that can be closed.
//!
//! Unbounded on purpose: back-pressure comes from demand, not from the queue, so a send
//! never blocks (a blocking send between two stages that ask each other could deadlock).
//! The receiver takes every waiting message at once, which keeps the lock off the hot path
//! when a stage is busy. A receiver that finds the queue empty spins briefly before it
//! sleeps, because in a demand-driven pipeline the next message is usually microseconds
//! away, and waking a sleeping thread costs more than that.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::sched::Waker;
use crate::sync::{lock, AtomicU64, Condvar, Mutex, MutexGuard, Ordering};

struct Inner<T> {
    queue: VecDeque<T>,
    closed: bool,
    /// Receivers waiting on the condition variable; a sender wakes one only if needed.
    sleepers: u32,
    /// On the worker pool: schedules the receiving stage when mail comes.
    waker: Option<Waker>,
}

/// See the module documentation.
pub struct Mailbox<T> {
    inner: Mutex<Inner<T>>,
    ready: Condvar,
    /// Messages sent and not yet marked processed (the probe's "mailbox depth").
    depth: AtomicU64,
    peak: AtomicU64,
}

/// How many times an empty receiver looks again before it sleeps.
#[cfg(not(flowbench_loom))]
const SPINS: u32 = 2_000;
// Under loom every spin is a scheduling point to explore; one look is enough to model it.
#[cfg(flowbench_loom)]
const SPINS: u32 = 1;

impl<T> Default for Mailbox<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Mailbox<T> {
    /// An empty, open mailbox.
    pub fn new() -> Self {
        Mailbox {
            inner: Mutex::new(Inner {
                queue: VecDeque::new(),
                closed: false,
                sleepers: 0,
                waker: None,
            }),
            ready: Condvar::new(),
            depth: AtomicU64::new(0),
            peak: AtomicU64::new(0),
        }
    }

    /// Appends a message; gives it back if the mailbox is closed.
    pub fn send(&self, msg: T) -> Result<(), T> {
        let wake = {
            let mut g = lock(&self.inner);
            if g.closed {
                return Err(msg);
            }
            g.queue.push_back(msg);
            let d = self.depth.fetch_add(1, Ordering::Relaxed) + 1;
            if d > self.peak.load(Ordering::Relaxed) {
                self.peak.fetch_max(d, Ordering::Relaxed);
            }
            if let Some(w) = &g.waker {
                // After the push, so the stage finds the message when it runs.
                w.wake();
            }
            g.sleepers > 0
        };
        if wake {
            self.ready.notify_one();
        }
        Ok(())
    }

    /// A deliberately broken `send` for the loom models: it decides whether to wake a
    /// receiver *before* it takes the lock to push, so a receiver that goes to sleep in
    /// between is never woken (a lost wakeup). The models show that loom catches it.
    #[cfg(flowbench_loom)]
    pub fn send_with_lost_wakeup(&self, msg: T) -> Result<(), T> {
        let wake = lock(&self.inner).sleepers > 0;
        if wake {
            self.ready.notify_one();
        }
        let mut g = lock(&self.inner);
        if g.closed {
            return Err(msg);
        }
        g.queue.push_back(msg);
        self.depth.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Moves every waiting message into `into`, waiting until there is at least one or
    /// `deadline` passes. Returns `false` on timeout (or if the mailbox is closed).
    pub fn recv_all(&self, into: &mut VecDeque<T>, deadline: Option<Instant>) -> bool {
        self.recv_all_spinning(into, deadline, true)
    }

    /// [`recv_all`](Self::recv_all), spinning first only if `spin`: spinning pays when
    /// the sender runs on another core, and steals the sender's core when threads
    /// outnumber cores.
    pub fn recv_all_spinning(
        &self,
        into: &mut VecDeque<T>,
        deadline: Option<Instant>,
        spin: bool,
    ) -> bool {
        // Back off exponentially while spinning, so the receiver does not keep the
        // sender's cache line busy.
        let spins = if spin { SPINS } else { 0 };
        let mut spun = 0;
        let mut step = 1;
        while spun < spins && !self.has_unreceived() {
            for _ in 0..step {
                std::hint::spin_loop();
            }
            spun += step;
            step = (step * 2).min(64);
        }
        let mut g = lock(&self.inner);
        loop {
            if !g.queue.is_empty() {
                take_all(&mut g.queue, into);
                return true;
            }
            if g.closed {
                return false;
            }
            let timeout = match deadline {
                None => None,
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return false;
                    }
                    Some(d - now)
                }
            };
            g = self.wait(g, timeout);
        }
    }

    /// Takes one message, waiting for it; `None` once the mailbox is closed and empty.
    /// Several receivers may wait at once (a consumer pool's workers do).
    pub fn recv_one(&self) -> Option<T> {
        let mut g = lock(&self.inner);
        loop {
            if let Some(m) = g.queue.pop_front() {
                self.depth.fetch_sub(1, Ordering::Relaxed);
                return Some(m);
            }
            if g.closed {
                return None;
            }
            g = self.wait(g, None);
        }
    }

    fn wait<'a>(
        &'a self,
        mut g: MutexGuard<'a, Inner<T>>,
        timeout: Option<Duration>,
    ) -> MutexGuard<'a, Inner<T>> {
        g.sleepers += 1;
        let mut g = match timeout {
            None => match self.ready.wait(g) {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            },
            Some(t) => match self.ready.wait_timeout(g, t) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            },
        };
        g.sleepers -= 1;
        g
    }

    /// Takes what is waiting without blocking.
    pub fn try_recv_all(&self, into: &mut VecDeque<T>) -> bool {
        let mut g = lock(&self.inner);
        if g.queue.is_empty() {
            return false;
        }
        take_all(&mut g.queue, into);
        true
    }

    fn has_unreceived(&self) -> bool {
        // `depth` counts messages not yet processed; the receiver holds the rest locally,
        // so this is only a hint to stop spinning. The locked check below decides.
        self.depth.load(Ordering::Relaxed) > 0
    }

    /// Marks `n` received messages as processed (for the depth probe).
    pub fn processed(&self, n: u64) {
        self.depth.fetch_sub(n, Ordering::Relaxed);
    }

    /// Has every later send wake the receiving stage on its worker pool.
    pub(crate) fn set_waker(&self, w: Option<Waker>) {
        lock(&self.inner).waker = w;
    }

    /// Closes the mailbox: later sends fail. Returns what was still waiting.
    pub fn close(&self) -> VecDeque<T> {
        let (rest, waker) = {
            let mut g = lock(&self.inner);
            g.closed = true;
            (std::mem::take(&mut g.queue), g.waker.take())
        };
        drop(waker);
        // Receivers blocked in `recv_one` must see the close.
        self.ready.notify_all();
        rest
    }

    /// Messages sent and not yet processed.
    pub fn depth(&self) -> u64 {
        self.depth.load(Ordering::Relaxed)
    }

    /// The most messages ever waiting at once.
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

/// Moves every message of `from` to the end of `into`: by swapping the two queues when
/// `into` is empty (no copy, and both keep their allocations for the next round).
fn take_all<T>(from: &mut VecDeque<T>, into: &mut VecDeque<T>) {
    if into.is_empty() {
        std::mem::swap(from, into);
    } else {
        into.append(from);
    }
}

#[cfg(all(test, not(flowbench_loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn mailbox_is_fifo_per_sender_and_loses_nothing() {
        let mb = Arc::new(Mailbox::new());
        let senders: Vec<_> = (0..3u64)
            .map(|s| {
                let mb = Arc::clone(&mb);
                std::thread::spawn(move || {
                    for i in 0..10_000u64 {
                        mb.send((s, i)).expect("open");
                    }
                })
            })
            .collect();
        let mut got = VecDeque::new();
        let mut seen = 0;
        let mut next = [0u64; 3];
        while seen < 30_000 {
            mb.recv_all(&mut got, None);
            for (s, i) in got.drain(..) {
                assert_eq!(next[s as usize], i, "sender {s} out of order");
                next[s as usize] += 1;
                seen += 1;
                mb.processed(1);
            }
        }
        for h in senders {
            h.join().expect("sender");
        }
        assert_eq!(mb.depth(), 0);
    }

    #[test]
    fn mailbox_send_after_close_gives_message_back() {
        let mb = Mailbox::new();
        mb.send(1).expect("open");
        assert_eq!(mb.close(), [1]);
        assert_eq!(mb.send(2), Err(2));
        let mut v = VecDeque::new();
        assert!(!mb.recv_all(&mut v, None), "closed and empty: no wait");
    }

    #[test]
    fn mailbox_recv_times_out_at_deadline() {
        let mb: Mailbox<u8> = Mailbox::new();
        let mut v = VecDeque::new();
        assert!(!mb.recv_all(&mut v, Some(Instant::now())));
    }
}
