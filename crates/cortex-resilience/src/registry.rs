//! Named policies, loadable from a config file, with one stats call.
//!
//! ```
//! use cortex_resilience::{PolicyRegistry, RegistryConfig};
//!
//! let config: RegistryConfig = serde_json::from_str(r#"{
//!     "circuit_breakers": { "payments": { "failure_rate_threshold": 25.0 } },
//!     "bulkheads": { "payments": { "max_concurrent_calls": 10 } },
//!     "retries": { "payments": { "max_attempts": 2 } },
//!     "rate_limiters": { "api": { "permits": 100, "period": "1s" } }
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

use crate::{
    Bulkhead, BulkheadConfig, BulkheadStats, CircuitBreaker, CircuitBreakerConfig,
    CircuitBreakerStats, ConfigError, KeyedRateLimiter, RateLimiter, RateLimiterConfig,
    RateLimiterStats, Retry, RetryConfig, RetryStats, Timeout,
};

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
    /// A configuration was invalid.
    #[error("{name:?}: {source}")]
    Config {
        /// The policy's name.
        name: String,
        /// What is wrong.
        #[source]
        source: ConfigError,
    },
}

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
    /// Timeouts: name and calls timed out.
    pub timeouts: Vec<TimeoutStats>,
}

/// Counters of a [`Timeout`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimeoutStats {
    /// The timeout's name.
    pub name: String,
    /// The limit in milliseconds.
    pub timeout_ms: u64,
    /// Calls that timed out.
    pub timeouts_total: u64,
}

type StatsFn = Arc<dyn Fn() -> RateLimiterStats + Send + Sync>;

/// Named circuit breakers, bulkheads, retries, rate limiters and timeouts
/// (resilience4j's registries in one). Cheap to clone; clones share.
#[derive(Clone, Default)]
pub struct PolicyRegistry {
    inner: Arc<RwLock<Entries>>,
}

#[derive(Default)]
struct Entries {
    circuit_breakers: BTreeMap<String, CircuitBreaker>,
    bulkheads: BTreeMap<String, Bulkhead>,
    retries: BTreeMap<String, Retry>,
    rate_limiters: BTreeMap<String, StatsFn>,
    global_limiters: BTreeMap<String, RateLimiter>,
    timeouts: BTreeMap<String, Timeout>,
}

impl fmt::Debug for PolicyRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries = self.read();
        f.debug_struct("PolicyRegistry")
            .field("circuit_breakers", &entries.circuit_breakers.keys())
            .field("bulkheads", &entries.bulkheads.keys())
            .field("retries", &entries.retries.keys())
            .field("rate_limiters", &entries.rate_limiters.keys())
            .field("timeouts", &entries.timeouts.keys())
            .finish()
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
        let invalid = |name: &String| {
            let name = name.clone();
            move |source| RegistryError::Config { name, source }
        };
        for (name, config) in &config.circuit_breakers {
            let breaker = CircuitBreaker::from_config(name.as_str(), config.clone())
                .map_err(invalid(name))?;
            registry.register_circuit_breaker(breaker)?;
        }
        for (name, config) in &config.bulkheads {
            let bulkhead =
                Bulkhead::from_config(name.as_str(), config.clone()).map_err(invalid(name))?;
            registry.register_bulkhead(bulkhead)?;
        }
        for (name, config) in &config.retries {
            let retry = Retry::from_config(name.as_str(), config.clone()).map_err(invalid(name))?;
            registry.register_retry(retry)?;
        }
        for (name, config) in &config.rate_limiters {
            let limiter =
                RateLimiter::from_config(name.as_str(), config.clone()).map_err(invalid(name))?;
            registry.register_rate_limiter(limiter)?;
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
        let stats = limiter.clone();
        insert(
            &mut entries.rate_limiters,
            "rate limiter",
            &name,
            Arc::new(move || stats.stats()),
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
            Arc::new(move || limiter.stats()),
        )
    }

    /// Registers `timeout` under its name.
    pub fn register_timeout(&self, timeout: Timeout) -> Result<(), RegistryError> {
        let name = timeout.name().to_owned();
        insert(&mut self.write().timeouts, "timeout", &name, timeout)
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
        let entries = self.read();
        AllStats {
            circuit_breakers: entries
                .circuit_breakers
                .values()
                .map(CircuitBreaker::stats)
                .collect(),
            bulkheads: entries.bulkheads.values().map(Bulkhead::stats).collect(),
            retries: entries.retries.values().map(Retry::stats).collect(),
            rate_limiters: entries
                .rate_limiters
                .values()
                .map(|stats| stats())
                .collect(),
            timeouts: entries
                .timeouts
                .values()
                .map(|timeout| TimeoutStats {
                    name: timeout.name().to_owned(),
                    timeout_ms: u64::try_from(timeout.duration().as_millis()).unwrap_or(u64::MAX),
                    timeouts_total: timeout.timeouts_total(),
                })
                .collect(),
        }
    }
}

impl PolicyRegistry {
    /// A router serving [`all_stats`](Self::all_stats) as JSON at `path`
    /// (e.g. `/resilience`), for dashboards and debugging.
    ///
    /// ```
    /// use cortex_resilience::PolicyRegistry;
    ///
    /// let app: axum::Router = PolicyRegistry::new().stats_router("/resilience");
    /// ```
    pub fn stats_router<S>(&self, path: &str) -> axum::Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let registry = self.clone();
        axum::Router::new().route(
            path,
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
            "\"db\": invalid Bulkhead configuration: `max_concurrent_calls` must be at least 1"
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
