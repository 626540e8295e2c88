//! Composing policies: the [`Policy`] trait, [`Chain`] and [`Fallback`].
//!
//! ```
//! use cortex_resilience::{Bulkhead, CircuitBreaker, Policy, PolicyExt, Retry, Timeout};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let policy = Bulkhead::builder("db").build().unwrap()
//!     .then(Retry::builder("db").build().unwrap())
//!     .then(CircuitBreaker::builder("db").build().unwrap())
//!     .then(Timeout::builder("db").build().unwrap());
//! assert_eq!(
//!     Policy::<(), ()>::describe(&policy),
//!     "Bulkhead -> Retry -> CircuitBreaker -> Timeout"
//! );
//! let rows = policy.execute(|| async { Ok::<_, ()>(42) }).await;
//! assert_eq!(rows, Ok(42));
//! # }
//! ```

// The trait promises `Send` futures, which `async fn` in an impl cannot
// spell; the impls keep the trait's signature.
#![allow(clippy::manual_async_fn)]

use std::fmt;
use std::future::Future;

use crate::{
    Bulkhead, CircuitBreaker, Classify, DefaultClassifier, DefaultRetryPredicate, RateLimiter,
    ResilienceError, Retry, ShouldRetry, Timeout,
};

/// A resilience policy around calls producing `Result<T, ResilienceError<E>>`.
///
/// `run` takes a factory because some policies (retry) call it more than
/// once. Policies compose with [`PolicyExt::then`]: the left one is
/// outermost.
pub trait Policy<T: Send, E: Send>: Send + Sync {
    /// The policy's kind, or for a chain the kinds joined by `" -> "`.
    fn describe(&self) -> String;

    /// Runs `call` under this policy.
    fn run<F, Fut>(&self, call: F) -> impl Future<Output = Result<T, ResilienceError<E>>> + Send
    where
        F: Fn() -> Fut + Send + Sync,
        Fut: Future<Output = Result<T, ResilienceError<E>>> + Send;
}

/// Composition helpers for every [`Policy`].
pub trait PolicyExt: Sized {
    /// `self` around `inner`: `self` sees each call first.
    fn then<I>(self, inner: I) -> Chain<Self, I> {
        Chain { outer: self, inner }
    }

    /// Runs a call returning `Result<T, E>` under this policy.
    fn execute<T, E, F, Fut>(
        &self,
        call: F,
    ) -> impl Future<Output = Result<T, ResilienceError<E>>> + Send
    where
        Self: Policy<T, E>,
        T: Send,
        E: Send,
        F: Fn() -> Fut + Send + Sync,
        Fut: Future<Output = Result<T, E>> + Send,
    {
        async move {
            let call = &call;
            self.run(move || async move { call().await.map_err(ResilienceError::Inner) })
                .await
        }
    }
}

impl<P> PolicyExt for P {}

/// Two policies, `outer` around `inner`.
#[derive(Debug, Clone)]
pub struct Chain<O, I> {
    outer: O,
    inner: I,
}

impl<T: Send, E: Send, O: Policy<T, E>, I: Policy<T, E>> Policy<T, E> for Chain<O, I> {
    fn describe(&self) -> String {
        format!("{} -> {}", self.outer.describe(), self.inner.describe())
    }

    fn run<F, Fut>(&self, call: F) -> impl Future<Output = Result<T, ResilienceError<E>>> + Send
    where
        F: Fn() -> Fut + Send + Sync,
        Fut: Future<Output = Result<T, ResilienceError<E>>> + Send,
    {
        async move {
            let call = &call;
            let inner = &self.inner;
            self.outer.run(move || inner.run(call)).await
        }
    }
}

impl<T: Send, E: Send> Policy<T, E> for CircuitBreaker {
    fn describe(&self) -> String {
        "CircuitBreaker".to_owned()
    }

    fn run<F, Fut>(&self, call: F) -> impl Future<Output = Result<T, ResilienceError<E>>> + Send
    where
        F: Fn() -> Fut + Send + Sync,
        Fut: Future<Output = Result<T, ResilienceError<E>>> + Send,
    {
        self.execute_with(&DefaultClassifier, call)
    }
}

/// A circuit breaker with its own classifier, from
/// [`CircuitBreaker::classified`].
#[derive(Debug, Clone)]
pub struct ClassifiedBreaker<C> {
    pub(crate) breaker: CircuitBreaker,
    pub(crate) classifier: C,
}

impl<T: Send, E: Send, C: Classify<T, E>> Policy<T, E> for ClassifiedBreaker<C> {
    fn describe(&self) -> String {
        "CircuitBreaker".to_owned()
    }

    fn run<F, Fut>(&self, call: F) -> impl Future<Output = Result<T, ResilienceError<E>>> + Send
    where
        F: Fn() -> Fut + Send + Sync,
        Fut: Future<Output = Result<T, ResilienceError<E>>> + Send,
    {
        self.breaker.execute_with(&self.classifier, call)
    }
}

impl<T: Send, E: Send> Policy<T, E> for Retry {
    fn describe(&self) -> String {
        "Retry".to_owned()
    }

    fn run<F, Fut>(&self, call: F) -> impl Future<Output = Result<T, ResilienceError<E>>> + Send
    where
        F: Fn() -> Fut + Send + Sync,
        Fut: Future<Output = Result<T, ResilienceError<E>>> + Send,
    {
        self.execute_with(&DefaultRetryPredicate, call)
    }
}

/// A retry policy with its own predicate, from [`Retry::when`].
#[derive(Debug, Clone)]
pub struct RetryWhen<P> {
    pub(crate) retry: Retry,
    pub(crate) predicate: P,
}

impl<T: Send, E: Send, P: ShouldRetry<T, E>> Policy<T, E> for RetryWhen<P> {
    fn describe(&self) -> String {
        "Retry".to_owned()
    }

    fn run<F, Fut>(&self, call: F) -> impl Future<Output = Result<T, ResilienceError<E>>> + Send
    where
        F: Fn() -> Fut + Send + Sync,
        Fut: Future<Output = Result<T, ResilienceError<E>>> + Send,
    {
        self.retry.execute_with(&self.predicate, call)
    }
}

impl<T: Send, E: Send> Policy<T, E> for Bulkhead {
    fn describe(&self) -> String {
        "Bulkhead".to_owned()
    }

    fn run<F, Fut>(&self, call: F) -> impl Future<Output = Result<T, ResilienceError<E>>> + Send
    where
        F: Fn() -> Fut + Send + Sync,
        Fut: Future<Output = Result<T, ResilienceError<E>>> + Send,
    {
        self.run_once(call)
    }
}

impl<T: Send, E: Send> Policy<T, E> for Timeout {
    fn describe(&self) -> String {
        "Timeout".to_owned()
    }

    fn run<F, Fut>(&self, call: F) -> impl Future<Output = Result<T, ResilienceError<E>>> + Send
    where
        F: Fn() -> Fut + Send + Sync,
        Fut: Future<Output = Result<T, ResilienceError<E>>> + Send,
    {
        self.run_once(call)
    }
}

impl<T: Send, E: Send> Policy<T, E> for RateLimiter {
    fn describe(&self) -> String {
        "RateLimiter".to_owned()
    }

    fn run<F, Fut>(&self, call: F) -> impl Future<Output = Result<T, ResilienceError<E>>> + Send
    where
        F: Fn() -> Fut + Send + Sync,
        Fut: Future<Output = Result<T, ResilienceError<E>>> + Send,
    {
        async move {
            self.acquire().await?;
            call().await
        }
    }
}

/// Turns chosen errors into values.
///
/// ```
/// use cortex_resilience::{CircuitBreaker, Fallback, PolicyExt, ResilienceError};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let breaker = CircuitBreaker::builder("prices").build().unwrap();
/// breaker.transition_to_forced_open();
/// // Serve a cached price while the pricing service is cut off.
/// let policy = Fallback::new(|error: ResilienceError<()>| match error {
///     ResilienceError::CircuitOpen { .. } => Ok(9.99),
///     other => Err(other),
/// })
/// .then(breaker);
/// assert_eq!(policy.execute(|| async { Ok::<_, ()>(12.5) }).await, Ok(9.99));
/// # }
/// ```
#[derive(Clone)]
pub struct Fallback<F> {
    fallback: F,
}

impl<F> fmt::Debug for Fallback<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Fallback")
    }
}

impl<F> Fallback<F> {
    /// Calls `fallback` with every error; it returns a value or an error.
    pub const fn new(fallback: F) -> Self {
        Self { fallback }
    }
}

impl<T: Send, E: Send, FB> Policy<T, E> for Fallback<FB>
where
    FB: Fn(ResilienceError<E>) -> Result<T, ResilienceError<E>> + Send + Sync,
{
    fn describe(&self) -> String {
        "Fallback".to_owned()
    }

    fn run<F, Fut>(&self, call: F) -> impl Future<Output = Result<T, ResilienceError<E>>> + Send
    where
        F: Fn() -> Fut + Send + Sync,
        Fut: Future<Output = Result<T, ResilienceError<E>>> + Send,
    {
        async move { call().await.or_else(&self.fallback) }
    }
}
