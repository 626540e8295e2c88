//! Cache settings, stats and events.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// Settings of a [`ResponseCache`](super::ResponseCache).
///
/// ```
/// use std::time::Duration;
/// use cortex_resilience::ResponseCacheConfig;
///
/// let config: ResponseCacheConfig = serde_json::from_str(
///     r#"{ "max_bytes": 1048576, "stale_if_error": "5m", "default_ttl": "2s" }"#,
/// )
/// .unwrap();
/// assert_eq!(config.max_bytes, 1 << 20);
/// assert_eq!(config.stale_if_error, Duration::from_secs(300));
/// assert!(config.shared);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResponseCacheConfig {
    /// Most entries held (responses plus the small `Vary` and
    /// "uncacheable" markers). 10 000.
    pub max_entries: u64,
    /// Most bytes held: bodies, headers and keys. 64 MiB.
    pub max_bytes: u64,
    /// Largest body stored; a larger response streams through uncached
    /// (`X-Cache: BYPASS`). At most `max_bytes`. 1 MiB.
    pub max_entry_bytes: u64,
    /// Shared-cache semantics (RFC 9111 §3.5): `private` responses, and
    /// responses to requests with `Authorization` (unless `public`,
    /// `s-maxage` or `must-revalidate`), are not stored; `s-maxage` wins
    /// over `max-age`. A cache in front of handlers serves many users, so
    /// `true`; `false` only for a cache that serves a single user. `true`.
    pub shared: bool,
    /// Freshness given to a storable response that states none (no
    /// `max-age`, `s-maxage`, `Expires`, nor a `Last-Modified` from which
    /// http-cache-semantics derives heuristic freshness): RFC 9111 §4.2.2
    /// heuristic freshness, as a fixed lifetime. Zero: such responses are
    /// not stored. `0s`.
    #[serde(with = "crate::duration")]
    pub default_ttl: Duration,
    /// RFC 5861 `stale-while-revalidate` for responses whose
    /// `Cache-Control` does not carry it: how long after going stale an
    /// entry is still served (`X-Cache: STALE`) while one background call
    /// refreshes it. `0s`.
    #[serde(with = "crate::duration")]
    pub stale_while_revalidate: Duration,
    /// RFC 5861 `stale-if-error` for responses whose `Cache-Control` does
    /// not carry it: how long after going stale an entry still answers
    /// when the upstream fails or answers 5xx. `0s`.
    #[serde(with = "crate::duration")]
    pub stale_if_error: Duration,
    /// How long a URL whose response could not be stored (`no-store`,
    /// `private`, too large...) skips request coalescing, so concurrent
    /// requests to it go upstream at once instead of queueing behind one
    /// another (Varnish's "hit-for-pass"). Zero: never remembered. `60s`.
    #[serde(with = "crate::duration")]
    pub pass_duration: Duration,
}

impl Default for ResponseCacheConfig {
    fn default() -> Self {
        Self {
            max_entries: 10_000,
            max_bytes: 64 << 20,
            max_entry_bytes: 1 << 20,
            shared: true,
            default_ttl: Duration::ZERO,
            stale_while_revalidate: Duration::ZERO,
            stale_if_error: Duration::ZERO,
            pass_duration: Duration::from_secs(60),
        }
    }
}

impl ResponseCacheConfig {
    /// Checks every field of the cache named `name`; `build()` calls this.
    pub(super) fn validate(&self, name: &str) -> Result<(), ConfigError> {
        let error = |field, reason| Err(ConfigError::new("ResponseCache", name, field, reason));
        if self.max_entries == 0 {
            return error("max_entries", "must be at least 1");
        }
        if self.max_bytes == 0 {
            return error("max_bytes", "must be at least 1");
        }
        if self.max_entry_bytes > self.max_bytes {
            return error("max_entry_bytes", "must not exceed max_bytes");
        }
        if self.max_entry_bytes > u64::from(u32::MAX) {
            return error("max_entry_bytes", "must be below 4 GiB");
        }
        Ok(())
    }
}

/// Settings of a [`Memoizer`](super::Memoizer).
///
/// ```
/// use std::time::Duration;
/// use cortex_resilience::MemoizerConfig;
///
/// let config: MemoizerConfig =
///     serde_json::from_str(r#"{ "ttl": "30s", "stale_if_error": "10m" }"#).unwrap();
/// assert_eq!(config.ttl, Duration::from_secs(30));
/// assert_eq!(config.max_entries, 10_000);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemoizerConfig {
    /// Most values held. 10 000.
    pub max_entries: u64,
    /// Most bytes held, as the builder's `weigher` counts them; `None`
    /// bounds the entry count only (a byte bound needs a weigher).
    /// `None`.
    pub max_bytes: Option<u64>,
    /// How long a value stays fresh; must be positive. 60 s.
    #[serde(with = "crate::duration")]
    pub ttl: Duration,
    /// How long after going stale a value is still returned while one
    /// background call refreshes it. `0s`.
    #[serde(with = "crate::duration")]
    pub stale_while_revalidate: Duration,
    /// How long after going stale a value is still returned when the call
    /// fails. `0s`.
    #[serde(with = "crate::duration")]
    pub stale_if_error: Duration,
}

impl Default for MemoizerConfig {
    fn default() -> Self {
        Self {
            max_entries: 10_000,
            max_bytes: None,
            ttl: Duration::from_secs(60),
            stale_while_revalidate: Duration::ZERO,
            stale_if_error: Duration::ZERO,
        }
    }
}

impl MemoizerConfig {
    /// Checks every field of the memoizer named `name`; `build()` calls
    /// this.
    pub(super) fn validate(&self, name: &str, has_weigher: bool) -> Result<(), ConfigError> {
        let error = |field, reason| Err(ConfigError::new("Memoizer", name, field, reason));
        if self.max_entries == 0 {
            return error("max_entries", "must be at least 1");
        }
        if self.ttl.is_zero() {
            return error("ttl", "must be positive");
        }
        match self.max_bytes {
            Some(0) => error("max_bytes", "must be at least 1"),
            Some(_) if !has_weigher => error("max_bytes", "needs a weigher"),
            _ => Ok(()),
        }
    }
}

/// A snapshot of a [`ResponseCache`](super::ResponseCache) or a
/// [`Memoizer`](super::Memoizer). Every request or call counts once, in
/// exactly one of `hits`, `misses`, `stale`, `coalesced` and `bypassed`.
///
/// ```
/// use cortex_resilience::Memoizer;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let memo: Memoizer<u8, u8> = Memoizer::builder("squares").build().unwrap();
/// memo.execute(3, || async { Ok::<_, ()>(9) }).await.unwrap();
/// memo.execute(3, || async { Ok::<_, ()>(9) }).await.unwrap();
/// let stats = memo.stats();
/// assert_eq!((stats.kind, stats.misses, stats.hits), ("memoizer", 1, 1));
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CacheStats {
    /// The cache's name.
    pub name: String,
    /// `"http"` for a response cache, `"memoizer"` for a memoizer.
    pub kind: &'static str,
    /// Entries held now, as of moka's last maintenance (for a response
    /// cache, its small `Vary` and pass markers included).
    pub entries: u64,
    /// Bytes held now: bodies, headers and keys (a memoizer's weigher
    /// decides; 0 without one).
    pub size_bytes: u64,
    /// Configured bound on entries.
    pub max_entries: u64,
    /// Configured bound on bytes (`None`: a memoizer without a weigher).
    pub max_size_bytes: Option<u64>,
    /// Answered from a fresh entry.
    pub hits: u64,
    /// Answered by an upstream call whose result was stored.
    pub misses: u64,
    /// Answered from a stale entry (stale-while-revalidate or
    /// stale-if-error).
    pub stale: u64,
    /// Waited for another caller's upstream call of the same key and got
    /// its result, without a call of their own.
    pub coalesced: u64,
    /// Not cacheable (method, request directives, the response's own
    /// `Cache-Control`, size, an error), so answered by the upstream
    /// without storing.
    pub bypassed: u64,
    /// Background refreshes started by stale-while-revalidate.
    pub refreshes: u64,
    /// Entries evicted to stay within the bounds (or refused admission by
    /// moka's TinyLFU policy).
    pub evictions_size: u64,
    /// Entries removed because their stale windows ran out.
    pub evictions_expired: u64,
}

/// Something that happened in a cache, for `subscribe()` and
/// `on_event()`.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use cortex_resilience::{CacheEvent, Memoizer};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let memo: Memoizer<u8, u8> = Memoizer::builder("squares").build().unwrap();
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let sink = Arc::clone(&seen);
/// memo.on_event(move |event| sink.lock().unwrap().push(*event));
/// memo.execute(3, || async { Ok::<_, ()>(9) }).await.unwrap();
/// memo.execute(3, || async { Ok::<_, ()>(9) }).await.unwrap();
/// assert_eq!(*seen.lock().unwrap(), [CacheEvent::Miss, CacheEvent::Hit]);
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheEvent {
    /// Answered from a fresh entry.
    Hit,
    /// Answered by an upstream call, whose result was stored.
    Miss,
    /// Answered from a stale entry.
    Stale,
    /// Answered with the result of another caller's call.
    Coalesced,
    /// Answered by an upstream call without storing its result.
    Bypass,
    /// A stale-while-revalidate refresh started in the background.
    Refresh,
    /// An entry left the cache to respect its bounds.
    EvictedSize,
    /// An entry left the cache when its stale windows ran out.
    Expired,
}
