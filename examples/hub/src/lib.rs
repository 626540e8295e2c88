//! The Cortex Hub: the showcase service that uses every Cortex crate.
//!
//! [`app`] builds the whole service as an axum [`Router`], so tests can serve
//! it on `127.0.0.1:0`; `main.rs` adds configuration, logging and graceful
//! shutdown around it.
//!
//! | route | what it shows |
//! |---|---|
//! | `GET /` | an index of the Hub's routes (JSON) |
//! | `GET /api/echo/{id}` | a templated route: its metrics use `/api/echo/{id}`, never the raw path |
//! | `GET /api/work?ms=N` | a handler that takes N ms (at most 5 000), for latency histograms |
//! | `GET /metrics` | Prometheus 0.0.4 or OpenMetrics 1.0.0, by `Accept` |
//! | `GET /health`, `/health/live`, `/health/ready`, `/health/startup`, `/livez`, `/readyz` | health probes (`?verbose` shows details) |
//! | `GET /api/trace` | the request's trace context: send a `traceparent` and see the trace continue |
//!
//! | `GET /demo` | a page that fetches `/api/big.json` and `/api/events` and reports PASS/FAIL |
//! | `GET /api/big.json`, `/api/events` | about 1 MiB of JSON; three server-sent events 200 ms apart |
//! | `POST /api/upload` | accepts gzip/br/zstd/deflate request bodies (16 MiB decoded at most) |
//! | `GET /api/flaky?fail=0.5&ms=N` | a simulated downstream failing at a set rate, behind the standard pipeline (bulkhead → timeout → retry → circuit breaker → timeout) and a per-client rate limit |
//! | `GET`/`PUT /api/flaky/config?rate=R` | reads or sets the downstream's failure rate (0–1) |
//! | `GET /resilience` | every policy's stats (`PolicyRegistry::all_stats`) as JSON; breaker states are also in `/metrics` |
//! | `POST /api/orders` | creates an order actor (`{"item": "book", "quantity": 2, "fail_payment": false}`); it goes pending → processing → completed \| failed, publishing `order.*` events; the simulated payment is behind a resilience pipeline |
//! | `GET /api/orders/{id}` | the order's state, asked of its actor |
//! | `GET /api/orders` | counts of `order.*` events (kept by a bus subscriber) and actor-system stats |
//! | `GET /api/empty`, `/api/not-modified`, `/api/partial`, `/api/precompressed` | 204, 304, 206 and pre-encoded responses, which must pass uncompressed |
//!
//! Every response is compressed (br > zstd > gzip > deflate) when the client
//! accepts it and it is worth it (1 KiB and up, compressible type).
//!
//! ```
//! let app = cortex_hub::app(&cortex_hub::HubConfig::default())?;
//! # let _ = app;
//! # Ok::<(), cortex::Error>(())
//! ```

use std::net::SocketAddr;
use std::time::Duration;

pub mod demo;
pub mod flaky;
pub mod orders;

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use cortex::prelude::*;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde::Deserialize;
use serde_json::{Value, json};

/// The Hub's settings.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Where to listen (default `127.0.0.1:3000`).
    pub addr: SocketAddr,
    /// The registry every metric goes to.
    pub registry: MetricsRegistry,
    /// The health checks behind the probes; `main` sets it draining on
    /// shutdown so readiness fails before connections close.
    pub health: HealthRegistry,
    /// When set, `/metrics` requires `Authorization: Bearer <token>`.
    pub metrics_token: Option<String>,
    /// Where request spans go. The default has no exporter (spans are
    /// sampled and propagated, then dropped); `main` passes the provider of
    /// `cortex::trace::Tracing`, configured by the `OTEL_*` variables.
    pub tracer_provider: SdkTracerProvider,
    /// The resilience policies: served at `/resilience` and in `/metrics`.
    pub policies: PolicyRegistry,
    /// The actors behind `/api/orders`; `main` shuts it down after the
    /// server stops.
    pub actors: ActorSystem,
}

/// The default listen address (what `HubConfig::default().addr` holds).
pub const DEFAULT_ADDR: &str = "127.0.0.1:3000";

impl Default for HubConfig {
    fn default() -> Self {
        let registry = MetricsRegistry::new();
        // A fresh registry has no conflicting names, so this cannot fail;
        // falling back keeps `Default` panic-free all the same.
        let health = HealthRegistry::builder()
            .show_details(ShowDetails::WhenVerbose)
            .metrics(&registry)
            .map(|builder| builder.build())
            .unwrap_or_default();
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            registry,
            health,
            metrics_token: None,
            tracer_provider: SdkTracerProvider::builder().build(),
            policies: PolicyRegistry::new(),
            actors: ActorSystem::new("hub"),
        }
    }
}

#[derive(Clone)]
struct HubState {
    echoes: CounterFamily<1>,
    work_in_progress: Gauge,
    work_duration: Histogram,
}

/// Builds the Hub's router and registers the Hub's health checks into
/// `config.health` (so a second call with the same registry is a
/// `Duplicate` error, not a silent double registration).
pub fn app(config: &HubConfig) -> Result<Router, cortex::Error> {
    let registry = &config.registry;
    let state = HubState {
        echoes: registry.counter_family(
            "hub_echo_requests",
            "Echo requests by kind of id.",
            ["kind"],
        )?,
        work_in_progress: registry.gauge("hub_work_in_progress", "Work requests in progress.")?,
        work_duration: registry.histogram(
            "hub_work_duration_seconds",
            "Time spent doing simulated work.",
            DEFAULT_BUCKETS,
        )?,
    };
    register_health_checks(&config.health, &state)?;
    let routes = Router::new()
        .route("/", get(index))
        .route("/api/echo/{id}", get(echo))
        .route("/api/work", get(work))
        .route("/api/trace", get(current_trace))
        .with_state(state)
        .merge(demo::routes())
        .merge(flaky::routes(&config.policies)?)
        .merge(orders::routes(&config.actors, &config.policies)?);
    let mut cortex = Cortex::builder()
        .metrics(registry.clone())
        .health(config.health.clone())
        .trace(HttpTraceLayer::new(&config.tracer_provider))
        .compression(CompressionLayer::new())
        .decompression(DecompressionLayer::new())
        .resilience(config.policies.clone())
        .actors(config.actors.clone());
    if let Some(token) = &config.metrics_token {
        cortex = cortex.metrics_bearer_token(token.clone());
    }
    cortex.mount(routes)
}

/// Work requests in progress above which the Hub reports itself Degraded.
const WORK_QUEUE_DEGRADED: i64 = 100;

/// The standard checks plus one of the Hub's own. Memory and disk are
/// non-critical (they warn, they do not take the Hub out of rotation);
/// uptime answers liveness because it calls nothing outside the process.
fn register_health_checks(health: &HealthRegistry, state: &HubState) -> Result<(), cortex::Error> {
    use cortex::health::checks::{DiskSpaceCheck, MemoryCheck, UptimeCheck};
    health.register_with(
        "uptime",
        UptimeCheck::new(),
        CheckOptions::new().probes([Probe::Liveness, Probe::Readiness]),
    )?;
    health.register_with(
        "memory",
        MemoryCheck::new(),
        CheckOptions::new().critical(false),
    )?;
    health.register_with(
        "disk",
        DiskSpaceCheck::new(std::env::temp_dir()),
        CheckOptions::new()
            .critical(false)
            .cache_ttl(Duration::from_secs(10)),
    )?;
    let in_progress = state.work_in_progress.clone();
    health.register(
        "work_queue",
        health_fn(move || {
            let depth = in_progress.get();
            async move {
                let result = if depth > WORK_QUEUE_DEGRADED {
                    HealthCheckResult::degraded(format!("{depth} work requests in progress"))
                } else {
                    HealthCheckResult::up()
                };
                result.with_details(
                    json!({ "in_progress": depth, "degraded_above": WORK_QUEUE_DEGRADED }),
                )
            }
        }),
    )?;
    Ok(())
}

async fn index() -> Json<Value> {
    Json(json!({
        "service": "cortex-hub",
        "version": env!("CARGO_PKG_VERSION"),
        "routes": [
            "/",
            "/api/echo/{id}",
            "/api/work?ms=N",
            "/api/trace",
            "/demo",
            "/api/big.json",
            "/api/events",
            "/api/upload",
            "/api/flaky",
            "/api/flaky/config",
            "/resilience",
            "/api/orders",
            "/api/orders/{id}",
            "/metrics",
            "/health",
            "/health/live",
            "/health/ready",
            "/health/startup",
            "/livez",
            "/readyz",
        ],
    }))
}

async fn echo(State(state): State<HubState>, Path(id): Path<String>) -> Json<Value> {
    // A bounded label: the *kind* of id, never the id itself.
    let kind = if id.parse::<u64>().is_ok() {
        "numeric"
    } else {
        "text"
    };
    state.echoes.with_labels([kind]).inc();
    Json(json!({ "id": id }))
}

/// The span the Hub's trace layer opened for this request: with an
/// incoming `traceparent`, the same trace id and a fresh span id.
async fn current_trace() -> Json<Value> {
    use opentelemetry::trace::TraceContextExt;
    let cx = opentelemetry::Context::current();
    let span = cx.span();
    let context = span.span_context();
    Json(json!({
        "trace_id": context.trace_id().to_string(),
        "span_id": context.span_id().to_string(),
        "sampled": context.is_sampled(),
        "tracestate": context.trace_state().header(),
    }))
}

#[derive(Debug, Deserialize)]
struct WorkParams {
    ms: Option<u64>,
}

const MAX_WORK_MS: u64 = 5_000;

async fn work(State(state): State<HubState>, Query(params): Query<WorkParams>) -> Json<Value> {
    let ms = params.ms.unwrap_or(10).min(MAX_WORK_MS);
    // Both guards act on drop, so a client that disconnects mid-work still
    // gets its time observed and the in-progress gauge comes back down.
    let _in_progress = state.work_in_progress.inc_guard();
    let _timer = state.work_duration.start_timer();
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Json(json!({ "slept_ms": ms }))
}
