//! Policy instances as the registry, the metrics and the health check see
//! them ([`Member`]), and the stats of many at once ([`AllStats`]).

use std::sync::Arc;

use serde::Serialize;

use crate::{
    Bulkhead, BulkheadStats, CircuitBreaker, CircuitBreakerStats, KeyedRateLimiter, RateLimiter,
    RateLimiterStats, Retry, RetryStats, Timeout, TimeoutStats,
};
#[cfg(feature = "cache")]
use crate::{CacheStats, Memoizer, ResponseCache};

/// Stats of every registered policy, sorted by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AllStats {
    /// Circuit breakers.
    pub circuit_breakers: Vec<CircuitBreakerStats>,
    /// Bulkheads.
    pub bulkheads: Vec<BulkheadStats>,
    /// Retry policies.
    pub retries: Vec<RetryStats>,
    /// Rate limiters (global and keyed).
    pub rate_limiters: Vec<RateLimiterStats>,
    /// Timeouts.
    pub timeouts: Vec<TimeoutStats>,
    /// Response caches and memoizers (feature `cache`); left out of the
    /// JSON while there are none.
    #[cfg(feature = "cache")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub caches: Vec<CacheStats>,
}

type StatsFn = Arc<dyn Fn() -> RateLimiterStats + Send + Sync>;

/// A global or keyed rate limiter with its key type erased.
#[derive(Clone)]
pub(crate) struct LimiterHandle {
    /// The address of the limiter's state: the same for every clone.
    id: usize,
    stats: StatsFn,
}

impl LimiterHandle {
    pub(crate) fn global(limiter: &RateLimiter) -> Self {
        let stats = limiter.clone();
        Self {
            id: limiter.id(),
            stats: Arc::new(move || stats.stats()),
        }
    }

    pub(crate) fn keyed<K>(limiter: &KeyedRateLimiter<K>) -> Self
    where
        K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
    {
        let stats = limiter.clone();
        Self {
            id: limiter.id(),
            stats: Arc::new(move || stats.stats()),
        }
    }
}

#[cfg(feature = "cache")]
type CacheStatsFn = Arc<dyn Fn() -> CacheStats + Send + Sync>;

/// A response cache or a memoizer with its key and value types erased.
#[cfg(feature = "cache")]
#[derive(Clone)]
pub(crate) struct CacheHandle {
    /// The address of the cache's state: the same for every clone.
    id: usize,
    stats: CacheStatsFn,
}

#[cfg(feature = "cache")]
impl CacheHandle {
    pub(crate) fn http(cache: &ResponseCache) -> Self {
        let stats = cache.clone();
        Self {
            id: cache.id(),
            stats: Arc::new(move || stats.stats()),
        }
    }

    pub(crate) fn memoizer<K, V>(memoizer: &Memoizer<K, V>) -> Self
    where
        K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        let stats = memoizer.clone();
        Self {
            id: memoizer.id(),
            stats: Arc::new(move || stats.stats()),
        }
    }
}

/// One policy instance, as the registry, the metrics and the health check
/// see it.
#[derive(Clone)]
pub(crate) enum Member {
    CircuitBreaker(CircuitBreaker),
    Bulkhead(Bulkhead),
    Retry(Retry),
    RateLimiter(LimiterHandle),
    Timeout(Timeout),
    #[cfg(feature = "cache")]
    Cache(CacheHandle),
}

impl Member {
    /// The address of the policy's shared state: clones compare equal.
    pub(crate) fn id(&self) -> usize {
        match self {
            Self::CircuitBreaker(breaker) => breaker.id(),
            Self::Bulkhead(bulkhead) => bulkhead.id(),
            Self::Retry(retry) => retry.id(),
            Self::RateLimiter(limiter) => limiter.id,
            Self::Timeout(timeout) => timeout.id(),
            #[cfg(feature = "cache")]
            Self::Cache(cache) => cache.id,
        }
    }
}

impl AllStats {
    /// Stats of `members`, each instance once, sorted by name; of two
    /// instances of one kind with the same name only the first is kept, so
    /// no two series share their labels.
    pub(crate) fn of<'a>(members: impl IntoIterator<Item = &'a Member>) -> Self {
        let mut seen = std::collections::HashSet::new();
        let mut stats = Self::default();
        for member in members {
            if !seen.insert(member.id()) {
                continue;
            }
            match member {
                Member::CircuitBreaker(breaker) => stats.circuit_breakers.push(breaker.stats()),
                Member::Bulkhead(bulkhead) => stats.bulkheads.push(bulkhead.stats()),
                Member::Retry(retry) => stats.retries.push(retry.stats()),
                Member::RateLimiter(limiter) => stats.rate_limiters.push((limiter.stats)()),
                Member::Timeout(timeout) => stats.timeouts.push(timeout.stats()),
                #[cfg(feature = "cache")]
                Member::Cache(cache) => stats.caches.push((cache.stats)()),
            }
        }
        fn by_name<T>(list: &mut Vec<T>, name: impl Fn(&T) -> &str) {
            // Stable: the first of two equal names stays first and is kept.
            list.sort_by(|a, b| name(a).cmp(name(b)));
            list.dedup_by(|later, earlier| name(later) == name(earlier));
        }
        by_name(&mut stats.circuit_breakers, |s| &s.name);
        by_name(&mut stats.bulkheads, |s| &s.name);
        by_name(&mut stats.retries, |s| &s.name);
        by_name(&mut stats.rate_limiters, |s| &s.name);
        by_name(&mut stats.timeouts, |s| &s.name);
        #[cfg(feature = "cache")]
        by_name(&mut stats.caches, |s| &s.name);
        stats
    }
}
