//! When each event was born, so its latency can be measured when it is consumed.
//!
//! Events are `u64` ids, and a source hands them out in runs: a `range` or `counter`
//! producer emits consecutive ids in one `handle_demand` call, a push source receives one
//! range per arrival. So a birth is recorded per run `(first, last, time)`, not per event,
//! and looked up by id (binary search, with a cursor for the usual in-order case). A
//! source whose ids repeat (a restarted `range` producer) or a script that goes back falls
//! back to a scan from the newest run. This module only remembers times; it never decides
//! what an event's latency is.

/// The most runs kept per source; beyond it the older half is forgotten (their events
/// are then not measured, and counted as unmeasured).
const MAX_RUNS: usize = 1 << 20;

#[derive(Clone, Copy, Debug)]
struct Run {
    first: u64,
    last: u64,
    t: u64,
}

#[derive(Debug, Default)]
struct Source {
    runs: Vec<Run>,
    cursor: usize,
    monotone: bool,
    /// Its ids must ascend (every source but a script): an id at or below the last one
    /// is one handed out twice.
    ascending: bool,
    /// A restart began the ids again: repeats are expected.
    repeats_ok: bool,
    /// Ids handed out twice.
    duplicates: u64,
}

/// Birth runs of every source stage (indexed by stage id; empty for other stages).
#[derive(Debug, Default)]
pub(crate) struct Births {
    sources: Vec<Source>,
}

impl Births {
    pub(crate) fn new(stages: usize) -> Self {
        Births {
            sources: (0..stages)
                .map(|_| Source {
                    runs: Vec::new(),
                    cursor: 0,
                    monotone: true,
                    ascending: false,
                    repeats_ok: false,
                    duplicates: 0,
                })
                .collect(),
        }
    }

    /// Stage `stage` gave birth to the ids `first..=last` at time `t`.
    pub(crate) fn push(&mut self, stage: usize, first: u64, last: u64, t: u64) {
        let Some(src) = self.sources.get_mut(stage) else {
            return;
        };
        if let Some(prev) = src.runs.last_mut() {
            if first <= prev.last {
                src.monotone = false;
                if src.ascending && !src.repeats_ok {
                    src.duplicates += last.min(prev.last) - first + 1;
                }
            } else if prev.t == t && first == prev.last.wrapping_add(1) {
                prev.last = last;
                return;
            }
        }
        if src.runs.len() >= MAX_RUNS {
            src.runs.drain(..MAX_RUNS / 2);
            src.cursor = 0;
        }
        src.runs.push(Run { first, last, t });
    }

    /// Marks a source whose ids may repeat from now on (its stage was restarted).
    pub(crate) fn ids_may_repeat(&mut self, stage: usize) {
        if let Some(src) = self.sources.get_mut(stage) {
            src.monotone = false;
            src.repeats_ok = true;
        }
    }

    /// Stage `stage` numbers its events in ascending order (a range, a counter, a
    /// Poisson or burst source): an id that does not ascend was handed out twice.
    pub(crate) fn expect_ascending(&mut self, stage: usize) {
        if let Some(src) = self.sources.get_mut(stage) {
            src.ascending = true;
        }
    }

    /// Per source stage, how many ids it handed out twice (only those with any).
    pub(crate) fn duplicates(&self) -> Vec<(usize, u64)> {
        self.sources
            .iter()
            .enumerate()
            .filter(|(_, s)| s.duplicates > 0)
            .map(|(i, s)| (i, s.duplicates))
            .collect()
    }

    /// The birth time of `id` at source `stage`, if known.
    #[inline]
    pub(crate) fn find(&mut self, stage: usize, id: u64) -> Option<u64> {
        let src = self.sources.get_mut(stage)?;
        let runs = &src.runs;
        if src.monotone {
            if let Some(r) = runs.get(src.cursor) {
                if r.first <= id && id <= r.last {
                    return Some(r.t);
                }
            }
            let i = runs.partition_point(|r| r.last < id);
            let r = runs.get(i)?;
            if r.first <= id {
                src.cursor = i;
                return Some(r.t);
            }
            None
        } else {
            runs.iter()
                .rev()
                .find(|r| r.first <= id && id <= r.last)
                .map(|r| r.t)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ascending_source_that_repeats_ids_is_counted() {
        let mut b = Births::new(2);
        b.expect_ascending(0);
        b.push(0, 1, 10, 0);
        b.push(0, 8, 12, 1); // 8, 9, 10 again
        b.push(1, 5, 6, 0); // a script: any order
        b.push(1, 1, 2, 1);
        assert_eq!(b.duplicates(), vec![(0, 3)]);
        b.ids_may_repeat(0); // a restart begins again
        b.push(0, 1, 5, 2);
        assert_eq!(b.duplicates(), vec![(0, 3)]);
    }

    #[test]
    fn births_find_runs_by_id() {
        let mut b = Births::new(2);
        b.push(0, 1, 10, 100);
        b.push(0, 11, 20, 100); // merged: same time, contiguous
        b.push(0, 21, 30, 200);
        assert_eq!(b.find(0, 5), Some(100));
        assert_eq!(b.find(0, 20), Some(100));
        assert_eq!(b.find(0, 25), Some(200));
        assert_eq!(b.find(0, 31), None);
        assert_eq!(b.find(1, 5), None);
    }

    #[test]
    fn births_of_repeated_ids_take_the_newest_run() {
        let mut b = Births::new(1);
        b.push(0, 1, 10, 100);
        b.ids_may_repeat(0);
        b.push(0, 1, 10, 900);
        assert_eq!(b.find(0, 3), Some(900));
    }
}
