//! Cortex: observable, resilient services on tokio, tower and axum.
//!
//! This is the facade crate. It re-exports each Cortex crate behind a
//! feature of the same name and offers [`Cortex`], a builder that wires the
//! standard endpoints and layers into an axum [`Router`] in one call.
//!
//! ```
//! use axum::{Router, routing::get};
//! use cortex::prelude::*;
//!
//! # fn main() -> Result<(), cortex::Error> {
//! let metrics = MetricsRegistry::new();
//! let health = HealthRegistry::new();
//! health.register("memory", cortex::health::checks::MemoryCheck::new())?;
//!
//! let app: Router = Router::new().route("/", get(|| async { "hello" }));
//! // HTTP metrics on every route, process metrics, check metrics, GET
//! // /metrics, and the /health, /health/{live,ready,startup}, /livez,
//! // /readyz probes.
//! let app = Cortex::builder().metrics(metrics).health(health).mount(app)?;
//! # let _ = app;
//! # Ok(())
//! # }
//! ```
//!
//! # Feature flags
//!
//! | feature | default | enables |
//! |---|---|---|
//! | `metrics` | yes | [`metrics`]: Prometheus/OpenMetrics metrics (`cortex-metrics`) |
//! | `health` | yes | [`health`]: health probes (`cortex-health`), with check metrics when `metrics` is on |
//! | `trace` | yes | [`trace`]: W3C propagation and HTTP trace layers (`cortex-trace`) |
//! | `compress` | yes | [`compress`]: streaming response compression (`cortex-compress`) |
//! | `resilience` | yes | [`resilience`]: circuit breaker, retry, bulkhead, timeout, rate limiter, fallback (`cortex-resilience`), with policy metrics when `metrics` is on and a breaker health check when `health` is on |
//! | `serve` | yes | [`serve`]: the production server runner (`cortex-serve`): header-read and idle timeouts, a connection cap, graceful shutdown that drains readiness first and has a deadline; with `metrics` its connection series, with `health` readiness draining |
//! | `actor` | no | [`actor`]: typed actors, supervision, registry, event bus (`cortex-actor`), with per-type metrics when `metrics` is on and a health check when `health` is on |
//! | `nats` | no | [`actor::cluster`]: the event bus and named actors across nodes on NATS (bridges, JetStream consumer groups with dead letters, remote asks, one owner per actor name) |
//! | `workers` | no | [`workers`]: a pool of OS threads for CPU-bound work (`cortex-workers`): bounded queue, queue TTL, run timeouts, `IntoResponse` for its refusals (429/503) and job errors; with `metrics` its `cortex_worker_*` series, with `health` a `workers:<pool>` check, with `actor` `WorkerActor` |
//! | `wasm` | no | [`wasm`]: a WebAssembly host on wasmer 7.4 (`cortex-wasm`): compiled-module cache, per-call fuel, deadline and memory cap, a pool of instances on worker threads (turns `workers` on), `IntoResponse` for [`WasmError`](cortex_wasm::WasmError) (429/504/422/503/500); with `metrics` its `cortex_wasm_*` and `cortex_worker_*` series, with `health` a `wasm:<pool>` check. **Needs Rust 1.95** (wasmer 7.4's), above the workspace's 1.88 |
//! | `full` | no | every crate above (so it needs Rust 1.95 too) |
//!
//! The default is what an HTTP service puts in front of its routes (the
//! layers and endpoints); `full` adds the runtimes a service opts into
//! (actors, the worker pool and the wasm host), which bring their own
//! threads or compilers.
//!
//! # The one contract
//!
//! Every component with series implements `cortex_metrics::RegisterMetrics`
//! (re-exported in the [`prelude`]); every component with endpoints has a
//! `router()`; every component with a health signal has a `health_check()`.
//! [`CortexBuilder::mount`] is one pass over them.
//!
//! # Minimum supported Rust version
//!
//! The workspace's `rust-version` (1.88), except with the `wasm` feature
//! (and so `full`): 1.95, cortex-wasm's, which wasmer 7.4 needs.

use axum::Router;

#[cfg(feature = "actor")]
#[doc(inline)]
pub use cortex_actor as actor;
#[cfg(feature = "compress")]
#[doc(inline)]
pub use cortex_compress as compress;
#[cfg(feature = "health")]
#[doc(inline)]
pub use cortex_health as health;
#[cfg(feature = "metrics")]
#[doc(inline)]
pub use cortex_metrics as metrics;
#[cfg(feature = "resilience")]
#[doc(inline)]
pub use cortex_resilience as resilience;
#[cfg(feature = "serve")]
#[doc(inline)]
pub use cortex_serve as serve;
#[cfg(feature = "trace")]
#[doc(inline)]
pub use cortex_trace as trace;
#[cfg(feature = "wasm")]
#[doc(inline)]
pub use cortex_wasm as wasm;
#[cfg(feature = "workers")]
#[doc(inline)]
pub use cortex_workers as workers;

pub mod layer;
pub use layer::CortexLayer;

/// The names most services need, for `use cortex::prelude::*`.
pub mod prelude {
    pub use crate::{Cortex, CortexBuilder};
    #[cfg(feature = "actor")]
    pub use cortex_actor::{
        Actor, ActorError, ActorRef, ActorSystem, AskError, Context, Delivery, EventBus, Handler,
        MailboxConfig, Message, Overflow, Published, RestartPolicy, SendError,
    };
    #[cfg(feature = "compress")]
    pub use cortex_compress::{CompressionLayer, DecompressionLayer, Encoding};
    #[cfg(feature = "health")]
    pub use cortex_health::{
        CheckOptions, HealthCheck, HealthCheckResult, HealthRegistry, HealthStatus, Probe,
        ShowDetails, health_fn,
    };
    #[cfg(feature = "metrics")]
    pub use cortex_metrics::{
        Buckets, Counter, CounterFamily, DEFAULT_BUCKETS, Format, Gauge, GaugeF64, GaugeFamily,
        Histogram, HistogramFamily, MetricsEndpoint, MetricsError, MetricsRegistry,
        ProcessCollector, RegisterMetrics, http::HttpMetricsLayer,
    };
    #[cfg(feature = "resilience")]
    pub use cortex_resilience::{
        Bulkhead, CircuitBreaker, ClientIp, Fallback, KeyedRateLimiter, Memoizer, Pipeline, Policy,
        PolicyExt, PolicyRegistry, RateLimiter, ResilienceError, ResponseCache, Retry, Timeout,
    };
    #[cfg(feature = "serve")]
    pub use cortex_serve::{Server, ShutdownReport, shutdown_signal};
    #[cfg(feature = "trace")]
    pub use cortex_trace::TraceContextPropagator;
    #[cfg(feature = "trace")]
    pub use cortex_trace::http::{HttpTraceLayer, PropagateLayer};
    // `Shutdown` and `ShutdownReport` stay in `cortex::workers`: the
    // prelude's `ShutdownReport` is the server's.
    #[cfg(feature = "wasm")]
    pub use cortex_wasm::{
        WasmConfig, WasmEngine, WasmError, WasmInstance, WasmModule, WasmPool, WasmPoolStats,
    };
    #[cfg(feature = "workers")]
    pub use cortex_workers::{
        JobError, JobHandle, SubmitError, WorkerPool, WorkerPoolConfig, WorkerPoolStats,
    };
}

/// Compiles the README's examples as doctests, so the README stays true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

/// Compiles the code blocks of `docs/scale-out.md` as doctests: its Redis
/// example needs the `redis` feature, its NATS example `nats` (both are in
/// `full`, which the workspace's test run has through the Hub).
#[cfg(all(doctest, feature = "redis", feature = "nats"))]
#[doc = include_str!("../../../docs/scale-out.md")]
pub struct ScaleOutGuideDoctests;

/// Why [`CortexBuilder::mount`] failed: exactly the two things it does
/// that can fail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A component's series could not be registered: a name it needs is
    /// taken by an incompatible metric in the registry you passed.
    #[cfg(feature = "metrics")]
    #[error(transparent)]
    Metrics(#[from] cortex_metrics::MetricsError),
    /// A component's health check could not be registered: the health
    /// registry already has a check of that name (`actors`, `resilience`,
    /// `workers:<pool>`, `wasm:<pool>`), or a pool's name is not a valid
    /// check name.
    #[cfg(all(
        feature = "health",
        any(feature = "actor", feature = "resilience", feature = "workers")
    ))]
    #[error(transparent)]
    Health(#[from] cortex_health::HealthError),
    /// Two pools given to [`CortexBuilder::workers`] or
    /// `CortexBuilder::wasm` (a wasm pool by its worker pool's name) have
    /// the same name: their series (labelled `pool="<name>"`) and health
    /// checks would be indistinguishable.
    #[cfg(feature = "workers")]
    #[error("two worker pools are named {0:?}: their series and health checks would clash")]
    DuplicatePool(String),
}

/// The entry point of the facade: see [`Cortex::builder`].
#[derive(Debug, Clone, Copy)]
pub struct Cortex;

impl Cortex {
    /// A builder that mounts Cortex's endpoints and layers on a router.
    pub fn builder() -> CortexBuilder {
        CortexBuilder::default()
    }
}

/// Mounts the enabled Cortex endpoints and layers on an axum [`Router`].
///
/// Every setter is independent of the others and of their order. Mounting
/// is one uniform pass over the configured components:
///
/// 1. each component registers its series into the metrics registry
///    (`cortex_metrics::RegisterMetrics`) and its health check into the
///    health registry (`actors`, `resilience`, `workers:<pool>`,
///    `wasm:<pool>`);
/// 2. each component's endpoints are merged (`/metrics`, the health probes,
///    `/resilience`);
/// 3. the layers wrap every route, innermost first: decompression,
///    compression, HTTP metrics, trace.
///
/// [`mount`](Self::mount) consumes the builder, so one builder cannot
/// mount twice; the builder is deliberately not `Clone`.
#[derive(Debug)]
#[must_use]
pub struct CortexBuilder {
    #[cfg(feature = "metrics")]
    metrics: Option<cortex_metrics::MetricsRegistry>,
    #[cfg(feature = "metrics")]
    metrics_path: String,
    #[cfg(feature = "metrics")]
    metrics_bearer_token: Option<String>,
    #[cfg(feature = "metrics")]
    process_metrics: bool,
    #[cfg(feature = "health")]
    health: Option<cortex_health::HealthRegistry>,
    #[cfg(feature = "trace")]
    trace: Option<cortex_trace::http::HttpTraceLayer>,
    #[cfg(feature = "compress")]
    compression: Option<cortex_compress::CompressionLayer>,
    #[cfg(feature = "compress")]
    decompression: Option<cortex_compress::DecompressionLayer>,
    #[cfg(feature = "resilience")]
    resilience: Option<cortex_resilience::PolicyRegistry>,
    #[cfg(feature = "actor")]
    actors: Option<cortex_actor::ActorSystem>,
    #[cfg(feature = "workers")]
    workers: Vec<cortex_workers::WorkerPool>,
    #[cfg(feature = "wasm")]
    wasm: Vec<cortex_wasm::WasmPool>,
    #[cfg(feature = "serve")]
    server: Option<cortex_serve::Server>,
}

// Not derived: with `metrics` on, the path and the process switch have
// non-empty defaults.
#[allow(clippy::derivable_impls)]
impl Default for CortexBuilder {
    fn default() -> Self {
        Self {
            #[cfg(feature = "metrics")]
            metrics: None,
            #[cfg(feature = "metrics")]
            metrics_path: "/metrics".to_owned(),
            #[cfg(feature = "metrics")]
            metrics_bearer_token: None,
            #[cfg(feature = "metrics")]
            process_metrics: true,
            #[cfg(feature = "health")]
            health: None,
            #[cfg(feature = "trace")]
            trace: None,
            #[cfg(feature = "compress")]
            compression: None,
            #[cfg(feature = "compress")]
            decompression: None,
            #[cfg(feature = "resilience")]
            resilience: None,
            #[cfg(feature = "actor")]
            actors: None,
            #[cfg(feature = "workers")]
            workers: Vec::new(),
            #[cfg(feature = "wasm")]
            wasm: Vec::new(),
            #[cfg(feature = "serve")]
            server: None,
        }
    }
}

impl CortexBuilder {
    /// Records HTTP metrics for every route into `registry`, registers every
    /// other configured component's series into it, adds the `process_*`
    /// collector, and serves it at `/metrics`.
    #[cfg(feature = "metrics")]
    pub fn metrics(mut self, registry: cortex_metrics::MetricsRegistry) -> Self {
        self.metrics = Some(registry);
        self
    }

    /// Serves metrics at `path` instead of `/metrics` (takes effect only
    /// with [`metrics`](Self::metrics), set before or after).
    #[cfg(feature = "metrics")]
    pub fn metrics_path(mut self, path: impl Into<String>) -> Self {
        self.metrics_path = path.into();
        self
    }

    /// Requires `Authorization: Bearer <token>` on the metrics endpoint
    /// (takes effect only with [`metrics`](Self::metrics)).
    #[cfg(feature = "metrics")]
    pub fn metrics_bearer_token(mut self, token: impl Into<String>) -> Self {
        self.metrics_bearer_token = Some(token.into());
        self
    }

    /// Whether to add the `process_*` collector (default true; takes
    /// effect only with [`metrics`](Self::metrics)).
    #[cfg(feature = "metrics")]
    pub fn process_metrics(mut self, enabled: bool) -> Self {
        self.process_metrics = enabled;
        self
    }

    /// Serves `registry`'s probes: `/health`, `/health/live`,
    /// `/health/ready`, `/health/startup`, `/livez`, `/readyz`; with
    /// metrics configured, exports its check status and durations.
    #[cfg(feature = "health")]
    pub fn health(mut self, registry: cortex_health::HealthRegistry) -> Self {
        self.health = Some(registry);
        self
    }

    /// Traces every route with `layer` (a SERVER span per request that
    /// continues the caller's W3C trace context).
    #[cfg(feature = "trace")]
    pub fn trace(mut self, layer: cortex_trace::http::HttpTraceLayer) -> Self {
        self.trace = Some(layer);
        self
    }

    /// Compresses responses of every route with `layer` (counted in the
    /// metrics registry when metrics are configured too).
    #[cfg(feature = "compress")]
    pub fn compression(mut self, layer: cortex_compress::CompressionLayer) -> Self {
        self.compression = Some(layer);
        self
    }

    /// Decodes compressed request bodies of every route within `layer`'s
    /// limits (413 past them, 415 for unknown codings).
    #[cfg(feature = "compress")]
    pub fn decompression(mut self, layer: cortex_compress::DecompressionLayer) -> Self {
        self.decompression = Some(layer);
        self
    }

    /// Serves `registry`'s stats as JSON at `/resilience`
    /// ([`PolicyRegistry::router`](cortex_resilience::PolicyRegistry::router)); with
    /// metrics configured, exports every registered policy's
    /// `cortex_circuitbreaker_*`, `cortex_bulkhead_*`, `cortex_retry_*`,
    /// `cortex_ratelimiter_*` and `cortex_timeout_*` series; with health
    /// configured, adds a `resilience` check (degraded while a breaker is
    /// open).
    #[cfg(feature = "resilience")]
    pub fn resilience(mut self, registry: cortex_resilience::PolicyRegistry) -> Self {
        self.resilience = Some(registry);
        self
    }

    /// Observes `system`: with metrics configured, its `cortex_actor_*`
    /// series; with health configured, an `actors` check (degraded when an
    /// actor exhausted its restarts or a mailbox stays full).
    #[cfg(feature = "actor")]
    pub fn actors(mut self, system: cortex_actor::ActorSystem) -> Self {
        self.actors = Some(system);
        self
    }

    /// Observes the worker pool `pool` (keep a clone to submit to and to
    /// shut down: clones are the same pool): with metrics configured, its
    /// `cortex_worker_*` series labelled `pool="<name>"`; with health
    /// configured, a `workers:<name>` check (degraded while zombie threads
    /// run or the queue stays full, down once the pool shuts down or has
    /// no worker left). Call it once per pool; pools must have distinct
    /// names ([`Error::DuplicatePool`]).
    #[cfg(feature = "workers")]
    pub fn workers(mut self, pool: cortex_workers::WorkerPool) -> Self {
        self.workers.push(pool);
        self
    }

    /// Observes the WebAssembly pool `pool` (keep a clone to call and to
    /// shut down: clones are the same pool): with metrics configured, its
    /// `cortex_wasm_*` series (calls, failures by kind, instances made and
    /// replaced, call seconds) and its worker pool's `cortex_worker_*`
    /// series, all labelled `pool="<name>"` (the worker pool's name); with
    /// health configured, a `wasm:<name>` check (the worker pool's:
    /// degraded while its queue stays full, down once it shuts down; a
    /// guest that traps or runs out of time does not take it down, its
    /// instance is replaced). Call it once per pool; its name must differ
    /// from every other pool's, worker or wasm ([`Error::DuplicatePool`]).
    #[cfg(feature = "wasm")]
    pub fn wasm(mut self, pool: cortex_wasm::WasmPool) -> Self {
        self.wasm.push(pool);
        self
    }

    /// Observes `server` (keep a clone to [`serve`](cortex_serve::Server::serve)
    /// with: clones share their state): with metrics configured, its
    /// `cortex_server_*` series; with health configured, readiness turns
    /// to draining the moment its shutdown starts.
    #[cfg(feature = "serve")]
    pub fn server(mut self, server: cortex_serve::Server) -> Self {
        self.server = Some(server);
        self
    }

    /// Registers every configured component's series and health check,
    /// merges the configured endpoints into `router`, and wraps its routes
    /// in the configured layers: one [`CortexLayer`], applied with a single
    /// `Router::layer` (see [`layer`] for why one).
    pub fn mount<S>(self, router: Router<S>) -> Result<Router<S>, Error>
    where
        S: Clone + Send + Sync + 'static,
    {
        let (router, layer) = self.mount_unlayered(router)?;
        Ok(if layer.is_empty() {
            router
        } else {
            router.layer(layer)
        })
    }

    /// Everything [`mount`](Self::mount) does except wrapping the routes:
    /// the router with the endpoints merged, and the configured layers as
    /// one [`CortexLayer`] for the caller to apply, with layers of its own
    /// around or inside it, in one `Router::layer` (each `Router::layer`
    /// costs every request a few allocations more; see [`layer`]).
    ///
    /// ```
    /// use axum::Router;
    /// use cortex::Cortex;
    /// use cortex::metrics::MetricsRegistry;
    /// use tower::ServiceBuilder;
    ///
    /// let (routes, cortex_layer) = Cortex::builder()
    ///     .metrics(MetricsRegistry::new())
    ///     .mount_unlayered(Router::<()>::new())?;
    /// let app = routes.layer(ServiceBuilder::new().layer(cortex_layer));
    /// # let _: Router = app;
    /// # Ok::<(), cortex::Error>(())
    /// ```
    pub fn mount_unlayered<S>(self, router: Router<S>) -> Result<(Router<S>, CortexLayer), Error>
    where
        S: Clone + Send + Sync + 'static,
    {
        #[cfg(feature = "workers")]
        self.check_pool_names()?;
        #[cfg(feature = "metrics")]
        self.register_metrics()?;
        #[cfg(all(feature = "serve", feature = "health"))]
        if let (Some(server), Some(health)) = (&self.server, &self.health) {
            // Builder-style on a shared state: the caller's clone drains it.
            let _ = server.clone().health(health.clone());
        }
        #[cfg(all(
            feature = "health",
            any(feature = "actor", feature = "resilience", feature = "workers")
        ))]
        self.register_health_checks()?;

        // Every merge happens before any layer: `Router::merge` keeps the
        // *other* router's default 404 fallback, which would drop earlier
        // layers from unmatched requests.
        #[allow(unused_mut)]
        let mut router = router;
        for endpoints in self.endpoints() {
            // A wrong method on a Cortex endpoint answers like every other
            // Cortex error (axum keeps the `Allow` header).
            router = router.merge(endpoints.method_not_allowed_fallback(method_not_allowed));
        }

        // Outermost first: the trace span, so metrics and handlers run
        // inside the request's span (which is also what makes exemplars
        // work); then metrics, outside compression so the response-size
        // histogram counts the bytes that actually leave; decompression
        // innermost.
        let layer = CortexLayer {
            #[cfg(feature = "trace")]
            trace: self.trace,
            #[cfg(feature = "metrics")]
            metrics: match &self.metrics {
                Some(registry) => Some(cortex_metrics::http::HttpMetricsLayer::new(registry)?),
                None => None,
            },
            #[cfg(feature = "compress")]
            compression: self.compression,
            #[cfg(feature = "compress")]
            decompression: self.decompression,
        };
        Ok((router, layer))
    }

    /// Every configured component, as the one metrics contract sees it.
    #[cfg(feature = "metrics")]
    fn register_metrics(&self) -> Result<(), cortex_metrics::MetricsError> {
        use cortex_metrics::RegisterMetrics;
        let Some(registry) = &self.metrics else {
            return Ok(());
        };
        #[allow(unused_mut)]
        let mut components: Vec<&dyn RegisterMetrics> = Vec::new();
        #[cfg(feature = "health")]
        components.extend(self.health.as_ref().map(|c| c as &dyn RegisterMetrics));
        #[cfg(feature = "compress")]
        components.extend(self.compression.as_ref().map(|c| c as &dyn RegisterMetrics));
        #[cfg(feature = "resilience")]
        components.extend(self.resilience.as_ref().map(|c| c as &dyn RegisterMetrics));
        #[cfg(feature = "actor")]
        components.extend(self.actors.as_ref().map(|c| c as &dyn RegisterMetrics));
        #[cfg(feature = "workers")]
        components.extend(self.workers.iter().map(|c| c as &dyn RegisterMetrics));
        #[cfg(feature = "wasm")]
        components.extend(self.wasm.iter().map(|c| c as &dyn RegisterMetrics));
        #[cfg(feature = "serve")]
        components.extend(self.server.as_ref().map(|c| c as &dyn RegisterMetrics));
        for component in components {
            component.register_metrics(registry)?;
        }
        if self.process_metrics {
            registry.register_collector_once("process", cortex_metrics::ProcessCollector::new());
        }
        Ok(())
    }

    /// Refuses two pools of one name (worker pools, and wasm pools by
    /// their worker pool's name: both label series `pool="<name>"`) before
    /// anything is registered.
    #[cfg(feature = "workers")]
    fn check_pool_names(&self) -> Result<(), Error> {
        #[allow(unused_mut)]
        let mut names: Vec<&str> = self.workers.iter().map(|pool| pool.name()).collect();
        #[cfg(feature = "wasm")]
        names.extend(self.wasm.iter().map(|pool| pool.workers().name()));
        for (at, name) in names.iter().enumerate() {
            if names[..at].contains(name) {
                return Err(Error::DuplicatePool((*name).to_owned()));
            }
        }
        Ok(())
    }

    /// Every configured component's health check, under its fixed name.
    #[cfg(all(
        feature = "health",
        any(feature = "actor", feature = "resilience", feature = "workers")
    ))]
    fn register_health_checks(&self) -> Result<(), cortex_health::HealthError> {
        let Some(health) = &self.health else {
            return Ok(());
        };
        #[cfg(feature = "actor")]
        if let Some(system) = &self.actors {
            health.register("actors", system.health_check())?;
        }
        #[cfg(feature = "resilience")]
        if let Some(policies) = &self.resilience {
            health.register("resilience", policies.health_check())?;
        }
        #[cfg(feature = "workers")]
        for pool in &self.workers {
            health.register(&format!("workers:{}", pool.name()), pool.health_check())?;
        }
        #[cfg(feature = "wasm")]
        for pool in &self.wasm {
            health.register(
                &format!("wasm:{}", pool.workers().name()),
                pool.health_check(),
            )?;
        }
        Ok(())
    }

    /// The paths [`mount`](Self::mount) will serve, in the order it merges
    /// them: for a route index, a gateway's allow-list, or a test.
    ///
    /// ```
    /// use cortex::prelude::*;
    ///
    /// let builder = Cortex::builder().metrics(MetricsRegistry::new()).metrics_path("/m");
    /// assert_eq!(builder.paths(), ["/m"]);
    /// ```
    pub fn paths(&self) -> Vec<String> {
        #[allow(unused_mut)]
        let mut paths: Vec<String> = Vec::new();
        #[cfg(feature = "health")]
        if self.health.is_some() {
            paths.extend(cortex_health::HealthRegistry::PATHS.map(str::to_owned));
        }
        #[cfg(feature = "resilience")]
        if self.resilience.is_some() {
            paths.push(cortex_resilience::PolicyRegistry::PATH.to_owned());
        }
        #[cfg(feature = "metrics")]
        if self.metrics.is_some() {
            paths.push(self.metrics_path.clone());
        }
        paths
    }

    /// Every configured component's endpoints, each from its `router()`.
    // With no endpoint-serving feature on, there is nothing to read.
    #[allow(clippy::unused_self)]
    fn endpoints<S>(&self) -> Vec<Router<S>>
    where
        S: Clone + Send + Sync + 'static,
    {
        #[allow(unused_mut)]
        let mut routers = Vec::new();
        #[cfg(feature = "health")]
        routers.extend(self.health.as_ref().map(|health| health.router()));
        #[cfg(feature = "resilience")]
        routers.extend(self.resilience.as_ref().map(|policies| policies.router()));
        #[cfg(feature = "metrics")]
        if let Some(registry) = &self.metrics {
            let mut endpoint =
                cortex_metrics::MetricsEndpoint::new(registry.clone()).path(&self.metrics_path);
            if let Some(token) = &self.metrics_bearer_token {
                endpoint = endpoint.bearer_token(token.clone());
            }
            routers.push(endpoint.router());
        }
        routers
    }
}

/// 405 as RFC 9457 `application/problem+json`, for the facade's endpoints.
async fn method_not_allowed(
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    problem_details::ProblemDetails::from_status_code(axum::http::StatusCode::METHOD_NOT_ALLOWED)
        .with_type(problem_details::ProblemType::default())
        .with_detail(format!("{method} is not allowed on {}", uri.path()))
        .into_response()
}
