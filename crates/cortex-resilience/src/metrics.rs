//! resilience4j-style Prometheus series for policies and registries.
//!
//! [`PolicyRegistry`], every policy and [`Pipeline`] implement
//! [`RegisterMetrics`]. The series are read at scrape time from the
//! policies' own counters, so metrics cost nothing on the call path.
//!
//! ```
//! use cortex_metrics::{Format, MetricsRegistry, RegisterMetrics};
//! use cortex_resilience::{Bulkhead, CircuitBreaker, PolicyRegistry};
//!
//! let policies = PolicyRegistry::new();
//! policies.register_circuit_breaker(CircuitBreaker::builder("db").build().unwrap()).unwrap();
//! let metrics = MetricsRegistry::new();
//! policies.register_metrics(&metrics).unwrap();
//! // A policy outside any registry is observable too, in the same families.
//! Bulkhead::builder("uploads").build().unwrap().register_metrics(&metrics).unwrap();
//! let text = metrics.encode(Format::Prometheus);
//! assert!(text.contains(r#"cortex_circuitbreaker_state{name="db",state="closed"} 1"#));
//! assert!(text.contains(r#"cortex_bulkhead_max_allowed_concurrent_calls{name="uploads"} 25"#));
//! ```
//!
//! Every component registered with one [`MetricsRegistry`] lands in the
//! same families, so the registry gets one collector for all of them:
//! each family may appear only once per scrape. A policy registered both
//! alone and through a [`PolicyRegistry`] is exported once. Two different
//! instances of one kind with the same name would give two series with
//! the same labels, so only one is exported: the one in a registry, else
//! the one registered first.

use std::sync::{Arc, Mutex, PoisonError};

use cortex_metrics::{Collector, CollectorOutput, MetricsError, MetricsRegistry, RegisterMetrics};

#[cfg(feature = "cache")]
use crate::members::CacheHandle;
use crate::members::{LimiterHandle, Member};
use crate::{
    AllStats, Bulkhead, CircuitBreaker, CircuitState, KeyedRateLimiter, Pipeline, PolicyRegistry,
    RateLimiter, Retry, Timeout,
};
#[cfg(feature = "cache")]
use crate::{CacheStats, Memoizer, ResponseCache};
#[cfg(feature = "redis")]
use crate::{DistributedRateLimiter, DistributedRateLimiterStats};

/// What one [`MetricsRegistry`] exports: registries (read live at every
/// scrape, so policies registered later show up) and single policies.
#[derive(Default)]
struct Exports {
    registries: Vec<PolicyRegistry>,
    members: Vec<Member>,
    /// Kept apart from `members`: a `PolicyRegistry` does not hold them,
    /// and they render families of their own.
    #[cfg(feature = "redis")]
    distributed: Vec<DistributedRateLimiter>,
}

/// Everything one scrape renders.
struct Snapshot {
    stats: AllStats,
    /// Distributed rate limiters, by name.
    #[cfg(feature = "redis")]
    distributed: Vec<DistributedRateLimiterStats>,
}

/// The collector of one [`MetricsRegistry`]: every resilience component
/// registered with it, rendered together (a family may appear only once per
/// scrape). It lives in the registry ([`MetricsRegistry::shared_collector`]),
/// so it goes when the registry goes.
#[derive(Default)]
struct ResilienceCollector {
    exports: Mutex<Exports>,
}

/// The collector of `registry`, installing it on first use.
fn exports_of(registry: &MetricsRegistry) -> Result<Arc<ResilienceCollector>, MetricsError> {
    registry.shared_collector("cortex_resilience", ResilienceCollector::default)
}

/// Adds `members` to what `registry` exports; each instance once.
fn export(registry: &MetricsRegistry, members: Vec<Member>) -> Result<(), MetricsError> {
    let collector = exports_of(registry)?;
    let mut exports = collector
        .exports
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    for member in members {
        if !exports
            .members
            .iter()
            .any(|known| known.id() == member.id())
        {
            exports.members.push(member);
        }
    }
    Ok(())
}

/// `cortex_circuitbreaker_*`, `cortex_bulkhead_*`, `cortex_retry_*`,
/// `cortex_ratelimiter_*`, `cortex_timeout_*` and `cortex_cache_*` series of every
/// registered policy, including those registered after this call.
impl RegisterMetrics for PolicyRegistry {
    fn register_metrics(&self, registry: &MetricsRegistry) -> Result<(), MetricsError> {
        let collector = exports_of(registry)?;
        let mut exports = collector
            .exports
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !exports
            .registries
            .iter()
            .any(|known| known.id() == self.id())
        {
            exports.registries.push(self.clone());
        }
        Ok(())
    }
}

/// `cortex_circuitbreaker_*` series labelled `name="<breaker's name>"`.
impl RegisterMetrics for CircuitBreaker {
    fn register_metrics(&self, registry: &MetricsRegistry) -> Result<(), MetricsError> {
        export(registry, vec![Member::CircuitBreaker(self.clone())])
    }
}

/// `cortex_bulkhead_*` series labelled `name="<bulkhead's name>"`.
impl RegisterMetrics for Bulkhead {
    fn register_metrics(&self, registry: &MetricsRegistry) -> Result<(), MetricsError> {
        export(registry, vec![Member::Bulkhead(self.clone())])
    }
}

/// `cortex_retry_*` series labelled `name="<policy's name>"`.
impl RegisterMetrics for Retry {
    fn register_metrics(&self, registry: &MetricsRegistry) -> Result<(), MetricsError> {
        export(registry, vec![Member::Retry(self.clone())])
    }
}

/// `cortex_ratelimiter_*` series labelled `name="<limiter's name>"`.
impl RegisterMetrics for RateLimiter {
    fn register_metrics(&self, registry: &MetricsRegistry) -> Result<(), MetricsError> {
        export(
            registry,
            vec![Member::RateLimiter(LimiterHandle::global(self))],
        )
    }
}

/// `cortex_ratelimiter_*` series labelled `name="<limiter's name>"`
/// (one series for all keys).
impl<K> RegisterMetrics for KeyedRateLimiter<K>
where
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
{
    fn register_metrics(&self, registry: &MetricsRegistry) -> Result<(), MetricsError> {
        export(
            registry,
            vec![Member::RateLimiter(LimiterHandle::keyed(self))],
        )
    }
}

/// `cortex_ratelimiter_calls_total` (as the local limiters) and
/// `cortex_ratelimiter_backend_up`, `cortex_ratelimiter_backend_errors_total`
/// and `cortex_ratelimiter_fallback_decisions_total`, labelled
/// `name="<limiter's name>"`. Registered directly: a [`PolicyRegistry`]
/// holds no distributed limiters. Where a local limiter has the same name,
/// `cortex_ratelimiter_calls_total` is the local one's, so no two series
/// share their labels.
///
/// ```
/// use cortex_metrics::{Format, MetricsRegistry, RegisterMetrics};
/// use cortex_resilience::{DistributedRateLimiter, RedisFallback};
///
/// # #[tokio::main] async fn main() {
/// let limiter = DistributedRateLimiter::builder("api")
///     .redis_url("redis://127.0.0.1:1") // nothing listens here
///     .fallback(RedisFallback::Deny)
///     .build()
///     .unwrap();
/// let metrics = MetricsRegistry::new();
/// limiter.register_metrics(&metrics).unwrap();
/// limiter.check(b"alice").await;
/// let text = metrics.encode(Format::Prometheus);
/// assert!(text.contains(r#"cortex_ratelimiter_backend_up{name="api"} 0"#));
/// assert!(text.contains(r#"cortex_ratelimiter_fallback_decisions_total{name="api"} 1"#));
/// # }
/// ```
#[cfg(feature = "redis")]
impl RegisterMetrics for DistributedRateLimiter {
    fn register_metrics(&self, registry: &MetricsRegistry) -> Result<(), MetricsError> {
        let collector = exports_of(registry)?;
        let mut exports = collector
            .exports
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !exports
            .distributed
            .iter()
            .any(|known| known.id() == self.id())
        {
            exports.distributed.push(self.clone());
        }
        Ok(())
    }
}

/// `cortex_timeout_*` series labelled `name="<timeout's name>"`.
impl RegisterMetrics for Timeout {
    fn register_metrics(&self, registry: &MetricsRegistry) -> Result<(), MetricsError> {
        export(registry, vec![Member::Timeout(self.clone())])
    }
}

/// `cortex_cache_*` series labelled `name="<cache's name>"`.
#[cfg(feature = "cache")]
impl RegisterMetrics for ResponseCache {
    fn register_metrics(&self, registry: &MetricsRegistry) -> Result<(), MetricsError> {
        export(registry, vec![Member::Cache(CacheHandle::http(self))])
    }
}

/// `cortex_cache_*` series labelled `name="<memoizer's name>"`.
#[cfg(feature = "cache")]
impl<K, V> RegisterMetrics for Memoizer<K, V>
where
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn register_metrics(&self, registry: &MetricsRegistry) -> Result<(), MetricsError> {
        export(registry, vec![Member::Cache(CacheHandle::memoizer(self))])
    }
}

/// The series of every policy in the pipeline, each under its own name.
impl<C, P> RegisterMetrics for Pipeline<C, P> {
    fn register_metrics(&self, registry: &MetricsRegistry) -> Result<(), MetricsError> {
        export(registry, self.members())
    }
}

#[allow(clippy::cast_precision_loss)] // counters far below 2^53
fn float(value: u64) -> f64 {
    value as f64
}

impl Collector for ResilienceCollector {
    fn collect(&self, out: &mut CollectorOutput<'_, '_>) {
        let exports = self.exports.lock().unwrap_or_else(PoisonError::into_inner);
        let members: Vec<Member> = exports
            .registries
            .iter()
            .flat_map(PolicyRegistry::members)
            .chain(exports.members.iter().cloned())
            .collect();
        #[cfg(feature = "redis")]
        let distributed = exports.distributed.clone();
        drop(exports);
        let stats = AllStats::of(&members);
        render(
            &Snapshot {
                #[cfg(feature = "redis")]
                distributed: distributed_stats(&distributed),
                stats,
            },
            out,
        );
    }
}

/// Stats of `limiters` sorted by name; of two with the same name only the
/// first, as [`AllStats::of`] does within a kind.
#[cfg(feature = "redis")]
fn distributed_stats(limiters: &[DistributedRateLimiter]) -> Vec<DistributedRateLimiterStats> {
    let mut distributed: Vec<DistributedRateLimiterStats> =
        limiters.iter().map(DistributedRateLimiter::stats).collect();
    distributed.sort_by(|a, b| a.name.cmp(&b.name));
    distributed.dedup_by(|later, earlier| later.name == earlier.name);
    distributed
}

fn render(snapshot: &Snapshot, out: &mut CollectorOutput<'_, '_>) {
    let stats = &snapshot.stats;
    let breakers = &stats.circuit_breakers;
    let states: Vec<([&str; 2], f64)> = breakers
        .iter()
        .flat_map(|breaker| {
            CircuitState::ALL.iter().map(move |state| {
                (
                    [breaker.name.as_str(), state.as_str()],
                    if breaker.state == *state { 1.0 } else { 0.0 },
                )
            })
        })
        .collect();
    out.gauge_family(
        "cortex_circuitbreaker_state",
        "Circuit breaker state: 1 for the current state, 0 for the others.",
        &["name", "state"],
        states.iter().map(|(labels, value)| (&labels[..], *value)),
    );
    let calls: Vec<([&str; 2], f64)> = breakers
        .iter()
        .flat_map(|b| {
            let name = b.name.as_str();
            [
                ([name, "successful"], float(b.successful_calls_total)),
                ([name, "failed"], float(b.failed_calls_total)),
                (
                    [name, "slow_successful"],
                    float(b.slow_successful_calls_total),
                ),
                ([name, "slow_failed"], float(b.slow_failed_calls_total)),
                ([name, "ignored"], float(b.ignored_calls_total)),
                ([name, "not_permitted"], float(b.not_permitted_calls)),
            ]
        })
        .collect();
    out.counter_family(
        "cortex_circuitbreaker_calls_total",
        "Calls through circuit breakers by outcome.",
        &["name", "kind"],
        calls.iter().map(|(labels, value)| (&labels[..], *value)),
    );
    let names: Vec<[&str; 1]> = breakers.iter().map(|b| [b.name.as_str()]).collect();
    let per_breaker = |values: Vec<f64>| -> Vec<(&[&str], f64)> {
        names.iter().map(|n| &n[..]).zip(values).collect()
    };
    out.gauge_family(
        "cortex_circuitbreaker_failure_rate",
        "Failure percentage of the sliding window; -1 below the minimum number of calls.",
        &["name"],
        per_breaker(
            breakers
                .iter()
                .map(|b| b.failure_rate.unwrap_or(-1.0))
                .collect(),
        ),
    );
    out.gauge_family(
        "cortex_circuitbreaker_slow_call_rate",
        "Slow-call percentage of the sliding window; -1 below the minimum number of calls.",
        &["name"],
        per_breaker(
            breakers
                .iter()
                .map(|b| b.slow_call_rate.unwrap_or(-1.0))
                .collect(),
        ),
    );
    out.gauge_family(
        "cortex_circuitbreaker_buffered_calls",
        "Calls in the sliding window.",
        &["name"],
        per_breaker(breakers.iter().map(|b| float(b.buffered_calls)).collect()),
    );

    let bulkheads = &stats.bulkheads;
    let names: Vec<[&str; 1]> = bulkheads.iter().map(|b| [b.name.as_str()]).collect();
    let per_bulkhead = |values: Vec<f64>| -> Vec<(&[&str], f64)> {
        names.iter().map(|n| &n[..]).zip(values).collect()
    };
    out.gauge_family(
        "cortex_bulkhead_available_concurrent_calls",
        "Free bulkhead permits.",
        &["name"],
        per_bulkhead(
            bulkheads
                .iter()
                .map(|b| float(b.available_permits))
                .collect(),
        ),
    );
    out.gauge_family(
        "cortex_bulkhead_max_allowed_concurrent_calls",
        "Configured bulkhead concurrency.",
        &["name"],
        per_bulkhead(
            bulkheads
                .iter()
                .map(|b| f64::from(b.max_concurrent_calls))
                .collect(),
        ),
    );
    out.gauge_family(
        "cortex_bulkhead_queue_depth",
        "Calls waiting for a bulkhead permit.",
        &["name"],
        per_bulkhead(bulkheads.iter().map(|b| float(b.queued)).collect()),
    );
    out.counter_family(
        "cortex_bulkhead_rejected_calls_total",
        "Calls rejected by bulkheads.",
        &["name"],
        per_bulkhead(bulkheads.iter().map(|b| float(b.rejected_total)).collect()),
    );

    let retries: Vec<([&str; 2], f64)> = stats
        .retries
        .iter()
        .flat_map(|r| {
            let name = r.name.as_str();
            [
                (
                    [name, "successful_without_retry"],
                    float(r.successful_without_retry),
                ),
                (
                    [name, "successful_with_retry"],
                    float(r.successful_with_retry),
                ),
                (
                    [name, "failed_without_retry"],
                    float(r.failed_without_retry),
                ),
                ([name, "failed_with_retry"], float(r.failed_with_retry)),
            ]
        })
        .collect();
    out.counter_family(
        "cortex_retry_calls_total",
        "Calls through retry policies by outcome.",
        &["name", "kind"],
        retries.iter().map(|(labels, value)| (&labels[..], *value)),
    );

    let limiters = &stats.rate_limiters;
    let names: Vec<[&str; 1]> = limiters.iter().map(|l| [l.name.as_str()]).collect();
    out.gauge_family(
        "cortex_ratelimiter_available_permissions",
        "Permits available now (for keyed limiters, the shared overflow budget).",
        &["name"],
        names
            .iter()
            .map(|n| &n[..])
            .zip(limiters.iter().map(|l| f64::from(l.available_permissions))),
    );
    #[cfg_attr(not(feature = "redis"), allow(unused_mut))]
    let mut limited: Vec<([&str; 2], f64)> = limiters
        .iter()
        .flat_map(|l| {
            let name = l.name.as_str();
            [
                ([name, "permitted"], float(l.permitted_total)),
                ([name, "rejected"], float(l.rejected_total)),
            ]
        })
        .collect();
    // A local limiter of the same name keeps its calls series: no two
    // series may share their labels.
    #[cfg(feature = "redis")]
    limited.extend(
        snapshot
            .distributed
            .iter()
            .filter(|d| !limiters.iter().any(|local| local.name == d.name))
            .flat_map(|d| {
                let name = d.name.as_str();
                [
                    ([name, "permitted"], float(d.permitted_total)),
                    ([name, "rejected"], float(d.rejected_total)),
                ]
            }),
    );
    out.counter_family(
        "cortex_ratelimiter_calls_total",
        "Calls through rate limiters by outcome.",
        &["name", "kind"],
        limited.iter().map(|(labels, value)| (&labels[..], *value)),
    );

    let timeouts = &stats.timeouts;
    let names: Vec<[&str; 1]> = timeouts.iter().map(|t| [t.name.as_str()]).collect();
    let per_timeout = |values: Vec<f64>| -> Vec<(&[&str], f64)> {
        names.iter().map(|n| &n[..]).zip(values).collect()
    };
    out.gauge_family(
        "cortex_timeout_limit_seconds",
        "Configured time limit per call.",
        &["name"],
        per_timeout(
            timeouts
                .iter()
                .map(|t| t.timeout_duration.as_secs_f64())
                .collect(),
        ),
    );
    out.counter_family(
        "cortex_timeout_timed_out_calls_total",
        "Calls cancelled at their time limit.",
        &["name"],
        per_timeout(
            timeouts
                .iter()
                .map(|t| float(t.timed_out_calls_total))
                .collect(),
        ),
    );

    #[cfg(feature = "redis")]
    render_distributed(&snapshot.distributed, out);
    #[cfg(feature = "cache")]
    render_caches(&stats.caches, out);
}

#[cfg(feature = "redis")]
fn render_distributed(limiters: &[DistributedRateLimiterStats], out: &mut CollectorOutput<'_, '_>) {
    // No families at all without a distributed limiter, as for caches.
    if limiters.is_empty() {
        return;
    }
    let names: Vec<[&str; 1]> = limiters.iter().map(|l| [l.name.as_str()]).collect();
    let per_limiter = |values: Vec<f64>| -> Vec<(&[&str], f64)> {
        names.iter().map(|n| &n[..]).zip(values).collect()
    };
    out.gauge_family(
        "cortex_ratelimiter_backend_up",
        "Whether the distributed rate limiter's last call to Redis succeeded.",
        &["name"],
        per_limiter(
            limiters
                .iter()
                .map(|l| if l.backend_available { 1.0 } else { 0.0 })
                .collect(),
        ),
    );
    let errors: Vec<([&str; 2], f64)> = limiters
        .iter()
        .flat_map(|l| {
            let name = l.name.as_str();
            let counts = &l.backend_errors;
            [
                ([name, "timeout"], float(counts.timeout)),
                ([name, "connection"], float(counts.connection)),
                ([name, "other"], float(counts.other)),
            ]
        })
        .collect();
    out.counter_family(
        "cortex_ratelimiter_backend_errors_total",
        "Failed calls from distributed rate limiters to Redis, by kind.",
        &["name", "kind"],
        errors.iter().map(|(labels, value)| (&labels[..], *value)),
    );
    out.counter_family(
        "cortex_ratelimiter_fallback_decisions_total",
        "Distributed rate limit decisions made by the fallback while Redis did not answer.",
        &["name"],
        per_limiter(
            limiters
                .iter()
                .map(|l| float(l.fallback_decisions_total))
                .collect(),
        ),
    );
}

#[cfg(feature = "cache")]
fn render_caches(caches: &[CacheStats], out: &mut CollectorOutput<'_, '_>) {
    // No families at all without a cache: a scrape without caches keeps
    // its shape.
    if caches.is_empty() {
        return;
    }
    let requests: Vec<([&str; 2], f64)> = caches
        .iter()
        .flat_map(|c| {
            let name = c.name.as_str();
            [
                ([name, "hit"], float(c.hits)),
                ([name, "miss"], float(c.misses)),
                ([name, "stale"], float(c.stale)),
                ([name, "coalesced"], float(c.coalesced)),
                ([name, "bypass"], float(c.bypassed)),
            ]
        })
        .collect();
    out.counter_family(
        "cortex_cache_requests_total",
        "Requests and calls through caches by how they were answered.",
        &["name", "kind"],
        requests.iter().map(|(labels, value)| (&labels[..], *value)),
    );
    let evictions: Vec<([&str; 2], f64)> = caches
        .iter()
        .flat_map(|c| {
            let name = c.name.as_str();
            [
                ([name, "size"], float(c.evictions_size)),
                ([name, "expired"], float(c.evictions_expired)),
            ]
        })
        .collect();
    out.counter_family(
        "cortex_cache_evictions_total",
        "Entries removed from caches: to stay within the bounds, or past their stale windows.",
        &["name", "cause"],
        evictions
            .iter()
            .map(|(labels, value)| (&labels[..], *value)),
    );
    let names: Vec<[&str; 1]> = caches.iter().map(|c| [c.name.as_str()]).collect();
    let per_cache = |values: Vec<f64>| -> Vec<(&[&str], f64)> {
        names.iter().map(|n| &n[..]).zip(values).collect()
    };
    out.counter_family(
        "cortex_cache_refreshes_total",
        "Background stale-while-revalidate refreshes started.",
        &["name"],
        per_cache(caches.iter().map(|c| float(c.refreshes)).collect()),
    );
    out.gauge_family(
        "cortex_cache_entries",
        "Entries held.",
        &["name"],
        per_cache(caches.iter().map(|c| float(c.entries)).collect()),
    );
    out.gauge_family(
        "cortex_cache_max_entries",
        "Configured bound on entries.",
        &["name"],
        per_cache(caches.iter().map(|c| float(c.max_entries)).collect()),
    );
    out.gauge_family(
        "cortex_cache_size_bytes",
        "Bytes held: bodies, headers and keys.",
        &["name"],
        per_cache(caches.iter().map(|c| float(c.size_bytes)).collect()),
    );
    let bounded: Vec<([&str; 1], f64)> = caches
        .iter()
        .filter_map(|c| Some(([c.name.as_str()], float(c.max_size_bytes?))))
        .collect();
    out.gauge_family(
        "cortex_cache_max_size_bytes",
        "Configured bound on bytes (caches bounded by bytes only).",
        &["name"],
        bounded.iter().map(|(labels, value)| (&labels[..], *value)),
    );
}
