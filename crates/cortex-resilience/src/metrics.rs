//! resilience4j-style Prometheus series for a [`PolicyRegistry`].
//!
//! Read at scrape time from the policies' own counters, so metrics cost
//! nothing on the call path.
//!
//! ```
//! use cortex_metrics::{Format, MetricsRegistry};
//! use cortex_resilience::{CircuitBreaker, PolicyRegistry};
//!
//! let policies = PolicyRegistry::new();
//! policies.register_circuit_breaker(CircuitBreaker::builder("db").build().unwrap()).unwrap();
//! let metrics = MetricsRegistry::new();
//! metrics.register_collector(policies.metrics_collector());
//! let text = metrics.encode(Format::Prometheus);
//! assert!(text.contains(r#"cortex_circuitbreaker_state{name="db",state="closed"} 1"#));
//! ```

use cortex_metrics::{Collector, CollectorOutput};

use crate::{CircuitState, PolicyRegistry};

/// The [`Collector`] of a [`PolicyRegistry`]; see
/// [`PolicyRegistry::metrics_collector`].
#[derive(Debug, Clone)]
pub struct ResilienceCollector {
    registry: PolicyRegistry,
}

impl PolicyRegistry {
    /// A collector rendering every registered policy as
    /// `cortex_circuitbreaker_*`, `cortex_bulkhead_*`, `cortex_retry_*`,
    /// `cortex_ratelimiter_*` and `cortex_timelimiter_*` series.
    pub fn metrics_collector(&self) -> ResilienceCollector {
        ResilienceCollector {
            registry: self.clone(),
        }
    }
}

#[allow(clippy::cast_precision_loss)] // counters far below 2^53
fn float(value: u64) -> f64 {
    value as f64
}

impl Collector for ResilienceCollector {
    fn collect(&self, out: &mut CollectorOutput<'_, '_>) {
        let stats = self.registry.all_stats();

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
        let limited: Vec<([&str; 2], f64)> = limiters
            .iter()
            .flat_map(|l| {
                let name = l.name.as_str();
                [
                    ([name, "permitted"], float(l.permitted_total)),
                    ([name, "rejected"], float(l.rejected_total)),
                ]
            })
            .collect();
        out.counter_family(
            "cortex_ratelimiter_calls_total",
            "Calls through rate limiters by outcome.",
            &["name", "kind"],
            limited.iter().map(|(labels, value)| (&labels[..], *value)),
        );

        let timeouts: Vec<([&str; 1], f64)> = stats
            .timeouts
            .iter()
            .map(|t| ([t.name.as_str()], float(t.timeouts_total)))
            .collect();
        out.counter_family(
            "cortex_timelimiter_timeouts_total",
            "Calls cancelled by timeouts.",
            &["name"],
            timeouts.iter().map(|(labels, value)| (&labels[..], *value)),
        );
    }
}
