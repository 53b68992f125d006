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
//! - [`stable_hash`] / [`StableHasher`]: any `Hash` key (the Flow API's partition keys),
//!   eight bytes at a time, integers little-endian whatever the platform, finished by
//!   [`mix64`].

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

/// Hashes any `Hash` key the same way on every run, platform and Rust version (as long as
/// the key type's `Hash` implementation stays the same): the hash the Flow API partitions
/// by.
///
/// ```
/// use flowbench_engine::hash::stable_hash;
/// assert_eq!(stable_hash("word"), stable_hash(&String::from("word")));
/// assert_ne!(stable_hash(&1u64), stable_hash(&2u64));
/// assert_eq!(stable_hash(&7u32), stable_hash(&7u32));
/// ```
pub fn stable_hash<K: std::hash::Hash + ?Sized>(key: &K) -> u64 {
    let mut h = StableHasher::default();
    key.hash(&mut h);
    std::hash::Hasher::finish(&h)
}

/// The [`std::hash::Hasher`] behind [`stable_hash`]: a multiply-rotate over eight-byte
/// words (little-endian), integers written little-endian at their full width (`usize` as
/// `u64`), finished by [`mix64`]. Not for hash tables facing untrusted keys.
#[derive(Clone, Debug, Default)]
pub struct StableHasher(u64);

impl StableHasher {
    const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;

    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::K);
    }
}

impl std::hash::Hasher for StableHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            // The length tells "ab" from "ab\0".
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.add(i as u64);
        self.add((i >> 64) as u64);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        mix64(self.0)
    }
}
