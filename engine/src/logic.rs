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
    finished: bool,
}

impl<T> Emit<T> {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Emit {
            events: Vec::with_capacity(n),
            finished: false,
        }
    }

    /// Emits one event.
    #[inline]
    pub fn push(&mut self, event: T) {
        self.events.push(event);
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
}

impl<T> ExactSizeIterator for Chunk<'_, T> {}

impl<T> Drop for Chunk<'_, T> {
    /// Skips the events the handler did not take, so the next chunk starts where it should
    /// (also when the handler panicked).
    fn drop(&mut self) {
        while self.iter.len() > self.end {
            self.iter.next();
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
