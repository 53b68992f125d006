//! The synchronisation facade of the threads runtime.
//!
//! Every primitive the threads runtime synchronises on comes from here: `std`'s normally,
//! `loom`'s when the crate is built with `RUSTFLAGS="--cfg flowbench_loom"`, so the loom
//! models can explore every interleaving of the real code. Nothing else in the runtime
//! imports `std::sync` or `std::thread` directly.

#[cfg(not(flowbench_loom))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(flowbench_loom))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};
#[cfg(not(flowbench_loom))]
pub(crate) use std::thread;

#[cfg(flowbench_loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
#[cfg(flowbench_loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};

/// Locks `m`, recovering the data if a thread panicked while holding the lock: the
/// runtime's critical sections only move values in and out of queues, so the data is
/// still consistent.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}
