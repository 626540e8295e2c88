//! The store both caches share: a bounded moka cache of [`Entry`]s, the
//! flights that coalesce its misses, its counters and its clock.
//!
//! Freshness is decided here, against the policy's [`Clock`], never by
//! moka: moka reads its own clock, which paused tokio time cannot move.
//! moka's per-entry expiry only drops an entry once its last stale window
//! has passed, to free the memory; until then [`Entry::state`] decides.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use moka::future::Cache;
use moka::notification::RemovalCause;
use tokio::time::Instant;

use super::config::{CacheEvent, CacheStats};
use super::flight::Flights;
use crate::Clock;
use crate::events::EventHub;

/// One stored value with its freshness.
#[derive(Debug)]
pub(crate) struct Entry<V> {
    pub(crate) value: V,
    /// When it was stored, on the policy's clock.
    pub(crate) stored_at: Instant,
    /// When it goes stale.
    pub(crate) fresh_until: Instant,
    /// How long after going stale it may still answer while a background
    /// call refreshes it.
    pub(crate) stale_while_revalidate: Duration,
    /// How long after going stale it may still answer when the upstream
    /// fails.
    pub(crate) stale_if_error: Duration,
    /// What it costs: body, headers, key (or the memoizer's weigher).
    pub(crate) bytes: u64,
}

/// Where an entry stands at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Fresh,
    /// Stale; `revalidate`: inside its stale-while-revalidate window,
    /// `on_error`: inside its stale-if-error window.
    Stale {
        revalidate: bool,
        on_error: bool,
    },
}

impl<V> Entry<V> {
    /// Where the entry stands at `now`.
    pub(crate) fn state(&self, now: Instant) -> State {
        if now < self.fresh_until {
            return State::Fresh;
        }
        let stale_for = now.saturating_duration_since(self.fresh_until);
        State::Stale {
            revalidate: stale_for < self.stale_while_revalidate,
            on_error: stale_for < self.stale_if_error,
        }
    }

    /// Whether it may answer at `now` when the upstream fails: fresh, or
    /// inside its stale-if-error window.
    pub(crate) fn usable_on_error(&self, now: Instant) -> bool {
        match self.state(now) {
            State::Fresh => true,
            State::Stale { on_error, .. } => on_error,
        }
    }

    /// From storing to the end of the last window: when moka may drop it.
    fn lifetime(&self) -> Duration {
        self.fresh_until.saturating_duration_since(self.stored_at)
            + self.stale_while_revalidate.max(self.stale_if_error)
    }
}

/// The counters of one cache, shared with moka's eviction listener.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) stale: AtomicU64,
    pub(crate) coalesced: AtomicU64,
    pub(crate) bypassed: AtomicU64,
    pub(crate) refreshes: AtomicU64,
    evictions_size: AtomicU64,
    evictions_expired: AtomicU64,
    bytes: AtomicU64,
}

/// The bounds of a store.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    pub(crate) max_entries: u64,
    /// `None`: entries are counted, not weighed.
    pub(crate) max_bytes: Option<u64>,
}

/// moka's expiry: drop an entry once its last window has passed.
struct Lifetime;

impl<K, V> moka::Expiry<K, Arc<Entry<V>>> for Lifetime {
    fn expire_after_create(
        &self,
        _: &K,
        entry: &Arc<Entry<V>>,
        _: std::time::Instant,
    ) -> Option<Duration> {
        Some(entry.lifetime())
    }

    fn expire_after_update(
        &self,
        _: &K,
        entry: &Arc<Entry<V>>,
        _: std::time::Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.lifetime())
    }
}

/// The bounded store, its flights, counters, events and clock.
pub(crate) struct Store<K, V> {
    pub(crate) name: Arc<str>,
    pub(crate) kind: &'static str,
    cache: Cache<K, Arc<Entry<V>>>,
    pub(crate) flights: Flights<K, Arc<Entry<V>>>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) events: Arc<EventHub<CacheEvent>>,
    pub(crate) clock: Clock,
    bounds: Bounds,
    /// The clock's instant and the wall-clock time at creation, to give
    /// http-cache-semantics a `SystemTime` that moves with the clock.
    origin: (Instant, SystemTime),
}

impl<K, V> fmt::Debug for Store<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("name", &self.name)
            .field("bounds", &self.bounds)
            .finish_non_exhaustive()
    }
}

impl<K, V> Store<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    pub(crate) fn new(name: Arc<str>, kind: &'static str, bounds: Bounds, clock: Clock) -> Self {
        let counters = Arc::new(Counters::default());
        let events = Arc::new(EventHub::default());
        let listener = {
            let counters = Arc::clone(&counters);
            let events = Arc::clone(&events);
            let name = Arc::clone(&name);
            move |_: Arc<K>, entry: Arc<Entry<V>>, cause: RemovalCause| {
                counters.bytes.fetch_sub(entry.bytes, Ordering::Relaxed);
                match cause {
                    RemovalCause::Size => {
                        counters.evictions_size.fetch_add(1, Ordering::Relaxed);
                        events.emit(|| CacheEvent::EvictedSize);
                        tracing::trace!(cache = %name, bytes = entry.bytes, "cache eviction");
                    }
                    RemovalCause::Expired => {
                        counters.evictions_expired.fetch_add(1, Ordering::Relaxed);
                        events.emit(|| CacheEvent::Expired);
                    }
                    RemovalCause::Explicit | RemovalCause::Replaced => {}
                }
            }
        };
        let builder = Cache::builder()
            .name(&name)
            .expire_after(Lifetime)
            .eviction_listener(listener);
        let cache = match bounds.max_bytes {
            // Every entry weighs at least one slot, `max_bytes /
            // max_entries` rounded up, so a total weight within
            // `max_bytes` also keeps the count within `max_entries`.
            Some(max_bytes) => {
                let slot = max_bytes.div_ceil(bounds.max_entries).max(1);
                builder
                    .max_capacity(max_bytes)
                    .weigher(move |_, entry: &Arc<Entry<V>>| {
                        u32::try_from(entry.bytes.max(slot)).unwrap_or(u32::MAX)
                    })
                    .build()
            }
            None => builder.max_capacity(bounds.max_entries).build(),
        };
        Self {
            name,
            kind,
            cache,
            flights: Flights::default(),
            counters,
            events,
            clock,
            bounds,
            origin: (Instant::now(), SystemTime::now()),
        }
    }

    /// The entry of `key`, whatever its state.
    pub(crate) async fn get(&self, key: &K) -> Option<Arc<Entry<V>>> {
        self.cache.get(key).await
    }

    /// Stores `entry` under `key` and returns it, shared.
    pub(crate) async fn insert(&self, key: K, entry: Entry<V>) -> Arc<Entry<V>> {
        let entry = Arc::new(entry);
        // Added before the insert, taken off by the eviction listener, which
        // runs only after it: the sum never wraps below zero.
        self.counters
            .bytes
            .fetch_add(entry.bytes, Ordering::Relaxed);
        self.cache.insert(key, Arc::clone(&entry)).await;
        entry
    }

    /// Drops the entry of `key`.
    pub(crate) async fn invalidate(&self, key: &K) {
        self.cache.invalidate(key).await;
    }

    /// Runs moka's pending maintenance (evictions, expirations, listener
    /// calls) now.
    pub(crate) async fn run_pending_tasks(&self) {
        self.cache.run_pending_tasks().await;
    }

    /// The current instant on the policy's clock.
    pub(crate) fn now(&self) -> Instant {
        self.clock.now()
    }

    /// `now` as wall-clock time for http-cache-semantics: the creation
    /// time plus the clock's progress since, so paused tokio time moves it.
    pub(crate) fn system_time(&self, now: Instant) -> SystemTime {
        self.origin.1 + now.saturating_duration_since(self.origin.0)
    }

    /// Counts one answer of `kind` and tells the listeners.
    pub(crate) fn count(&self, event: CacheEvent) {
        let counter = match event {
            CacheEvent::Hit => &self.counters.hits,
            CacheEvent::Miss => &self.counters.misses,
            CacheEvent::Stale => &self.counters.stale,
            CacheEvent::Coalesced => &self.counters.coalesced,
            CacheEvent::Bypass => &self.counters.bypassed,
            CacheEvent::Refresh => &self.counters.refreshes,
            CacheEvent::EvictedSize | CacheEvent::Expired => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.events.emit(|| event);
    }

    pub(crate) fn stats(&self) -> CacheStats {
        let c = &*self.counters;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        CacheStats {
            name: self.name.to_string(),
            kind: self.kind,
            entries: self.cache.entry_count(),
            size_bytes: load(&c.bytes),
            max_entries: self.bounds.max_entries,
            max_size_bytes: self.bounds.max_bytes,
            hits: load(&c.hits),
            misses: load(&c.misses),
            stale: load(&c.stale),
            coalesced: load(&c.coalesced),
            bypassed: load(&c.bypassed),
            refreshes: load(&c.refreshes),
            evictions_size: load(&c.evictions_size),
            evictions_expired: load(&c.evictions_expired),
        }
    }
}
