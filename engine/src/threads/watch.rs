//! What the deadlock watchdog reads: per stage, whether it is blocked waiting for mail
//! with nothing else pending, and how many times it has woken.
//!
//! A stage marks itself idle right before it blocks and, when it wakes, counts the
//! wake-up before it clears the mark. The watchdog declares a deadlock only when two
//! looks, some time apart, both find every live stage idle with an empty mailbox and the
//! same wake-up count: a message sent between the looks either is still in a mailbox
//! (depth > 0) or has woken its receiver (the count moved). The loom model
//! `loom_watch_never_declares_a_deadlock_while_work_is_under_way` checks this.

use crossbeam_utils::CachePadded;

use crate::sync::{AtomicBool, AtomicU64, Ordering};

/// One stage's marks, on a cache line of their own (each is written by its stage's
/// driver, on every wake-up: shared lines would bounce between the cores).
struct Marks {
    idle: AtomicBool,
    woken: AtomicU64,
}

/// See the module documentation.
pub struct Watch {
    marks: Vec<CachePadded<Marks>>,
}

impl Watch {
    /// The marks of `n` stages, none idle.
    pub fn new(n: usize) -> Self {
        Watch {
            marks: (0..n)
                .map(|_| {
                    CachePadded::new(Marks {
                        idle: AtomicBool::new(false),
                        woken: AtomicU64::new(0),
                    })
                })
                .collect(),
        }
    }

    /// Stage `i` is about to block; `idle` says nothing but mail can wake it.
    pub fn waiting(&self, i: usize, idle: bool) {
        self.marks[i].idle.store(idle, Ordering::SeqCst);
    }

    /// Stage `i` has woken (with mail or not): counted before the mark is cleared.
    pub fn woke(&self, i: usize) {
        // Only stage `i`'s driver writes its count: no read-modify-write needed.
        let m = &self.marks[i];
        m.woken.store(
            m.woken.load(Ordering::SeqCst).wrapping_add(1),
            Ordering::SeqCst,
        );
        m.idle.store(false, Ordering::SeqCst);
    }

    /// `Some(total wake-ups)` if every stage not `ended` is idle and its mailbox
    /// (`depth`) is empty; two equal `Some`s some time apart mean a deadlock.
    pub fn quiescent(
        &self,
        ended: impl Fn(usize) -> bool,
        depth: impl Fn(usize) -> u64,
    ) -> Option<u64> {
        let mut total = 0u64;
        for (i, m) in self.marks.iter().enumerate() {
            total = total.wrapping_add(m.woken.load(Ordering::SeqCst));
            if ended(i) {
                continue;
            }
            if !m.idle.load(Ordering::SeqCst) || depth(i) > 0 {
                return None;
            }
        }
        Some(total)
    }
}
