//! The `/metrics` endpoint for axum.

use std::borrow::Cow;
use std::sync::Arc;

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use problem_details::{ProblemDetails, ProblemType};

use crate::{Format, MetricsRegistry};

impl MetricsRegistry {
    /// A router serving this registry at `GET /metrics` (and `HEAD`) with
    /// format negotiation and no authentication: the common case of
    /// [`MetricsEndpoint`], which takes another path or a bearer token.
    ///
    /// ```
    /// use axum::Router;
    /// use cortex_metrics::MetricsRegistry;
    ///
    /// let registry = MetricsRegistry::new();
    /// let app: Router = Router::new().merge(registry.router());
    /// ```
    pub fn router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        MetricsEndpoint::new(self.clone()).router()
    }
}

/// A configurable metrics endpoint.
///
/// The response is Prometheus text 0.0.4 or OpenMetrics 1.0.0 as the
/// scrape's `Accept` header asks (see [`Format::negotiate`]), always with
/// the matching `Content-Type` and `Vary: Accept`; `406 Not Acceptable`
/// when the header accepts neither (say, only a future OpenMetrics
/// version). With a bearer token set, requests without
/// `Authorization: Bearer <token>` get `401` and a `WWW-Authenticate`
/// challenge; the token is compared in constant time.
///
/// ```
/// use axum::Router;
/// use cortex_metrics::{MetricsEndpoint, MetricsRegistry};
///
/// let registry = MetricsRegistry::new();
/// let app: Router = MetricsEndpoint::new(registry)
///     .path("/internal/metrics")
///     .bearer_token("s3cret")
///     .router();
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct MetricsEndpoint {
    registry: MetricsRegistry,
    path: String,
    bearer_token: Option<Arc<str>>,
}

impl MetricsEndpoint {
    /// An endpoint at `/metrics` without authentication.
    pub fn new(registry: MetricsRegistry) -> Self {
        Self {
            registry,
            path: "/metrics".to_owned(),
            bearer_token: None,
        }
    }

    /// Serves at `path` instead of `/metrics`.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Requires `Authorization: Bearer <token>`.
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.bearer_token = Some(token.into().into());
        self
    }

    /// A router with the endpoint's single route (`GET` and `HEAD`).
    pub fn router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let path = self.path.clone();
        let endpoint = self.clone();
        Router::new().route(
            &path,
            get(move |headers: HeaderMap| {
                let endpoint = endpoint.clone();
                async move { endpoint.respond(&headers) }
            }),
        )
    }

    /// The response to a scrape with these request headers.
    pub fn respond(&self, headers: &HeaderMap) -> Response {
        if let Some(token) = &self.bearer_token
            && !bearer_matches(headers, token)
        {
            // RFC 9457, like every error Cortex answers; the challenge
            // stays in `WWW-Authenticate` (RFC 6750 §3).
            let mut response = ProblemDetails::from_status_code(StatusCode::UNAUTHORIZED)
                .with_type(ProblemType::default())
                .with_detail("scraping requires Authorization: Bearer <token>")
                .into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"metrics\""),
            );
            return response;
        }
        let Some(format) = Format::negotiate(accept(headers).as_deref()) else {
            let mut response = ProblemDetails::from_status_code(StatusCode::NOT_ACCEPTABLE)
                .with_type(ProblemType::default())
                .with_detail(NOT_ACCEPTABLE_DETAIL)
                .into_response();
            response
                .headers_mut()
                .insert(header::VARY, HeaderValue::from_static("Accept"));
            return response;
        };
        let body = self.registry.encode(format);
        (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(format.content_type()),
                ),
                (header::VARY, HeaderValue::from_static("Accept")),
            ],
            body,
        )
            .into_response()
    }
}

/// What a `406` says: the two representations there are.
const NOT_ACCEPTABLE_DETAIL: &str = "this endpoint serves text/plain; version=0.0.4 \
    and application/openmetrics-text; version=1.0.0";

/// Every `Accept` field line as one list (RFC 9110 §5.3: several lines
/// mean their values joined by commas); `None` when there is none, or
/// when a line is not visible ASCII (then it says nothing usable).
fn accept(headers: &HeaderMap) -> Option<Cow<'_, str>> {
    let mut lines = headers.get_all(header::ACCEPT).iter().map(|v| v.to_str());
    let first = lines.next()?.ok()?;
    let mut joined: Option<String> = None;
    for line in lines {
        let joined = joined.get_or_insert_with(|| first.to_owned());
        joined.push(',');
        joined.push_str(line.ok()?);
    }
    Some(joined.map_or(Cow::Borrowed(first), Cow::Owned))
}

fn bearer_matches(headers: &HeaderMap, expected: &str) -> bool {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return false;
    };
    let value = value.as_bytes();
    let Some((scheme, token)) = value.split_at_checked(7) else {
        return false;
    };
    scheme.eq_ignore_ascii_case(b"bearer ") && constant_time_eq(token, expected.as_bytes())
}

/// Compares without an early exit, so response timing does not reveal how
/// much of a guessed token was right. The length is not secret.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.parse().unwrap(), HeaderValue::from_static(v)))
            .collect()
    }

    #[test]
    fn bearer_token_is_checked() {
        assert!(bearer_matches(
            &headers(&[("authorization", "Bearer abc")]),
            "abc"
        ));
        assert!(bearer_matches(
            &headers(&[("authorization", "bearer abc")]),
            "abc"
        ));
        assert!(!bearer_matches(
            &headers(&[("authorization", "Bearer abd")]),
            "abc"
        ));
        assert!(!bearer_matches(
            &headers(&[("authorization", "Bearer ab")]),
            "abc"
        ));
        assert!(!bearer_matches(
            &headers(&[("authorization", "Basic abc")]),
            "abc"
        ));
        assert!(!bearer_matches(
            &headers(&[("authorization", "Bear")]),
            "abc"
        ));
        assert!(!bearer_matches(&headers(&[]), "abc"));
    }

    #[test]
    fn responds_in_the_negotiated_format() {
        let endpoint = MetricsEndpoint::new(MetricsRegistry::new());
        let text = endpoint.respond(&headers(&[]));
        assert_eq!(
            text.headers()[header::CONTENT_TYPE],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        let om = endpoint.respond(&headers(&[("accept", "application/openmetrics-text")]));
        assert_eq!(
            om.headers()[header::CONTENT_TYPE],
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
        let locked = endpoint.bearer_token("t");
        assert_eq!(
            locked.respond(&headers(&[])).status(),
            StatusCode::UNAUTHORIZED
        );
        let ok = locked.respond(&headers(&[("authorization", "Bearer t")]));
        assert_eq!(ok.status(), StatusCode::OK);
    }
}
