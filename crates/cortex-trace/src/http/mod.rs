//! HTTP tracing as tower middleware: [`HttpTraceLayer`] for servers and
//! [`PropagateLayer`] for clients.
//!
//! The server layer continues the caller's trace from `traceparent` /
//! `tracestate` (or starts a new one when they are absent or invalid),
//! opens a SERVER span with the OpenTelemetry HTTP semantic conventions
//! (v1.23+, stable), runs the inner service with that span's context
//! current (so handlers and outgoing calls see it), and ends the span when
//! the response body ends or is dropped.
//!
//! The span is named `{method} {route}` (`GET /users/{id}`), or `{method}`
//! when no route matched; a method outside the standard nine is `_OTHER`
//! in `http.request.method` (the original in
//! `http.request.method_original`) and `HTTP` in the name, as the
//! conventions require (`HTTP /cache/{key}`). Attributes, all but the
//! outcome set when the span starts (so samplers see them):
//!
//! | attribute | requirement | when |
//! |---|---|---|
//! | `http.request.method` | required | always |
//! | `url.path` | required | always |
//! | `url.scheme` | required | always: `Forwarded: proto=`, else `X-Forwarded-Proto`, else the target's scheme (absolute-form, HTTP/2 `:scheme`), else `https` if the listener speaks TLS ([`HttpTraceLayer::served_over_tls`]), else `http` |
//! | `url.query` | conditionally required | the request had a query; values of `AWSAccessKeyId`, `Signature`, `sig` and `X-Goog-Signature` become `REDACTED` |
//! | `http.request.method_original` | conditionally required | the method became `_OTHER` |
//! | `http.route` | conditionally required | a route matched (axum's `MatchedPath`) |
//! | `http.response.status_code` | conditionally required | a response was produced |
//! | `error.type` | conditionally required | the request ended in error (below) |
//! | `client.address`, `client.port` | recommended, opt-in | `into_make_service_with_connect_info` is used |
//! | `user_agent.original`, `network.protocol.version` | recommended | the header is there; always |
//!
//! `network.protocol.name` (only required when not `http`) and
//! `server.port` (only required with `server.address`, which is not set)
//! are left out.
//!
//! `error.type` and the span status:
//!
//! | `error.type` | when | status |
//! |---|---|---|
//! | `500` … `599` | the response was a 5xx | Error |
//! | `service error` | the inner service returned `Err` | Error |
//! | `panic` | the handler panicked | Error |
//! | `response body error` | the response body failed mid-stream | Error |
//! | `cancelled` | the client went away before a response | Unset |
//!
//! 4xx responses are the client's fault: no `error.type`, status Unset.
//! cortex-metrics' HTTP layer reports the same words in its `error_type`
//! label.
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
        _ => OTHER_METHOD,
    }
}

/// The `error.type` values that are not a status code (see the module
/// docs); cortex-metrics' HTTP layer uses the same words.
mod error_type {
    pub(crate) const SERVICE_ERROR: &str = "service error";
    pub(crate) const PANIC: &str = "panic";
    pub(crate) const CANCELLED: &str = "cancelled";
    pub(crate) const RESPONSE_BODY_ERROR: &str = "response body error";
}

/// `http.request.method` of a method outside the standard nine.
pub(crate) const OTHER_METHOD: &str = "_OTHER";

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
