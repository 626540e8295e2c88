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
//! let health = HealthRegistry::builder().metrics(&metrics)?.build();
//! health.register("memory", cortex::health::checks::MemoryCheck::new())?;
//!
//! let app: Router = Router::new().route("/", get(|| async { "hello" }));
//! // HTTP metrics on every route, process metrics, GET /metrics, and the
//! // /health, /health/{live,ready,startup}, /livez, /readyz probes.
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
//! | `resilience` | yes | [`resilience`]: circuit breaker, retry, bulkhead, timeout, rate limiter, fallback (`cortex-resilience`), with policy metrics when `metrics` is on |
//! | `actor` | yes | [`actor`]: typed actors, supervision, registry, event bus (`cortex-actor`), with per-type metrics when `metrics` is on and a health check when `health` is on |
//! | `full` | no | every crate above |
//!
//! # Minimum supported Rust version
//!
//! The workspace's `rust-version` (1.88).

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
#[cfg(feature = "trace")]
#[doc(inline)]
pub use cortex_trace as trace;

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
        ShowDetails, health_fn, health_router,
    };
    #[cfg(feature = "metrics")]
    pub use cortex_metrics::{
        Buckets, Counter, CounterFamily, DEFAULT_BUCKETS, Format, Gauge, GaugeF64, GaugeFamily,
        Histogram, HistogramFamily, MetricsEndpoint, MetricsError, MetricsRegistry,
        ProcessCollector, http::HttpMetricsLayer, metrics_router,
    };
    #[cfg(feature = "resilience")]
    pub use cortex_resilience::{
        Bulkhead, CircuitBreaker, Fallback, Pipeline, Policy, PolicyExt, PolicyRegistry,
        RateLimitLayer, RateLimiter, ResilienceError, Retry, Timeout,
    };
    #[cfg(feature = "trace")]
    pub use cortex_trace::TraceContextPropagator;
    #[cfg(feature = "trace")]
    pub use cortex_trace::http::{HttpTraceLayer, PropagateLayer};
}

/// Compiles the README's examples as doctests, so the README stays true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

/// Why [`CortexBuilder::mount`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Registering the HTTP metrics failed (a name is taken by another type).
    #[cfg(feature = "metrics")]
    #[error(transparent)]
    Metrics(#[from] cortex_metrics::MetricsError),
    /// A health check could not be registered.
    #[cfg(feature = "health")]
    #[error(transparent)]
    Health(#[from] cortex_health::HealthError),
    /// A resilience policy could not be registered.
    #[cfg(feature = "resilience")]
    #[error(transparent)]
    Resilience(#[from] cortex_resilience::RegistryError),
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
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct CortexBuilder {
    #[cfg(feature = "metrics")]
    metrics: Option<MetricsOptions>,
    #[cfg(feature = "health")]
    health: Option<cortex_health::HealthRegistry>,
    #[cfg(feature = "trace")]
    trace: Option<cortex_trace::http::HttpTraceLayer>,
    #[cfg(feature = "compress")]
    compression: Option<cortex_compress::CompressionLayer>,
    #[cfg(feature = "compress")]
    decompression: Option<cortex_compress::DecompressionLayer>,
    #[cfg(feature = "resilience")]
    resilience: Option<(cortex_resilience::PolicyRegistry, String)>,
    #[cfg(feature = "actor")]
    actors: Option<cortex_actor::ActorSystem>,
}

#[cfg(feature = "metrics")]
#[derive(Debug, Clone)]
struct MetricsOptions {
    registry: cortex_metrics::MetricsRegistry,
    path: String,
    bearer_token: Option<String>,
    process_metrics: bool,
}

impl CortexBuilder {
    /// Records HTTP metrics for every route into `registry`, adds the
    /// `process_*` collector, and serves the registry at `/metrics`.
    #[cfg(feature = "metrics")]
    pub fn metrics(mut self, registry: cortex_metrics::MetricsRegistry) -> Self {
        self.metrics = Some(MetricsOptions {
            registry,
            path: "/metrics".to_owned(),
            bearer_token: None,
            process_metrics: true,
        });
        self
    }

    /// Serves metrics at `path` instead of `/metrics`.
    #[cfg(feature = "metrics")]
    pub fn metrics_path(mut self, path: impl Into<String>) -> Self {
        if let Some(options) = &mut self.metrics {
            options.path = path.into();
        }
        self
    }

    /// Requires `Authorization: Bearer <token>` on the metrics endpoint.
    #[cfg(feature = "metrics")]
    pub fn metrics_bearer_token(mut self, token: impl Into<String>) -> Self {
        if let Some(options) = &mut self.metrics {
            options.bearer_token = Some(token.into());
        }
        self
    }

    /// Whether to add the `process_*` collector (default true).
    #[cfg(feature = "metrics")]
    pub fn process_metrics(mut self, enabled: bool) -> Self {
        if let Some(options) = &mut self.metrics {
            options.process_metrics = enabled;
        }
        self
    }

    /// Serves `registry`'s probes: `/health`, `/health/live`,
    /// `/health/ready`, `/health/startup`, `/livez`, `/readyz`.
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

    /// Serves `registry`'s `all_stats()` as JSON at `/resilience` and, with
    /// metrics configured, exports every registered policy as
    /// `cortex_circuitbreaker_*`, `cortex_bulkhead_*`, `cortex_retry_*`,
    /// `cortex_ratelimiter_*` and `cortex_timelimiter_*` series.
    #[cfg(feature = "resilience")]
    pub fn resilience(mut self, registry: cortex_resilience::PolicyRegistry) -> Self {
        self.resilience = Some((registry, "/resilience".to_owned()));
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

    /// Applies the configured layers to `router`'s routes and merges the
    /// configured endpoints into it.
    pub fn mount<S>(#[allow(unused_mut)] mut self, router: Router<S>) -> Result<Router<S>, Error>
    where
        S: Clone + Send + Sync + 'static,
    {
        // Every merge happens before any layer: `Router::merge` keeps the
        // *other* router's default 404 fallback, which would drop earlier
        // layers from unmatched requests.
        #[allow(unused_mut)]
        let mut router = router;
        #[cfg(all(feature = "actor", feature = "health"))]
        if let (Some(system), Some(health)) = (&self.actors, &self.health) {
            health.register("actors", system.health_check())?;
        }
        #[cfg(all(feature = "actor", feature = "metrics"))]
        if let (Some(system), Some(options)) = (&self.actors, &self.metrics) {
            system.register_metrics(&options.registry)?;
        }
        #[cfg(feature = "health")]
        if let Some(health) = self.health {
            router = router.merge(cortex_health::health_router(health));
        }
        #[cfg(feature = "resilience")]
        if let Some((registry, path)) = &self.resilience {
            router = router.merge(registry.stats_router(path));
            #[cfg(feature = "metrics")]
            if let Some(options) = &self.metrics {
                options
                    .registry
                    .register_collector(registry.metrics_collector());
            }
        }
        #[cfg(all(feature = "metrics", feature = "compress"))]
        if let (Some(options), Some(layer)) = (&self.metrics, self.compression.take()) {
            self.compression = Some(layer.metrics(&options.registry)?);
        }
        #[cfg(feature = "metrics")]
        let metrics_layer = match self.metrics {
            Some(options) => {
                use cortex_metrics::{MetricsEndpoint, ProcessCollector, http::HttpMetricsLayer};
                if options.process_metrics {
                    options.registry.register_collector(ProcessCollector::new());
                }
                let mut endpoint =
                    MetricsEndpoint::new(options.registry.clone()).path(options.path);
                if let Some(token) = options.bearer_token {
                    endpoint = endpoint.bearer_token(token);
                }
                router = router.merge(endpoint.into_router());
                Some(HttpMetricsLayer::new(&options.registry)?)
            }
            None => None,
        };
        // Layers, innermost first. Compression sits inside metrics so the
        // response-size histogram counts the bytes that actually leave.
        #[cfg(feature = "compress")]
        if let Some(layer) = self.decompression {
            router = router.layer(layer);
        }
        #[cfg(feature = "compress")]
        if let Some(layer) = self.compression {
            router = router.layer(layer);
        }
        #[cfg(feature = "metrics")]
        if let Some(layer) = metrics_layer {
            router = router.layer(layer);
        }
        // Outermost, so metrics and handlers run inside the request's span
        // (which is also what makes exemplars work).
        #[cfg(feature = "trace")]
        if let Some(layer) = self.trace {
            router = router.layer(layer);
        }
        Ok(router)
    }
}
