//! HTTP server metrics as a tower middleware, with OpenTelemetry semantic
//! conventions (v1.23+, stable) rendered for Prometheus.
//!
//! [`HttpMetricsLayer`] records, for every request:
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `http_server_request_duration_seconds` | histogram | `http_request_method`, `http_route`, `http_response_status_code`, `url_scheme`, `error_type` (failed requests only) |
//! | `http_server_active_requests` | gauge | `http_request_method`, `url_scheme` |
//! | `http_server_request_body_size_bytes` | histogram | as duration; from `Content-Length` when present |
//! | `http_server_response_body_size_bytes` | histogram | as duration; bytes actually streamed |
//!
//! Cardinality is bounded by construction: `http_route` is axum's
//! [`MatchedPath`](axum::extract::MatchedPath) template (never the raw path;
//! unrouted requests get [`UNMATCHED_ROUTE`]), methods outside the known
//! list (the standard nine unless overridden with
//! [`HttpMetricsLayer::known_methods`] or
//! `OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS`) become `_OTHER`, status codes are three digits, `url_scheme` is
//! `http` or `https` and `error_type` one of the few values below. A
//! scanner requesting a million random paths adds no series.
//!
//! `url_scheme` is the original client's scheme when a proxy states it
//! (`Forwarded: proto=`, then `X-Forwarded-Proto`), else the request
//! target's (absolute-form, HTTP/2 `:scheme`), else `https` if the listener
//! itself speaks TLS ([`HttpMetricsLayer::served_over_tls`]) and `http`
//! otherwise. Only `http` and `https` are taken from a request.
//!
//! `error_type` is set when, and only when, the request ended in error
//! (OpenTelemetry's "Conditionally Required"); on other series it is empty,
//! which both exposition formats define as no label, so it is left out:
//!
//! | `error_type` | when | `http_response_status_code` |
//! |---|---|---|
//! | `500` … `599` | the response was a 5xx | that code |
//! | `service error` | the inner service returned `Err` | `500` |
//! | `panic` | the handler panicked | `500` |
//! | `cancelled` | the client went away before a response | `499` |
//! | `response body error` | the response body failed mid-stream | the code sent |
//!
//! The 500 and 499 recorded when no response was sent are a deliberate
//! departure from the conventions (which leave the status out then): they
//! keep `status=~"5.."` error-rate queries and nginx-style dashboards
//! counting those requests, while `error_type` says what really happened.
//! Likewise `http_route="unmatched"` where the conventions leave
//! `http.route` out: scanners' 404s get one series that says what it is.
//! 4xx responses are the client's fault, not failures, and carry no
//! `error_type`.
//!
//! With the `trace` feature, a request handled inside a sampled
//! OpenTelemetry span (e.g. under cortex-trace's `HttpTraceLayer`, applied
//! outside this layer) leaves its trace and span id as an exemplar on its
//! duration bucket, visible in OpenMetrics scrapes.
//!
//! A request is measured until its response body ends, or until the client
//! goes away (the future or body is dropped: recorded with the status
//! already known, or 499, nginx's "client closed request", before one
//! was). Either way the active-requests gauge comes back down. A request on
//! a series seen before costs one lookup in a cache keyed by its five label
//! values, all borrowed: no allocation.
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
mod scheme;
mod service;
mod state;

pub use body::ResponseBody;
pub use future::ResponseFuture;
pub use layer::HttpMetricsLayer;
pub use service::HttpMetrics;

/// The `error_type` values that are not a status code (see the module
/// docs). cortex-trace's server spans use the same words for `error.type`.
mod error_type {
    pub(crate) const SERVICE_ERROR: &str = "service error";
    pub(crate) const PANIC: &str = "panic";
    pub(crate) const CANCELLED: &str = "cancelled";
    pub(crate) const RESPONSE_BODY_ERROR: &str = "response body error";
}

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
