//! Named policies, loadable from a config file, with one stats call.
//!
//! ```
//! use cortex_resilience::{PolicyRegistry, RegistryConfig};
//!
//! let config: RegistryConfig = serde_json::from_str(r#"{
//!     "circuit_breakers": { "payments": { "failure_rate_threshold": 25.0 } },
//!     "bulkheads": { "payments": { "max_concurrent_calls": 10 } },
//!     "retries": { "payments": { "max_attempts": 2 } },
//!     "rate_limiters": { "api": { "permits": 100, "period": "1s" } },
//!     "timeouts": { "payments": { "timeout_duration": "2s" } }
//! }"#).unwrap();
//! let registry = PolicyRegistry::from_config(&config).unwrap();
//! let breaker = registry.circuit_breaker("payments").unwrap();
//! assert_eq!(breaker.config().failure_rate_threshold, 25.0);
//! assert_eq!(registry.all_stats().circuit_breakers[0].name, "payments");
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde::{Deserialize, Serialize};

#[cfg(feature = "cache")]
use crate::members::CacheHandle;
use crate::members::{AllStats, LimiterHandle, Member};
use crate::{
    Bulkhead, BulkheadConfig, CircuitBreaker, CircuitBreakerConfig, ConfigError, KeyedRateLimiter,
    RateLimiter, RateLimiterConfig, Retry, RetryConfig, Timeout, TimeoutConfig,
};
#[cfg(feature = "cache")]
use crate::{Memoizer, ResponseCache, ResponseCacheConfig};

/// Policy configurations by name, e.g. a section of a service's config file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    /// Circuit breakers.
    pub circuit_breakers: BTreeMap<String, CircuitBreakerConfig>,
    /// Bulkheads.
    pub bulkheads: BTreeMap<String, BulkheadConfig>,
    /// Retry policies.
    pub retries: BTreeMap<String, RetryConfig>,
    /// Global rate limiters.
    pub rate_limiters: BTreeMap<String, RateLimiterConfig>,
    /// Timeouts.
    pub timeouts: BTreeMap<String, TimeoutConfig>,
    /// HTTP response caches (feature `cache`).
    #[cfg(feature = "cache")]
    pub caches: BTreeMap<String, ResponseCacheConfig>,
}

/// Why a policy could not be registered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RegistryError {
    /// A policy of that kind already has that name.
    #[error("a {kind} named {name:?} is already registered")]
    Duplicate {
        /// The policy kind.
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// A configuration was invalid (the error names the policy).
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Named circuit breakers, bulkheads, retries, rate limiters, timeouts
/// and (feature `cache`) response caches and memoizers (resilience4j's
/// registries in one). Cheap to clone; clones share.
///
/// Its stats are served as JSON by [`router`](Self::router) at
/// `GET /resilience`; with the `metrics` feature it implements
/// `cortex_metrics::RegisterMetrics`, and with the `health` feature
/// `health_check` reports open circuit breakers.
#[derive(Clone, Default)]
pub struct PolicyRegistry {
    inner: Arc<RwLock<Entries>>,
}

#[derive(Default)]
struct Entries {
    circuit_breakers: BTreeMap<String, CircuitBreaker>,
    bulkheads: BTreeMap<String, Bulkhead>,
    retries: BTreeMap<String, Retry>,
    rate_limiters: BTreeMap<String, LimiterHandle>,
    global_limiters: BTreeMap<String, RateLimiter>,
    timeouts: BTreeMap<String, Timeout>,
    #[cfg(feature = "cache")]
    caches: BTreeMap<String, CacheHandle>,
    #[cfg(feature = "cache")]
    response_caches: BTreeMap<String, ResponseCache>,
}

impl fmt::Debug for PolicyRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries = self.read();
        let mut debug = f.debug_struct("PolicyRegistry");
        debug
            .field("circuit_breakers", &entries.circuit_breakers.keys())
            .field("bulkheads", &entries.bulkheads.keys())
            .field("retries", &entries.retries.keys())
            .field("rate_limiters", &entries.rate_limiters.keys())
            .field("timeouts", &entries.timeouts.keys());
        #[cfg(feature = "cache")]
        debug.field("caches", &entries.caches.keys());
        debug.finish()
    }
}

fn insert<V>(
    map: &mut BTreeMap<String, V>,
    kind: &'static str,
    name: &str,
    value: V,
) -> Result<(), RegistryError> {
    if map.contains_key(name) {
        return Err(RegistryError::Duplicate {
            kind,
            name: name.to_owned(),
        });
    }
    map.insert(name.to_owned(), value);
    Ok(())
}

impl PolicyRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry with every policy of `config` built and registered.
    pub fn from_config(config: &RegistryConfig) -> Result<Self, RegistryError> {
        let registry = Self::new();
        for (name, config) in &config.circuit_breakers {
            registry.register_circuit_breaker(CircuitBreaker::from_config(
                name.as_str(),
                config.clone(),
            )?)?;
        }
        for (name, config) in &config.bulkheads {
            registry.register_bulkhead(Bulkhead::from_config(name.as_str(), config.clone())?)?;
        }
        for (name, config) in &config.retries {
            registry.register_retry(Retry::from_config(name.as_str(), config.clone())?)?;
        }
        for (name, config) in &config.rate_limiters {
            registry
                .register_rate_limiter(RateLimiter::from_config(name.as_str(), config.clone())?)?;
        }
        for (name, config) in &config.timeouts {
            registry.register_timeout(Timeout::from_config(name.as_str(), config.clone())?)?;
        }
        #[cfg(feature = "cache")]
        for (name, config) in &config.caches {
            registry.register_response_cache(ResponseCache::from_config(
                name.as_str(),
                config.clone(),
            )?)?;
        }
        Ok(registry)
    }

    fn read(&self) -> RwLockReadGuard<'_, Entries> {
        // Maps of handles; a panic elsewhere cannot leave them torn.
        self.inner
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Entries> {
        self.inner
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers `breaker` under its name.
    pub fn register_circuit_breaker(&self, breaker: CircuitBreaker) -> Result<(), RegistryError> {
        let name = breaker.name().to_owned();
        insert(
            &mut self.write().circuit_breakers,
            "circuit breaker",
            &name,
            breaker,
        )
    }

    /// Registers `bulkhead` under its name.
    pub fn register_bulkhead(&self, bulkhead: Bulkhead) -> Result<(), RegistryError> {
        let name = bulkhead.name().to_owned();
        insert(&mut self.write().bulkheads, "bulkhead", &name, bulkhead)
    }

    /// Registers `retry` under its name.
    pub fn register_retry(&self, retry: Retry) -> Result<(), RegistryError> {
        let name = retry.name().to_owned();
        insert(&mut self.write().retries, "retry", &name, retry)
    }

    /// Registers a global rate limiter under its name.
    pub fn register_rate_limiter(&self, limiter: RateLimiter) -> Result<(), RegistryError> {
        let name = limiter.name().to_owned();
        let mut entries = self.write();
        insert(
            &mut entries.rate_limiters,
            "rate limiter",
            &name,
            LimiterHandle::global(&limiter),
        )?;
        entries.global_limiters.insert(name, limiter);
        Ok(())
    }

    /// Registers a keyed rate limiter under its name (for stats).
    pub fn register_keyed_rate_limiter<K>(
        &self,
        limiter: KeyedRateLimiter<K>,
    ) -> Result<(), RegistryError>
    where
        K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
    {
        let name = limiter.name().to_owned();
        insert(
            &mut self.write().rate_limiters,
            "rate limiter",
            &name,
            LimiterHandle::keyed(&limiter),
        )
    }

    /// Registers `timeout` under its name.
    pub fn register_timeout(&self, timeout: Timeout) -> Result<(), RegistryError> {
        let name = timeout.name().to_owned();
        insert(&mut self.write().timeouts, "timeout", &name, timeout)
    }

    /// Registers an HTTP response cache under its name (feature `cache`).
    #[cfg(feature = "cache")]
    pub fn register_response_cache(&self, cache: ResponseCache) -> Result<(), RegistryError> {
        let name = cache.name().to_owned();
        let mut entries = self.write();
        insert(
            &mut entries.caches,
            "cache",
            &name,
            CacheHandle::http(&cache),
        )?;
        entries.response_caches.insert(name, cache);
        Ok(())
    }

    /// Registers a memoizer under its name, for stats and metrics
    /// (feature `cache`). Caches and memoizers share one namespace.
    #[cfg(feature = "cache")]
    pub fn register_memoizer<K, V>(&self, memoizer: Memoizer<K, V>) -> Result<(), RegistryError>
    where
        K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        let name = memoizer.name().to_owned();
        insert(
            &mut self.write().caches,
            "cache",
            &name,
            CacheHandle::memoizer(&memoizer),
        )
    }

    /// The response cache named `name` (feature `cache`).
    #[cfg(feature = "cache")]
    pub fn response_cache(&self, name: &str) -> Option<ResponseCache> {
        self.read().response_caches.get(name).cloned()
    }

    /// The breaker named `name`.
    pub fn circuit_breaker(&self, name: &str) -> Option<CircuitBreaker> {
        self.read().circuit_breakers.get(name).cloned()
    }

    /// The bulkhead named `name`.
    pub fn bulkhead(&self, name: &str) -> Option<Bulkhead> {
        self.read().bulkheads.get(name).cloned()
    }

    /// The retry policy named `name`.
    pub fn retry(&self, name: &str) -> Option<Retry> {
        self.read().retries.get(name).cloned()
    }

    /// The global rate limiter named `name`.
    pub fn rate_limiter(&self, name: &str) -> Option<RateLimiter> {
        self.read().global_limiters.get(name).cloned()
    }

    /// The timeout named `name`.
    pub fn timeout(&self, name: &str) -> Option<Timeout> {
        self.read().timeouts.get(name).cloned()
    }

    /// Every registered breaker (sorted by name).
    pub fn circuit_breakers(&self) -> Vec<CircuitBreaker> {
        self.read().circuit_breakers.values().cloned().collect()
    }

    /// Stats of everything registered.
    pub fn all_stats(&self) -> AllStats {
        AllStats::of(&self.members())
    }

    /// Every registered policy instance.
    pub(crate) fn members(&self) -> Vec<Member> {
        let entries = self.read();
        let breakers = entries
            .circuit_breakers
            .values()
            .cloned()
            .map(Member::CircuitBreaker);
        let bulkheads = entries.bulkheads.values().cloned().map(Member::Bulkhead);
        let retries = entries.retries.values().cloned().map(Member::Retry);
        let limiters = entries
            .rate_limiters
            .values()
            .cloned()
            .map(Member::RateLimiter);
        let timeouts = entries.timeouts.values().cloned().map(Member::Timeout);
        let members = breakers
            .chain(bulkheads)
            .chain(retries)
            .chain(limiters)
            .chain(timeouts);
        #[cfg(feature = "cache")]
        let members = members.chain(entries.caches.values().cloned().map(Member::Cache));
        members.collect()
    }

    /// The address of the shared entries: the same for every clone.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn id(&self) -> usize {
        Arc::as_ptr(&self.inner).addr()
    }

    /// The path [`router`](Self::router) serves.
    pub const PATH: &'static str = "/resilience";

    /// The registry's endpoint: `GET /resilience` answers
    /// [`all_stats`](Self::all_stats) as JSON, for dashboards and
    /// debugging. Merge it into the application's router.
    ///
    /// ```
    /// use axum::body::Body;
    /// use axum::http::Request;
    /// use cortex_resilience::{CircuitBreaker, PolicyRegistry};
    /// use http_body_util::BodyExt;
    /// use tower::ServiceExt;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let policies = PolicyRegistry::new();
    /// policies.register_circuit_breaker(CircuitBreaker::builder("db").build().unwrap()).unwrap();
    /// let app: axum::Router = policies.router();
    /// let response = app
    ///     .oneshot(Request::get("/resilience").body(Body::empty()).unwrap())
    ///     .await
    ///     .unwrap();
    /// assert_eq!(response.headers()["content-type"], "application/json");
    /// let body = response.into_body().collect().await.unwrap().to_bytes();
    /// let stats: serde_json::Value = serde_json::from_slice(&body).unwrap();
    /// assert_eq!(stats["circuit_breakers"][0]["state"], "closed");
    /// # }
    /// ```
    pub fn router<S>(&self) -> axum::Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let registry = self.clone();
        axum::Router::new().route(
            Self::PATH,
            axum::routing::get(move || {
                let registry = registry.clone();
                async move {
                    let body = serde_json::to_vec_pretty(&registry.all_stats())
                        .unwrap_or_else(|error| format!("{{\"error\":\"{error}\"}}").into_bytes());
                    ([(http::header::CONTENT_TYPE, "application/json")], body)
                }
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn duplicate_names_are_refused_and_the_first_kept() {
        let registry = PolicyRegistry::new();
        let first = CircuitBreaker::builder("db").build().unwrap();
        registry.register_circuit_breaker(first).unwrap();
        let second = CircuitBreaker::builder("db")
            .failure_rate_threshold(10.0)
            .build()
            .unwrap();
        assert_eq!(
            registry.register_circuit_breaker(second),
            Err(RegistryError::Duplicate {
                kind: "circuit breaker",
                name: "db".to_owned()
            })
        );
        assert_eq!(
            registry
                .circuit_breaker("db")
                .unwrap()
                .config()
                .failure_rate_threshold,
            50.0
        );
    }

    #[test]
    fn invalid_config_names_the_policy_and_field() {
        let config: RegistryConfig =
            serde_json::from_str(r#"{ "bulkheads": { "db": { "max_concurrent_calls": 0 } } }"#)
                .unwrap();
        let error = PolicyRegistry::from_config(&config).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid configuration of Bulkhead \"db\": `max_concurrent_calls` must be at least 1"
        );
    }

    #[test]
    fn timeouts_are_declared_like_every_other_policy() {
        let config: RegistryConfig = serde_json::from_str(
            r#"{ "timeouts": { "payments-total": { "timeout_duration": "2s" },
                               "payments-attempt": {} } }"#,
        )
        .unwrap();
        let registry = PolicyRegistry::from_config(&config).unwrap();
        let total = registry.timeout("payments-total").unwrap();
        assert_eq!(total.config().timeout_duration, Duration::from_secs(2));
        let stats = registry.all_stats().timeouts;
        assert_eq!(stats.len(), 2);
        assert_eq!(stats[0].name, "payments-attempt");
        assert_eq!(stats[0].timeout_duration, Duration::from_secs(1));
        assert_eq!(
            serde_json::to_value(&stats[1]).unwrap(),
            serde_json::json!({
                "name": "payments-total",
                "timeout_duration": "2s",
                "timed_out_calls_total": 0
            })
        );
        let bad: RegistryConfig =
            serde_json::from_str(r#"{ "timeouts": { "t": { "timeout_duration": 0 } } }"#).unwrap();
        let error = PolicyRegistry::from_config(&bad).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid configuration of Timeout \"t\": `timeout_duration` must be positive"
        );
    }

    #[test]
    fn unknown_fields_and_bad_durations_are_rejected() {
        assert!(serde_json::from_str::<RegistryConfig>(r#"{ "breakers": {} }"#).is_err());
        let error = serde_json::from_str::<RegistryConfig>(
            r#"{ "circuit_breakers": { "x": { "wait_duration_in_open_state": "soon" } } }"#,
        )
        .unwrap_err();
        assert!(error.to_string().contains("invalid duration"), "{error}");
    }
}
