//! Probes: what a running stage publishes for a reader (a live view, a test) to sample
//! without stopping it.
//!
//! Each stage thread writes its figures with relaxed atomic stores after every message it
//! handles — a handful of stores, no lock, no allocation. A reader gets a consistent
//! picture of each single figure, not of all figures at one instant, which is what a
//! live view needs.

use crate::core::{StageCore, StageKind};
use crate::protocol::LinkId;
use crate::sync::{AtomicBool, AtomicU64, Ordering};

/// Something that knows its own queue depth (a mailbox).
pub(crate) trait Depth: Send + Sync {
    fn depth(&self) -> u64;
}

impl<T: Send> Depth for super::mailbox::Mailbox<T> {
    fn depth(&self) -> u64 {
        super::mailbox::Mailbox::depth(self)
    }
}

/// The live figures of one stage. Read them with [`StageProbe::read`].
pub struct StageProbe {
    name: String,
    kind: StageKind,
    mailbox: std::sync::Arc<dyn Depth>,
    buffered: AtomicU64,
    handled: AtomicU64,
    emitted: AtomicU64,
    dispatched: AtomicU64,
    dropped: AtomicU64,
    busy_ns: AtomicU64,
    stopped: AtomicBool,
    outstanding: Vec<(LinkId, AtomicU64)>,
    pending: Vec<(LinkId, AtomicU64)>,
}

impl std::fmt::Debug for StageProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageProbe")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// One reading of a [`StageProbe`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeReading {
    /// Stage name.
    pub name: String,
    /// Stage kind.
    pub kind: StageKind,
    /// Messages waiting in the mailbox.
    pub mailbox_depth: u64,
    /// Events in the producer buffer (and dispatcher queues).
    pub buffered: u64,
    /// Events handled so far.
    pub handled: u64,
    /// Events created so far.
    pub emitted: u64,
    /// Events sent downstream so far.
    pub dispatched: u64,
    /// Events dropped so far.
    pub dropped: u64,
    /// Nanoseconds spent handling messages.
    pub busy_ns: u64,
    /// `true` once the stage has stopped.
    pub stopped: bool,
    /// Outstanding demand per downstream subscription, as the dispatcher sees it.
    pub outstanding: Vec<(LinkId, u64)>,
    /// Asked-and-not-received per upstream subscription.
    pub pending: Vec<(LinkId, u64)>,
}

impl StageProbe {
    pub(crate) fn new<I: Send + 'static, O: Clone + Send + 'static>(
        name: &str,
        core: &StageCore<I, O>,
        mailbox: std::sync::Arc<dyn Depth>,
    ) -> Self {
        StageProbe {
            name: name.to_string(),
            kind: core.kind(),
            mailbox,
            buffered: AtomicU64::new(0),
            handled: AtomicU64::new(0),
            emitted: AtomicU64::new(0),
            dispatched: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            busy_ns: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            outstanding: core
                .out_links()
                .map(|l| (l.link, AtomicU64::new(0)))
                .collect(),
            pending: core
                .in_links()
                .map(|l| (l.link, AtomicU64::new(0)))
                .collect(),
        }
    }

    /// Publishes the core's figures (called by the stage's own thread).
    pub(crate) fn publish<I: Send + 'static, O: Clone + Send + 'static>(
        &self,
        core: &StageCore<I, O>,
        busy_ns: u64,
    ) {
        let s = core.stats();
        let r = Ordering::Relaxed;
        self.buffered
            .store(core.buffered() + core.dispatcher_queued(), r);
        self.handled.store(s.handled, r);
        self.emitted.store(s.emitted, r);
        self.dispatched.store(s.dispatched, r);
        self.dropped.store(s.dropped, r);
        self.busy_ns.store(busy_ns, r);
        self.stopped.store(core.is_stopped(), r);
        for ((_, slot), n) in self.outstanding.iter().zip(core.outstanding_each()) {
            slot.store(n, r);
        }
        for ((_, slot), n) in self.pending.iter().zip(core.pending_each()) {
            slot.store(n, r);
        }
    }

    /// Events created so far (one load; [`StageProbe::read`] samples everything).
    pub fn emitted(&self) -> u64 {
        self.emitted.load(Ordering::Relaxed)
    }

    /// Events handled so far.
    pub fn handled(&self) -> u64 {
        self.handled.load(Ordering::Relaxed)
    }

    /// `true` once the stage has stopped.
    pub fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    /// Samples the figures.
    pub fn read(&self) -> ProbeReading {
        let r = Ordering::Relaxed;
        ProbeReading {
            name: self.name.clone(),
            kind: self.kind,
            mailbox_depth: self.mailbox.depth(),
            buffered: self.buffered.load(r),
            handled: self.handled.load(r),
            emitted: self.emitted.load(r),
            dispatched: self.dispatched.load(r),
            dropped: self.dropped.load(r),
            busy_ns: self.busy_ns.load(r),
            stopped: self.stopped.load(r),
            outstanding: self
                .outstanding
                .iter()
                .map(|(l, v)| (*l, v.load(r)))
                .collect(),
            pending: self.pending.iter().map(|(l, v)| (*l, v.load(r))).collect(),
        }
    }
}
