//! Retry for HTTP services: idempotent methods, replayable bodies,
//! retryable statuses and `Retry-After`.

use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use tower_layer::Layer;
use tower_service::Service;

use super::layer::call_ready;
use super::{Retry, RetryDecision, ShouldRetry};
use crate::ResilienceError;
use crate::boxed::{BoxError, BoxFuture};
use crate::http::{PolicyRejection, ResilienceBody, rejection_response};

/// Request bodies up to this size are buffered so they can be replayed.
pub(crate) const DEFAULT_MAX_REPLAY_BODY: usize = 64 * 1024;

/// The methods the HTTP retry layer may repeat. Default: the idempotent
/// ones of RFC 9110 §9.2.2 (GET, HEAD, OPTIONS, TRACE, PUT, DELETE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentMethods {
    methods: Vec<Method>,
}

impl Default for IdempotentMethods {
    fn default() -> Self {
        Self {
            methods: vec![
                Method::GET,
                Method::HEAD,
                Method::OPTIONS,
                Method::TRACE,
                Method::PUT,
                Method::DELETE,
            ],
        }
    }
}

impl IdempotentMethods {
    /// Exactly these methods.
    pub fn only(methods: impl IntoIterator<Item = Method>) -> Self {
        Self {
            methods: methods.into_iter().collect(),
        }
    }

    /// Whether `method` may be retried.
    pub fn contains(&self, method: &Method) -> bool {
        self.methods.contains(method)
    }
}

/// Retries 429, 502, 503 and 504 responses (honouring `Retry-After`),
/// transport errors and timeouts; never a response a Cortex policy made
/// as a rejection (an open circuit, a full bulkhead, a rate limit).
#[derive(Debug, Clone)]
pub struct HttpRetryPredicate {
    statuses: Vec<StatusCode>,
}

impl Default for HttpRetryPredicate {
    fn default() -> Self {
        Self {
            statuses: vec![
                StatusCode::TOO_MANY_REQUESTS,
                StatusCode::BAD_GATEWAY,
                StatusCode::SERVICE_UNAVAILABLE,
                StatusCode::GATEWAY_TIMEOUT,
            ],
        }
    }
}

impl HttpRetryPredicate {
    /// Retry exactly these statuses.
    pub fn statuses(statuses: impl IntoIterator<Item = StatusCode>) -> Self {
        Self {
            statuses: statuses.into_iter().collect(),
        }
    }
}

impl<B, E> ShouldRetry<Response<B>, E> for HttpRetryPredicate {
    fn should_retry(&self, result: &Result<Response<B>, ResilienceError<E>>) -> RetryDecision {
        match result {
            Ok(response) => {
                if let Some(kind) = response.extensions().get::<PolicyRejection>()
                    && *kind != PolicyRejection::Timeout
                {
                    return RetryDecision::Done;
                }
                if !self.statuses.contains(&response.status()) {
                    return RetryDecision::Done;
                }
                match retry_after(response.headers(), SystemTime::now()) {
                    Some(after) => RetryDecision::RetryAfter(after),
                    None => RetryDecision::Retry,
                }
            }
            Err(ResilienceError::Inner(_) | ResilienceError::Timeout) => RetryDecision::Retry,
            Err(_) => RetryDecision::Done,
        }
    }
}

/// Parses `Retry-After` as delay-seconds or an HTTP-date (RFC 9110
/// §10.2.3; all three date formats of §5.6.7). A date in the past means
/// "now".
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Retries HTTP requests; see [`Retry::http_layer`].
#[derive(Debug, Clone)]
pub struct HttpRetryLayer {
    retry: Retry,
    predicate: HttpRetryPredicate,
    methods: IdempotentMethods,
    max_replay_body: usize,
}

impl HttpRetryLayer {
    pub(crate) fn new(retry: Retry) -> Self {
        Self {
            retry,
            predicate: HttpRetryPredicate::default(),
            methods: IdempotentMethods::default(),
            max_replay_body: DEFAULT_MAX_REPLAY_BODY,
        }
    }

    /// Which responses are retried. Default 429/502/503/504.
    #[must_use]
    pub fn predicate(mut self, predicate: HttpRetryPredicate) -> Self {
        self.predicate = predicate;
        self
    }

    /// Which methods may be repeated. Default the idempotent ones.
    #[must_use]
    pub fn methods(mut self, methods: IdempotentMethods) -> Self {
        self.methods = methods;
        self
    }

    /// Largest request body buffered for replay; requests with larger or
    /// unknown-length bodies pass through once. Default 64 KiB.
    #[must_use]
    pub fn max_replay_body(mut self, bytes: usize) -> Self {
        self.max_replay_body = bytes;
        self
    }
}

impl<S> Layer<S> for HttpRetryLayer {
    type Service = HttpRetryService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpRetryService {
            inner,
            layer: self.clone(),
        }
    }
}

/// An HTTP service whose failed idempotent requests are retried.
#[derive(Debug, Clone)]
pub struct HttpRetryService<S> {
    inner: S,
    layer: HttpRetryLayer,
}

/// A request ready for one or more attempts.
pub(crate) enum Prepared<B> {
    /// Buffered: every attempt gets a copy.
    Replay(http::request::Parts, Bytes),
    /// Not repeatable: one attempt with the original.
    Once(Request<B>),
    /// The body failed to arrive.
    Unreadable,
}

/// Buffers the body of a retryable request if it is small and of known
/// length; anything else passes through once.
pub(crate) async fn prepare<B>(
    request: Request<B>,
    methods: &IdempotentMethods,
    max_body: usize,
) -> Prepared<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    if !methods.contains(request.method()) {
        return Prepared::Once(request);
    }
    let hint = request.body().size_hint();
    if request.body().is_end_stream() || hint.exact() == Some(0) {
        let (parts, _) = request.into_parts();
        return Prepared::Replay(parts, Bytes::new());
    }
    let known_small = hint
        .exact()
        .and_then(|length| usize::try_from(length).ok())
        .is_some_and(|length| length <= max_body);
    if !known_small {
        return Prepared::Once(request);
    }
    let (parts, body) = request.into_parts();
    match Limited::new(body, max_body).collect().await {
        Ok(collected) => Prepared::Replay(parts, collected.to_bytes()),
        Err(_) => Prepared::Unreadable,
    }
}

/// 400 for a request whose body broke off while being buffered.
pub(crate) fn unreadable_body<RB>() -> Response<ResilienceBody<RB>> {
    let mut response = Response::new(ResilienceBody::rejection(Bytes::from_static(
        b"request body could not be read\n",
    )));
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response
}

impl<S, B, RB> Service<Request<B>> for HttpRetryService<S>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Error: Send + 'static,
    B: Body + From<Bytes> + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    RB: Send + 'static,
{
    type Response = Response<ResilienceBody<RB>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut service = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            match prepare(request, &layer.methods, layer.max_replay_body).await {
                Prepared::Once(request) => {
                    Ok(service.call(request).await?.map(ResilienceBody::inner))
                }
                Prepared::Unreadable => Ok(unreadable_body()),
                Prepared::Replay(parts, body) => {
                    let result = layer
                        .retry
                        .execute_with(&layer.predicate, || {
                            let mut service = service.clone();
                            let request = Request::from_parts(parts.clone(), B::from(body.clone()));
                            async move { call_ready(&mut service, request).await }
                        })
                        .await;
                    match result {
                        Ok(response) => Ok(response.map(ResilienceBody::inner)),
                        Err(error) => rejection_response(error),
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(header::RETRY_AFTER, "120".parse().unwrap());
        assert_eq!(
            retry_after(&headers, SystemTime::now()),
            Some(Duration::from_secs(120))
        );
        headers.insert(
            header::RETRY_AFTER,
            "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap(),
        );
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777 - 30);
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(30)));
        // A date in the past means "now".
        assert_eq!(
            retry_after(&headers, now + Duration::from_secs(100)),
            Some(Duration::ZERO)
        );
        // The obsolete formats recipients must still accept (RFC 9110
        // §5.6.7's examples of the same instant).
        for obsolete in ["Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"] {
            headers.insert(header::RETRY_AFTER, obsolete.parse().unwrap());
            assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(30)));
        }
        for invalid in ["soon", "Sun, 06 Nov 1994 25:49:37 GMT", "-5"] {
            headers.insert(header::RETRY_AFTER, invalid.parse().unwrap());
            assert_eq!(retry_after(&headers, now), None, "{invalid}");
        }
    }
}
