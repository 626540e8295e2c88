//! HTTP server metrics as a tower middleware, with OpenTelemetry semantic
//! conventions rendered for Prometheus.
//!
//! [`HttpMetricsLayer`] records, for every request:
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `http_server_request_duration_seconds` | histogram | `http_request_method`, `http_route`, `http_response_status_code` |
//! | `http_server_active_requests` | gauge | `http_request_method` |
//! | `http_server_request_body_size_bytes` | histogram | as duration; from `Content-Length` when present |
//! | `http_server_response_body_size_bytes` | histogram | as duration; bytes actually streamed |
//!
//! Cardinality is bounded by construction: `http_route` is axum's
//! [`MatchedPath`](axum::extract::MatchedPath) template (never the raw path;
//! unrouted requests get [`UNMATCHED_ROUTE`]), methods outside the standard
//! nine become `_OTHER`, and status codes are three digits. A scanner
//! requesting a million random paths adds no series.
//!
//! With the `trace` feature, a request handled inside a sampled
//! OpenTelemetry span (e.g. under cortex-trace's `HttpTraceLayer`, applied
//! outside this layer) leaves its trace and span id as an exemplar on its
//! duration bucket, visible in OpenMetrics scrapes.
//!
//! A request is measured until its response body ends. If the handler
//! panics, the request is recorded with status 500; if the client goes away
//! first (the future or body is dropped), it is recorded with the status
//! already known, or 499 (nginx's "client closed request") before one was.
//! Either way the active-requests gauge comes back down.
//!
//! ```
//! use axum::{Router, routing::get};
//! use cortex_metrics::{MetricsRegistry, http::HttpMetricsLayer};
//!
//! let registry = MetricsRegistry::new();
//! let app: Router = Router::new()
//!     .route("/users/{id}", get(|| async { "user" }))
//!     .merge(registry.router())
//!     // Layer after merging: `merge` replaces a layered default fallback
//!     // with the other router's unlayered one, so 404s would go unmeasured.
//!     .layer(HttpMetricsLayer::new(&registry)?);
//! # Ok::<(), cortex_metrics::MetricsError>(())
//! ```

mod body;
mod future;
mod layer;
mod service;
mod state;

pub use body::ResponseBody;
pub use future::ResponseFuture;
pub use layer::HttpMetricsLayer;
pub use service::HttpMetrics;

/// The `http_route` label value of requests no route matched.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Bucket bounds, in bytes, for the body size histograms: 64 B to 64 MiB
/// in powers of four.
pub const BODY_SIZE_BUCKETS: &[f64] = &[
    64.0,
    256.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
    67_108_864.0,
];
