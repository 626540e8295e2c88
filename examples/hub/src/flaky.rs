//! `/api/flaky`: a simulated downstream that fails at a configurable rate,
//! protected by the standard resilience pipeline and a per-client rate
//! limit.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use cortex::metrics::{MetricsRegistry, RegisterMetrics};
use cortex::resilience::{
    Backoff, Bulkhead, CircuitBreaker, ClientIp, DistributedRateLimiter, Jitter, KeyedRateLimiter,
    Pipeline, PolicyRegistry, RateLimiter, RedisFallback, Retry, SlidingWindow, Timeout,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::routes::IndexedRouter;
use crate::{ClusterConfig, HubError};

/// The per-client limit: one budget per client in Redis, shared by every
/// replica, or this process's own.
enum PerClient {
    Shared(DistributedRateLimiter),
    Local(KeyedRateLimiter<IpAddr>),
}

/// The per-client limit's name: in `/resilience` and `/metrics` for the
/// local limiter, in `/metrics` for the shared one.
const PER_CLIENT: &str = "flaky-per-client";
/// Requests a second each client may make, after its burst.
const PER_CLIENT_PERMITS: u32 = 50;
/// Requests a client may make at once.
const PER_CLIENT_BURST: u32 = 100;

/// The breaker guarding the simulated downstream.
pub const BREAKER: &str = "flaky-downstream";

#[derive(Clone)]
struct Downstream {
    /// Failure probability in millionths.
    failure_ppm: Arc<AtomicU32>,
    calls: Arc<AtomicU64>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct FlakyQuery {
    /// Failure rate for this request only, 0.0–1.0.
    fail: Option<f64>,
    /// Simulated downstream latency in ms (at most 5 000).
    ms: Option<u64>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct RateQuery {
    /// The downstream's failure rate from now on, 0.0–1.0.
    rate: Option<f64>,
}

fn ppm(rate: f64) -> u32 {
    // Clamped to [0, 1] first, so the product fits.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let ppm = (rate.clamp(0.0, 1.0) * 1_000_000.0).round() as u32;
    ppm
}

/// Registers the flaky downstream's policies in `policies` and returns
/// its routes with the pipeline applied. With a Redis URL in `cluster`,
/// the per-client limit is one budget for every replica
/// (`DistributedRateLimiter`, its series registered in `metrics`);
/// without, it is this process's own.
pub(crate) fn routes(
    policies: &PolicyRegistry,
    cluster: &ClusterConfig,
    metrics: &MetricsRegistry,
) -> Result<IndexedRouter, HubError> {
    let breaker = CircuitBreaker::builder(BREAKER)
        .sliding_window(SlidingWindow::CountBased { size: 20 })
        .minimum_number_of_calls(10)
        .failure_rate_threshold(50.0)
        .wait_duration_in_open_state(Duration::from_secs(10))
        .permitted_number_of_calls_in_half_open_state(3)
        .build()?;
    let bulkhead = Bulkhead::builder(BREAKER)
        .max_concurrent_calls(32)
        .max_queue(64)
        .max_wait(Duration::from_secs(1))
        .build()?;
    let retry = Retry::builder(BREAKER)
        .max_attempts(3)
        .backoff(Backoff::Exponential {
            initial: Duration::from_millis(50),
            multiplier: 2.0,
            max: Duration::from_millis(500),
        })
        .jitter(Jitter::Full)
        .build()?;
    let total = Timeout::builder("flaky-total")
        .timeout_duration(Duration::from_secs(8))
        .build()?;
    let attempt = Timeout::builder("flaky-attempt")
        .timeout_duration(Duration::from_secs(2))
        .build()?;
    // One budget per client: in Redis, shared by every replica, when the
    // Hub runs clustered; this process's own otherwise.
    let per_client = match &cluster.redis_url {
        Some(url) => {
            let limiter = DistributedRateLimiter::builder(PER_CLIENT)
                .redis_url(url.clone())
                .permits(PER_CLIENT_PERMITS, Duration::from_secs(1))
                .burst(PER_CLIENT_BURST)
                .timeout(cluster.redis_timeout)
                .fallback(RedisFallback::Local {
                    replicas: cluster.replicas,
                })
                .build()?;
            limiter.register_metrics(metrics)?;
            PerClient::Shared(limiter)
        }
        None => {
            let limiter = RateLimiter::builder(PER_CLIENT)
                .permits(PER_CLIENT_PERMITS, Duration::from_secs(1))
                .burst(PER_CLIENT_BURST)
                .build_keyed()?;
            policies.register_keyed_rate_limiter(limiter.clone())?;
            PerClient::Local(limiter)
        }
    };
    policies.register_circuit_breaker(breaker.clone())?;
    policies.register_bulkhead(bulkhead.clone())?;
    policies.register_retry(retry.clone())?;
    policies.register_timeout(total.clone())?;
    policies.register_timeout(attempt.clone())?;

    let pipeline = Pipeline::builder()
        .bulkhead(bulkhead)
        .timeout(total)
        .retry(retry)
        .circuit_breaker(breaker)
        .attempt_timeout(attempt)
        .build_http();
    let downstream = Downstream {
        failure_ppm: Arc::new(AtomicU32::new(0)),
        calls: Arc::new(AtomicU64::new(0)),
    };
    let protected = IndexedRouter::new()
        .route(
            "/api/flaky",
            "GET ?fail=0.5&ms=N: a downstream failing at a set rate, behind the standard pipeline and a per-client rate limit",
            get(flaky),
        )
        .map(|router| {
            let router = router
                .with_state(downstream.clone())
                .layer(pipeline.http_layer());
            match &per_client {
                PerClient::Shared(shared) => router.layer(shared.http_layer(ClientIp::new())),
                PerClient::Local(local) => router.layer(local.http_layer(ClientIp::new())),
            }
        });
    let admin = IndexedRouter::new()
        .route(
            "/api/flaky/config",
            "GET, or PUT ?rate=R: the downstream's failure rate (0-1)",
            get(show_rate).put(set_rate),
        )
        .map(|router| router.with_state(downstream));
    Ok(protected.merge(admin))
}

/// A deterministic, well-spread stream in [0, 1) from a call counter.
fn unit(n: u64) -> f64 {
    let mixed = n.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 11;
    #[allow(clippy::cast_precision_loss)] // 53 bits are exact
    let unit = mixed as f64 / (1u64 << 53) as f64;
    unit
}

/// A downstream failing at a set rate, behind the standard pipeline
/// (bulkhead → timeout → retry → circuit breaker → timeout) and a
/// per-client rate limit.
#[utoipa::path(
    get,
    path = "/api/flaky",
    tag = "resilience",
    params(FlakyQuery),
    responses(
        (status = 200, description = "`{\"downstream\": \"ok\", \"call\"}`", body = Object),
        (status = 400, description = "`fail` or `ms` is not a number (axum's plain-text rejection)", body = String, content_type = "text/plain"),
        (status = 429, description = "the per-client rate limit (`policy: rate_limiter`, `retry_after`)", body = crate::openapi::Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "seconds"))),
        (status = 503, description = "the downstream failed after the retries (`{\"downstream\": \"failed\", \"call\"}`), or the breaker is open or the bulkhead full (problem+json with `policy`)",
            content(
                (Object = "application/json"),
                (crate::openapi::Problem = "application/problem+json"),
            )),
        (status = 504, description = "the pipeline's timeout (`policy: timeout`)", body = crate::openapi::Problem, content_type = "application/problem+json"),
    ),
)]
async fn flaky(
    State(downstream): State<Downstream>,
    Query(query): Query<FlakyQuery>,
) -> (StatusCode, Json<Value>) {
    let n = downstream.calls.fetch_add(1, Ordering::Relaxed);
    if let Some(ms) = query.ms {
        tokio::time::sleep(Duration::from_millis(ms.min(5_000))).await;
    }
    let failure_ppm = query
        .fail
        .map_or_else(|| downstream.failure_ppm.load(Ordering::Relaxed), ppm);
    if unit(n) * 1_000_000.0 < f64::from(failure_ppm) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "downstream": "failed", "call": n })),
        )
    } else {
        (
            StatusCode::OK,
            Json(json!({ "downstream": "ok", "call": n })),
        )
    }
}

/// The downstream's failure rate.
#[utoipa::path(
    get,
    path = "/api/flaky/config",
    tag = "resilience",
    responses((status = 200, description = "`{\"failure_rate\"}`", body = Object)),
)]
async fn show_rate(State(downstream): State<Downstream>) -> Json<Value> {
    let ppm = downstream.failure_ppm.load(Ordering::Relaxed);
    Json(json!({ "failure_rate": f64::from(ppm) / 1_000_000.0 }))
}

/// Sets the downstream's failure rate.
#[utoipa::path(
    put,
    path = "/api/flaky/config",
    tag = "resilience",
    params(RateQuery),
    responses(
        (status = 200, description = "`{\"failure_rate\"}`, the rate now in force", body = Object),
        (status = 400, description = "`rate` missing or outside [0, 1] (`{\"error\"}`), or not a number (axum's plain-text rejection)",
            content((Object = "application/json"), (String = "text/plain"))),
    ),
)]
async fn set_rate(
    State(downstream): State<Downstream>,
    Query(query): Query<RateQuery>,
) -> (StatusCode, Json<Value>) {
    match query.rate {
        Some(rate) if (0.0..=1.0).contains(&rate) => {
            downstream.failure_ppm.store(ppm(rate), Ordering::Relaxed);
            (StatusCode::OK, Json(json!({ "failure_rate": rate })))
        }
        _ => (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "rate must be a number in [0, 1], e.g. ?rate=0.5" })),
        ),
    }
}
