//! The one error type every policy returns.

use std::error::Error;
use std::fmt;
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

/// Why a call protected by a policy did not produce the inner value.
///
/// Rejections (`CircuitOpen`, `BulkheadFull`, `RateLimited`) mean the inner
/// call never ran; `Timeout` means it ran and was cancelled; `Inner` is the
/// inner call's own error. As an axum response it is 503 / 503 / 429 / 504
/// with `Retry-After` where known, so handlers can return it directly.
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

    /// The status, `Retry-After` and body text of a policy error, or `None`
    /// for `Inner`.
    pub(crate) fn rejection_parts(&self) -> Option<(StatusCode, Option<Duration>, &'static str)> {
        match self {
            Self::Inner(_) => None,
            Self::CircuitOpen { retry_after } => Some((
                StatusCode::SERVICE_UNAVAILABLE,
                *retry_after,
                "circuit breaker is open\n",
            )),
            Self::BulkheadFull => Some((
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                "too many concurrent requests\n",
            )),
            Self::RateLimited { retry_after } => Some((
                StatusCode::TOO_MANY_REQUESTS,
                Some(*retry_after),
                "rate limit exceeded\n",
            )),
            Self::Timeout => Some((StatusCode::GATEWAY_TIMEOUT, None, "request timed out\n")),
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
        if let Self::Inner(error) = self {
            return error.into_response();
        }
        // Every other variant has rejection parts.
        let (status, retry_after, text) =
            self.rejection_parts()
                .unwrap_or((StatusCode::INTERNAL_SERVER_ERROR, None, ""));
        let mut response = (status, text).into_response();
        if let Some(retry_after) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, retry_after_value(retry_after));
        }
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
    let mut seconds = retry_after.as_secs();
    if retry_after.subsec_nanos() > 0 {
        seconds += 1;
    }
    HeaderValue::from(seconds)
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
