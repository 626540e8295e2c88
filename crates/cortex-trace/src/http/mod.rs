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
//! when no route matched; a method outside the known ones is `_OTHER`
//! in `http.request.method` (the original in
//! `http.request.method_original`) and `HTTP` in the name, as the
//! conventions require (`HTTP /cache/{key}`). The known methods are the
//! standard nine (`GET`, `HEAD`, `POST`, `PUT`, `DELETE`, `CONNECT`,
//! `OPTIONS`, `TRACE`, `PATCH`) unless overridden, fully, by
//! [`HttpTraceLayer::known_methods`] / [`PropagateLayer::known_methods`]
//! or, when neither is called, by `OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS`
//! (comma-separated, case-sensitive; read when the layer is made).
//! Attributes, all but the
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

use std::borrow::Cow;
use std::sync::Arc;

use http::Method;

/// The environment variable the conventions name for overriding the known
/// HTTP methods: a comma-separated, case-sensitive list that replaces the
/// defaults entirely.
pub(crate) const KNOWN_METHODS_ENV: &str = "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS";

/// The methods that keep their own name in spans; any other is `_OTHER`.
/// By default the nine of RFC 9110 and RFC 5789.
#[derive(Debug, Clone, Default)]
pub(crate) enum KnownMethods {
    /// `GET`, `HEAD`, `POST`, `PUT`, `DELETE`, `CONNECT`, `OPTIONS`,
    /// `TRACE`, `PATCH`.
    #[default]
    Standard,
    /// A full override: exactly these, compared case-sensitively.
    Custom(Arc<[Method]>),
}

impl KnownMethods {
    /// A full override by `methods` (duplicates are harmless).
    pub(crate) fn custom(methods: impl IntoIterator<Item = Method>) -> Self {
        Self::Custom(methods.into_iter().collect())
    }

    /// The defaults, overridden by [`KNOWN_METHODS_ENV`] when it is set.
    pub(crate) fn from_env() -> Self {
        std::env::var(KNOWN_METHODS_ENV)
            .ok()
            .and_then(|value| parse_known_methods(&value))
            .unwrap_or_default()
    }

    /// The OpenTelemetry name of `method`: its own if known, else `None`
    /// (`_OTHER`, the original going to `http.request.method_original`),
    /// so span names and attributes cannot explode.
    pub(crate) fn name(&self, method: &Method) -> Option<Cow<'static, str>> {
        match self {
            Self::Standard => standard_name(method).map(Cow::Borrowed),
            Self::Custom(known) => known.contains(method).then(|| match standard_name(method) {
                Some(name) => Cow::Borrowed(name),
                None => Cow::Owned(method.as_str().to_owned()),
            }),
        }
    }
}

/// Parses a value of [`KNOWN_METHODS_ENV`]: comma-separated tokens,
/// trimmed, case-sensitive (`get` is not `GET`); empty and invalid tokens
/// are skipped. `None`, keeping the defaults, when no valid token is left
/// (an empty variable counts as unset, as everywhere in OpenTelemetry).
pub(crate) fn parse_known_methods(value: &str) -> Option<KnownMethods> {
    let methods: Vec<Method> = value
        .split(',')
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .filter_map(|token| Method::from_bytes(token.as_bytes()).ok())
        .collect();
    (!methods.is_empty()).then(|| KnownMethods::custom(methods))
}

/// The name of one of the nine standard methods.
fn standard_name(method: &Method) -> Option<&'static str> {
    Some(match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "CONNECT" => "CONNECT",
        "OPTIONS" => "OPTIONS",
        "TRACE" => "TRACE",
        "PATCH" => "PATCH",
        _ => return None,
    })
}

/// The `error.type` values that are not a status code (see the module
/// docs); cortex-metrics' HTTP layer uses the same words.
mod error_type {
    pub(crate) const SERVICE_ERROR: &str = "service error";
    pub(crate) const PANIC: &str = "panic";
    pub(crate) const CANCELLED: &str = "cancelled";
    pub(crate) const RESPONSE_BODY_ERROR: &str = "response body error";
}

/// `http.request.method` of a method outside the known ones.
pub(crate) const OTHER_METHOD: &str = "_OTHER";

/// `{method}` in a span name for a method known only as `_OTHER`:
/// `_OTHER /cache/{key}` would name no method at all.
pub(crate) const OTHER_METHOD_SPAN_NAME: &str = "HTTP";

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

#[cfg(test)]
mod tests {
    use super::*;

    fn names(known: &KnownMethods, methods: &[&str]) -> Vec<Option<String>> {
        methods
            .iter()
            .map(|m| {
                known
                    .name(&Method::from_bytes(m.as_bytes()).unwrap())
                    .map(Cow::into_owned)
            })
            .collect()
    }

    #[test]
    fn the_env_list_is_comma_separated_trimmed_and_a_full_override() {
        let known = parse_known_methods(" GET ,PURGE,, QUERY ").unwrap();
        assert_eq!(
            names(&known, &["GET", "PURGE", "QUERY", "POST", "DELETE"]),
            [
                Some("GET".to_owned()),
                Some("PURGE".to_owned()),
                Some("QUERY".to_owned()),
                None,
                None
            ]
        );
    }

    #[test]
    fn the_env_list_is_case_sensitive() {
        let known = parse_known_methods("get,Purge").unwrap();
        assert_eq!(
            names(&known, &["GET", "get", "PURGE", "Purge"]),
            [None, Some("get".to_owned()), None, Some("Purge".to_owned())]
        );
    }

    #[test]
    fn invalid_env_tokens_are_ignored() {
        let known = parse_known_methods("GET, BAD METHOD ,PU(RGE),\u{e9}T\u{e9},PATCH").unwrap();
        assert_eq!(
            names(&known, &["GET", "PATCH", "POST"]),
            [Some("GET".to_owned()), Some("PATCH".to_owned()), None]
        );
    }

    #[test]
    fn an_env_value_with_no_valid_method_keeps_the_defaults() {
        assert!(parse_known_methods("").is_none());
        assert!(parse_known_methods(" , ,").is_none());
        assert!(parse_known_methods("A B,(x)").is_none());
    }

    #[test]
    fn the_defaults_are_the_standard_nine() {
        let standard = [
            "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
        ];
        let known = KnownMethods::default();
        for method in standard {
            assert_eq!(names(&known, &[method]), [Some(method.to_owned())]);
        }
        assert_eq!(names(&known, &["PURGE", "get"]), [None, None]);
    }
}
