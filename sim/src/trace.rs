//! The trace: every delivery and every handled chunk, in order, folded into a 64-bit hash
//! and, when asked for, written as JSON lines (the format is specified in the README, "The trace format").
//!
//! The [`Tap`] is the simulator's [`Observer`] of the stage cores (handled chunks,
//! `handle_demand` calls, drops, losses) and is also told of every delivery by the
//! scheduler. Each record is folded word by word into the trace hash from a fixed
//! encoding of `u64` words (a header of kind tag and stage indices, the time, counts, id
//! ranges, FNV-1a of texts), chained with a multiply-fold ([`fold`]); the JSON line carries
//! the same fields. The hash therefore depends only on what happened and when, never on whether a
//! trace file is written, on the platform, or on `std`'s randomly seeded hasher.
//!
//! This module must not decide anything about the run: it only listens and records.

use std::io::{self, Write};

use flowbench_engine::hash::fnv1a64;
use flowbench_engine::{
    CancelReason, Downstream, DropCause, Input, LostCause, Observer, SubRef, Upstream,
};

use crate::births::Births;

/// The hash of an empty trace (FNV-1a's offset basis).
pub(crate) const HASH_START: u64 = 0xcbf2_9ce4_8422_2325;

/// Flush the JSON buffer to the writer once it holds this many bytes.
const FLUSH_AT: usize = 1 << 16;

/// What a trace record is about; the tag is what the hash folds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Subscribe = 1,
    Ask = 2,
    Events = 3,
    Cancel = 4,
    Refund = 5,
    Handle = 6,
    Demand = 7,
    Drop = 8,
    Lost = 9,
    Arrive = 10,
    Forward = 11,
    Shutdown = 12,
    Crash = 13,
    Restart = 14,
    Resupply = 15,
    Retune = 16,
    Slow = 17,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Subscribe => "subscribe",
            Kind::Ask => "ask",
            Kind::Events => "events",
            Kind::Cancel => "cancel",
            Kind::Refund => "refund",
            Kind::Handle => "handle",
            Kind::Demand => "demand",
            Kind::Drop => "drop",
            Kind::Lost => "lost",
            Kind::Arrive => "arrive",
            Kind::Forward => "forward",
            Kind::Shutdown => "shutdown",
            Kind::Crash => "crash",
            Kind::Restart => "restart",
            Kind::Resupply => "resupply",
            Kind::Retune => "retune",
            Kind::Slow => "slow",
        }
    }
}

/// The multiplier of [`fold`]: 2^64 / golden ratio, odd.
const FOLD_K: u64 = 0x9e37_79b9_7f4a_7c15;

/// Folds one word into the hash: the 128-bit product `(h ^ x) * FOLD_K`, high half xor
/// low half (the "mum" step of wyhash). One multiplication per word.
#[inline]
pub(crate) fn fold(h: u64, x: u64) -> u64 {
    let m = u128::from(h ^ x) * u128::from(FOLD_K);
    (m as u64) ^ ((m >> 64) as u64)
}

/// A stage index in a header word; [`NO_STAGE`] when the record has no such field.
const STAGE_BITS: u32 = 28;
const NO_STAGE: u32 = (1 << STAGE_BITS) - 1;

/// The first word of every record: `kind | a << 8 | b << 36`, `a` and `b` stage indices
/// (28 bits each, [`NO_STAGE`] when absent).
#[inline]
fn header(kind: Kind, a: u32, b: u32) -> u64 {
    (kind as u64) | (u64::from(a.min(NO_STAGE)) << 8) | (u64::from(b.min(NO_STAGE)) << 36)
}

/// Appends the decimal digits of `v`.
#[inline]
fn push_u64(buf: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

/// Appends `s` as a JSON string literal.
pub(crate) fn push_json_str(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    for c in s.chars() {
        match c {
            '"' => buf.extend_from_slice(b"\\\""),
            '\\' => buf.extend_from_slice(b"\\\\"),
            '\n' => buf.extend_from_slice(b"\\n"),
            '\r' => buf.extend_from_slice(b"\\r"),
            '\t' => buf.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(buf, "\\u{:04x}", c as u32);
            }
            c => {
                let mut b = [0u8; 4];
                buf.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    buf.push(b'"');
}

struct Out<'w> {
    w: Box<dyn Write + 'w>,
    buf: Vec<u8>,
    err: Option<io::Error>,
}

impl Out<'_> {
    fn flush_buf(&mut self) {
        if self.err.is_none() && !self.buf.is_empty() {
            if let Err(e) = self.w.write_all(&self.buf) {
                self.err = Some(e);
            }
        }
        self.buf.clear();
    }
}

/// Records the run: trace hash, optional JSON lines, and the birth times of consumed
/// events (for latency). See the module documentation.
pub(crate) struct Tap<'w> {
    hash: u64,
    records: u64,
    now: u64,
    stage: u32,
    gather: bool,
    /// Birth times of the events handled by a consumer during the current step, as
    /// `(time, count)` runs.
    pub(crate) born: Vec<(u64, u64)>,
    /// Consumed events whose birth was not found.
    pub(crate) unmeasured: u64,
    pub(crate) births: Births,
    link_ends: Vec<(u32, u32)>,
    link_sources: Vec<Vec<u32>>,
    names: Vec<Vec<u8>>,
    out: Option<Out<'w>>,
    /// Fold the records into the hash (`SimOptions::trace_hash`).
    pub(crate) hashing: bool,
}

impl<'w> Tap<'w> {
    /// A tap for stages named `names` and links `(producer, consumer)`; `link_sources[l]`
    /// lists the source stages whose events can arrive on link `l`.
    pub(crate) fn new(
        names: &[String],
        link_ends: Vec<(u32, u32)>,
        link_sources: Vec<Vec<u32>>,
        out: Option<Box<dyn Write + 'w>>,
    ) -> Self {
        Tap {
            hash: HASH_START,
            records: 0,
            now: 0,
            stage: 0,
            gather: false,
            born: Vec::new(),
            unmeasured: 0,
            births: Births::new(names.len()),
            link_ends,
            link_sources,
            names: names
                .iter()
                .map(|n| {
                    let mut b = Vec::new();
                    push_json_str(&mut b, n);
                    b
                })
                .collect(),
            out: out.map(|w| Out {
                w,
                buf: Vec::with_capacity(FLUSH_AT + 4096),
                err: None,
            }),
            hashing: true,
        }
    }

    /// Neither hashed nor written: the scheduler's frequent records can be skipped.
    #[inline]
    fn silent(&self) -> bool {
        !self.hashing && self.out.is_none()
    }

    /// The trace hash so far.
    pub(crate) fn hash(&self) -> u64 {
        if self.hashing {
            self.hash
        } else {
            0
        }
    }

    /// Records written or folded so far (none when neither: the hash off and no trace).
    pub(crate) fn records(&self) -> u64 {
        self.records
    }

    /// Sets the clock and the stage the core's observations belong to; `gather` collects
    /// the birth times of handled events (for consumers).
    #[inline]
    pub(crate) fn enter(&mut self, stage: usize, gather: bool, now: u64) {
        self.stage = stage as u32;
        self.gather = gather;
        self.now = now;
    }

    /// Sets the clock for records that are not a core's observation.
    #[inline]
    pub(crate) fn at(&mut self, now: u64) {
        self.now = now;
    }

    /// Hands what is buffered to the writer (a viewer reading the records as they come).
    pub(crate) fn flush_out(&mut self) {
        if let Some(o) = self.out.as_mut() {
            o.flush_buf();
        }
    }

    /// Flushes what is buffered; returns the first write error of the run, if any.
    pub(crate) fn finish(&mut self) -> io::Result<()> {
        match self.out.as_mut() {
            None => Ok(()),
            Some(o) => {
                o.flush_buf();
                if o.err.is_none() {
                    if let Err(e) = o.w.flush() {
                        o.err = Some(e);
                    }
                }
                match o.err.take() {
                    Some(e) => Err(e),
                    None => Ok(()),
                }
            }
        }
    }

    /// The birth time of event `id` that came on link `link`, if known.
    #[inline]
    pub(crate) fn born_of(&mut self, link: u32, id: u64) -> Option<u64> {
        let srcs = self.link_sources.get(link as usize)?;
        srcs.iter().find_map(|&s| self.births.find(s as usize, id))
    }

    fn producer(&self, sub: SubRef) -> u32 {
        self.link_ends
            .get(sub.link as usize)
            .map_or(u32::MAX, |e| e.0)
    }

    fn consumer(&self, sub: SubRef) -> u32 {
        self.link_ends
            .get(sub.link as usize)
            .map_or(u32::MAX, |e| e.1)
    }

    // ---- record building ------------------------------------------------------------

    /// Starts a record: folds its header word and time, writes `t_ns`, `seq`, `kind` and
    /// the stage fields `a` and `b` (name, index).
    #[inline]
    fn begin(&mut self, kind: Kind, a: (&str, u32), b: Option<(&str, u32)>) {
        let bid = b.map_or(NO_STAGE, |b| b.1);
        self.hash = fold(fold(self.hash, header(kind, a.1, bid)), self.now);
        if let Some(o) = self.out.as_mut() {
            o.buf.extend_from_slice(b"{\"t_ns\":");
            push_u64(&mut o.buf, self.now);
            o.buf.extend_from_slice(b",\"seq\":");
            push_u64(&mut o.buf, self.records);
            o.buf.extend_from_slice(b",\"kind\":\"");
            o.buf.extend_from_slice(kind.name().as_bytes());
            o.buf.push(b'"');
            for (key, id) in std::iter::once(a).chain(b) {
                Self::key(&mut o.buf, key);
                match self.names.get(id as usize) {
                    Some(n) => o.buf.extend_from_slice(n),
                    None => o.buf.extend_from_slice(b"null"),
                }
            }
        }
    }

    #[inline]
    fn key(buf: &mut Vec<u8>, key: &str) {
        buf.extend_from_slice(b",\"");
        buf.extend_from_slice(key.as_bytes());
        buf.extend_from_slice(b"\":");
    }

    #[inline]
    fn num(&mut self, key: &str, v: u64) {
        self.hash = fold(self.hash, v);
        if let Some(o) = self.out.as_mut() {
            Self::key(&mut o.buf, key);
            push_u64(&mut o.buf, v);
        }
    }

    fn text(&mut self, key: &str, s: &str) {
        self.hash = fold(self.hash, fnv1a64(s.as_bytes()));
        if let Some(o) = self.out.as_mut() {
            Self::key(&mut o.buf, key);
            push_json_str(&mut o.buf, s);
        }
    }

    /// `events` as inclusive ranges of consecutive ids.
    #[inline]
    fn events(&mut self, ev: &[u64]) {
        if let (Some(&first), None) = (ev.first(), self.out.as_ref()) {
            // Often one run (a source's batch): checked without a branch per id, so the
            // check vectorises; then folded as that one range (about 2 % of the default
            // scenario's instructions).
            let off = ev
                .iter()
                .zip(0u64..)
                .fold(0u64, |acc, (&e, i)| acc | (e ^ first.wrapping_add(i)));
            if off == 0 {
                let last = first.wrapping_add(ev.len() as u64 - 1);
                self.hash = fold(fold(self.hash, first), last);
                return;
            }
        }
        let mut h = self.hash;
        let mut out = self.out.as_mut();
        if let Some(o) = out.as_mut() {
            Self::key(&mut o.buf, "events");
            o.buf.push(b'[');
        }
        let mut i = 0;
        let mut firstr = true;
        while i < ev.len() {
            let first = ev[i];
            let mut last = first;
            i += 1;
            while i < ev.len() && ev[i] == last.wrapping_add(1) {
                last = ev[i];
                i += 1;
            }
            h = fold(fold(h, first), last);
            if let Some(o) = out.as_mut() {
                if !firstr {
                    o.buf.push(b',');
                }
                o.buf.push(b'[');
                push_u64(&mut o.buf, first);
                o.buf.push(b',');
                push_u64(&mut o.buf, last);
                o.buf.push(b']');
            }
            firstr = false;
        }
        if let Some(o) = out {
            o.buf.push(b']');
        }
        self.hash = h;
    }

    #[inline]
    fn end(&mut self) {
        self.records += 1;
        if let Some(o) = self.out.as_mut() {
            o.buf.extend_from_slice(b"}\n");
            if o.buf.len() >= FLUSH_AT {
                o.flush_buf();
            }
        }
    }

    // ---- records the scheduler makes ------------------------------------------------

    /// A message reached stage `to` (recorded when it enters the mailbox). Inputs that are
    /// not deliveries (start, job done) are not recorded.
    #[inline]
    pub(crate) fn delivery(&mut self, input: &Input<u64, u64>, to: usize) {
        if !self.silent() {
            self.record_delivery(input, to);
        }
    }

    #[inline(never)]
    fn record_delivery(&mut self, input: &Input<u64, u64>, to: usize) {
        match input {
            Input::Up(m) => {
                let sub = m.sub();
                let (kind, n, reason) = match m {
                    Upstream::Subscribe { .. } => (Kind::Subscribe, None, None),
                    Upstream::Ask { n, .. } => (Kind::Ask, Some(*n), None),
                    Upstream::Refund { n, .. } => (Kind::Refund, Some(*n), None),
                    Upstream::Resupply { n, .. } => (Kind::Resupply, Some(*n), None),
                    Upstream::Cancel { reason, .. } => (Kind::Cancel, None, Some(reason)),
                };
                // A resupply is the producer's note to itself.
                let from = if kind == Kind::Resupply {
                    self.producer(sub)
                } else {
                    self.consumer(sub)
                };
                self.begin(kind, ("from", from), Some(("to", self.producer(sub))));
                if let Some(n) = n {
                    self.num("n", n);
                }
                if let Some(r) = reason {
                    self.reason(r);
                }
                self.end();
            }
            Input::Down(Downstream::Events { sub, batch }) => {
                self.begin(
                    Kind::Events,
                    ("from", self.producer(*sub)),
                    Some(("to", self.consumer(*sub))),
                );
                self.num("n", batch.len() as u64);
                self.events(batch);
                self.end();
            }
            Input::Down(Downstream::Cancel { sub, reason }) => {
                self.begin(
                    Kind::Cancel,
                    ("from", self.producer(*sub)),
                    Some(("to", self.consumer(*sub))),
                );
                self.reason(reason);
                self.end();
            }
            Input::Arrive(ids) => {
                self.begin(Kind::Arrive, ("stage", to as u32), None);
                self.num("n", ids.len() as u64);
                self.events(ids);
                self.end();
            }
            Input::Forward => self.simple(Kind::Forward, to),
            Input::Shutdown => self.simple(Kind::Shutdown, to),
            Input::Start | Input::JobDone { .. } | Input::Crash(_) => {}
        }
    }

    fn reason(&mut self, r: &CancelReason) {
        let text = r.to_string();
        self.text("reason", &text);
    }

    /// A record with only a stage (`forward`, `shutdown`, `restart`).
    pub(crate) fn simple(&mut self, kind: Kind, stage: usize) {
        if self.silent() {
            return;
        }
        self.begin(kind, ("stage", stage as u32), None);
        self.end();
    }

    /// A subscription's demand changed while the run went on.
    pub(crate) fn retune(&mut self, producer: usize, consumer: usize, max: u64, min: u64) {
        if self.silent() {
            return;
        }
        self.begin(
            Kind::Retune,
            ("from", producer as u32),
            Some(("to", consumer as u32)),
        );
        self.num("max_demand", max);
        self.num("min_demand", min);
        self.end();
    }

    /// A stage's service times are multiplied by `factor` from now on.
    pub(crate) fn slow(&mut self, stage: usize, factor: f64) {
        if self.silent() {
            return;
        }
        self.begin(Kind::Slow, ("stage", stage as u32), None);
        self.hash = fold(self.hash, factor.to_bits());
        if let Some(o) = self.out.as_mut() {
            Self::key(&mut o.buf, "factor");
            let _ = write!(o.buf, "{factor}");
        }
        self.end();
    }

    /// An injected crash of `stage`.
    pub(crate) fn crash(&mut self, stage: usize, reason: &CancelReason) {
        if self.silent() {
            return;
        }
        self.begin(Kind::Crash, ("stage", stage as u32), None);
        self.reason(reason);
        self.end();
    }

    /// A record of the current stage's events (`handle`, `drop`, `lost`): from the
    /// producer of `from` if they came on a subscription, with a `cause` if any.
    #[inline]
    fn chunk(&mut self, kind: Kind, from: Option<SubRef>, events: &[u64], cause: Option<&str>) {
        if !self.silent() {
            self.record_chunk(kind, from, events, cause);
        }
    }

    #[inline(never)]
    fn record_chunk(
        &mut self,
        kind: Kind,
        from: Option<SubRef>,
        events: &[u64],
        cause: Option<&str>,
    ) {
        let from = from.map(|f| ("from", self.producer(f)));
        self.begin(kind, ("stage", self.stage), from);
        self.num("n", events.len() as u64);
        self.events(events);
        if let Some(c) = cause {
            self.text("cause", c);
        }
        self.end();
    }
}

impl Observer<u64, u64> for Tap<'_> {
    fn demand(&mut self, n: u64) {
        if self.silent() {
            return;
        }
        self.begin(Kind::Demand, ("stage", self.stage), None);
        self.num("n", n);
        self.end();
    }

    fn handled(&mut self, from: SubRef, events: &[u64]) {
        self.chunk(Kind::Handle, Some(from), events, None);
        if self.gather {
            match self.link_sources.get(from.link as usize).map(Vec::as_slice) {
                // The usual case: one source upstream; look it up once for the chunk.
                Some(&[src]) => {
                    self.unmeasured += self.births.times_of(src as usize, events, &mut self.born);
                }
                _ => {
                    for &e in events {
                        match self.born_of(from.link, e) {
                            Some(t) => crate::births::push_time(&mut self.born, t),
                            None => self.unmeasured += 1,
                        }
                    }
                }
            }
        }
    }

    fn dropped(&mut self, cause: DropCause, events: &[u64]) {
        self.chunk(Kind::Drop, None, events, Some(cause.name()));
    }

    fn lost_out(&mut self, cause: LostCause, events: &[u64]) {
        self.chunk(Kind::Lost, None, events, Some(cause.name()));
    }

    fn lost_in(&mut self, from: SubRef, cause: LostCause, events: &[u64]) {
        self.chunk(Kind::Lost, Some(from), events, Some(cause.name()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tap_with(out: Option<&mut dyn Write>) -> Tap<'_> {
        Tap::new(
            &["src".to_string(), "sink \"1\"".to_string()],
            vec![(0, 1)],
            vec![vec![0]],
            out.map(|w| Box::new(w) as Box<dyn Write + '_>),
        )
    }

    #[test]
    fn trace_hash_does_not_depend_on_writing() {
        let mut buf = Vec::new();
        let mut a = tap_with(Some(&mut buf));
        let mut b = tap_with(None);
        for t in [&mut a, &mut b] {
            t.at(5);
            t.delivery(
                &Input::Down(Downstream::Events {
                    sub: SubRef::first(0),
                    batch: vec![1, 2, 3, 7, 9, 10],
                }),
                1,
            );
            t.enter(1, false, 6);
            t.handled(SubRef::first(0), &[1, 2]);
        }
        let (ha, hb) = (a.hash(), b.hash());
        a.finish().expect("write to a Vec");
        drop((a, b));
        assert_eq!(ha, hb);
        assert_ne!(ha, HASH_START);
        let text = String::from_utf8(buf).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                r#"{"t_ns":5,"seq":0,"kind":"events","from":"src","to":"sink \"1\"","n":6,"events":[[1,3],[7,7],[9,10]]}"#,
                r#"{"t_ns":6,"seq":1,"kind":"handle","stage":"sink \"1\"","from":"src","n":2,"events":[[1,2]]}"#,
            ]
        );
    }

    #[test]
    fn trace_hash_depends_on_order_and_time() {
        let rec = |order: [u64; 2], t: u64| {
            let mut tap = tap_with(None);
            tap.enter(0, false, t);
            for n in order {
                tap.demand(n);
            }
            tap.hash()
        };
        assert_ne!(rec([1, 2], 0), rec([2, 1], 0));
        assert_ne!(rec([1, 2], 0), rec([1, 2], 1));
        assert_eq!(rec([1, 2], 3), rec([1, 2], 3));
    }
}
