//! The rejection → response mapping: which status and headers each policy
//! error becomes.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response};

use super::body::ResilienceBody;
use crate::ResilienceError;
use crate::error::retry_after_value;
use crate::ratelimit::RateLimitDecision;

/// Which policy produced a response, attached as a response extension to
/// every rejection the HTTP adapter makes, so outer layers (a retry, a
/// fallback) can tell a rejection from a downstream 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyRejection {
    /// The circuit breaker was open.
    CircuitOpen,
    /// The bulkhead was full.
    BulkheadFull,
    /// The rate limit was exceeded.
    RateLimited,
    /// The call timed out.
    Timeout,
}

/// The response for a policy error (503 + `Retry-After` for an open
/// breaker, 503 for a full bulkhead, 429 + `Retry-After` for a rate limit,
/// 504 for a timeout; each with the RFC 9457 `application/problem+json`
/// body `ResilienceError::into_response` gives), or the inner error given
/// back.
pub(crate) fn rejection_response<B, E>(
    error: ResilienceError<E>,
) -> Result<Response<ResilienceBody<B>>, E> {
    let kind = match error {
        ResilienceError::Inner(inner) => return Err(inner),
        ResilienceError::CircuitOpen { .. } => PolicyRejection::CircuitOpen,
        ResilienceError::BulkheadFull => PolicyRejection::BulkheadFull,
        ResilienceError::RateLimited { .. } => PolicyRejection::RateLimited,
        ResilienceError::Timeout => PolicyRejection::Timeout,
    };
    let Some(problem) = error.problem() else {
        // Only `Inner` has no problem, and it returned above.
        let mut response = Response::new(ResilienceBody::rejection(Bytes::new()));
        *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        return Ok(response);
    };
    let mut response = Response::new(ResilienceBody::rejection(problem.body.clone()));
    problem.head(&mut response);
    response.extensions_mut().insert(kind);
    Ok(response)
}

/// The IETF `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`
/// headers (draft-ietf-httpapi-ratelimit-headers) of a limiter's decision.
pub(crate) fn insert_rate_limit_headers(headers: &mut HeaderMap, decision: &RateLimitDecision) {
    headers.insert("ratelimit-limit", HeaderValue::from(decision.limit));
    headers.insert("ratelimit-remaining", HeaderValue::from(decision.remaining));
    headers.insert("ratelimit-reset", retry_after_value(decision.reset));
}
