//! Hash maps keyed by the indexes' own integers (document slots, graph labels): one
//! multiplication per key, where the standard hasher (SipHash, built against untrusted keys)
//! cost most of a BM25 query's scoring time. The integers are assigned by the indexes
//! themselves, never taken from input, so the keys cannot be chosen to collide.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Multiplies the key by an odd constant (2^64 / golden ratio): distinct keys keep distinct
/// low bits, and the high bits are well mixed.
#[derive(Debug, Default, Clone, Copy)]
pub struct IntHasher(u64);

const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for IntHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(*b)).wrapping_mul(MULTIPLIER);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(MULTIPLIER);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(MULTIPLIER);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A `HashMap` keyed by an index's own integers, hashed by [`IntHasher`].
pub type IntMap<K, V> = HashMap<K, V, BuildHasherDefault<IntHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_keys_hash_apart_and_maps_work() {
        let mut m: IntMap<u64, u64> = IntMap::default();
        for i in 0..10_000u64 {
            m.insert(i, i * 2);
        }
        assert_eq!(m.len(), 10_000);
        assert!((0..10_000u64).all(|i| m.get(&i) == Some(&(i * 2))));
        let low_bits: std::collections::HashSet<u64> = (0..1024u64)
            .map(|i| {
                let mut h = IntHasher::default();
                h.write_u64(i);
                h.finish() & 1023
            })
            .collect();
        assert_eq!(
            low_bits.len(),
            1024,
            "consecutive keys fill every bucket of 1024"
        );
    }
}
