//! Stable hashing and seeded randomness, the only copies in the crate: FNV-1a 64 for hashes that
//! must be the same on every platform and run (hashed features, demo similarity, the answer order a
//! reviewer is shown), and SplitMix64 for seeded streams. Used instead of crate RNGs/hashers so that
//! splits, shuffles and initial weights are identical across platforms, crate versions and parallel
//! tests (burn's NdArray seed is one global shared by every thread). Changing a constant here
//! changes stored results (display orders, trained selectors): don't.

/// FNV-1a 64-bit offset basis and prime; the hash is defined on bytes.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// An incremental FNV-1a 64 hasher.
#[derive(Debug, Clone, Copy)]
pub struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(FNV_OFFSET)
    }
}

impl Fnv1a {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn write(mut self, bytes: impl IntoIterator<Item = u8>) -> Self {
        for b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
        self
    }

    pub fn finish(self) -> u64 {
        self.0
    }
}

/// FNV-1a over lower-cased ASCII bytes (other bytes pass unchanged).
pub fn fnv1a_lower(bytes: &[u8]) -> u64 {
    Fnv1a::new()
        .write(bytes.iter().map(u8::to_ascii_lowercase))
        .finish()
}

/// Final avalanche (splitmix64's) so that FNV's weak low bits do not cluster buckets.
pub fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [-limit, limit).
    pub fn uniform(&mut self, limit: f32) -> f32 {
        ((self.next_f64() * 2.0 - 1.0) * limit as f64) as f32
    }

    /// Normal(0, std) by Box–Muller.
    pub fn normal(&mut self, std: f32) -> f32 {
        let u1 = self.next_f64().max(f64::MIN_POSITIVE);
        let u2 = self.next_f64();
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32 * std
    }

    /// Uniform index in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_the_published_fnv1a_values() {
        assert_eq!(fnv1a_lower(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_lower(b"Lung"), fnv1a_lower(b"lung"));
        assert_eq!(Fnv1a::new().write(*b"a").finish(), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(Fnv1a::new().write(*b"A").finish(), fnv1a_lower(b"A"));
        assert_ne!(mix(1), mix(2));
    }

    #[test]
    fn same_seed_same_stream_and_sane_ranges() {
        let (mut a, mut b) = (SplitMix64::new(7), SplitMix64::new(7));
        assert_eq!(a.next_u64(), b.next_u64());
        let mut items: Vec<u32> = (0..100).collect();
        a.shuffle(&mut items);
        let mut sorted = items.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_ne!(items, sorted);
        let xs: Vec<f32> = (0..10_000).map(|_| b.normal(1.0)).collect();
        let mean = xs.iter().sum::<f32>() / xs.len() as f32;
        assert!(mean.abs() < 0.05, "mean {mean}");
        assert!((0..1000).all(|_| b.uniform(0.5).abs() <= 0.5));
    }
}
