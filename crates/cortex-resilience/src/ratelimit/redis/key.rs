//! [`RateLimitKey`]: the bytes a key is stored under in Redis.
//!
//! The local limiter hashes keys with a per-process random seed, which
//! would give every replica a different name for the same client. Redis
//! keys must be spelled the same on every node and across restarts, so
//! each key type writes a fixed encoding of itself instead.

use std::net::IpAddr;
use std::sync::Arc;

/// The Redis key suffix of requests that have no key (the extractor
/// returned `None`): they share one budget, as the local limiter's
/// overflow budget.
pub(super) const OVERFLOW_KEY: &[u8] = b"~";

/// A rate-limit key with a stable byte encoding: the same on every
/// replica, across restarts and Rust versions, and distinct for distinct
/// keys of one type. What
/// [`DistributedRateLimiter::http_layer`](super::DistributedRateLimiter::http_layer)
/// needs of a [`KeyExtractor`](crate::KeyExtractor)'s key.
///
/// Implemented for the keys of the extractors this crate ships: `()`
/// ([`GlobalKey`](crate::GlobalKey): nothing), [`IpAddr`]
/// ([`ClientIp`](crate::ClientIp): the 4 or 16 address bytes, so v4 and
/// v6 differ by length), `Arc<str>` ([`RouteKey`](crate::RouteKey): the
/// UTF-8 bytes) and `Vec<u8>` ([`HeaderKey`](crate::HeaderKey): as is);
/// also for `String`. A key whose encoding is exactly `~` shares the
/// budget of requests without a key.
///
/// ```
/// use std::net::IpAddr;
/// use cortex_resilience::RateLimitKey;
///
/// let mut out = Vec::new();
/// "192.0.2.7".parse::<IpAddr>().unwrap().write_key(&mut out);
/// assert_eq!(out, [192, 0, 2, 7]);
/// ```
pub trait RateLimitKey {
    /// Appends this key's encoding to `out`.
    fn write_key(&self, out: &mut Vec<u8>);
}

impl RateLimitKey for () {
    fn write_key(&self, _out: &mut Vec<u8>) {}
}

impl RateLimitKey for IpAddr {
    fn write_key(&self, out: &mut Vec<u8>) {
        match self {
            Self::V4(v4) => out.extend_from_slice(&v4.octets()),
            Self::V6(v6) => out.extend_from_slice(&v6.octets()),
        }
    }
}

impl RateLimitKey for Arc<str> {
    fn write_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
}

impl RateLimitKey for String {
    fn write_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
}

impl RateLimitKey for Vec<u8> {
    fn write_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    fn encoded(key: &impl RateLimitKey) -> Vec<u8> {
        let mut out = b"prefix:".to_vec();
        key.write_key(&mut out);
        out.split_off(b"prefix:".len())
    }

    #[test]
    fn encodings_are_fixed_bytes() {
        // Pinned literally: changing any of these moves every live budget
        // in Redis to a new key during a rolling upgrade.
        assert_eq!(encoded(&()), b"");
        assert_eq!(
            encoded(&IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9))),
            [203, 0, 113, 9]
        );
        let v6: IpAddr = "2001:db8:1:2::".parse().unwrap();
        assert_eq!(
            encoded(&v6),
            [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(encoded(&Arc::<str>::from("/api/{id}")), b"/api/{id}");
        assert_eq!(encoded(&"/api/{id}".to_owned()), b"/api/{id}");
        assert_eq!(encoded(&b"secret\xff".to_vec()), b"secret\xff");
    }

    #[test]
    fn v4_and_v6_keys_differ_even_for_the_mapped_address() {
        let v4 = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let mapped = IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped());
        let unspecified = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        assert_ne!(encoded(&v4), encoded(&mapped));
        assert_eq!(encoded(&v4).len(), 4);
        assert_eq!(encoded(&mapped).len(), 16);
        assert_eq!(encoded(&unspecified), [0; 16]);
    }

    #[test]
    fn str_and_bytes_keys_of_the_same_text_agree_and_overflow_is_distinct() {
        // One limiter has one key type, so equal bytes across types never
        // meet; within a type, only the text `~` meets the overflow key.
        assert_eq!(encoded(&Arc::<str>::from("k")), encoded(&b"k".to_vec()));
        assert_ne!(encoded(&()), OVERFLOW_KEY);
        assert_ne!(encoded(&b"alice".to_vec()), OVERFLOW_KEY);
    }
}
