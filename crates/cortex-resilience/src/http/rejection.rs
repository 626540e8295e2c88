//! The rejection → response mapping: which status and headers each policy
//! error becomes.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Response};

use super::body::ResilienceBody;
use crate::ResilienceError;
use crate::error::retry_after_seconds;
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
/// They go on every answer a limiter lets through, so each costs one
/// allocation: constant names (a `&str` name is copied on insert) and
/// [`integer_value`].
pub(crate) fn insert_rate_limit_headers(headers: &mut HeaderMap, decision: &RateLimitDecision) {
    const LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
    const REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
    const RESET: HeaderName = HeaderName::from_static("ratelimit-reset");
    headers.insert(LIMIT, integer_value(u64::from(decision.limit)));
    headers.insert(REMAINING, integer_value(u64::from(decision.remaining)));
    headers.insert(RESET, integer_value(retry_after_seconds(decision.reset)));
}

/// `n` as a header value in one allocation (`HeaderValue::from(u64)`
/// makes two: a `BytesMut`, then the shared `Bytes` it is frozen into).
fn integer_value(mut n: u64) -> HeaderValue {
    let mut digits = [0_u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Digits are always a valid header value.
    HeaderValue::from_bytes(&digits[start..]).unwrap_or(HeaderValue::from_static("0"))
}

#[cfg(test)]
mod integer_tests {
    use super::integer_value;

    #[test]
    fn integers_render_as_their_decimal_digits() {
        for n in [0, 7, 10, 99, 12_345, u64::MAX] {
            assert_eq!(integer_value(n), n.to_string().as_str());
        }
    }
}
