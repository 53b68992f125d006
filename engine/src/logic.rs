//! The user's side of a stage: one trait per stage kind, and the small types they use.
//!
//! Closures implement the traits directly, so a stage can be a closure or a struct.

use crate::protocol::SubRef;

/// Where a producer (or producer-consumer) puts the events it emits.
///
/// Emitting more than was asked is allowed: the surplus goes to the producer buffer.
/// A bounded source calls [`Emit::finish`] once it has emitted its last event.
#[derive(Debug)]
pub struct Emit<T> {
    events: Vec<T>,
    /// The capacity to take at the first event (the buffer is allocated only then, and
    /// not at all when a whole batch is forwarded).
    hint: usize,
    finished: bool,
}

impl<T> Emit<T> {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Emit {
            events: Vec::new(),
            hint: n,
            finished: false,
        }
    }

    /// Emits one event.
    #[inline]
    pub fn push(&mut self, event: T) {
        if self.events.capacity() == 0 {
            // A fresh buffer of the hinted size: straight to the allocator, without
            // `reserve`'s growth path (a tenth of a `max_demand = 1` hand-off).
            self.events = Vec::with_capacity(self.hint.max(1));
        }
        self.events.push(event);
    }

    /// Emits every event of `events` unchanged, in order: a pass-through stage's whole
    /// job. When the chunk is the rest of its batch and nothing was emitted before, the
    /// batch's buffer itself moves on, with no copy and no allocation.
    ///
    /// ```
    /// use flowbench_engine::logic::{Chunk, Emit};
    /// use flowbench_engine::protocol::SubRef;
    /// let pass = |events: Chunk<'_, u64>, _: SubRef, emit: &mut Emit<u64>| emit.forward(events);
    /// # let _ = pass;
    /// ```
    #[inline]
    pub fn forward(&mut self, events: Chunk<'_, T>) {
        if self.events.is_empty() && events.end == 0 {
            self.events = std::mem::take(&mut *events.iter).collect();
        } else {
            // Part of a batch: one pass over it (the chunk's `fold`), not one
            // bounds-checked `next` at a time as `Vec::extend` would take it.
            self.events.reserve(events.len());
            events.for_each(|e| self.events.push(e));
        }
    }

    /// Emits every event of `events`, in order.
    #[inline]
    pub fn extend(&mut self, events: impl IntoIterator<Item = T>) {
        self.events.extend(events);
    }

    /// Events emitted so far in this call.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// `true` when nothing has been emitted in this call.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Says the source is exhausted: after these events the producer dispatches what it
    /// still holds and then cancels its subscriptions with reason `normal`.
    pub fn finish(&mut self) {
        self.finished = true;
    }

    pub(crate) fn into_parts(self) -> (Vec<T>, bool) {
        (self.events, self.finished)
    }
}

/// One chunk of an incoming batch, handed to `handle_events`: an iterator of owned events
/// that can also be looked at as a slice. Events the handler does not take are dropped
/// when it returns.
#[derive(Debug)]
pub struct Chunk<'a, T> {
    iter: &'a mut std::vec::IntoIter<T>,
    end: usize,
}

impl<'a, T> Chunk<'a, T> {
    /// The next `len` events of `iter` (the caller guarantees there are that many).
    pub(crate) fn new(iter: &'a mut std::vec::IntoIter<T>, len: usize) -> Self {
        let end = iter.len() - len;
        Chunk { iter, end }
    }

    /// The events not yet taken, as a slice.
    pub fn as_slice(&self) -> &[T] {
        let s = self.iter.as_slice();
        &s[..s.len() - self.end]
    }
}

impl<T> Iterator for Chunk<'_, T> {
    type Item = T;

    #[inline]
    fn next(&mut self) -> Option<T> {
        if self.iter.len() > self.end {
            self.iter.next()
        } else {
            None
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.iter.len() - self.end;
        (n, Some(n))
    }

    /// One pass over the batch's own iterator, without a bound check per event (what
    /// `for_each`, `sum` and [`Emit::forward`] use).
    #[inline]
    fn fold<B, F: FnMut(B, T) -> B>(self, init: B, f: F) -> B {
        let n = self.iter.len() - self.end;
        self.iter.by_ref().take(n).fold(init, f)
    }
}

impl<T> ExactSizeIterator for Chunk<'_, T> {}

impl<T> Drop for Chunk<'_, T> {
    /// Skips the events the handler did not take, so the next chunk starts where it should
    /// (also when the handler panicked).
    fn drop(&mut self) {
        let n = self.iter.len() - self.end;
        if n > 0 {
            self.iter.nth(n - 1);
        }
    }
}

/// What a consumer may do while handling events: see where they came from, and (on a
/// manual subscription) ask for more.
#[derive(Debug)]
pub struct Ctx {
    from: SubRef,
    pub(crate) asks: Vec<(SubRef, u64)>,
}

impl Ctx {
    pub(crate) fn new(from: SubRef) -> Self {
        Ctx {
            from,
            asks: Vec::new(),
        }
    }

    /// The subscription the events came on.
    pub fn from(&self) -> SubRef {
        self.from
    }

    /// Asks for `n` more events on the subscription the events came on. Only manual
    /// subscriptions take explicit asks; on an automatic one the ask is ignored.
    pub fn ask(&mut self, n: u64) {
        self.asks.push((self.from, n));
    }

    /// Asks for `n` more events on another (manual) subscription of this consumer.
    pub fn ask_on(&mut self, sub: SubRef, n: u64) {
        self.asks.push((sub, n));
    }
}

/// A stage that creates events when asked.
pub trait Producer<T>: Send {
    /// Called with the demand the buffer could not serve (`n > 0`).
    fn handle_demand(&mut self, n: u64, emit: &mut Emit<T>);
}

impl<T, F> Producer<T> for F
where
    F: FnMut(u64, &mut Emit<T>) + Send,
{
    fn handle_demand(&mut self, n: u64, emit: &mut Emit<T>) {
        self(n, emit)
    }
}

/// A stage that turns incoming events into outgoing events.
pub trait ProducerConsumer<I, O>: Send {
    /// Called once per chunk; whatever is emitted goes downstream through the dispatcher.
    fn handle_events(&mut self, events: Chunk<'_, I>, from: SubRef, emit: &mut Emit<O>);

    /// Called once when the stage stops in order (every producer it consumes from has
    /// finished, or the pipeline is shut down): what it emits here goes downstream before
    /// the stage's cancels. A reducer hands out what it accumulated. By default nothing.
    fn handle_done(&mut self, _emit: &mut Emit<O>) {}
}

impl<I, O, F> ProducerConsumer<I, O> for F
where
    F: FnMut(Chunk<'_, I>, SubRef, &mut Emit<O>) + Send,
{
    fn handle_events(&mut self, events: Chunk<'_, I>, from: SubRef, emit: &mut Emit<O>) {
        self(events, from, emit)
    }
}

/// A stage at the end of a pipeline.
pub trait Consumer<T>: Send {
    /// Called once per chunk (automatic) or once per batch (manual).
    fn handle_events(&mut self, events: Chunk<'_, T>, ctx: &mut Ctx);

    /// Called when a subscription opens; a manual consumer makes its first ask here.
    fn handle_subscribe(&mut self, _ctx: &mut Ctx) {}
}

impl<T, F> Consumer<T> for F
where
    F: FnMut(Chunk<'_, T>, &mut Ctx) + Send,
{
    fn handle_events(&mut self, events: Chunk<'_, T>, ctx: &mut Ctx) {
        self(events, ctx)
    }
}

/// The job a consumer pool runs once per event, possibly on several events at once.
pub trait Job<T>: Send + Sync {
    /// Handles one event.
    fn run(&self, event: T);

    /// Handles one event that came on subscription `from`; the runtime calls this one.
    /// By default it forgets `from` and calls [`Job::run`].
    fn run_from(&self, _from: SubRef, event: T) {
        self.run(event)
    }
}

impl<T, F> Job<T> for F
where
    F: Fn(T) + Send + Sync,
{
    fn run(&self, event: T) {
        self(event)
    }
}

// Boxed stage logic is stage logic, so a `Logic`'s boxes can be handed to a runtime's typed
// constructors as they are.
impl<T> Producer<T> for Box<dyn Producer<T>> {
    fn handle_demand(&mut self, n: u64, emit: &mut Emit<T>) {
        (**self).handle_demand(n, emit)
    }
}

impl<I, O> ProducerConsumer<I, O> for Box<dyn ProducerConsumer<I, O>> {
    fn handle_events(&mut self, events: Chunk<'_, I>, from: SubRef, emit: &mut Emit<O>) {
        (**self).handle_events(events, from, emit)
    }

    fn handle_done(&mut self, emit: &mut Emit<O>) {
        (**self).handle_done(emit)
    }
}

impl<T> Consumer<T> for Box<dyn Consumer<T>> {
    fn handle_events(&mut self, events: Chunk<'_, T>, ctx: &mut Ctx) {
        (**self).handle_events(events, ctx)
    }

    fn handle_subscribe(&mut self, ctx: &mut Ctx) {
        (**self).handle_subscribe(ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits `batch` into chunks of `size` the way a stage core does, forwarding each
    /// one into a fresh `Emit` after `before` events were pushed; returns what each
    /// emitted and whether the first reused the batch's buffer.
    fn forwarded(batch: Vec<u64>, size: usize, before: &[u64]) -> (Vec<Vec<u64>>, bool) {
        let ptr = batch.as_ptr();
        let mut iter = batch.into_iter();
        let mut out = Vec::new();
        while iter.len() > 0 {
            let n = size.min(iter.len());
            let mut emit = Emit::with_capacity(n);
            for &e in before {
                emit.push(e);
            }
            emit.forward(Chunk::new(&mut iter, n));
            out.push(emit.into_parts().0);
        }
        let reused = out.first().is_some_and(|v| v.as_ptr() == ptr);
        (out, reused)
    }

    #[test]
    fn forwarding_a_whole_batch_moves_its_buffer() {
        let (out, reused) = forwarded(vec![1, 2, 3, 4], 10, &[]);
        assert_eq!(out, vec![vec![1, 2, 3, 4]]);
        assert!(reused);
    }

    #[test]
    fn forwarding_part_of_a_batch_copies_in_order() {
        let (out, reused) = forwarded((1..=5).collect(), 2, &[]);
        assert_eq!(out, vec![vec![1, 2], vec![3, 4], vec![5]]);
        assert!(!reused);
        let (out, _) = forwarded(vec![1, 2, 3], 10, &[9]);
        assert_eq!(out, vec![vec![9, 1, 2, 3]]);
    }

    #[test]
    fn a_chunk_folds_and_drops_only_its_own_events() {
        let mut iter = (1..=6u64).collect::<Vec<_>>().into_iter();
        let (n, sum) = Chunk::new(&mut iter, 3).fold((0, 0), |(n, s), e| (n + 1, s + e));
        assert_eq!((n, sum), (3, 6));
        drop(Chunk::new(&mut iter, 2));
        assert_eq!(iter.as_slice(), &[6]);
        let mut half = Chunk::new(&mut iter, 1);
        assert_eq!(half.next(), Some(6));
        assert_eq!(half.next(), None);
    }
}
