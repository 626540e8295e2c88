//! [`KeyedRateLimiter`]: one budget per key, with bounded memory.

use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use hashbrown::{DefaultHashBuilder, HashMap};

use super::config::RateLimiterStats;
use super::gcra::RateLimitDecision;
use super::state::Shared;
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
}
