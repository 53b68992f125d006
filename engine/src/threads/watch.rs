//! What the deadlock watchdog reads: per stage, whether it is blocked waiting for mail
//! with nothing else pending, and how many times it has woken.
//!
//! A stage marks itself idle right before it blocks and, when it wakes, counts the
//! wake-up before it clears the mark. The watchdog declares a deadlock only when two
//! looks, some time apart, both find every live stage idle with an empty mailbox and the
//! same wake-up count: a message sent between the looks either is still in a mailbox
//! (depth > 0) or has woken its receiver (the count moved). The loom model
//! `loom_watch_never_declares_a_deadlock_while_work_is_under_way` checks this.

use crate::sync::{AtomicBool, AtomicU64, Ordering};

/// See the module documentation.
pub struct Watch {
    idle: Vec<AtomicBool>,
    woken: Vec<AtomicU64>,
}

impl Watch {
    /// The marks of `n` stages, none idle.
    pub fn new(n: usize) -> Self {
        Watch {
            idle: (0..n).map(|_| AtomicBool::new(false)).collect(),
            woken: (0..n).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Stage `i` is about to block; `idle` says nothing but mail can wake it.
    pub fn waiting(&self, i: usize, idle: bool) {
        self.idle[i].store(idle, Ordering::SeqCst);
    }

    /// Stage `i` has woken (with mail or not): counted before the mark is cleared.
    pub fn woke(&self, i: usize) {
        self.woken[i].fetch_add(1, Ordering::SeqCst);
        self.idle[i].store(false, Ordering::SeqCst);
    }

    /// `Some(total wake-ups)` if every stage not `ended` is idle and its mailbox
    /// (`depth`) is empty; two equal `Some`s some time apart mean a deadlock.
    pub fn quiescent(
        &self,
        ended: impl Fn(usize) -> bool,
        depth: impl Fn(usize) -> u64,
    ) -> Option<u64> {
        let mut total = 0u64;
        for i in 0..self.idle.len() {
            total = total.wrapping_add(self.woken[i].load(Ordering::SeqCst));
            if ended(i) {
                continue;
            }
            if !self.idle[i].load(Ordering::SeqCst) || depth(i) > 0 {
                return None;
            }
        }
        Some(total)
    }
}
