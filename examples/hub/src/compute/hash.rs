//! The hash job: FNV-1a 64 over the request body repeated `rounds` times.
//!
//! Deliberately simple so a client can check the answer itself: with one
//! round it is the standard FNV-1a 64 of the body (`"a"` →
//! `af63dc4c8601ec8c`), with N rounds the FNV-1a 64 of the body
//! concatenated N times. The work is `rounds × body length` byte steps,
//! which is what the route bounds.

use cortex::workers::CancellationToken;

/// FNV-1a 64's offset basis.
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64's prime.
pub const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 of `bytes`, continuing from `state`.
pub fn fnv1a(state: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(state, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(FNV_PRIME)
    })
}

/// The FNV-1a 64 of `bytes` repeated `rounds` times; `None` if `token`
/// fired first (the caller was already answered: timed out, cancelled).
pub fn repeated(bytes: &[u8], rounds: u64, token: &CancellationToken) -> Option<u64> {
    let mut state = FNV_OFFSET;
    for round in 0..rounds {
        // A look at the token every 64 rounds costs nothing next to the
        // hashing and lets a timed-out job return within milliseconds.
        if round % 64 == 0 && token.is_cancelled() {
            return None;
        }
        state = fnv1a(state, bytes);
    }
    Some(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_round_is_standard_fnv1a_64() {
        let token = cortex::workers::cancellation_token();
        assert_eq!(repeated(b"", 1, &token), Some(FNV_OFFSET));
        assert_eq!(repeated(b"a", 1, &token), Some(0xaf63_dc4c_8601_ec8c));
        assert_eq!(repeated(b"foobar", 1, &token), Some(0x8594_4171_f739_67e8));
    }

    #[test]
    fn rounds_hash_the_body_repeated() {
        let token = cortex::workers::cancellation_token();
        assert_eq!(
            repeated(b"ab", 3, &token),
            Some(fnv1a(FNV_OFFSET, b"ababab"))
        );
    }
}
