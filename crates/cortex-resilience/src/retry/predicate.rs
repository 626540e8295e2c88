//! Which results are retried: [`ShouldRetry`], the default predicate, and
//! the HTTP one with `Retry-After`.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, Response, StatusCode, header};

use crate::ResilienceError;
use crate::http::PolicyRejection;

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Return this result.
    Done,
    /// Retry after the backoff delay.
    Retry,
    /// Retry after at least this long (a `Retry-After` header).
    RetryAfter(Duration),
}

impl From<bool> for RetryDecision {
    fn from(retry: bool) -> Self {
        if retry { Self::Retry } else { Self::Done }
    }
}

/// Decides whether a result is retried. Any
/// `Fn(&Result<T, ResilienceError<E>>) -> RetryDecision` is one.
///
/// ```
/// use cortex_resilience::{ResilienceError, RetryDecision, ShouldRetry};
///
/// // Retry 503s from the upstream, never 400s.
/// let should_retry = |result: &Result<u16, ResilienceError<()>>| match result {
///     Ok(503) => RetryDecision::Retry,
///     _ => RetryDecision::Done,
/// };
/// assert_eq!(should_retry.should_retry(&Ok(400)), RetryDecision::Done);
/// ```
pub trait ShouldRetry<T, E>: Send + Sync {
    /// The decision for `result`.
    fn should_retry(&self, result: &Result<T, ResilienceError<E>>) -> RetryDecision;
}

impl<T, E, F> ShouldRetry<T, E> for F
where
    F: Fn(&Result<T, ResilienceError<E>>) -> RetryDecision + Send + Sync,
{
    fn should_retry(&self, result: &Result<T, ResilienceError<E>>) -> RetryDecision {
        self(result)
    }
}

/// Retries inner errors and timeouts; never successes or rejections.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultRetryPredicate;

impl<T, E> ShouldRetry<T, E> for DefaultRetryPredicate {
    #[inline]
    fn should_retry(&self, result: &Result<T, ResilienceError<E>>) -> RetryDecision {
        match result {
            Err(ResilienceError::Inner(_) | ResilienceError::Timeout) => RetryDecision::Retry,
            _ => RetryDecision::Done,
        }
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
