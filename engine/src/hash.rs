//! Stable, portable hashes for partitioning.
//!
//! A partition must not depend on the process, the platform or the Rust version, or a
//! scenario would route events differently on two machines. So flowbench never uses
//! `std`'s randomly seeded hasher for routing; it uses these fixed functions:
//!
//! - [`mix64`]: the SplitMix64 finaliser (Steele, Lea, Flood 2014), a bijection on `u64`
//!   that spreads nearby integers evenly. The default partition hash of a `u64` event is
//!   `mix64(event) % partitions`.
//! - [`fnv1a64`]: FNV-1a over bytes, for text keys (words, log levels).

/// SplitMix64's finaliser: a stable, well-mixed bijection of `u64`.
///
/// ```
/// use flowbench_engine::hash::mix64;
/// assert_eq!(mix64(0), 0);
/// assert_eq!(mix64(1), 0x5692_161d_100b_05e5);
/// ```
#[inline]
pub const fn mix64(x: u64) -> u64 {
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a, 64 bits, over `bytes`.
///
/// ```
/// use flowbench_engine::hash::fnv1a64;
/// assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
/// assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
/// ```
#[inline]
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A deterministic stream of pseudo-random `u64` from a seed (SplitMix64). Used where the
/// engine must permute something reproducibly from a seed the runtime supplies.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// Starts a stream at `seed`.
    pub const fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next value of the stream.
    #[allow(clippy::should_implement_trait)] // not an Iterator: it never ends
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.0)
    }

    /// A value in `0..n` (n > 0), by multiply-shift (negligible bias for small n).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
}
