//! The Cortex Hub: the showcase service that uses every Cortex crate.
//!
//! [`Hub::router`] builds the whole service as an axum [`Router`], so tests
//! can serve it on `127.0.0.1:0`; `main.rs` adds configuration, logging and
//! graceful shutdown around it. [`HubConfig`] holds the settings, [`Hub`]
//! the live handles (registries, actor system, worker pool, wasm pools,
//! tracer provider) a caller may want to keep: to drain health on shutdown, or to
//! stop the actors and the pool.
//!
//! | route | what it shows |
//! |---|---|
//! | `GET /` | the live status page (HTML, with `/status.css`, `/status.js` and `/favicon.svg`; see below); with `Accept: application/json`, the route index |
//! | `GET /api` | an index of the Hub's routes (JSON), derived from the router |
//! | `GET /openapi.json` | the Hub's OpenAPI 3.1 document, generated from its handlers' attributes ([`openapi`]) |
//! | `GET /api/status` | everything the status page shows, as JSON: health, resilience policies, actors and mailbox depth, worker and wasm pools, order analytics, notification connections, request rate, 5xx rate, p50/p99 |
//! | `GET /api/status/stream` | the same snapshot as server-sent events (`event: status`), once a second |
//! | `GET /api/echo/{id}` | a templated route: its metrics use `/api/echo/{id}`, never the raw path |
//! | `GET /api/work?ms=N` | a handler that takes N ms (at most 5 000), for latency histograms |
//! | `GET /api/trace` | the request's trace context: send a `traceparent` and see the trace continue |
//! | `GET /metrics` | Prometheus 0.0.4 or OpenMetrics 1.0.0, by `Accept` |
//! | `GET /health`, `/health/live`, `/health/ready`, `/health/startup`, `/livez`, `/readyz` | health probes (`?verbose` shows details) |
//! | `GET /demo`, `/demo.js` | a page (and its script) that fetches `/api/big.json` and `/api/events` and reports PASS/FAIL |
//! | `GET /api/big.json`, `/api/events` | about 1 MiB of JSON; three server-sent events 200 ms apart |
//! | `POST /api/upload` | accepts gzip/br/zstd/deflate request bodies (16 MiB decoded at most) |
//! | `GET /api/empty`, `/api/not-modified`, `/api/partial`, `/api/precompressed` | 204, 304, 206 and pre-encoded responses, which must pass uncompressed |
//! | `GET /api/flaky?fail=0.5&ms=N` | a simulated downstream failing at a set rate, behind the standard pipeline (bulkhead → timeout → retry → circuit breaker → timeout) and a per-client rate limit |
//! | `GET`/`PUT /api/flaky/config?rate=R` | reads or sets the downstream's failure rate (0–1) |
//! | `GET /resilience` | every policy's stats (`PolicyRegistry::all_stats`) as JSON; breaker states are also in `/metrics` |
//! | `POST /api/orders` | creates an order actor (`{"item": "book", "quantity": 2, "fail_payment": false}`; bodies up to 4 KiB, `item` up to 200 characters, at most 10 000 orders in flight, else 413/422/503 problem+json); it goes pending → processing → completed \| failed, publishing `order.*` events; the simulated payment is behind a resilience pipeline |
//! | `GET /api/orders/{id}` | the order's state: the fold of its event log |
//! | `GET /api/orders/{id}/events` | the order's event log (`created`, `processing`, `payment_succeeded` \| `payment_declined` \| `payment_unavailable` \| `payment_failed`, `completed` \| `failed`), oldest first, with the order it folds to |
//! | `GET /api/orders/{id}/actor` | the order's live actor, asked wherever it runs (in a cluster, over NATS from any node): its own view and its node; 404 problem+json once the order is final |
//! | `GET /api/cluster` | this replica in its cluster of Hubs (with `CORTEX_NATS_URL`): node, NATS connection, events bridged and stored, orders taken over from dead nodes |
//! | `GET /api/catalog/{id}` | a slow product lookup (80 ms) behind the `catalog` response cache (cortex-resilience: moka store bounded by entries and bytes, RFC 9111 rules from http-cache-semantics): `X-Cache: HIT\|MISS\|STALE` with `Age`, one downstream call for N concurrent misses, `stale-while-revalidate` and `stale-if-error` (RFC 5861) from its `Cache-Control`; `cortex_cache_*{name="catalog"}` in `/metrics` |
//! | `GET`/`PUT /api/catalog/config?down=true\|false` | switches the catalog's downstream off (503 problem+json) or on, to watch stale answers |
//! | `GET /api/analytics` | order analytics kept by an event-bus consumer: totals, active orders, per-minute rates, processing-time p50/p95/p99, failure reasons; also in `/metrics` as `cortex_hub_order_*` |
//! | `GET /api/notifications/ws?rooms=orders,42,alerts` | a WebSocket of order events (rooms `orders`, an order id) and alerts (`alerts`: failed orders, breaker transitions); `{"op":"join"\|"leave","room"}`, `{"op":"ping"}`; bounded queue (slow consumers closed), per-connection rate limit, heartbeats, idle close, origin check |
//! | `GET /api/notifications/sse?rooms=…` | the same messages as server-sent events |
//! | `GET /api/orders` | counts of `order.*` events (as the journal appended them, each once) and actor-system stats |
//! | `POST /api/compute/hash?rounds=N` | the FNV-1a 64 of the body repeated N times (1 to 1 000 000, `rounds × body bytes` at most 256 MiB, bodies up to 1 MiB, else 413/422 problem+json), computed on the `compute` worker pool; a full queue answers 429 problem+json with `Retry-After` at once, a pool shutting down 503, a job past its queue TTL or run timeout 504 |
//! | `POST /api/compute/blur` | a box blur of a grayscale image on the same pool: `{"width", "height", "radius", "passes", "seed"}` (a generated image) or `"pixels"` instead of `"seed"` (returned blurred); answers the `sum` and FNV-1a `checksum` of the result |
//! | `GET /api/compute/stats` | the compute pool's stats (workers, busy, queue, submitted, completed, rejected, …) as JSON; its series are in `/metrics` (`cortex_worker_*{pool="compute"}`), its check in `/health` (`workers:compute`) |
//! | `POST /api/compute/image?filter=grayscale\|invert\|blur&width=W&radius=R` | a raw RGBA body (4 MiB at most, whole pixels; `blur` needs the `width` in pixels, `radius` 1 to 64, default 1) filtered by a WebAssembly guest (`crates/cortex-wasm/guests/image.wasm`) on the `image` wasm pool; answers the filtered bytes as `application/octet-stream`; a bad query or body is 422/400/413 problem+json before anything runs, a full queue 429 with `Retry-After` |
//! | `POST /api/compute/hostile?kind=loop\|hog\|trap` | a misbehaving guest (`hostile.wat`) on the separate, tightly limited `hostile` pool (100 ms deadline, fuel, 1 MiB memory): an endless loop answers 504 (`reason: timed_out`), a memory hog 422 (`memory_limit`), a trap 422 (`trap`), each problem+json; the instance is replaced, the Hub and the pool stay healthy |
//! | `GET /api/compute/wasm/stats` | both wasm pools' stats (calls, failures by kind, instances made and replaced, their worker pools) as JSON; their series are in `/metrics` (`cortex_wasm_*{pool="image"}`, `{pool="hostile"}`, and their `cortex_worker_*`), their checks in `/health` (`wasm:image`, `wasm:hostile`) |
//!
//! The status page shows, live (one server-sent event a second, plus the
//! notification WebSocket for events): the health of every check, every
//! circuit breaker's state and failure rate, bulkhead and limiter
//! saturation, actor counts and mailbox depth, the worker and wasm pools,
//! request rate and p50/p99 from the Hub's own `/metrics` series, order
//! analytics, and the latest order events and breaker alerts; its buttons
//! place orders, make the flaky downstream fail or heal, and run compute
//! and hostile wasm jobs. It is self-contained (no inline code, nothing
//! from another origin) so the strict CSP below holds and it works
//! offline.
//!
//! A handler that has not answered within [`HubConfig::request_timeout`]
//! (30 s) gets 504 problem+json (the `request` timeout policy in
//! `/resilience`).
//!
//! Every response is compressed (br > zstd > gzip > deflate) when the client
//! accepts it and it is worth it (1 KiB and up, compressible type). Every
//! error is RFC 9457 `application/problem+json`: an unknown path gets 404,
//! a routed path with a method it does not serve 405 with `Allow`.
//!
//! Every request gets an `x-request-id` (the client's when it is a short
//! plain token, else a fresh UUID), echoed on the response, and one
//! access-log event (target `cortex_hub::access`: method, route template,
//! status, duration, bytes, request id, and the trace's `trace_id` and
//! `span_id`). Every response carries a strict `Content-Security-Policy`
//! (same-origin scripts, styles and connections only, `frame-ancestors
//! 'none'`), `X-Content-Type-Options: nosniff` and `Referrer-Policy:
//! no-referrer`; `Authorization`, `Cookie`, `Proxy-Authorization` and
//! `Set-Cookie` are marked sensitive. See [`access_log`].
//!
//! ```
//! use cortex_hub::{Hub, HubConfig};
//!
//! let hub = Hub::new(HubConfig::default())?;
//! let app = hub.router()?;
//! # let _ = app;
//! # Ok::<(), cortex_hub::HubError>(())
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub mod access_log;
pub mod analytics;
pub mod catalog;
pub mod cluster;
pub mod compression;
pub mod compute;
pub use cluster::HubCluster;
pub mod flaky;
pub mod notifications;
pub mod openapi;
pub mod orders;
mod routes;
mod status;
mod streams;

use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use cortex::prelude::*;
use cortex::resilience::RegistryError;
use opentelemetry_sdk::trace::SdkTracerProvider;
use problem_details::{ProblemDetails, ProblemType};
use serde::Deserialize;
use serde_json::{Value, json};

use analytics::Analytics;
use notifications::{NotificationsConfig, Notifier, NotifierError};
use routes::IndexedRouter;
pub use routes::RouteInfo;
pub use streams::Streams;

/// The Hub's settings: plain values, no live handles.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Where to listen (default `127.0.0.1:3000`).
    pub addr: SocketAddr,
    /// When set, `/metrics` requires `Authorization: Bearer <token>`.
    pub metrics_token: Option<String>,
    /// When health responses carry messages and details (default: only
    /// with `?verbose`).
    pub show_details: ShowDetails,
    /// How long a client may take to send a request's headers, and may stay
    /// silent after connecting (default 10 s).
    pub header_read_timeout: Duration,
    /// How long a connection may idle between requests (default 60 s).
    pub idle_timeout: Duration,
    /// How long to keep serving, with readiness failing, after the
    /// shutdown signal (default 5 s).
    pub drain_delay: Duration,
    /// How long in-flight requests may take once the listener is closed
    /// (default 20 s).
    pub shutdown_timeout: Duration,
    /// The order service's bounds: body and field sizes, the in-flight cap,
    /// the finished-order store, the order deadline.
    pub orders: orders::OrdersConfig,
    /// The compute service's worker pool, wasm guests' limits and pools,
    /// and body limits.
    pub compute: compute::ComputeConfig,
    /// The notification service's bounds: connections, rooms, queues,
    /// heartbeats, the client message rate, allowed origins.
    pub notifications: NotificationsConfig,
    /// The catalog's simulated downstream and cache directives.
    pub catalog: catalog::CatalogConfig,
    /// How long a handler may take to answer before the client gets 504
    /// problem+json (default 30 s). Streams (SSE, WebSocket) count only
    /// until their response starts.
    pub request_timeout: Duration,
    /// Running as one of several replicas: the node's name, how many
    /// replicas share the limits, and the Redis that holds them.
    pub cluster: ClusterConfig,
}

/// The Hub as one replica of several (see `docs/scale-out.md`). With no
/// Redis URL (the default) every limit is this process's own, as on one
/// machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// This replica's name, in the `/api` index and the start-up log line
    /// (default `hub`).
    pub node_name: String,
    /// How many replicas share the limits (default 1): a replica that
    /// cannot reach Redis falls back to its own limiter at the limit ÷
    /// `replicas`, so the cluster keeps about one budget in all.
    pub replicas: u32,
    /// The Redis whose GCRA state the per-client limit of `/api/flaky`
    /// shares across replicas (`redis://host:port/`); `None` keeps it
    /// in-process.
    pub redis_url: Option<String>,
    /// How long one check may wait for Redis before the local fallback
    /// decides (default 20 ms).
    pub redis_timeout: Duration,
    /// The NATS server (with JetStream) that joins the replicas' orders,
    /// events and actors (`nats://host:4222`); `None` (the default) keeps
    /// them in-process. See [`HubCluster`].
    pub nats_url: Option<String>,
    /// The namespace of the replicas' subjects, streams and buckets
    /// (default `hub`): replicas of one service share it.
    pub namespace: String,
    /// How long a replica that stopped answering keeps its unfinished
    /// orders before another takes them over (default 10 s).
    pub node_ttl: Duration,
}

/// The default of [`ClusterConfig::redis_timeout`].
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(20);

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            node_name: "hub".to_owned(),
            replicas: 1,
            redis_url: None,
            redis_timeout: DEFAULT_REDIS_TIMEOUT,
            nats_url: None,
            namespace: "hub".to_owned(),
            node_ttl: Duration::from_secs(10),
        }
    }
}

/// The default of [`HubConfig::request_timeout`].
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The request timeout's name in `/resilience`.
pub const REQUEST_TIMEOUT: &str = "request";

/// The default listen address (what `HubConfig::default().addr` holds).
pub const DEFAULT_ADDR: &str = "127.0.0.1:3000";

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            metrics_token: None,
            show_details: ShowDetails::WhenVerbose,
            header_read_timeout: cortex::serve::DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: cortex::serve::DEFAULT_IDLE_TIMEOUT,
            drain_delay: cortex::serve::DEFAULT_DRAIN_DELAY,
            shutdown_timeout: cortex::serve::DEFAULT_SHUTDOWN_TIMEOUT,
            orders: orders::OrdersConfig::default(),
            compute: compute::ComputeConfig::default(),
            notifications: NotificationsConfig::default(),
            catalog: catalog::CatalogConfig::default(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            cluster: ClusterConfig::default(),
        }
    }
}

/// The Hub's live handles, made from a [`HubConfig`]. Cheap to clone: every
/// field is a shared handle.
#[derive(Debug, Clone)]
pub struct Hub {
    config: HubConfig,
    /// The registry every metric goes to.
    pub metrics: MetricsRegistry,
    /// The health checks behind the probes; `main` sets it draining on
    /// shutdown so readiness fails before connections close.
    pub health: HealthRegistry,
    /// The resilience policies: served at `/resilience` and in `/metrics`.
    pub policies: PolicyRegistry,
    /// The actors behind `/api/orders`; `main` shuts it down after the
    /// server stops.
    pub actors: ActorSystem,
    /// The worker pool behind `/api/compute` (named `compute`); `main`
    /// shuts it down gracefully after the server stops.
    pub compute: WorkerPool,
    /// The image guest's pool behind `/api/compute/image` (named `image`);
    /// `main` shuts it down gracefully after the server stops.
    pub images: WasmPool,
    /// The hostile guest's pool behind `/api/compute/hostile` (named
    /// `hostile`); `main` shuts it down after the server stops.
    pub hostile: WasmPool,
    /// Where request spans go. The default has no exporter (spans are
    /// sampled and propagated, then dropped); `main` passes the provider of
    /// `cortex::trace::Tracing`, configured by the `OTEL_*` variables.
    pub tracer_provider: SdkTracerProvider,
    /// The server runner `main` serves the router with: its series are in
    /// `/metrics` and its shutdown drains readiness first.
    pub server: Server,
    /// The off switch of the long-lived responses (notification
    /// connections, the status stream); `main` closes it when the shutdown
    /// signal arrives, so they do not hold up the drain.
    pub streams: Streams,
    /// This replica's part in a cluster of Hubs, once
    /// [`join_cluster`](Self::join_cluster) found a NATS URL.
    pub cluster: Option<HubCluster>,
}

/// Why the Hub could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    /// One of the Hub's own metrics clashes with a registered one.
    #[error("registering the Hub's metrics: {0}")]
    Metrics(#[from] MetricsError),
    /// One of the Hub's health checks is already registered.
    #[error("registering the Hub's health checks: {0}")]
    Health(#[from] cortex::health::HealthError),
    /// A resilience policy is invalid or already registered.
    #[error("registering the Hub's resilience policies: {0}")]
    Resilience(#[from] RegistryError),
    /// Cortex's endpoints and layers could not be mounted.
    #[error("mounting Cortex: {0}")]
    Mount(#[from] cortex::Error),
    /// The compute worker pool's settings are invalid, or its threads
    /// could not start.
    #[error("starting the compute worker pool: {0}")]
    Compute(#[from] cortex::workers::WorkersError),
    /// A wasm guest did not compile under its limits, or a wasm pool's
    /// settings are invalid or its threads could not start.
    #[error("starting the wasm pools: {0}")]
    Wasm(#[from] cortex::wasm::WasmError),
    /// The catalog's response cache could not be set up.
    #[error("setting up the catalog: {0}")]
    Catalog(#[from] catalog::CatalogError),
    /// The notification service could not start.
    #[error("starting notifications: {0}")]
    Notifications(#[from] NotifierError),
    /// The NATS server could not be joined.
    #[error("joining the cluster: {0}")]
    Cluster(#[from] cortex::actor::cluster::ClusterError),
}

/// An invalid policy setting is a resilience error, as the registry
/// reports it.
impl From<cortex::resilience::ConfigError> for HubError {
    fn from(error: cortex::resilience::ConfigError) -> Self {
        Self::Resilience(error.into())
    }
}

impl Hub {
    /// Fresh registries, an actor system named `hub`, the `compute`
    /// worker pool and the `image` and `hostile` wasm pools (their threads
    /// start here, the guests are compiled here), and a tracer provider
    /// without an exporter. Fails only on invalid pool or guest limits or
    /// when the OS refuses a thread.
    pub fn new(config: HubConfig) -> Result<Self, HubError> {
        let (images, hostile) = config.compute.build_wasm_pools()?;
        Ok(Self {
            compute: config.compute.build_pool()?,
            images,
            hostile,
            health: HealthRegistry::builder()
                .show_details(config.show_details)
                .build(),
            server: Server::new()
                .header_read_timeout(config.header_read_timeout)
                .idle_timeout(config.idle_timeout)
                .drain_delay(config.drain_delay)
                .shutdown_timeout(config.shutdown_timeout),
            config,
            metrics: MetricsRegistry::new(),
            policies: PolicyRegistry::new(),
            actors: ActorSystem::new("hub"),
            tracer_provider: SdkTracerProvider::builder().build(),
            streams: Streams::default(),
            cluster: None,
        })
    }

    /// Joins the other replicas through NATS when the configuration names
    /// a server ([`ClusterConfig::nats_url`]); without one, nothing
    /// changes. Call it before [`router`](Self::router).
    pub async fn join_cluster(mut self) -> Result<Self, HubError> {
        self.cluster = HubCluster::join(&self.config.cluster, self.actors.events()).await?;
        Ok(self)
    }

    /// Sends request spans to `provider` instead.
    #[must_use]
    pub fn with_tracer_provider(mut self, provider: SdkTracerProvider) -> Self {
        self.tracer_provider = provider;
        self
    }

    /// The settings this Hub was made with.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// Builds the Hub's router, registering its metrics, health checks and
    /// resilience policies into the Hub's registries. Call it once per
    /// `Hub`: a second call finds its checks and policies registered and
    /// fails with a `Duplicate` error rather than registering them twice.
    pub fn router(&self) -> Result<Router, HubError> {
        let state = HubState::new(&self.metrics)?;
        register_health_checks(&self.health, &state)?;
        let bus = self.actors.events();
        let analytics = Analytics::start(&self.metrics, bus)?;
        let notifier = Notifier::start(
            self.config.notifications.clone(),
            &self.metrics,
            &self.policies,
            bus,
            self.streams.clone(),
        )?;
        if let Some(cluster) = &self.cluster {
            // `cortex_cluster_*`: the connection, bridged events, groups.
            cluster.cluster.register_metrics(&self.metrics)?;
        }
        let request_timeout = Timeout::builder(REQUEST_TIMEOUT)
            .timeout_duration(self.config.request_timeout)
            .build()
            .map_err(RegistryError::from)?;
        self.policies.register_timeout(request_timeout.clone())?;
        let feed = status::StatusFeed::new(status::Sources {
            metrics: self.metrics.clone(),
            health: self.health.clone(),
            policies: self.policies.clone(),
            actors: self.actors.clone(),
            compute: self.compute.clone(),
            images: self.images.clone(),
            hostile: self.hostile.clone(),
            analytics: analytics.clone(),
            notifier: notifier.clone(),
            streams: self.streams.clone(),
        });
        let routes = IndexedRouter::new()
            .route(
                "/api/echo/{id}",
                "a templated route: its metrics use /api/echo/{id}, never the raw path",
                get(echo),
            )
            .route(
                "/api/work",
                "?ms=N: a handler that takes N ms (at most 5 000), for latency histograms",
                get(work),
            )
            .route(
                "/api/trace",
                "the request's trace context: send a traceparent and see the trace continue",
                get(current_trace),
            )
            .map(|router| router.with_state(state))
            .merge(feed.routes())
            .merge(compression::routes())
            .merge(flaky::routes(
                &self.policies,
                &self.config.cluster,
                &self.metrics,
            )?)
            .merge(orders::routes_with(
                self.config.orders.clone(),
                &self.actors,
                &self.policies,
                self.cluster.as_ref(),
                &self.config.cluster.node_name,
            )?)
            .merge(self.cluster_routes())
            .merge(analytics.routes())
            .merge(catalog::routes(
                self.config.catalog.clone(),
                &self.policies,
                &self.metrics,
            )?)
            .merge(notifier.routes())
            .merge(compute::routes(&self.config.compute, &self.compute))
            .merge(compute::wasm_routes(
                &self.config.compute,
                &self.images,
                &self.hostile,
            ))
            .merge(openapi::routes());
        // Every breaker's state changes go out on the bus as alerts (the
        // `alerts` notification room, the status page's event list).
        for breaker in self.policies.circuit_breakers() {
            Notifier::watch_breaker(&breaker, bus);
        }
        let mut cortex = Cortex::builder()
            .metrics(self.metrics.clone())
            .health(self.health.clone())
            .compression(CompressionLayer::new())
            .decompression(DecompressionLayer::new())
            .resilience(self.policies.clone())
            .actors(self.actors.clone())
            .workers(self.compute.clone())
            .wasm(self.images.clone())
            .wasm(self.hostile.clone())
            .server(self.server.clone());
        if let Some(token) = &self.config.metrics_token {
            cortex = cortex.metrics_bearer_token(token.clone());
        }
        let (routes, mut index) = routes.into_parts();
        index.extend(cortex.paths().into_iter().map(|path| RouteInfo {
            about: "a Cortex endpoint (mounted by the facade)".to_owned(),
            path,
        }));
        index.insert(
            0,
            RouteInfo {
                path: "/".to_owned(),
                about: "the live status page (HTML); with Accept: application/json, this index"
                    .to_owned(),
            },
        );
        index.insert(
            1,
            RouteInfo {
                path: "/api".to_owned(),
                about: "this index of routes, as JSON".to_owned(),
            },
        );
        let index = Arc::new(json!({
            "service": "cortex-hub",
            "version": env!("CARGO_PKG_VERSION"),
            "node": self.config.cluster.node_name,
            "routes": index,
        }));
        let api_index = Arc::clone(&index);
        // The fallbacks go on before `mount`: its merges keep this custom
        // 404 (a merge keeps the one non-default fallback) and its layers
        // then wrap it, so unmatched requests are still measured and traced
        // (docs/ARCHITECTURE.md, "Layer after Router::merge").
        let routes = routes
            .route(
                "/",
                get(move |headers: axum::http::HeaderMap| {
                    let index = Arc::clone(&index);
                    async move { status::page_or_index(&headers, &index) }
                }),
            )
            .route(
                "/api",
                get(move || {
                    let index = Arc::clone(&api_index);
                    async move { Json((*index).clone()) }
                }),
            )
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed);
        // The trace layer is not the facade's (`.trace`, outermost of its
        // layers) but the gateway's, in the same place with the access log
        // just inside it: access-log lines carry the request's trace id.
        // The gateway, the facade's layers and the request timeout (inside
        // metrics and trace, so a 504 is measured and traced like any
        // answer) go on in one `Router::layer`: axum boxes every route
        // once more per `Router::layer`, a cost each request pays.
        let (routes, cortex_layer) = cortex.mount_unlayered(routes)?;
        Ok(access_log::gateway(
            routes,
            HttpTraceLayer::new(&self.tracer_provider),
            cortex_layer,
            request_timeout.http_layer(),
        ))
    }
}

impl Hub {
    /// `GET /api/cluster`: this replica in its cluster.
    fn cluster_routes(&self) -> IndexedRouter {
        let cluster = self.cluster.clone();
        let node = self.config.cluster.node_name.clone();
        IndexedRouter::new().route(
            "/api/cluster",
            "this replica in its cluster: node, NATS connection, events bridged, orders taken over",
            get(move || {
                let status = cluster.as_ref().map_or_else(
                    || json!({ "node": node, "clustered": false }),
                    HubCluster::status,
                );
                async move { Json(status) }
            }),
        )
    }
}

#[derive(Clone)]
struct HubState {
    echoes: CounterFamily<1>,
    work_in_progress: Gauge,
    work_duration: Histogram,
}

impl HubState {
    fn new(registry: &MetricsRegistry) -> Result<Self, MetricsError> {
        Ok(Self {
            echoes: registry.counter_family(
                "hub_echo_requests_total",
                "Echo requests by kind of id.",
                ["kind"],
            )?,
            work_in_progress: registry
                .gauge("hub_work_in_progress", "Work requests in progress.")?,
            work_duration: registry.histogram(
                "hub_work_duration_seconds",
                "Time spent doing simulated work.",
                DEFAULT_BUCKETS,
            )?,
        })
    }
}

/// Work requests in progress above which the Hub reports itself Degraded.
const WORK_QUEUE_DEGRADED: i64 = 100;

/// The standard checks plus one of the Hub's own. Memory and disk are
/// non-critical (they warn, they do not take the Hub out of rotation);
/// uptime answers liveness because it calls nothing outside the process.
fn register_health_checks(
    health: &HealthRegistry,
    state: &HubState,
) -> Result<(), cortex::health::HealthError> {
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

/// An RFC 9457 `application/problem+json` answer: `about:blank`, the
/// status's reason phrase as title, and `detail`.
pub(crate) fn problem(status: StatusCode, detail: String) -> Response {
    ProblemDetails::from_status_code(status)
        .with_type(ProblemType::default())
        .with_detail(detail)
        .into_response()
}

/// 404 for a path no route matches.
async fn not_found(uri: Uri) -> Response {
    problem(
        StatusCode::NOT_FOUND,
        format!("no route matches {}", uri.path()),
    )
}

/// 405 for a routed path and a method it does not serve; axum adds the
/// `Allow` header listing the ones it does.
async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    problem(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// Echoes the id; its metrics use the route template, never the raw path.
#[utoipa::path(
    get,
    path = "/api/echo/{id}",
    tag = "demo",
    params(("id" = String, Path, description = "any id; numeric and text ids are counted apart")),
    responses((status = 200, description = "`{\"id\"}`", body = Object)),
)]
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
#[utoipa::path(
    get,
    path = "/api/trace",
    tag = "demo",
    params(("traceparent" = Option<String>, Header, description = "a W3C trace context to continue")),
    responses((
        status = 200,
        description = "`{\"trace_id\", \"span_id\", \"sampled\", \"tracestate\"}`",
        body = Object,
    )),
)]
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

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct WorkParams {
    /// How long to take, in milliseconds (default 10, at most 5 000).
    ms: Option<u64>,
}

const MAX_WORK_MS: u64 = 5_000;

/// Takes `ms` milliseconds, for latency histograms.
#[utoipa::path(
    get,
    path = "/api/work",
    tag = "demo",
    params(WorkParams),
    responses(
        (status = 200, description = "`{\"slept_ms\"}`", body = Object),
        (status = 400, description = "`ms` is not a number (axum's plain-text rejection)", body = String, content_type = "text/plain"),
    ),
)]
async fn work(State(state): State<HubState>, Query(params): Query<WorkParams>) -> Json<Value> {
    let ms = params.ms.unwrap_or(10).min(MAX_WORK_MS);
    // Both guards act on drop, so a client that disconnects mid-work still
    // gets its time observed and the in-progress gauge comes back down.
    let _in_progress = state.work_in_progress.inc_guard();
    let _timer = state.work_duration.start_timer();
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Json(json!({ "slept_ms": ms }))
}
