//! Prometheus and OpenMetrics metrics for Rust services, built on
//! [`prometheus_client`].
//!
//! - [`MetricsRegistry`]: a value (no globals) with get-or-create
//!   [`Counter`], [`Gauge`], [`GaugeF64`] and [`Histogram`] metrics and
//!   labelled [`Family`]s whose label count is checked at compile time.
//!   Conflicts and invalid names are typed [`MetricsError`]s; nothing panics.
//! - A **cardinality guard** on every family (10 000 series by default):
//!   excess label sets fold into one `otel_metric_overflow="true"` series,
//!   counted by `cortex_metrics_overflow_total`.
//! - Exposition in Prometheus text 0.0.4 **and** OpenMetrics 1.0.0, chosen by
//!   the scrape's `Accept` header ([`Format::negotiate`]).
//! - [`http::HttpMetricsLayer`]: OpenTelemetry HTTP server metrics as a tower
//!   layer, with route templates from axum's `MatchedPath`.
//! - [`MetricsRegistry::router`] / [`MetricsEndpoint`]: the `/metrics` route
//!   for axum, optionally at another path or behind a bearer token.
//! - [`RegisterMetrics`]: the one trait through which every Cortex component
//!   (health registry, compression, resilience policies, actor system...)
//!   exports its series into a registry.
//! - [`ProcessCollector`]: the standard `process_*` metrics on Linux.
//!
//! # Example
//!
//! ```
//! use axum::{Router, routing::get};
//! use cortex_metrics::{
//!     Format, MetricsRegistry, ProcessCollector, http::HttpMetricsLayer,
//! };
//!
//! # fn main() -> Result<(), cortex_metrics::MetricsError> {
//! let registry = MetricsRegistry::new();
//! registry.register_collector(ProcessCollector::new());
//! let signups = registry.counter_family("app_signups", "Sign-ups by plan.", ["plan"])?;
//! signups.with_labels(["free"]).inc();
//!
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "hello" }))
//!     .merge(registry.router())
//!     .layer(HttpMetricsLayer::new(&registry)?);
//! # let _ = app;
//!
//! let text = registry.encode(Format::OpenMetrics);
//! assert!(text.contains("app_signups_total{plan=\"free\"} 1\n"));
//! assert!(text.ends_with("# EOF\n"));
//! # Ok(())
//! # }
//! ```
//!
//! # Feature flags
//!
//! | feature | default | enables |
//! |---|---|---|
//! | `trace` | no | [`http::HttpMetricsLayer`] attaches the current sampled OpenTelemetry span as an [`Exemplar`] to each HTTP duration observation, shown in OpenMetrics scrapes (adds `opentelemetry`; the facade's `trace` feature turns it on) |
//!
//! axum, tower and http are always on: the layer and the endpoint are the
//! point of the crate.
//!
//! # Minimum supported Rust version
//!
//! The workspace's `rust-version` (1.88). Raising it is a minor-version
//! change.

mod collector;
mod counter;
mod encoding;
mod endpoint;
mod error;
mod family;
mod gauge;
mod histogram;
pub mod http;
mod label_table;
mod metric;
mod name;
mod process;
mod register;
mod registry;

pub use collector::{Collector, CollectorOutput};
pub use counter::Counter;
pub use encoding::Format;
#[doc(hidden)]
pub use encoding::{LabelSet, MetricWriter};
pub use endpoint::MetricsEndpoint;
pub use error::MetricsError;
pub use family::{
    CounterFamily, DEFAULT_MAX_SERIES, Family, GaugeF64Family, GaugeFamily, HistogramFamily,
};
pub use gauge::{Gauge, GaugeF64, GaugeGuard};
pub use histogram::{Buckets, DEFAULT_BUCKETS, Exemplar, Histogram, HistogramTimer};
pub use metric::{Metric, MetricType};
pub use process::ProcessCollector;
pub use register::RegisterMetrics;
pub use registry::{MetricsRegistry, MetricsRegistryBuilder};

/// Compiles the code blocks of `docs/metrics.md` as doctests, so the guide stays true.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/metrics.md")]
pub struct MetricsGuideDoctests;
