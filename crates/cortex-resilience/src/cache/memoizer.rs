//! [`Memoizer`]: the cache's plain async front end, over the same store
//! as the response cache: `execute(key, call)` with coalescing,
//! stale-while-revalidate and stale-if-error.

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;

use super::config::{CacheEvent, CacheStats, MemoizerConfig};
use super::flight::{self, Landing, Leader, Role};
use super::store::{Bounds, Entry, State, Store};
use crate::{Clock, ConfigError, ResilienceError};

/// Rounds of look-up and join before a call gives up on coalescing
/// (each abandoned leader costs one).
const MAX_ROUNDS: usize = 4;

type Weigher<K, V> = Arc<dyn Fn(&K, &V) -> u32 + Send + Sync>;

/// Memoizes an async call by key: a fresh value is returned without
/// calling; concurrent misses of one key make one call, whose value every
/// waiter gets; a stale value can be returned while one background call
/// refreshes it (`stale_while_revalidate`) or when the call fails
/// (`stale_if_error`). Bounded by entry count (and bytes, with a
/// weigher), on moka. Cheap to clone; clones share the store.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::time::Duration;
/// use cortex_resilience::Memoizer;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let prices: Memoizer<String, u32> = Memoizer::builder("prices")
///     .ttl(Duration::from_secs(30))
///     .build()
///     .unwrap();
/// let calls = Arc::new(AtomicUsize::new(0));
/// for _ in 0..3 {
///     let calls = Arc::clone(&calls);
///     let price = prices
///         .execute("sku-1".to_owned(), move || async move {
///             calls.fetch_add(1, Ordering::SeqCst);
///             Ok::<_, std::io::Error>(42)
///         })
///         .await
///         .unwrap();
///     assert_eq!(price, 42);
/// }
/// assert_eq!(calls.load(Ordering::SeqCst), 1);
/// assert_eq!((prices.stats().misses, prices.stats().hits), (1, 2));
/// # }
/// ```
pub struct Memoizer<K, V> {
    shared: Arc<Shared<K, V>>,
}

struct Shared<K, V> {
    config: MemoizerConfig,
    store: Store<K, V>,
    weigher: Option<Weigher<K, V>>,
}

impl<K, V> Clone for Memoizer<K, V> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K, V> fmt::Debug for Memoizer<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Memoizer")
            .field("name", &self.shared.store.name)
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Memoizer`]; a bad setting is a [`ConfigError`] naming it.
///
/// ```
/// use std::time::Duration;
/// use cortex_resilience::Memoizer;
///
/// let blobs: Memoizer<String, Vec<u8>> = Memoizer::builder("blobs")
///     .ttl(Duration::from_secs(300))
///     .max_entries(10_000)
///     .max_bytes(32 << 20)
///     .weigher(|key: &String, blob: &Vec<u8>| (key.len() + blob.len()) as u32)
///     .stale_if_error(Duration::from_secs(3600))
///     .build()
///     .unwrap();
/// assert_eq!(blobs.stats().max_size_bytes, Some(32 << 20));
/// ```
#[must_use]
pub struct MemoizerBuilder<K, V> {
    name: Arc<str>,
    config: MemoizerConfig,
    clock: Clock,
    weigher: Option<Weigher<K, V>>,
}

impl<K, V> fmt::Debug for MemoizerBuilder<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoizerBuilder")
            .field("name", &self.name)
            .field("config", &self.config)
            .field("weigher", &self.weigher.is_some())
            .finish_non_exhaustive()
    }
}

impl<K, V> MemoizerBuilder<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Replaces the whole configuration.
    pub fn config(mut self, config: MemoizerConfig) -> Self {
        self.config = config;
        self
    }

    /// Most values held. Default 10 000.
    pub fn max_entries(mut self, entries: u64) -> Self {
        self.config.max_entries = entries;
        self
    }

    /// Most bytes held, as the [`weigher`](Self::weigher) counts them.
    /// Default unbounded (entries only).
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.config.max_bytes = Some(bytes);
        self
    }

    /// What an entry costs in bytes, for [`max_bytes`](Self::max_bytes)
    /// and the `size_bytes` stat.
    pub fn weigher(mut self, weigher: impl Fn(&K, &V) -> u32 + Send + Sync + 'static) -> Self {
        self.weigher = Some(Arc::new(weigher));
        self
    }

    /// How long a value stays fresh. Default 60 s.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.config.ttl = ttl;
        self
    }

    /// How long a stale value is still returned while one background
    /// call refreshes it. Default zero.
    pub fn stale_while_revalidate(mut self, window: Duration) -> Self {
        self.config.stale_while_revalidate = window;
        self
    }

    /// How long a stale value is still returned when the call fails.
    /// Default zero.
    pub fn stale_if_error(mut self, window: Duration) -> Self {
        self.config.stale_if_error = window;
        self
    }

    /// The clock freshness is measured with. Default [`Clock::system`];
    /// tests with paused tokio time pass [`Clock::tokio`].
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Validates and builds.
    pub fn build(self) -> Result<Memoizer<K, V>, ConfigError> {
        self.config.validate(&self.name, self.weigher.is_some())?;
        let bounds = Bounds {
            max_entries: self.config.max_entries,
            max_bytes: self.config.max_bytes,
        };
        Ok(Memoizer {
            shared: Arc::new(Shared {
                store: Store::new(self.name, "memoizer", bounds, self.clock),
                config: self.config,
                weigher: self.weigher,
            }),
        })
    }
}

fn land<K: Hash + Eq, V>(
    leader: Option<Leader<K, Arc<Entry<V>>>>,
    landing: Landing<Arc<Entry<V>>>,
) {
    if let Some(leader) = leader {
        leader.land(landing);
    }
}

impl<K, V> Memoizer<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A builder with the defaults (10 000 entries, 60 s fresh, no stale
    /// windows).
    pub fn builder(name: impl Into<Arc<str>>) -> MemoizerBuilder<K, V> {
        MemoizerBuilder {
            name: name.into(),
            config: MemoizerConfig::default(),
            clock: Clock::default(),
            weigher: None,
        }
    }

    /// A memoizer from a configuration (no weigher, so no `max_bytes`).
    pub fn from_config(
        name: impl Into<Arc<str>>,
        config: MemoizerConfig,
    ) -> Result<Self, ConfigError> {
        Self::builder(name).config(config).build()
    }

    /// The memoizer's name.
    pub fn name(&self) -> &str {
        &self.shared.store.name
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &MemoizerConfig {
        &self.shared.config
    }

    /// The address of the shared state: the same for every clone.
    pub(crate) fn id(&self) -> usize {
        Arc::as_ptr(&self.shared).addr()
    }

    /// Counters, entries and bytes (entries and bytes as of moka's last
    /// maintenance).
    pub fn stats(&self) -> CacheStats {
        self.shared.store.stats()
    }

    /// The value of `key`: a fresh one without calling; else the value
    /// of `call`, stored. Concurrent calls of one key make one `call`; the
    /// others wait and get its value (or, if it fails, make their own
    /// call: errors are not shared, so `E` need not be `Clone`). If the
    /// caller making the call is cancelled, a waiter makes it instead.
    ///
    /// A stale value inside `stale_while_revalidate` is returned at once
    /// and this `call` refreshes it in the background (one refresh per
    /// key at a time; hence `'static` and `Send`); one inside
    /// `stale_if_error` is returned if `call` fails. The error is always
    /// [`ResilienceError::Inner`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use cortex_resilience::{Clock, Memoizer};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let rates: Memoizer<&str, f64> = Memoizer::builder("fx")
    ///     .ttl(Duration::from_secs(60))
    ///     .stale_if_error(Duration::from_secs(600))
    ///     .clock(Clock::tokio())
    ///     .build()
    ///     .unwrap();
    /// let fresh = rates.execute("EURUSD", || async { Ok::<_, &str>(1.08) }).await;
    /// assert_eq!(fresh, Ok(1.08));
    /// tokio::time::advance(Duration::from_secs(120)).await;
    /// // Stale, and the upstream is down: the stale rate answers.
    /// let stale = rates.execute("EURUSD", || async { Err("down") }).await;
    /// assert_eq!(stale, Ok(1.08));
    /// assert_eq!(rates.stats().stale, 1);
    /// # }
    /// ```
    pub async fn execute<E, F, Fut>(&self, key: K, call: F) -> Result<V, ResilienceError<E>>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
        E: Send + 'static,
    {
        let store = &self.shared.store;
        for _ in 0..MAX_ROUNDS {
            let now = store.now();
            let mut stale = None;
            if let Some(entry) = store.get(&key).await {
                match entry.state(now) {
                    State::Fresh => {
                        store.count(CacheEvent::Hit);
                        return Ok(entry.value.clone());
                    }
                    State::Stale {
                        revalidate: true, ..
                    } => {
                        store.count(CacheEvent::Stale);
                        let value = entry.value.clone();
                        self.refresh(key, call, entry);
                        return Ok(value);
                    }
                    State::Stale { on_error: true, .. } => stale = Some(entry),
                    State::Stale { .. } => {}
                }
            }
            match store.flights.join(&key) {
                Role::Follower(receiver) => match flight::wait(receiver).await {
                    Landing::Value(entry) => {
                        store.count(CacheEvent::Coalesced);
                        return Ok(entry.value.clone());
                    }
                    Landing::Stale(entry) => {
                        store.count(CacheEvent::Stale);
                        return Ok(entry.value.clone());
                    }
                    Landing::Pass => return self.call(key, call, None, stale, true).await,
                    Landing::Abandoned | Landing::Pending => {}
                },
                Role::Leader(leader) => {
                    if let Some(entry) = store.get(&key).await
                        && entry.state(store.now()) == State::Fresh
                    {
                        store.count(CacheEvent::Hit);
                        let value = entry.value.clone();
                        leader.land(Landing::Value(entry));
                        return Ok(value);
                    }
                    return self.call(key, call, Some(leader), stale, true).await;
                }
            }
        }
        self.call(key, call, None, None, true).await
    }

    /// The fresh value of `key`, if any (counted as nothing).
    pub async fn get(&self, key: &K) -> Option<V> {
        let entry = self.shared.store.get(key).await?;
        (entry.state(self.shared.store.now()) == State::Fresh).then(|| entry.value.clone())
    }

    /// Stores `value` under `key`, fresh for the configured `ttl`.
    pub async fn insert(&self, key: K, value: V) {
        self.store(key, value, self.shared.store.now()).await;
    }

    /// Drops the value of `key`.
    pub async fn invalidate(&self, key: &K) {
        self.shared.store.invalidate(key).await;
    }

    /// Runs moka's pending maintenance now (evictions, expirations, the
    /// eviction counters).
    pub async fn run_pending_tasks(&self) {
        self.shared.store.run_pending_tasks().await;
    }

    /// A broadcast receiver of this memoizer's events.
    pub fn subscribe(&self) -> broadcast::Receiver<CacheEvent> {
        self.shared.store.events.subscribe()
    }

    /// Calls `callback` for every event.
    pub fn on_event(&self, callback: impl Fn(&CacheEvent) + Send + Sync + 'static) {
        self.shared.store.events.on_event(callback);
    }

    async fn store(&self, key: K, value: V, now: Instant) -> Arc<Entry<V>> {
        let config = &self.shared.config;
        let bytes = self
            .shared
            .weigher
            .as_ref()
            .map_or(0, |weigher| u64::from(weigher(&key, &value)));
        let entry = Entry {
            value,
            stored_at: now,
            fresh_until: now + config.ttl,
            stale_while_revalidate: config.stale_while_revalidate,
            stale_if_error: config.stale_if_error,
            bytes,
        };
        self.shared.store.insert(key, entry).await
    }

    /// Makes the call; stores a value, or answers an error with `stale`
    /// inside its stale-if-error window. `leader`, if any, lands after.
    async fn call<E, F, Fut>(
        &self,
        key: K,
        call: F,
        leader: Option<Leader<K, Arc<Entry<V>>>>,
        stale: Option<Arc<Entry<V>>>,
        counted: bool,
    ) -> Result<V, ResilienceError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let store = &self.shared.store;
        let count = |event| {
            if counted {
                store.count(event);
            }
        };
        let result = call().await;
        let now = store.now();
        match result {
            Ok(value) => {
                let entry = self.store(key, value, now).await;
                count(CacheEvent::Miss);
                let value = entry.value.clone();
                land(leader, Landing::Value(entry));
                Ok(value)
            }
            Err(error) => {
                if let Some(entry) = stale.filter(|entry| entry.usable_on_error(now)) {
                    count(CacheEvent::Stale);
                    let value = entry.value.clone();
                    land(leader, Landing::Stale(entry));
                    return Ok(value);
                }
                land(leader, Landing::Pass);
                count(CacheEvent::Bypass);
                Err(ResilienceError::Inner(error))
            }
        }
    }

    /// Starts one background refresh of `key` with `call`, unless one is
    /// in flight or there is no runtime.
    fn refresh<E, F, Fut>(&self, key: K, call: F, entry: Arc<Entry<V>>)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
        E: Send + 'static,
    {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Role::Leader(leader) = self.shared.store.flights.join(&key) else {
            return;
        };
        self.shared.store.count(CacheEvent::Refresh);
        let memoizer = self.clone();
        runtime.spawn(async move {
            let refreshed = memoizer
                .call(key, call, Some(leader), Some(entry), false)
                .await;
            if refreshed.is_err() {
                tracing::debug!(memoizer = %memoizer.name(), "stale-while-revalidate refresh failed");
            }
        });
    }
}
