//! Seeded random streams: one `ChaCha8Rng` per named stream, derived from the root seed.
//!
//! Every source of randomness in a run is a [`Stream`] named after what it serves (see
//! [`stage_stream`], [`arrival_stream`], [`link_stream`]); its seed is
//! `flowbench_engine::plan::derive_seed(root, name)`, so adding or renaming one stage never
//! changes another stage's draws. This module must never read a clock, the process
//! environment or an unseeded generator.

use flowbench_engine::plan::{derive_seed, Variates};
use flowbench_engine::scenario::Dist;
use rand_chacha::rand_core::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The name of a stage's service-time stream: the stage name itself.
pub(crate) fn stage_stream(stage: &str) -> String {
    stage.to_string()
}

/// The name of a push source's arrival-gap stream: `"<stage>/arrivals"`.
pub(crate) fn arrival_stream(stage: &str) -> String {
    format!("{stage}/arrivals")
}

/// The name of a link's latency stream: `"<producer>-><consumer>"`, with `"#k"` appended
/// for the k-th (k >= 1) further subscription between the same two stages.
pub(crate) fn link_stream(producer: &str, consumer: &str, repeat: usize) -> String {
    if repeat == 0 {
        format!("{producer}->{consumer}")
    } else {
        format!("{producer}->{consumer}#{repeat}")
    }
}

/// A deterministic stream of uniform variates and service-time samples.
#[derive(Clone, Debug)]
pub(crate) struct Stream(ChaCha8Rng);

impl Stream {
    /// The stream called `name` under the root seed `root`.
    pub(crate) fn named(root: u64, name: &str) -> Self {
        Stream(ChaCha8Rng::seed_from_u64(derive_seed(root, name)))
    }

    /// A uniform variate in `(0, 1]`: the top 53 bits of one `u64`, plus one ulp.
    #[inline]
    pub(crate) fn uniform(&mut self) -> f64 {
        ((self.0.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// One draw of `d` (the plan's rule, [`flowbench_engine::plan::sample`]).
    #[inline]
    pub(crate) fn sample(&mut self, d: &Dist) -> u64 {
        flowbench_engine::plan::sample(d, self)
    }
}

impl Variates for Stream {
    #[inline]
    fn uniform(&mut self) -> f64 {
        Stream::uniform(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_independent_by_name() {
        let a: Vec<f64> = {
            let mut s = Stream::named(7, "parse");
            (0..4).map(|_| s.uniform()).collect()
        };
        let b: Vec<f64> = {
            let mut s = Stream::named(7, "parse");
            (0..4).map(|_| s.uniform()).collect()
        };
        let c: Vec<f64> = {
            let mut s = Stream::named(7, "agg-0");
            (0..4).map(|_| s.uniform()).collect()
        };
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.iter().all(|u| *u > 0.0 && *u <= 1.0));
    }

    #[test]
    fn fixed_times_draw_nothing() {
        let mut s = Stream::named(1, "x");
        let mut t = s.clone();
        assert_eq!(
            flowbench_engine::plan::sample_sum(&Dist::Fixed { ns: 7 }, 3, &mut s),
            21
        );
        assert_eq!(s.uniform(), t.uniform());
    }
}
