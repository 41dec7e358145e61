//! Partition routing: MurmurHash64A with OpenMLDB's seed, made
//! non-negative as the SDK does (`src/base/hash.h`, `hash64`).

const SEED: u32 = 0xe17a_1465;

/// MurmurHash64A (Austin Appleby), little-endian, as `src/base/hash.h`.
pub fn murmur64a(data: &[u8], seed: u32) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = u64::from(seed) ^ (data.len() as u64).wrapping_mul(M);
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let mut k = u64::from_le_bytes(word);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, byte) in tail.iter().enumerate() {
            h ^= u64::from(*byte) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// OpenMLDB's `hash64`: the hash as a signed integer, negated when negative
/// ("as same as java client"; `i64::MIN` stays itself, as on the SDK).
pub fn hash64(key: &[u8]) -> i64 {
    let value = murmur64a(key, SEED) as i64;
    if value < 0 { value.wrapping_neg() } else { value }
}

/// The partition a key string goes to among `partitions` (the table's
/// `table_partition` count).
pub fn partition_of(key: &str, partitions: u32) -> u32 {
    if partitions == 0 {
        return 0;
    }
    // The SDK computes `int64 % uint32` in int64, then narrows to uint32.
    (hash64(key.as_bytes()) % i64::from(partitions)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_test_vectors_hash_and_route_as_the_sdk() {
        let vectors: [(&str, i64, u32); 8] = [
            ("key1", 4010863117771081158, 6),
            ("a", 584566915021039271, 7),
            ("k0", 1404891417433808347, 3),
            ("bb", 551604580535590229, 5),
            ("!N@U#L$L%", 8951397659898634651, 3),
            ("!@#$%", 7097842567011731220, 4),
            ("1|2", 2887602492695136393, 1),
            ("hello world", 779442749388864765, 5),
        ];
        for (key, hash, pid) in vectors {
            assert_eq!(hash64(key.as_bytes()), hash, "hash64({key:?})");
            assert_eq!(partition_of(key, 8), pid, "partition of {key:?}");
        }
    }
}
