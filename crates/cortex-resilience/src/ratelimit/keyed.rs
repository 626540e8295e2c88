//! Per-key rate limiting with bounded memory, and the HTTP key extractors.

use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{ConnectInfo, MatchedPath};
use hashbrown::{DefaultHashBuilder, HashMap};
use http::{HeaderName, Request};

use super::gcra::RateLimitDecision;
use super::{RateLimiterStats, Shared};
use crate::RateLimited;

const SHARDS: usize = 16;

/// One GCRA state per key, in 16 mutex-guarded shards.
///
/// Memory is bounded by `max_keys`. A key whose state lies in the past is
/// indistinguishable from a key never seen (its whole burst is available),
/// so such idle keys are evicted without losing anything whenever a shard
/// is full. If a shard is full of keys that are all still limited, new
/// keys share one overflow budget until room frees up: under a flood of
/// distinct keys the limiter gets stricter, never looser. Requests without
/// a key (say, no client address) use the overflow budget too.
///
/// ```
/// use std::time::Duration;
/// use cortex_resilience::RateLimiter;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let limiter = RateLimiter::builder("per-user")
///     .permits(1, Duration::from_secs(60))
///     .build_keyed::<String>()
///     .unwrap();
/// assert!(limiter.check(Some(&"alice".to_owned())).allowed);
/// assert!(!limiter.check(Some(&"alice".to_owned())).allowed);
/// assert!(limiter.check(Some(&"bob".to_owned())).allowed);
/// # }
/// ```
pub struct KeyedRateLimiter<K> {
    shared: Arc<Keyed<K>>,
}

impl<K> Clone for KeyedRateLimiter<K> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K> fmt::Debug for KeyedRateLimiter<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedRateLimiter")
            .field("name", &self.shared.limiter.name)
            .field("keys", &self.shared.keys.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

struct Keyed<K> {
    /// Configuration, clock, counters; its own state is the overflow budget.
    limiter: Shared,
    hasher: DefaultHashBuilder,
    shards: Box<[Mutex<HashMap<K, u64>>]>,
    per_shard: usize,
    keys: AtomicUsize,
    evicted: AtomicU64,
}

impl<K> KeyedRateLimiter<K>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
{
    pub(super) fn new(limiter: Shared) -> Self {
        let per_shard = limiter.config.max_keys.div_ceil(SHARDS);
        Self {
            shared: Arc::new(Keyed {
                limiter,
                hasher: DefaultHashBuilder::default(),
                shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
                per_shard,
                keys: AtomicUsize::new(0),
                evicted: AtomicU64::new(0),
            }),
        }
    }

    /// The limiter's name.
    pub fn name(&self) -> &str {
        &self.shared.limiter.name
    }

    /// The address of the shared state: the same for every clone.
    pub(crate) fn id(&self) -> usize {
        Arc::as_ptr(&self.shared).addr()
    }

    /// Takes one permit for `key` (`None`: the shared overflow budget).
    pub fn check(&self, key: Option<&K>) -> RateLimitDecision {
        self.check_n(key, 1)
    }

    /// Takes one permit for `key` if available, without waiting; the
    /// [`RateLimited`] error says how long until one would be, as from
    /// [`RateLimiter::try_acquire`](super::RateLimiter::try_acquire).
    pub fn try_acquire(&self, key: Option<&K>) -> Result<(), RateLimited> {
        let decision = self.check(key);
        if decision.allowed {
            Ok(())
        } else {
            Err(RateLimited {
                retry_after: decision.retry_after,
            })
        }
    }

    /// Takes `weight` permits for `key`.
    pub fn check_n(&self, key: Option<&K>, weight: u32) -> RateLimitDecision {
        let keyed = &*self.shared;
        let limiter = &keyed.limiter;
        let Some(key) = key else {
            return limiter.check_state(&limiter.tat, weight);
        };
        // The hash is a u64; only its remainder matters.
        #[allow(clippy::cast_possible_truncation)]
        let index = (keyed.hasher.hash_one(key) % SHARDS as u64) as usize;
        let mut shard = keyed.lock(index);
        let now = limiter.now();
        if let Some(tat) = shard.get_mut(key) {
            return match limiter.gcra.check(*tat, now, weight) {
                Ok(new_tat) => {
                    *tat = new_tat;
                    limiter.permitted.fetch_add(1, Ordering::Relaxed);
                    limiter.gcra.decision(new_tat, now, true, 0)
                }
                Err(wait) => {
                    limiter.rejected.fetch_add(1, Ordering::Relaxed);
                    limiter.gcra.decision(*tat, now, false, wait)
                }
            };
        }
        if shard.len() >= keyed.per_shard {
            keyed.sweep(&mut shard, now);
        }
        if shard.len() >= keyed.per_shard {
            drop(shard);
            return limiter.check_state(&limiter.tat, weight);
        }
        match limiter.gcra.check(0, now, weight) {
            Ok(new_tat) => {
                shard.insert(key.clone(), new_tat);
                keyed.keys.fetch_add(1, Ordering::Relaxed);
                limiter.permitted.fetch_add(1, Ordering::Relaxed);
                limiter.gcra.decision(new_tat, now, true, 0)
            }
            // Heavier than a whole burst: never allowed, nothing to store.
            Err(wait) => {
                limiter.rejected.fetch_add(1, Ordering::Relaxed);
                limiter.gcra.decision(now, now, false, wait)
            }
        }
    }

    /// Drops every key whose budget is full again; returns how many.
    pub fn evict_idle(&self) -> usize {
        let now = self.shared.limiter.now();
        (0..SHARDS)
            .map(|index| self.shared.sweep(&mut self.shared.lock(index), now))
            .sum()
    }

    /// Keys currently tracked.
    pub fn len(&self) -> usize {
        self.shared.keys.load(Ordering::Relaxed)
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counters; `available_permissions` is the overflow budget's.
    pub fn stats(&self) -> RateLimiterStats {
        let limiter = &self.shared.limiter;
        limiter.stats(&limiter.tat, self.len() as u64)
    }
}

impl<K: Hash + Eq> Keyed<K> {
    fn lock(&self, index: usize) -> MutexGuard<'_, HashMap<K, u64>> {
        // A shard is a plain map of integers, valid at every step.
        self.shards[index]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn sweep(&self, shard: &mut HashMap<K, u64>, now: u64) -> usize {
        let before = shard.len();
        shard.retain(|_, tat| *tat > now);
        let evicted = before - shard.len();
        self.keys.fetch_sub(evicted, Ordering::Relaxed);
        self.evicted.fetch_add(evicted as u64, Ordering::Relaxed);
        evicted
    }
}

/// Picks the key an HTTP request is limited by.
pub trait KeyExtractor: Clone + Send + Sync + 'static {
    /// The key type.
    type Key: Hash + Eq + Clone + Send + Sync + 'static;

    /// The key of `request`, or `None` to use the shared overflow budget.
    fn extract<B>(&self, request: &Request<B>) -> Option<Self::Key>;
}

/// One budget for all requests.
#[derive(Debug, Clone, Copy, Default)]
pub struct GlobalKey;

impl KeyExtractor for GlobalKey {
    type Key = ();

    fn extract<B>(&self, _request: &Request<B>) -> Option<()> {
        Some(())
    }
}

/// The client's IP address: the peer address from axum's `ConnectInfo`
/// (serve with `into_make_service_with_connect_info::<SocketAddr>()`), or,
/// behind `trusted_proxies` reverse proxies, the address those proxies
/// recorded in `X-Forwarded-For`. IPv6 clients are keyed by their /64
/// prefix by default, since one host usually owns a whole /64.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp {
    trusted_proxies: usize,
    ipv6_prefix: u8,
}

impl Default for ClientIp {
    fn default() -> Self {
        Self {
            trusted_proxies: 0,
            ipv6_prefix: 64,
        }
    }
}

impl ClientIp {
    /// The peer address; `X-Forwarded-For` is ignored (it can be forged).
    pub fn new() -> Self {
        Self::default()
    }

    /// Trust `proxies` reverse proxies in front of the service: the client
    /// is the `proxies`-th address from the right of `X-Forwarded-For`.
    #[must_use]
    pub fn trusted_proxies(mut self, proxies: usize) -> Self {
        self.trusted_proxies = proxies;
        self
    }

    /// Key IPv6 clients by this prefix length (0–128). Default 64.
    #[must_use]
    pub fn ipv6_prefix(mut self, bits: u8) -> Self {
        self.ipv6_prefix = bits.min(128);
        self
    }

    fn normalise(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V6(v6) => {
                if let Some(v4) = v6.to_ipv4_mapped() {
                    return IpAddr::V4(v4);
                }
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.ipv6_prefix))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
            v4 @ IpAddr::V4(_) => v4,
        }
    }
}

impl KeyExtractor for ClientIp {
    type Key = IpAddr;

    fn extract<B>(&self, request: &Request<B>) -> Option<IpAddr> {
        let forwarded = (self.trusted_proxies > 0)
            .then(|| {
                let header = request.headers().get_all("x-forwarded-for");
                let hops: Vec<&str> = header
                    .iter()
                    .filter_map(|value| value.to_str().ok())
                    .flat_map(|value| value.split(','))
                    .map(str::trim)
                    .collect();
                let index = hops.len().checked_sub(self.trusted_proxies)?;
                hops.get(index)?.parse::<IpAddr>().ok()
            })
            .flatten();
        let ip = forwarded.or_else(|| {
            request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(address)| address.ip())
        })?;
        Some(self.normalise(ip))
    }
}

/// The matched route template (`/api/users/{id}`), one budget per route.
#[derive(Debug, Clone, Copy, Default)]
pub struct RouteKey;

impl KeyExtractor for RouteKey {
    type Key = Arc<str>;

    fn extract<B>(&self, request: &Request<B>) -> Option<Arc<str>> {
        let path = request.extensions().get::<MatchedPath>()?;
        Some(Arc::from(path.as_str()))
    }
}

/// A header's value, e.g. an API key. Requests without it share the
/// overflow budget.
#[derive(Debug, Clone)]
pub struct HeaderKey {
    name: HeaderName,
}

impl HeaderKey {
    /// Keys by header `name`.
    pub fn new(name: HeaderName) -> Self {
        Self { name }
    }
}

impl KeyExtractor for HeaderKey {
    type Key = Vec<u8>;

    fn extract<B>(&self, request: &Request<B>) -> Option<Vec<u8>> {
        Some(request.headers().get(&self.name)?.as_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{Clock, ManualClock, RateLimiter};

    fn limiter(max_keys: usize, clock: &ManualClock) -> KeyedRateLimiter<u32> {
        RateLimiter::builder("test")
            .permits(1, Duration::from_secs(1))
            .max_keys(max_keys)
            .clock(Clock::manual(clock))
            .build_keyed()
            .unwrap()
    }

    #[test]
    fn memory_stays_bounded_and_idle_keys_are_evicted_losslessly() {
        let clock = ManualClock::new();
        let limiter = limiter(32, &clock);
        for key in 0..10_000 {
            limiter.check(Some(&key));
            assert!(limiter.len() <= 32);
        }
        clock.advance(Duration::from_secs(2));
        // Every key is idle again: a fresh key gets its whole burst.
        assert!(limiter.check(Some(&20_000)).allowed);
        assert!(limiter.evict_idle() >= limiter.len() - 1);
    }

    #[test]
    fn a_flood_of_new_keys_shares_the_overflow_budget() {
        let clock = ManualClock::new();
        let limiter = limiter(16, &clock);
        let allowed = (0..1000)
            .filter(|key| limiter.check(Some(key)).allowed)
            .count();
        // At most one per tracked key plus the overflow budget's one.
        assert!(allowed <= 16 + SHARDS + 1, "{allowed}");
    }

    #[test]
    fn client_ip_reads_connect_info_and_trusted_forwarded_for() {
        let peer: SocketAddr = "10.0.0.1:4000".parse().unwrap();
        let mut request = Request::new(());
        request.extensions_mut().insert(ConnectInfo(peer));
        request
            .headers_mut()
            .insert("x-forwarded-for", "1.1.1.1, 203.0.113.9".parse().unwrap());
        assert_eq!(ClientIp::new().extract(&request), Some(peer.ip()));
        assert_eq!(
            ClientIp::new().trusted_proxies(1).extract(&request),
            Some("203.0.113.9".parse().unwrap())
        );
        assert_eq!(
            ClientIp::new().trusted_proxies(2).extract(&request),
            Some("1.1.1.1".parse().unwrap())
        );
        // More trusted proxies than hops: fall back to the peer.
        assert_eq!(
            ClientIp::new().trusted_proxies(3).extract(&request),
            Some(peer.ip())
        );
        let v6: SocketAddr = "[2001:db8:1:2:3:4:5:6]:1".parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(v6));
        assert_eq!(
            ClientIp::new().extract(&request),
            Some("2001:db8:1:2::".parse().unwrap())
        );
    }
}
