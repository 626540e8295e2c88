//! [`ResponseCache`]: the HTTP response cache users hold, and its builder.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::Request;
use tokio::sync::broadcast;

use super::config::{CacheEvent, CacheStats, ResponseCacheConfig};
use super::response::{HttpKey, Stored};
use super::store::{Bounds, Store};
use crate::{Clock, ConfigError};

/// An HTTP response cache in front of a service: RFC 9111 freshness and
/// storability (from http-cache-semantics), `Vary`, `Age`, request
/// coalescing, and RFC 5861 `stale-while-revalidate` / `stale-if-error`,
/// over a bounded moka store. Cheap to clone; clones share the store.
///
/// Its [`layer`](Self::layer) goes on a router or any tower stack of
/// `http::Request` → `http::Response` services; see the [module
/// docs](super) for the rules.
///
/// ```
/// use std::time::Duration;
/// use cortex_resilience::ResponseCache;
///
/// let cache = ResponseCache::builder("catalog")
///     .max_bytes(16 << 20)
///     .stale_if_error(Duration::from_secs(300))
///     .build()
///     .unwrap();
/// assert_eq!(cache.name(), "catalog");
/// assert_eq!(cache.stats().entries, 0);
/// ```
#[derive(Clone)]
pub struct ResponseCache {
    pub(super) shared: Arc<Shared>,
}

/// The state every clone, layer and service of a cache shares.
pub(crate) struct Shared {
    pub(super) config: ResponseCacheConfig,
    pub(super) store: Store<HttpKey, Stored>,
}

impl fmt::Debug for ResponseCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseCache")
            .field("name", &self.shared.store.name)
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

/// Builds a [`ResponseCache`]; a bad setting is a
/// [`ConfigError`] naming the cache.
///
/// ```
/// use std::time::Duration;
/// use cortex_resilience::{Clock, ResponseCache};
///
/// let cache = ResponseCache::builder("api")
///     .max_entries(1_000)
///     .max_bytes(8 << 20)
///     .max_entry_bytes(256 << 10)
///     .default_ttl(Duration::from_secs(5))
///     .stale_while_revalidate(Duration::from_secs(30))
///     .clock(Clock::tokio())
///     .build()
///     .unwrap();
/// assert_eq!(cache.config().max_entries, 1_000);
/// let error = ResponseCache::builder("api").max_entries(0).build().unwrap_err();
/// assert_eq!(error.field, "max_entries");
/// ```
#[derive(Debug)]
#[must_use]
pub struct ResponseCacheBuilder {
    name: Arc<str>,
    config: ResponseCacheConfig,
    clock: Clock,
}

impl ResponseCacheBuilder {
    /// Replaces the whole configuration.
    pub fn config(mut self, config: ResponseCacheConfig) -> Self {
        self.config = config;
        self
    }

    /// Most entries held. Default 10 000.
    pub fn max_entries(mut self, entries: u64) -> Self {
        self.config.max_entries = entries;
        self
    }

    /// Most bytes held (bodies, headers, keys). Default 64 MiB.
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.config.max_bytes = bytes;
        self
    }

    /// Largest body stored; larger ones stream through. Default 1 MiB.
    pub fn max_entry_bytes(mut self, bytes: u64) -> Self {
        self.config.max_entry_bytes = bytes;
        self
    }

    /// Shared-cache (`true`, the default) or private-cache semantics; see
    /// [`ResponseCacheConfig::shared`].
    pub fn shared(mut self, shared: bool) -> Self {
        self.config.shared = shared;
        self
    }

    /// Freshness for storable responses that state none. Default zero
    /// (not stored).
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.config.default_ttl = ttl;
        self
    }

    /// `stale-while-revalidate` for responses that do not say. Default
    /// zero.
    pub fn stale_while_revalidate(mut self, window: Duration) -> Self {
        self.config.stale_while_revalidate = window;
        self
    }

    /// `stale-if-error` for responses that do not say. Default zero.
    pub fn stale_if_error(mut self, window: Duration) -> Self {
        self.config.stale_if_error = window;
        self
    }

    /// How long an uncacheable URL skips coalescing. Default 60 s.
    pub fn pass_duration(mut self, duration: Duration) -> Self {
        self.config.pass_duration = duration;
        self
    }

    /// The clock freshness is measured with. Default [`Clock::system`];
    /// tests with paused tokio time pass [`Clock::tokio`].
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Validates and builds.
    pub fn build(self) -> Result<ResponseCache, ConfigError> {
        self.config.validate(&self.name)?;
        let bounds = Bounds {
            max_entries: self.config.max_entries,
            max_bytes: Some(self.config.max_bytes),
        };
        Ok(ResponseCache {
            shared: Arc::new(Shared {
                store: Store::new(self.name, "http", bounds, self.clock),
                config: self.config,
            }),
        })
    }
}

impl ResponseCache {
    /// A builder with the defaults (10 000 entries, 64 MiB, 1 MiB per
    /// entry, shared semantics, no default freshness nor stale windows).
    pub fn builder(name: impl Into<Arc<str>>) -> ResponseCacheBuilder {
        ResponseCacheBuilder {
            name: name.into(),
            config: ResponseCacheConfig::default(),
            clock: Clock::default(),
        }
    }

    /// A cache from a configuration.
    pub fn from_config(
        name: impl Into<Arc<str>>,
        config: ResponseCacheConfig,
    ) -> Result<Self, ConfigError> {
        Self::builder(name).config(config).build()
    }

    /// The cache's name.
    pub fn name(&self) -> &str {
        &self.shared.store.name
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &ResponseCacheConfig {
        &self.shared.config
    }

    /// The address of the shared state: the same for every clone.
    pub(crate) fn id(&self) -> usize {
        Arc::as_ptr(&self.shared).addr()
    }

    /// Counters, entries and bytes. Entries and bytes are as of moka's
    /// last maintenance; [`run_pending_tasks`](Self::run_pending_tasks)
    /// brings them up to date.
    pub fn stats(&self) -> CacheStats {
        self.shared.store.stats()
    }

    /// Drops what is stored for `request`'s target (all its `Vary`
    /// variants become unreachable and age out).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache = cortex_resilience::ResponseCache::builder("pages").build().unwrap();
    /// cache.invalidate(&http::Request::get("/home").body(()).unwrap()).await;
    /// # }
    /// ```
    pub async fn invalidate<B>(&self, request: &Request<B>) {
        self.shared
            .store
            .invalidate(&HttpKey::primary(request))
            .await;
    }

    /// Runs moka's pending maintenance now: evictions to the bounds,
    /// expirations, and the eviction counters. moka otherwise does it
    /// lazily, as the cache is used.
    pub async fn run_pending_tasks(&self) {
        self.shared.store.run_pending_tasks().await;
    }

    /// A broadcast receiver of this cache's events.
    pub fn subscribe(&self) -> broadcast::Receiver<CacheEvent> {
        self.shared.store.events.subscribe()
    }

    /// Calls `callback` for every event.
    pub fn on_event(&self, callback: impl Fn(&CacheEvent) + Send + Sync + 'static) {
        self.shared.store.events.on_event(callback);
    }
}
