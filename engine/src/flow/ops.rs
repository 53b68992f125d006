//! The per-stage operations of a layer, fused into one function per stage.
//!
//! Every operation of a layer (`map`, `filter`, a reduce, …) is an [`Op`]; a layer's
//! stage runs the composition of its operations on each event it receives, so a layer of
//! ten mappers is still one stage per partition and one dynamic call per operation per
//! event.

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::Arc;

use crate::protocol::SubRef;

use super::StageInfo;

/// Where an operation sends what it produces.
pub(crate) type Out<'a, O> = &'a mut dyn FnMut(O);

/// One operation of a layer, as one stage runs it.
pub(crate) trait Op<I, O>: Send {
    /// One event, received on `from`.
    fn event(&mut self, e: I, from: SubRef, out: Out<'_, O>);

    /// A chunk of events (as the stage receives them); by default one by one.
    fn chunk(&mut self, events: &mut dyn Iterator<Item = I>, from: SubRef, out: Out<'_, O>) {
        for e in events {
            self.event(e, from, out);
        }
    }

    /// After each chunk: time-driven work (periodic windows and triggers).
    fn after_chunk(&mut self, _out: Out<'_, O>) {}

    /// The stage stops in order: hand out what is held.
    fn done(&mut self, _out: Out<'_, O>) {}
}

/// Makes one instance of an operation per stage.
pub(crate) type OpFactory<I, O> = Arc<dyn Fn(&StageInfo) -> Box<dyn Op<I, O>> + Send + Sync>;

/// The identity: what a layer does before its first operation.
pub(crate) struct Id;

impl<T: Send> Op<T, T> for Id {
    fn event(&mut self, e: T, _from: SubRef, out: Out<'_, T>) {
        out(e)
    }
}

pub(crate) fn identity<T: Send + 'static>() -> OpFactory<T, T> {
    Arc::new(|_: &StageInfo| Box::new(Id) as Box<dyn Op<T, T>>)
}

/// `a` then `b`.
struct Seq<I, M, O> {
    a: Box<dyn Op<I, M>>,
    b: Box<dyn Op<M, O>>,
}

/// The `from` of events an operation makes outside a chunk (on a trigger, at the end).
pub(crate) const NO_SUB: SubRef = SubRef {
    link: u32::MAX,
    gen: 0,
};

impl<I: Send, M: Send, O: Send> Op<I, O> for Seq<I, M, O> {
    fn event(&mut self, e: I, from: SubRef, out: Out<'_, O>) {
        let b = &mut self.b;
        self.a.event(e, from, &mut |m| b.event(m, from, out));
    }

    fn chunk(&mut self, events: &mut dyn Iterator<Item = I>, from: SubRef, out: Out<'_, O>) {
        let b = &mut self.b;
        self.a.chunk(events, from, &mut |m| b.event(m, from, out));
    }

    fn after_chunk(&mut self, out: Out<'_, O>) {
        let b = &mut self.b;
        self.a.after_chunk(&mut |m| b.event(m, NO_SUB, out));
        b.after_chunk(out);
    }

    fn done(&mut self, out: Out<'_, O>) {
        let b = &mut self.b;
        self.a.done(&mut |m| b.event(m, NO_SUB, out));
        b.done(out);
    }
}

/// The factory of `a` then `b`.
pub(crate) fn then<I, M, O>(a: OpFactory<I, M>, b: OpFactory<M, O>) -> OpFactory<I, O>
where
    I: Send + 'static,
    M: Send + 'static,
    O: Send + 'static,
{
    Arc::new(move |info: &StageInfo| {
        Box::new(Seq {
            a: a(info),
            b: b(info),
        }) as Box<dyn Op<I, O>>
    })
}

/// A stateless operation on one event: everything but `map_batch`, `uniq` and reduce.
pub(crate) struct Each<F>(pub(crate) Arc<F>);

impl<I, O, F> Op<I, O> for Each<F>
where
    F: Fn(I, Out<'_, O>) + Send + Sync,
{
    fn event(&mut self, e: I, _from: SubRef, out: Out<'_, O>) {
        (self.0)(e, out)
    }
}

pub(crate) fn each<I, O, F>(f: F) -> OpFactory<I, O>
where
    I: 'static,
    O: 'static,
    F: Fn(I, Out<'_, O>) + Send + Sync + 'static,
{
    let f = Arc::new(f);
    Arc::new(move |_: &StageInfo| Box::new(Each(Arc::clone(&f))) as Box<dyn Op<I, O>>)
}

/// `map_batch`: the whole chunk at once.
pub(crate) struct Batch<F>(pub(crate) Arc<F>);

impl<I, O, F> Op<I, O> for Batch<F>
where
    F: Fn(Vec<I>) -> Vec<O> + Send + Sync,
{
    fn event(&mut self, e: I, _from: SubRef, out: Out<'_, O>) {
        for o in (self.0)(vec![e]) {
            out(o)
        }
    }

    fn chunk(&mut self, events: &mut dyn Iterator<Item = I>, _from: SubRef, out: Out<'_, O>) {
        for o in (self.0)(events.collect()) {
            out(o)
        }
    }
}

/// `uniq_by`: drops events whose key this stage has seen.
pub(crate) struct Uniq<K, F> {
    pub(crate) key: Arc<F>,
    pub(crate) seen: HashSet<K>,
}

impl<T, K, F> Op<T, T> for Uniq<K, F>
where
    K: Hash + Eq + Send,
    F: Fn(&T) -> K + Send + Sync,
{
    fn event(&mut self, e: T, _from: SubRef, out: Out<'_, T>) {
        if self.seen.insert((self.key)(&e)) {
            out(e)
        }
    }
}
