//! Which results count as failures.
//!
//! Circuit breakers decide per call whether it was a success, a failure or
//! neither ([`Outcome::Ignored`]: counted nowhere, like resilience4j's
//! `ignoreExceptions`). A [`Classify`] makes that call; any
//! `Fn(&Result<T, ResilienceError<E>>) -> Outcome` is one.

use http::Response;

use crate::ResilienceError;

/// How one call counts towards a circuit breaker's failure rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Counts as a successful call.
    Success,
    /// Counts as a failed call.
    Failure,
    /// Counts as neither (and frees a half-open probe slot).
    Ignored,
}

/// Decides the [`Outcome`] of a call from its result.
///
/// ```
/// use cortex_resilience::{Classify, Outcome, ResilienceError};
///
/// #[derive(Debug)]
/// enum DbError { NotFound, Unavailable }
///
/// // A missing row is the caller's problem, not the database's.
/// let classify = |result: &Result<u32, ResilienceError<DbError>>| match result {
///     Ok(_) | Err(ResilienceError::Inner(DbError::NotFound)) => Outcome::Success,
///     Err(_) => Outcome::Failure,
/// };
/// assert_eq!(classify.classify(&Err(ResilienceError::Inner(DbError::Unavailable))), Outcome::Failure);
/// ```
pub trait Classify<T, E>: Send + Sync {
    /// The outcome of `result`.
    fn classify(&self, result: &Result<T, ResilienceError<E>>) -> Outcome;
}

impl<T, E, F> Classify<T, E> for F
where
    F: Fn(&Result<T, ResilienceError<E>>) -> Outcome + Send + Sync,
{
    fn classify(&self, result: &Result<T, ResilienceError<E>>) -> Outcome {
        self(result)
    }
}

/// `Ok` is a success, every `Err` a failure.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultClassifier;

impl<T, E> Classify<T, E> for DefaultClassifier {
    #[inline]
    fn classify(&self, result: &Result<T, ResilienceError<E>>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure,
        }
    }
}

/// For HTTP: 5xx responses and errors are failures, everything else a
/// success. axum handlers report failure as `Ok(500)`, which
/// [`DefaultClassifier`] would count as a success.
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpClassifier;

impl<B, E> Classify<Response<B>, E> for HttpClassifier {
    #[inline]
    fn classify(&self, result: &Result<Response<B>, ResilienceError<E>>) -> Outcome {
        match result {
            Ok(response) if !response.status().is_server_error() => Outcome::Success,
            _ => Outcome::Failure,
        }
    }
}
