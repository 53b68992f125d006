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

/// Appends birth time `t` to `(time, count)` runs.
#[inline]
pub(crate) fn push_time(out: &mut Vec<(u64, u64)>, t: u64) {
    match out.last_mut() {
        Some(last) if last.0 == t => last.1 += 1,
        _ => out.push((t, 1)),
    }
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

    /// The birth times of `ids` (events of source `stage`), appended to `out` as
    /// `(time, count)` runs (consecutive ids of one birth run share their time, so a
    /// chunk usually adds one or two entries). Returns how many were not found. The same
    /// lookup as [`find`](Births::find), with the source looked up once per chunk.
    pub(crate) fn times_of(&mut self, stage: usize, ids: &[u64], out: &mut Vec<(u64, u64)>) -> u64 {
        let Some(src) = self.sources.get_mut(stage) else {
            return ids.len() as u64;
        };
        let mut missing = 0;
        if !src.monotone {
            for &id in ids {
                match src
                    .runs
                    .iter()
                    .rev()
                    .find(|r| r.first <= id && id <= r.last)
                {
                    Some(r) => push_time(out, r.t),
                    None => missing += 1,
                }
            }
            return missing;
        }
        let mut cur = src.runs.get(src.cursor).copied();
        for &id in ids {
            if let Some(r) = cur {
                if r.first <= id && id <= r.last {
                    push_time(out, r.t);
                    continue;
                }
            }
            let i = src.runs.partition_point(|r| r.last < id);
            match src.runs.get(i) {
                Some(r) if r.first <= id => {
                    src.cursor = i;
                    cur = Some(*r);
                    push_time(out, r.t);
                }
                _ => missing += 1,
            }
        }
        missing
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
    fn times_of_a_chunk_are_the_times_find_gives_in_runs() {
        let mut b = Births::new(2);
        b.push(0, 1, 10, 100);
        b.push(0, 11, 20, 200);
        b.push(0, 31, 40, 300);
        let ids = [2, 5, 9, 12, 20, 25, 33, 1, 40, 41];
        let mut out = Vec::new();
        let missing = b.times_of(0, &ids, &mut out);
        assert_eq!(missing, 2, "25 and 41 were never born");
        assert_eq!(out, [(100, 3), (200, 2), (300, 1), (100, 1), (300, 1)]);
        let each: Vec<_> = ids.iter().filter_map(|&i| b.find(0, i)).collect();
        let runs: Vec<_> = out
            .iter()
            .flat_map(|&(t, n)| std::iter::repeat_n(t, n as usize))
            .collect();
        assert_eq!(runs, each);
        // A source whose ids repeat takes the newest run, as find does.
        b.ids_may_repeat(0);
        b.push(0, 1, 5, 900);
        let mut out = Vec::new();
        assert_eq!(b.times_of(0, &[3, 7], &mut out), 0);
        assert_eq!(out, [(900, 1), (100, 1)]);
        assert_eq!(b.times_of(1, &[3], &mut out), 1, "stage 1 has no runs");
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
