//! HTTP tracing as tower middleware: [`HttpTraceLayer`] for servers and
//! [`PropagateLayer`] for clients.
//!
//! The server layer continues the caller's trace from `traceparent` /
//! `tracestate` (or starts a new one when they are absent or invalid),
//! opens a SERVER span named `{method} {route}` with OpenTelemetry HTTP
//! semantic-convention attributes, runs the inner service with that span's
//! context current (so handlers and outgoing calls see it), and ends the
//! span when the response body ends or is dropped. 5xx responses, service
//! errors and panics mark the span as an error; 4xx do not (they are the
//! client's fault).
//!
//! The client layer opens a CLIENT span per outgoing request as a child of
//! the current context and injects its `traceparent`/`tracestate`, so the
//! callee's server span becomes its child.
//!
//! ```
//! use axum::{Router, routing::get};
//! use cortex_trace::http::HttpTraceLayer;
//! use opentelemetry_sdk::trace::SdkTracerProvider;
//!
//! let provider = SdkTracerProvider::builder().build();
//! let app: Router = Router::new()
//!     .route("/users/{id}", get(|| async { "user" }))
//!     .layer(HttpTraceLayer::new(&provider));
//! ```

mod body;
mod future;
mod layer;
pub mod propagate;
mod service;
mod state;

pub use body::ResponseBody;
pub use future::ResponseFuture;
pub use layer::HttpTraceLayer;
pub use propagate::{Propagate, PropagateFuture, PropagateLayer};
pub use service::HttpTrace;
pub use state::TraceProvider;

use http::Method;

/// The OpenTelemetry name of a method: the standard ones as they are, any
/// other as `_OTHER` (the original goes to `http.request.method_original`),
/// so span names and attributes cannot explode.
pub(crate) fn method_name(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "CONNECT" => "CONNECT",
        "OPTIONS" => "OPTIONS",
        "TRACE" => "TRACE",
        "PATCH" => "PATCH",
        _ => "_OTHER",
    }
}

/// `"1.1"`, `"2"`... for `network.protocol.version`.
pub(crate) fn protocol_version(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_09 => "0.9",
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_3 => "3",
        _ => "1.1",
    }
}
