//! The one hash function of the crate: FNV-1a 64, written out so that the
//! ring and the anti-entropy digests are the same on every node, build and
//! Rust version (std's `DefaultHasher` promises none of that), followed by
//! a finalizer.
//!
//! Why the finalizer: FNV-1a folds each byte in with one multiplication,
//! which only carries a change *upwards*, and the last byte of the input is
//! followed by a single multiplication. Keys that differ only in their
//! last character ("k1", "k2", ...) then differ only in their low and
//! middle bits, and since the ring compares whole 64-bit values they would
//! land next to each other, on the same owners. The splitmix64 finalizer
//! spreads every input bit over the whole word.

/// FNV-1a, 64 bits (Fowler, Noll, Vo), over any number of byte strings.
#[derive(Clone, Copy, Debug)]
pub struct Fnv1a64 {
    state: u64,
}

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl Default for Fnv1a64 {
    fn default() -> Fnv1a64 {
        Fnv1a64 { state: FNV_OFFSET_BASIS }
    }
}

impl Fnv1a64 {
    pub fn new() -> Fnv1a64 {
        Fnv1a64::default()
    }

    pub fn write(&mut self, bytes: &[u8]) -> &mut Fnv1a64 {
        for byte in bytes {
            self.state ^= u64::from(*byte);
            self.state = self.state.wrapping_mul(FNV_PRIME);
        }
        self
    }

    /// Little-endian, so the bytes (and the hash) do not depend on the
    /// machine.
    pub fn write_u64(&mut self, value: u64) -> &mut Fnv1a64 {
        self.write(&value.to_le_bytes())
    }

    /// The plain FNV-1a value.
    pub fn finish(&self) -> u64 {
        self.state
    }

    /// FNV-1a followed by the splitmix64 finalizer: what the ring and the
    /// digests use.
    pub fn finish_mixed(&self) -> u64 {
        mix64(self.state)
    }
}

/// The splitmix64 / murmur3 `fmix64` finalizer: a bijection on u64 in
/// which every input bit affects every output bit.
pub fn mix64(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A key's position: on the ring, and (modulo the bucket count) its
/// anti-entropy bucket.
pub fn key_hash(key: &[u8]) -> u64 {
    Fnv1a64::new().write(key).finish_mixed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_published_fnv1a64_test_vectors() {
        assert_eq!(Fnv1a64::new().finish(), 0xcbf2_9ce4_8422_2325);
        assert_eq!(Fnv1a64::new().write(b"a").finish(), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(Fnv1a64::new().write(b"foobar").finish(), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn writing_in_pieces_is_writing_the_concatenation() {
        assert_eq!(Fnv1a64::new().write(b"foo").write(b"bar").finish(), Fnv1a64::new().write(b"foobar").finish());
    }

    #[test]
    fn keys_differing_in_their_last_byte_spread_over_the_high_bits() {
        let tops: std::collections::BTreeSet<u64> = (0u8..16).map(|i| key_hash(&[b'k', b'0' + i]) >> 60).collect();
        assert!(tops.len() >= 8, "16 keys fell into only {} of 16 top-nibble ranges", tops.len());
    }
}
