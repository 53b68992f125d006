//! The broadcast dispatcher: every consumer gets every event (that its selector accepts),
//! but only as many events as the smallest outstanding demand among them.
//!
//! Upstream is asked only for the common amount, once: when the smallest demand grows past
//! what was already asked for. A new subscriber starts at zero demand and so holds everyone
//! back until it asks. For every event a selector rejects, the consumer's demand is given
//! back through a [`Upstream::Refund`] message the producer sends itself (GenStage sends
//! itself an `ask`), so the work done in one step stays bounded.

use std::collections::VecDeque;

use super::Sink;
use crate::opts::Selector;
use crate::protocol::{Outgoing, Rejection, StageId, SubRef, Upstream};

#[derive(Debug)]
struct Entry<T> {
    sub: SubRef,
    consumer: StageId,
    demand: u64,
    selector: Option<Selector<T>>,
}

/// See the module documentation.
#[derive(Debug)]
pub struct BroadcastDispatcher<T> {
    entries: Vec<Entry<T>>,
    /// Events asked for upstream and not yet dispatched.
    waiting: u64,
}

impl<T: Clone> Default for BroadcastDispatcher<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Clone> BroadcastDispatcher<T> {
    /// An empty dispatcher.
    pub fn new() -> Self {
        BroadcastDispatcher {
            entries: Vec::new(),
            waiting: 0,
        }
    }

    /// Registers a subscription at zero demand; the same consumer may not subscribe twice.
    pub fn subscribe(
        &mut self,
        sub: SubRef,
        consumer: StageId,
        selector: Option<Selector<T>>,
    ) -> Result<u64, Rejection> {
        if self.entries.iter().any(|e| e.consumer == consumer) {
            return Err(Rejection::AlreadySubscribed);
        }
        self.entries.push(Entry {
            sub,
            consumer,
            demand: 0,
            selector,
        });
        Ok(self.upstream())
    }

    /// Adds demand (an ask, or a refund of rejected events).
    pub fn ask(&mut self, sub: SubRef, n: u64) -> u64 {
        if let Some(e) = self.entries.iter_mut().find(|e| e.sub == sub) {
            e.demand += n;
        }
        self.upstream()
    }

    /// Removes a subscription; the smallest demand may grow, so this may ask upstream.
    pub fn cancel(&mut self, sub: SubRef) -> u64 {
        self.entries.retain(|e| e.sub != sub);
        self.upstream()
    }

    /// Broadcasts up to the smallest demand from the front of `src`.
    pub fn dispatch<I>(&mut self, src: &mut VecDeque<T>, sink: &mut Sink<'_, I, T>) -> u64 {
        let k = self.min_demand().min(src.len() as u64);
        if k == 0 {
            return 0;
        }
        let events: Vec<T> = if k as usize == src.len() {
            Vec::from(std::mem::take(src))
        } else {
            src.drain(..k as usize).collect()
        };
        let last = self.entries.len() - 1;
        let mut events = Some(events);
        for (i, e) in self.entries.iter_mut().enumerate() {
            e.demand -= k;
            let all = if i == last {
                events.take().unwrap_or_default()
            } else {
                events.as_ref().map(|v| v.to_vec()).unwrap_or_default()
            };
            let selected = match &e.selector {
                None => all,
                Some(s) => all.into_iter().filter(|ev| s.accepts(ev)).collect(),
            };
            let rejected = k - selected.len() as u64;
            sink.send_copy(e.sub, selected);
            if rejected > 0 {
                sink.out.push(Outgoing::Up(Upstream::Refund {
                    sub: e.sub,
                    n: rejected,
                }));
            }
        }
        sink.handed_out += k;
        self.waiting = self.waiting.saturating_sub(k);
        k
    }

    /// `true` when every consumer has demand.
    pub fn can_take(&self) -> bool {
        self.min_demand() > 0
    }

    /// Outstanding demand of `sub`.
    pub fn outstanding(&self, sub: SubRef) -> Option<u64> {
        self.entries.iter().find(|e| e.sub == sub).map(|e| e.demand)
    }

    fn min_demand(&self) -> u64 {
        self.entries.iter().map(|e| e.demand).min().unwrap_or(0)
    }

    fn upstream(&mut self) -> u64 {
        let m = self.min_demand();
        if m > self.waiting {
            let d = m - self.waiting;
            self.waiting = m;
            d
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{sent, sub};
    use super::*;
    use crate::observe::NoObserver;

    #[test]
    fn broadcast_sends_every_event_up_to_smallest_demand() {
        let mut d = BroadcastDispatcher::new();
        for i in 0..3 {
            d.subscribe(sub(i), i, None).expect("subscribe");
        }
        assert_eq!(d.ask(sub(0), 10), 0);
        assert_eq!(d.ask(sub(1), 10), 0);
        // Upstream is asked once, for the common amount, when the last consumer asks.
        assert_eq!(d.ask(sub(2), 4), 4);
        let mut src = VecDeque::from(vec![1, 2, 3, 4, 5, 6]);
        let batches = sent(|s| {
            assert_eq!(d.dispatch(&mut src, s), 4);
        });
        assert_eq!(
            batches,
            [
                (0, vec![1, 2, 3, 4]),
                (1, vec![1, 2, 3, 4]),
                (2, vec![1, 2, 3, 4])
            ]
        );
        assert_eq!(src, [5, 6]);
        assert_eq!(d.outstanding(sub(0)), Some(6));
        assert!(!d.can_take());
    }

    #[test]
    fn broadcast_new_subscriber_holds_everyone_back() {
        let mut d = BroadcastDispatcher::<u64>::new();
        d.subscribe(sub(0), 0, None).expect("subscribe");
        assert_eq!(d.ask(sub(0), 5), 5);
        d.subscribe(sub(1), 1, None).expect("subscribe");
        assert!(!d.can_take());
        // It asks: the minimum is 5 again, already asked upstream, so nothing new.
        assert_eq!(d.ask(sub(1), 5), 0);
        assert!(d.can_take());
    }

    #[test]
    fn broadcast_selector_filters_and_refunds_demand() {
        let mut d = BroadcastDispatcher::new();
        d.subscribe(sub(0), 0, None).expect("subscribe");
        d.subscribe(
            sub(1),
            1,
            Some(Selector::new(|e: &u64| e.is_multiple_of(2))),
        )
        .expect("subscribe");
        d.ask(sub(0), 4);
        d.ask(sub(1), 4);
        let mut out = Vec::new();
        let mut obs = NoObserver;
        let mut sink: Sink<'_, (), u64> = Sink::new(&mut out, &mut obs);
        d.dispatch(&mut VecDeque::from(vec![1, 2, 3, 4]), &mut sink);
        assert_eq!(
            out,
            [
                Outgoing::Down(crate::protocol::Downstream::Events {
                    sub: sub(0),
                    batch: vec![1, 2, 3, 4]
                }),
                Outgoing::Down(crate::protocol::Downstream::Events {
                    sub: sub(1),
                    batch: vec![2, 4]
                }),
                Outgoing::Up(Upstream::Refund { sub: sub(1), n: 2 }),
            ]
        );
    }

    #[test]
    fn broadcast_same_consumer_twice_is_rejected() {
        let mut d = BroadcastDispatcher::<u64>::new();
        d.subscribe(sub(0), 7, None).expect("subscribe");
        assert_eq!(
            d.subscribe(sub(1), 7, None),
            Err(Rejection::AlreadySubscribed)
        );
        // The first subscription keeps working.
        assert_eq!(d.ask(sub(0), 3), 3);
    }

    #[test]
    fn broadcast_cancel_of_slowest_releases_demand() {
        let mut d = BroadcastDispatcher::<u64>::new();
        d.subscribe(sub(0), 0, None).expect("subscribe");
        d.subscribe(sub(1), 1, None).expect("subscribe");
        d.ask(sub(0), 10);
        assert_eq!(d.ask(sub(1), 2), 2);
        assert_eq!(d.cancel(sub(1)), 8);
    }
}
