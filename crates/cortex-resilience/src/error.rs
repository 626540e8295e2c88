//! The one error type every policy returns.

use std::error::Error;
use std::fmt;
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use problem_details::{JsonProblemDetails, ProblemDetails, ProblemType};
use serde::Serialize;

/// Why a call protected by a policy did not produce the inner value.
///
/// Rejections (`CircuitOpen`, `BulkheadFull`, `RateLimited`) mean the inner
/// call never ran; `Timeout` means it ran and was cancelled; `Inner` is the
/// inner call's own error. As an axum response it is 503 / 503 / 429 / 504
/// with `Retry-After` where known and an RFC 9457 `application/problem+json`
/// body (`type`, `title`, `status`, `detail`, and the members `policy` and
/// `retry_after`), so handlers can return it directly; `Inner` answers as
/// the inner error does.
///
/// ```
/// use axum::response::IntoResponse;
/// use cortex_resilience::ResilienceError;
/// use std::time::Duration;
///
/// let error: ResilienceError<std::convert::Infallible> =
///     ResilienceError::RateLimited { retry_after: Duration::from_millis(1500) };
/// let response = error.into_response();
/// assert_eq!(response.status(), 429);
/// assert_eq!(response.headers()["retry-after"], "2");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResilienceError<E> {
    /// The inner call failed.
    Inner(E),
    /// The circuit breaker is open (or forced open) and rejected the call.
    CircuitOpen {
        /// When the breaker will next admit a probe, if it knows.
        retry_after: Option<Duration>,
    },
    /// The bulkhead had no free permit and no queue space (or the queue
    /// wait ran out).
    BulkheadFull,
    /// The rate limiter had no permission left.
    RateLimited {
        /// When a permission will be available.
        retry_after: Duration,
    },
    /// The call took longer than its timeout and was cancelled.
    Timeout,
}

impl<E> ResilienceError<E> {
    /// True for errors raised by a policy before the inner call ran.
    pub fn is_rejection(&self) -> bool {
        matches!(
            self,
            Self::CircuitOpen { .. } | Self::BulkheadFull | Self::RateLimited { .. }
        )
    }

    /// The inner error, if this is one.
    pub fn into_inner(self) -> Option<E> {
        match self {
            Self::Inner(error) => Some(error),
            _ => None,
        }
    }

    /// Maps the inner error.
    pub fn map_inner<F, E2>(self, map: F) -> ResilienceError<E2>
    where
        F: FnOnce(E) -> E2,
    {
        match self {
            Self::Inner(error) => ResilienceError::Inner(map(error)),
            Self::CircuitOpen { retry_after } => ResilienceError::CircuitOpen { retry_after },
            Self::BulkheadFull => ResilienceError::BulkheadFull,
            Self::RateLimited { retry_after } => ResilienceError::RateLimited { retry_after },
            Self::Timeout => ResilienceError::Timeout,
        }
    }

    /// The status, `Retry-After`, policy name and detail (the `Display`
    /// text) of a policy error, or `None` for `Inner`.
    fn rejection_parts(
        &self,
    ) -> Option<(StatusCode, Option<Duration>, &'static str, &'static str)> {
        use StatusCode as S;
        match self {
            Self::Inner(_) => None,
            Self::CircuitOpen { retry_after } => Some((
                S::SERVICE_UNAVAILABLE,
                *retry_after,
                "circuit_breaker",
                "circuit breaker is open",
            )),
            Self::BulkheadFull => {
                Some((S::SERVICE_UNAVAILABLE, None, "bulkhead", "bulkhead is full"))
            }
            Self::RateLimited { retry_after } => Some((
                S::TOO_MANY_REQUESTS,
                Some(*retry_after),
                "rate_limiter",
                "rate limit exceeded",
            )),
            Self::Timeout => Some((S::GATEWAY_TIMEOUT, None, "timeout", "call timed out")),
        }
    }

    /// The RFC 9457 problem of a policy error, or `None` for `Inner`.
    pub(crate) fn problem(&self) -> Option<PolicyProblem> {
        let (status, retry_after, policy, detail) = self.rejection_parts()?;
        let seconds = retry_after.map(retry_after_seconds);
        let details = ProblemDetails::from_status_code(status)
            .with_type(ProblemType::default())
            .with_detail(detail)
            .with_extensions(PolicyMembers {
                policy,
                retry_after: seconds,
            });
        // Strings and integers always serialise; an empty body would still
        // carry the status and headers.
        let body = JsonProblemDetails::from(details)
            .to_body_string()
            .map(Bytes::from)
            .unwrap_or_default();
        Some(PolicyProblem {
            status,
            retry_after,
            body,
        })
    }
}

/// The extension members of a policy's problem: which policy refused, and
/// when to come back (whole seconds, as in `Retry-After`).
#[derive(Serialize)]
struct PolicyMembers {
    policy: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<u64>,
}

/// A policy error as an HTTP answer: its status, `Retry-After` and
/// `application/problem+json` body.
pub(crate) struct PolicyProblem {
    pub(crate) status: StatusCode,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) body: Bytes,
}

impl PolicyProblem {
    /// Sets the status, `Content-Type` and `Retry-After` of `response`.
    pub(crate) fn head<B>(&self, response: &mut http::Response<B>) {
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(JsonProblemDetails::<()>::CONTENT_TYPE),
        );
        if let Some(retry_after) = self.retry_after {
            headers.insert(header::RETRY_AFTER, retry_after_value(retry_after));
        }
    }
}

impl<E: fmt::Display> fmt::Display for ResilienceError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inner(error) => error.fmt(f),
            Self::CircuitOpen { .. } => f.write_str("circuit breaker is open"),
            Self::BulkheadFull => f.write_str("bulkhead is full"),
            Self::RateLimited { .. } => f.write_str("rate limit exceeded"),
            Self::Timeout => f.write_str("call timed out"),
        }
    }
}

impl<E: Error + 'static> Error for ResilienceError<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Inner(error) => Some(error),
            _ => None,
        }
    }
}

impl<E: IntoResponse> IntoResponse for ResilienceError<E> {
    fn into_response(self) -> Response {
        let Some(problem) = self.problem() else {
            // Only `Inner` has no problem of its own.
            return match self {
                Self::Inner(error) => error.into_response(),
                _ => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            };
        };
        let mut response = Response::new(axum::body::Body::from(problem.body.clone()));
        problem.head(&mut response);
        response
    }
}

/// A circuit breaker refused a call: the `Err` of
/// [`CircuitBreaker::try_acquire_permission`](crate::CircuitBreaker::try_acquire_permission).
/// Converts into [`ResilienceError::CircuitOpen`] with `?`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("circuit breaker is open")]
pub struct CircuitOpen {
    /// When the breaker will next admit a probe, if it knows.
    pub retry_after: Option<Duration>,
}

/// A bulkhead had no permit for a call: the `Err` of
/// [`Bulkhead::try_acquire`](crate::Bulkhead::try_acquire) and
/// [`Bulkhead::acquire`](crate::Bulkhead::acquire). Converts into
/// [`ResilienceError::BulkheadFull`] with `?`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("bulkhead is full ({max_concurrent_calls} concurrent calls)")]
pub struct BulkheadFull {
    /// The bulkhead's limit on concurrent calls.
    pub max_concurrent_calls: u32,
}

/// A rate limiter had no permit for a call: the `Err` of
/// [`RateLimiter::try_acquire`](crate::RateLimiter::try_acquire),
/// [`RateLimiter::acquire`](crate::RateLimiter::acquire) and
/// [`KeyedRateLimiter::try_acquire`](crate::KeyedRateLimiter::try_acquire).
/// Converts into [`ResilienceError::RateLimited`] with `?`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("rate limit exceeded")]
pub struct RateLimited {
    /// When a permit will be available.
    pub retry_after: Duration,
}

impl<E> From<CircuitOpen> for ResilienceError<E> {
    fn from(CircuitOpen { retry_after }: CircuitOpen) -> Self {
        Self::CircuitOpen { retry_after }
    }
}

impl<E> From<BulkheadFull> for ResilienceError<E> {
    fn from(_: BulkheadFull) -> Self {
        Self::BulkheadFull
    }
}

impl<E> From<RateLimited> for ResilienceError<E> {
    fn from(RateLimited { retry_after }: RateLimited) -> Self {
        Self::RateLimited { retry_after }
    }
}

/// `Retry-After` in whole seconds, rounded up so clients never come back
/// early (RFC 9110 §10.2.3 allows only integers).
pub(crate) fn retry_after_value(retry_after: Duration) -> HeaderValue {
    HeaderValue::from(retry_after_seconds(retry_after))
}

/// Whole seconds, rounded up: `Retry-After` and the problem's
/// `retry_after` member always agree.
pub(crate) fn retry_after_seconds(retry_after: Duration) -> u64 {
    let mut seconds = retry_after.as_secs();
    if retry_after.subsec_nanos() > 0 {
        seconds += 1;
    }
    seconds
}

/// A policy configuration that cannot work, reported by `build()` and
/// `from_config()`; it names the policy instance, so it can be reported
/// (or `?`-converted into a [`RegistryError`](crate::RegistryError))
/// without more context.
///
/// ```
/// use cortex_resilience::Bulkhead;
///
/// let error = Bulkhead::builder("uploads").max_concurrent_calls(0).build().unwrap_err();
/// assert_eq!(error.name, "uploads");
/// assert_eq!(
///     error.to_string(),
///     "invalid configuration of Bulkhead \"uploads\": `max_concurrent_calls` must be at least 1"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration of {policy} {name:?}: `{field}` {reason}")]
pub struct ConfigError {
    /// The kind of policy (`CircuitBreaker`, `Retry`...).
    pub policy: &'static str,
    /// The instance's name, as given to `builder(name)`.
    pub name: String,
    /// The offending field.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl ConfigError {
    pub(crate) fn new(
        policy: &'static str,
        name: &str,
        field: &'static str,
        reason: &'static str,
    ) -> Self {
        Self {
            policy,
            name: name.to_owned(),
            field,
            reason,
        }
    }
}
