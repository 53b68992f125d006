//! The event queue: items ordered by `(virtual time, sequence)`.
//!
//! Ties in time are broken by the sequence number, which counts pushes: of two events due
//! at the same nanosecond, the one scheduled first happens first. That is the only order
//! the scheduler relies on, so a run never depends on heap internals. Items due *now*
//! (the time of the last item taken) skip the heap and wait in a FIFO: every item already
//! in the heap for this instant was pushed earlier, so taking those first and then the
//! FIFO in order is exactly `(time, sequence)` order, at a fraction of the cost. This
//! module holds items; it does not know what they mean.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

struct Entry<T> {
    t: u64,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.t, self.seq) == (other.t, other.seq)
    }
}

impl<T> Eq for Entry<T> {}

impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Entry<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap and we want the earliest first.
        (other.t, other.seq).cmp(&(self.t, self.seq))
    }
}

/// Items due at virtual times, taken earliest first, ties in push order.
pub(crate) struct EventQueue<T> {
    heap: BinaryHeap<Entry<T>>,
    seq: u64,
    now: u64,
    due_now: VecDeque<T>,
}

impl<T> EventQueue<T> {
    pub(crate) fn new() -> Self {
        EventQueue {
            heap: BinaryHeap::with_capacity(1024),
            seq: 0,
            now: 0,
            due_now: VecDeque::with_capacity(1024),
        }
    }

    /// Schedules `item` at time `t` (never before the time of the last item taken).
    #[inline]
    pub(crate) fn push(&mut self, t: u64, item: T) {
        debug_assert!(t >= self.now, "scheduling in the past: {t} < {}", self.now);
        if t <= self.now {
            self.due_now.push_back(item);
            return;
        }
        let seq = self.seq;
        self.seq += 1;
        self.heap.push(Entry { t, seq, item });
    }

    /// The time of the next item.
    #[inline]
    pub(crate) fn peek_time(&self) -> Option<u64> {
        if !self.due_now.is_empty() {
            return Some(self.now);
        }
        self.heap.peek().map(|e| e.t)
    }

    /// Takes the next item.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<(u64, T)> {
        if self.heap.peek().is_some_and(|e| e.t == self.now) || self.due_now.is_empty() {
            let e = self.heap.pop()?;
            self.now = e.t;
            return Some((e.t, e.item));
        }
        self.due_now.pop_front().map(|item| (self.now, item))
    }

    /// Every item still queued, in no particular order.
    pub(crate) fn items(&self) -> impl Iterator<Item = &T> {
        self.heap.iter().map(|e| &e.item).chain(self.due_now.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_orders_by_time_then_push_order() {
        let mut q = EventQueue::new();
        q.push(5, "c");
        q.push(1, "a");
        q.push(5, "d");
        q.push(1, "b");
        q.push(3, "x");
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, [(1, "a"), (1, "b"), (3, "x"), (5, "c"), (5, "d")]);
    }

    #[test]
    fn queue_items_due_now_come_after_earlier_pushes_for_the_same_instant() {
        let mut q = EventQueue::new();
        q.push(0, "now-1");
        q.push(4, "heap-4a");
        q.push(4, "heap-4b");
        assert_eq!(q.pop(), Some((0, "now-1")));
        q.push(0, "now-2");
        assert_eq!(q.peek_time(), Some(0));
        assert_eq!(q.pop(), Some((0, "now-2")));
        assert_eq!(q.pop(), Some((4, "heap-4a")));
        // Pushed at the current time 4: after heap-4b, which was scheduled earlier.
        q.push(4, "fifo-4");
        q.push(6, "heap-6");
        assert_eq!(q.pop(), Some((4, "heap-4b")));
        assert_eq!(q.pop(), Some((4, "fifo-4")));
        assert_eq!(q.pop(), Some((6, "heap-6")));
        assert_eq!(q.pop(), None);
    }
}
