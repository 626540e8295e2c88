//! A cortex-health check over circuit breakers, after resilience4j's
//! circuit-breaker health indicator.
//!
//! ```
//! use cortex_health::{HealthCheck, HealthStatus};
//! use cortex_resilience::{CircuitBreaker, PolicyRegistry};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let policies = PolicyRegistry::new();
//! let payments = CircuitBreaker::builder("payments").build().unwrap();
//! policies.register_circuit_breaker(payments.clone()).unwrap();
//! let check = policies.health_check();
//! assert_eq!(check.check().await.status, HealthStatus::Up);
//!
//! payments.transition_to_open();
//! let result = check.check().await;
//! assert_eq!(result.status, HealthStatus::Degraded);
//! assert_eq!(result.details["open"][0], "payments");
//! # }
//! ```

use cortex_health::{HealthCheck, HealthCheckResult};
use serde_json::{Map, Value, json};

use crate::{CircuitBreaker, CircuitState, PolicyRegistry};

/// The state of circuit breakers as a health check.
///
/// - `Degraded` while any breaker is `open` or `forced_open`, naming them
///   in the message and under `details.open`: the service works, but a
///   dependency is cut off. (resilience4j reports `CIRCUIT_OPEN`; a
///   breaker that opens should not, by itself, take the instance out of a
///   load balancer, so it is not `Down`.)
/// - `Up` otherwise; breakers in `half_open` are listed under
///   `details.half_open` and in the message.
///
/// `details.circuit_breakers` holds each breaker's state, rates and
/// thresholds, and call counts, as resilience4j's indicator does. A check
/// from [`PolicyRegistry::health_check`] sees breakers registered after it
/// was made.
#[derive(Debug, Clone)]
pub struct CircuitBreakerHealthCheck {
    source: Source,
}

#[derive(Debug, Clone)]
enum Source {
    Registry(PolicyRegistry),
    Breaker(CircuitBreaker),
}

impl PolicyRegistry {
    /// A health check over every registered circuit breaker; see
    /// [`CircuitBreakerHealthCheck`].
    pub fn health_check(&self) -> CircuitBreakerHealthCheck {
        CircuitBreakerHealthCheck {
            source: Source::Registry(self.clone()),
        }
    }
}

impl CircuitBreaker {
    /// A health check over this breaker alone; see
    /// [`CircuitBreakerHealthCheck`].
    pub fn health_check(&self) -> CircuitBreakerHealthCheck {
        CircuitBreakerHealthCheck {
            source: Source::Breaker(self.clone()),
        }
    }
}

impl HealthCheck for CircuitBreakerHealthCheck {
    async fn check(&self) -> HealthCheckResult {
        let breakers = match &self.source {
            Source::Registry(registry) => registry.circuit_breakers(),
            Source::Breaker(breaker) => vec![breaker.clone()],
        };
        let mut open = Vec::new();
        let mut half_open = Vec::new();
        let mut each = Map::new();
        for breaker in &breakers {
            let stats = breaker.stats();
            let config = breaker.config();
            match stats.state {
                CircuitState::Open | CircuitState::ForcedOpen => open.push(stats.name.clone()),
                CircuitState::HalfOpen => half_open.push(stats.name.clone()),
                CircuitState::Closed | CircuitState::Disabled | CircuitState::MetricsOnly => {}
            }
            each.insert(
                stats.name.clone(),
                json!({
                    "state": stats.state,
                    "failure_rate": stats.failure_rate,
                    "failure_rate_threshold": config.failure_rate_threshold,
                    "slow_call_rate": stats.slow_call_rate,
                    "slow_call_rate_threshold": config.slow_call_rate_threshold,
                    "buffered_calls": stats.buffered_calls,
                    "failed_calls": stats.failed_calls,
                    "slow_calls": stats.slow_calls,
                    "not_permitted_calls": stats.not_permitted_calls,
                }),
            );
        }
        let result = if !open.is_empty() {
            HealthCheckResult::degraded(format!("circuit breaker open: {}", open.join(", ")))
        } else if !half_open.is_empty() {
            HealthCheckResult::up().with_message(format!(
                "circuit breaker half-open: {}",
                half_open.join(", ")
            ))
        } else {
            HealthCheckResult::up()
        };
        result.with_details(json!({
            "open": open,
            "half_open": half_open,
            "circuit_breakers": Value::Object(each),
        }))
    }
}

#[cfg(test)]
mod tests {
    use cortex_health::HealthStatus;

    use super::*;

    fn registry_with(names: &[&str]) -> (PolicyRegistry, Vec<CircuitBreaker>) {
        let registry = PolicyRegistry::new();
        let breakers = names
            .iter()
            .map(|name| {
                let breaker = CircuitBreaker::builder(*name).build().unwrap();
                registry.register_circuit_breaker(breaker.clone()).unwrap();
                breaker
            })
            .collect();
        (registry, breakers)
    }

    #[tokio::test]
    async fn closed_disabled_and_metrics_only_breakers_are_up() {
        let (registry, breakers) = registry_with(&["a", "b", "c"]);
        breakers[1].transition_to_disabled();
        breakers[2].transition_to_metrics_only();
        let result = registry.health_check().check().await;
        assert_eq!(result.status, HealthStatus::Up);
        assert_eq!(result.message, None);
        assert_eq!(result.details["circuit_breakers"]["b"]["state"], "disabled");
        assert_eq!(result.details["open"], json!([]));
    }

    #[tokio::test]
    async fn an_open_or_forced_open_breaker_degrades_and_is_named() {
        let (registry, breakers) = registry_with(&["inventory", "payments", "search"]);
        breakers[0].transition_to_forced_open();
        breakers[1].transition_to_open();
        let result = registry.health_check().check().await;
        assert_eq!(result.status, HealthStatus::Degraded);
        assert_eq!(
            result.message.as_deref(),
            Some("circuit breaker open: inventory, payments")
        );
        assert_eq!(result.details["open"], json!(["inventory", "payments"]));
        let payments = &result.details["circuit_breakers"]["payments"];
        assert_eq!(payments["state"], "open");
        assert_eq!(payments["failure_rate_threshold"], 50.0);
        assert_eq!(payments["failure_rate"], Value::Null);
    }

    #[tokio::test]
    async fn a_half_open_breaker_is_up_with_a_detail() {
        let (registry, breakers) = registry_with(&["payments"]);
        breakers[0].transition_to_half_open();
        let result = registry.health_check().check().await;
        assert_eq!(result.status, HealthStatus::Up);
        assert_eq!(
            result.message.as_deref(),
            Some("circuit breaker half-open: payments")
        );
        assert_eq!(result.details["half_open"], json!(["payments"]));
    }

    #[tokio::test]
    async fn the_check_follows_state_changes_and_later_registrations() {
        let (registry, _) = registry_with(&[]);
        let check = registry.health_check();
        assert_eq!(check.check().await.status, HealthStatus::Up);
        let late = CircuitBreaker::builder("late").build().unwrap();
        registry.register_circuit_breaker(late.clone()).unwrap();
        late.transition_to_open();
        assert_eq!(check.check().await.status, HealthStatus::Degraded);
        late.transition_to_closed();
        assert_eq!(check.check().await.status, HealthStatus::Up);
    }

    #[tokio::test]
    async fn a_lone_breaker_has_the_same_check() {
        let breaker = CircuitBreaker::builder("solo").build().unwrap();
        let check = breaker.health_check();
        assert_eq!(check.check().await.status, HealthStatus::Up);
        breaker.transition_to_forced_open();
        let result = check.check().await;
        assert_eq!(result.status, HealthStatus::Degraded);
        assert_eq!(result.details["open"], json!(["solo"]));
    }
}
