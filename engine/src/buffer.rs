//! The producer buffer: a FIFO with an optional bound and a keep policy.
//!
//! Events a dispatcher cannot place wait here. When the bound is reached the keep policy
//! decides which events are dropped; every drop is counted (and shown to the observer by
//! the caller, which gets the dropped events back).

use std::collections::VecDeque;

/// Which events survive when the buffer is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Keep {
    /// Keep the newest: drop the oldest buffered events (the default).
    #[default]
    Last,
    /// Keep the oldest: drop the newest arrivals.
    First,
}

impl Keep {
    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            Keep::Last => "last",
            Keep::First => "first",
        }
    }
}

/// Default `buffer_size` of a producer, as in GenStage.
pub const DEFAULT_PRODUCER_BUFFER: u64 = 10_000;

/// A bounded (or unbounded) FIFO of events with drop counting.
///
/// ```
/// use flowbench_engine::{Buffer, Keep};
/// let mut b = Buffer::new(Some(3), Keep::Last);
/// let dropped = b.push_all(vec![1, 2, 3, 4, 5]);
/// assert_eq!(dropped, vec![1, 2]);          // the oldest go
/// assert_eq!(b.iter().copied().collect::<Vec<_>>(), [3, 4, 5]);
/// let mut f = Buffer::new(Some(3), Keep::First);
/// assert_eq!(f.push_all(vec![1, 2, 3, 4, 5]), vec![4, 5]); // the newest go
/// ```
#[derive(Clone, Debug)]
pub struct Buffer<T> {
    queue: VecDeque<T>,
    cap: Option<usize>,
    keep: Keep,
    dropped: u64,
    peak: usize,
}

impl<T> Buffer<T> {
    /// A buffer holding at most `cap` events (`None`: unbounded; `Some(0)`: holds nothing).
    pub fn new(cap: Option<u64>, keep: Keep) -> Self {
        Buffer {
            queue: VecDeque::new(),
            cap: cap.map(|c| usize::try_from(c).unwrap_or(usize::MAX)),
            keep,
            dropped: 0,
            peak: 0,
        }
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// `true` when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Events dropped so far because the buffer was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The most events ever held at once.
    pub fn peak(&self) -> usize {
        self.peak
    }

    /// The waiting events, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.queue.iter()
    }

    /// Direct access for the dispatcher, which takes events from the front.
    pub(crate) fn queue_mut(&mut self) -> &mut VecDeque<T> {
        &mut self.queue
    }

    /// Removes and returns everything (used when the stage goes away).
    pub(crate) fn take_all(&mut self) -> Vec<T> {
        Vec::from(std::mem::take(&mut self.queue))
    }

    /// Appends events, applies the bound, and returns what was dropped, oldest first.
    pub fn push_all(&mut self, events: impl IntoIterator<Item = T>) -> Vec<T> {
        let mut dropped = Vec::new();
        match (self.cap, self.keep) {
            (None, _) => self.queue.extend(events),
            (Some(cap), Keep::Last) => {
                self.queue.extend(events);
                if self.queue.len() > cap {
                    let excess = self.queue.len() - cap;
                    dropped.extend(self.queue.drain(..excess));
                }
            }
            (Some(cap), Keep::First) => {
                for e in events {
                    if self.queue.len() < cap {
                        self.queue.push_back(e);
                    } else {
                        dropped.push(e);
                    }
                }
            }
        }
        self.dropped += dropped.len() as u64;
        self.peak = self.peak.max(self.queue.len());
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_keep_last_drops_oldest() {
        let mut b = Buffer::new(Some(2), Keep::Last);
        assert!(b.push_all([1, 2]).is_empty());
        assert_eq!(b.push_all([3]), [1]);
        assert_eq!(b.iter().copied().collect::<Vec<_>>(), [2, 3]);
        assert_eq!(b.dropped(), 1);
        assert_eq!(b.peak(), 2);
    }

    #[test]
    fn buffer_keep_first_drops_newest() {
        let mut b = Buffer::new(Some(2), Keep::First);
        assert_eq!(b.push_all([1, 2, 3, 4]), [3, 4]);
        assert_eq!(b.iter().copied().collect::<Vec<_>>(), [1, 2]);
        assert_eq!(b.dropped(), 2);
    }

    #[test]
    fn buffer_size_zero_drops_everything() {
        for keep in [Keep::First, Keep::Last] {
            let mut b = Buffer::new(Some(0), keep);
            assert_eq!(b.push_all([7, 8]), [7, 8]);
            assert!(b.is_empty());
            assert_eq!(b.dropped(), 2);
        }
    }

    #[test]
    fn buffer_unbounded_keeps_all() {
        let mut b = Buffer::new(None, Keep::Last);
        assert!(b.push_all(0..50_000).is_empty());
        assert_eq!(b.len(), 50_000);
    }
}
