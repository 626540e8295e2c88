//! [`Pipeline`]: the policies in the standard order, its builder and the
//! run through them.

use std::future::Future;
use std::sync::Arc;

use crate::{
    Bulkhead, CircuitBreaker, Classify, DefaultClassifier, DefaultRetryPredicate, HttpClassifier,
    HttpRetryPredicate, Policy, RateLimiter, ResilienceError, Retry, ShouldRetry, Timeout,
};

/// The standard pipeline. Cheap to clone; clones share every policy.
#[derive(Debug, Clone)]
pub struct Pipeline<C = DefaultClassifier, P = DefaultRetryPredicate> {
    parts: Arc<Parts>,
    classifier: C,
    predicate: P,
}

#[derive(Debug, Default)]
struct Parts {
    rate_limiter: Option<RateLimiter>,
    bulkhead: Option<Bulkhead>,
    timeout: Option<Timeout>,
    retry: Option<Retry>,
    circuit_breaker: Option<CircuitBreaker>,
    attempt_timeout: Option<Timeout>,
}

/// Builds a [`Pipeline`]; every policy is optional.
#[derive(Debug, Default)]
#[must_use]
pub struct PipelineBuilder {
    parts: Parts,
}

impl PipelineBuilder {
    /// Outermost: a global rate limiter.
    pub fn rate_limiter(mut self, limiter: RateLimiter) -> Self {
        self.parts.rate_limiter = Some(limiter);
        self
    }

    /// A bulkhead.
    pub fn bulkhead(mut self, bulkhead: Bulkhead) -> Self {
        self.parts.bulkhead = Some(bulkhead);
        self
    }

    /// A timeout over all attempts and their backoff.
    pub fn timeout(mut self, timeout: Timeout) -> Self {
        self.parts.timeout = Some(timeout);
        self
    }

    /// A retry policy.
    pub fn retry(mut self, retry: Retry) -> Self {
        self.parts.retry = Some(retry);
        self
    }

    /// A circuit breaker, seeing every attempt.
    pub fn circuit_breaker(mut self, breaker: CircuitBreaker) -> Self {
        self.parts.circuit_breaker = Some(breaker);
        self
    }

    /// Innermost: a timeout per attempt.
    pub fn attempt_timeout(mut self, timeout: Timeout) -> Self {
        self.parts.attempt_timeout = Some(timeout);
        self
    }

    /// A pipeline classifying `Ok` as success and retrying inner errors.
    pub fn build(self) -> Pipeline {
        self.build_with(DefaultClassifier, DefaultRetryPredicate)
    }

    /// A pipeline for HTTP: 5xx responses are breaker failures, and
    /// 429/502/503/504 are retried (see [`HttpRetryPredicate`]).
    pub fn build_http(self) -> Pipeline<HttpClassifier, HttpRetryPredicate> {
        self.build_with(HttpClassifier, HttpRetryPredicate::default())
    }

    /// A pipeline with your own classifier and retry predicate.
    pub fn build_with<C, P>(self, classifier: C, predicate: P) -> Pipeline<C, P> {
        Pipeline {
            parts: Arc::new(self.parts),
            classifier,
            predicate,
        }
    }
}

impl Pipeline {
    /// A builder with no policies.
    pub fn builder() -> PipelineBuilder {
        PipelineBuilder::default()
    }
}

impl<C, P> Pipeline<C, P> {
    /// Runs `call` through every policy of the pipeline. The same as
    /// [`PolicyExt::execute`](crate::PolicyExt::execute), without the
    /// import; for calls whose errors are already [`ResilienceError`]s,
    /// use [`Policy::run`].
    pub async fn execute<T, E, F, Fut>(&self, call: F) -> Result<T, ResilienceError<E>>
    where
        T: Send,
        E: Send,
        C: Classify<T, E>,
        P: ShouldRetry<T, E>,
        F: Fn() -> Fut + Send + Sync,
        Fut: Future<Output = Result<T, E>> + Send,
    {
        let call = &call;
        self.run_pipeline(
            move || async move { call().await.map_err(ResilienceError::Inner) },
            true,
        )
        .await
    }

    /// The circuit breaker, if any.
    pub fn circuit_breaker(&self) -> Option<&CircuitBreaker> {
        self.parts.circuit_breaker.as_ref()
    }

    /// Every policy in the pipeline, outermost first.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn members(&self) -> Vec<crate::members::Member> {
        use crate::members::{LimiterHandle, Member};
        let parts = &*self.parts;
        [
            parts
                .rate_limiter
                .as_ref()
                .map(|limiter| Member::RateLimiter(LimiterHandle::global(limiter))),
            parts.bulkhead.clone().map(Member::Bulkhead),
            parts.timeout.clone().map(Member::Timeout),
            parts.retry.clone().map(Member::Retry),
            parts.circuit_breaker.clone().map(Member::CircuitBreaker),
            parts.attempt_timeout.clone().map(Member::Timeout),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// Whether a retry is configured, so that requests are replayed.
    pub(super) fn retries(&self) -> bool {
        self.parts.retry.is_some()
    }

    /// Runs `call` through every policy; `retry: false` skips the retry
    /// (for a request that cannot be sent twice).
    pub(super) async fn run_pipeline<T, E, F, Fut>(
        &self,
        call: F,
        retry: bool,
    ) -> Result<T, ResilienceError<E>>
    where
        T: Send,
        E: Send,
        C: Classify<T, E>,
        P: ShouldRetry<T, E>,
        F: Fn() -> Fut + Send + Sync,
        Fut: Future<Output = Result<T, ResilienceError<E>>> + Send,
    {
        let parts = &*self.parts;
        if let Some(limiter) = &parts.rate_limiter {
            limiter.acquire().await?;
        }
        let call = &call;
        let classifier = &self.classifier;
        let attempt = move || async move {
            let timed = move || async move {
                match &parts.attempt_timeout {
                    Some(timeout) => timeout.run_once(call).await,
                    None => call().await,
                }
            };
            match &parts.circuit_breaker {
                Some(breaker) => breaker.execute_with(classifier, timed).await,
                None => timed().await,
            }
        };
        let predicate = &self.predicate;
        let attempts = move || async move {
            match (&parts.retry, retry) {
                (Some(policy), true) => policy.execute_with(predicate, attempt).await,
                _ => attempt().await,
            }
        };
        let bounded = move || async move {
            match &parts.timeout {
                Some(timeout) => timeout.run_once(attempts).await,
                None => attempts().await,
            }
        };
        match &parts.bulkhead {
            Some(bulkhead) => bulkhead.run_once(bounded).await,
            None => bounded().await,
        }
    }
}

impl<T, E, C, P> Policy<T, E> for Pipeline<C, P>
where
    T: Send,
    E: Send,
    C: Classify<T, E>,
    P: ShouldRetry<T, E>,
{
    fn describe(&self) -> String {
        let parts = &*self.parts;
        let names: [(bool, &str); 6] = [
            (parts.rate_limiter.is_some(), "RateLimiter"),
            (parts.bulkhead.is_some(), "Bulkhead"),
            (parts.timeout.is_some(), "Timeout"),
            (parts.retry.is_some(), "Retry"),
            (parts.circuit_breaker.is_some(), "CircuitBreaker"),
            (parts.attempt_timeout.is_some(), "Timeout"),
        ];
        names
            .iter()
            .filter(|(present, _)| *present)
            .map(|(_, name)| *name)
            .collect::<Vec<_>>()
            .join(" -> ")
    }

    fn run<F, Fut>(&self, call: F) -> impl Future<Output = Result<T, ResilienceError<E>>> + Send
    where
        F: Fn() -> Fut + Send + Sync,
        Fut: Future<Output = Result<T, ResilienceError<E>>> + Send,
    {
        self.run_pipeline(call, true)
    }
}
