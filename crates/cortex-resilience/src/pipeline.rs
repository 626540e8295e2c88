//! The standard pipeline: every policy in the recommended order, as one
//! [`Policy`], one tower layer or one HTTP layer.
//!
//! Outermost first: rate limiter → bulkhead → total timeout → retry →
//! circuit breaker → per-attempt timeout → the call. Admission control
//! comes first so rejected calls cost nothing; the total timeout bounds
//! all attempts and their backoff; the breaker sees (and counts) every
//! attempt; the per-attempt timeout makes a hung attempt a failure the
//! breaker and the retry both see.
//!
//! ```
//! use std::time::Duration;
//! use cortex_resilience::{Bulkhead, CircuitBreaker, Pipeline, Policy, Retry, Timeout};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let total = Timeout::builder("inventory-total").timeout_duration(Duration::from_secs(5));
//! let pipeline = Pipeline::builder()
//!     .bulkhead(Bulkhead::builder("inventory").build().unwrap())
//!     .timeout(total.build().unwrap())
//!     .retry(Retry::builder("inventory").build().unwrap())
//!     .circuit_breaker(CircuitBreaker::builder("inventory").build().unwrap())
//!     .attempt_timeout(Timeout::builder("inventory-attempt").build().unwrap())
//!     .build();
//! assert_eq!(
//!     Policy::<(), ()>::describe(&pipeline),
//!     "Bulkhead -> Timeout -> Retry -> CircuitBreaker -> Timeout"
//! );
//! assert_eq!(pipeline.execute(|| async { Ok::<_, ()>(7) }).await, Ok(7));
//! # }
//! ```

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use tower_layer::Layer;
use tower_service::Service;

use crate::boxed::{BoxError, BoxFuture};
use crate::http::{ResilienceBody, rejection_response};
use crate::retry::{
    DEFAULT_MAX_REPLAY_BODY, IdempotentMethods, Prepared, call_ready, prepare, unreadable_body,
};
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
    methods: IdempotentMethods,
    max_replay_body: usize,
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
            methods: IdempotentMethods::default(),
            max_replay_body: DEFAULT_MAX_REPLAY_BODY,
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
    /// HTTP only: the methods that may be retried. Default the idempotent ones.
    #[must_use]
    pub fn retry_methods(mut self, methods: IdempotentMethods) -> Self {
        self.methods = methods;
        self
    }

    /// HTTP only: the largest request body buffered for replay. 64 KiB.
    #[must_use]
    pub fn max_replay_body(mut self, bytes: usize) -> Self {
        self.max_replay_body = bytes;
        self
    }

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
    pub(crate) fn members(&self) -> Vec<crate::registry::Member> {
        use crate::registry::{LimiterHandle, Member};
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

    /// A tower layer running each call through the pipeline; requests
    /// must be `Clone` if a retry is configured.
    pub fn layer(&self) -> PipelineLayer<C, P>
    where
        C: Clone,
        P: Clone,
    {
        PipelineLayer {
            pipeline: self.clone(),
        }
    }

    /// An HTTP layer: policy errors become 503/429/504 responses, and
    /// only idempotent requests with a small, known-length body are
    /// retried (others run once, still under every other policy).
    pub fn http_layer(&self) -> HttpPipelineLayer<C, P>
    where
        C: Clone,
        P: Clone,
    {
        HttpPipelineLayer {
            pipeline: self.clone(),
        }
    }

    async fn run_pipeline<T, E, F, Fut>(
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

/// Runs requests through a [`Pipeline`]; see [`Pipeline::layer`].
#[derive(Debug, Clone)]
pub struct PipelineLayer<C, P> {
    pipeline: Pipeline<C, P>,
}

impl<S, C: Clone, P: Clone> Layer<S> for PipelineLayer<C, P> {
    type Service = PipelineService<S, C, P>;

    fn layer(&self, inner: S) -> Self::Service {
        PipelineService {
            inner,
            pipeline: self.pipeline.clone(),
        }
    }
}

/// A service behind a [`PipelineLayer`].
#[derive(Debug, Clone)]
pub struct PipelineService<S, C, P> {
    inner: S,
    pipeline: Pipeline<C, P>,
}

impl<S, C, P, Req> Service<Req> for PipelineService<S, C, P>
where
    S: Service<Req> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
    C: Classify<S::Response, S::Error> + Clone + 'static,
    P: ShouldRetry<S::Response, S::Error> + Clone + 'static,
    Req: Clone + Send + Sync + 'static,
{
    type Response = S::Response;
    type Error = ResilienceError<S::Error>;
    type Future = BoxFuture<Result<S::Response, ResilienceError<S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(ResilienceError::Inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let clone = self.inner.clone();
        let service = std::mem::replace(&mut self.inner, clone);
        let pipeline = self.pipeline.clone();
        Box::pin(async move {
            pipeline
                .run_pipeline(
                    || {
                        let mut service = service.clone();
                        let request = request.clone();
                        async move { call_ready(&mut service, request).await }
                    },
                    true,
                )
                .await
        })
    }
}

/// Runs HTTP requests through a [`Pipeline`]; see [`Pipeline::http_layer`].
#[derive(Debug, Clone)]
pub struct HttpPipelineLayer<C, P> {
    pipeline: Pipeline<C, P>,
}

impl<S, C: Clone, P: Clone> Layer<S> for HttpPipelineLayer<C, P> {
    type Service = HttpPipelineService<S, C, P>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpPipelineService {
            inner,
            pipeline: self.pipeline.clone(),
        }
    }
}

/// An HTTP service behind an [`HttpPipelineLayer`].
#[derive(Debug, Clone)]
pub struct HttpPipelineService<S, C, P> {
    inner: S,
    pipeline: Pipeline<C, P>,
}

impl<S, C, P, B, RB> Service<Request<B>> for HttpPipelineService<S, C, P>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Error: Send + 'static,
    C: Classify<Response<RB>, S::Error> + Clone + 'static,
    P: ShouldRetry<Response<RB>, S::Error> + Clone + 'static,
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
        let service = std::mem::replace(&mut self.inner, clone);
        let pipeline = self.pipeline.clone();
        Box::pin(async move {
            let prepared = if pipeline.parts.retry.is_some() {
                prepare(request, &pipeline.methods, pipeline.max_replay_body).await
            } else {
                Prepared::Once(request)
            };
            let result = match prepared {
                Prepared::Unreadable => return Ok(unreadable_body()),
                Prepared::Replay(parts, body) => {
                    pipeline
                        .run_pipeline(
                            || {
                                let mut service = service.clone();
                                let request =
                                    Request::from_parts(parts.clone(), B::from(body.clone()));
                                async move { call_ready(&mut service, request).await }
                            },
                            true,
                        )
                        .await
                }
                Prepared::Once(request) => {
                    // Without retry the factory runs at most once; the
                    // mutex only makes the single hand-over `Sync`.
                    let request = Mutex::new(Some(request));
                    pipeline
                        .run_pipeline(
                            || {
                                let mut service = service.clone();
                                let request = request
                                    .lock()
                                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                                    .take();
                                async move {
                                    match request {
                                        Some(request) => call_ready(&mut service, request).await,
                                        None => Err(ResilienceError::Timeout),
                                    }
                                }
                            },
                            false,
                        )
                        .await
                }
            };
            match result {
                Ok(response) => Ok(response.map(ResilienceBody::inner)),
                Err(error) => rejection_response(error),
            }
        })
    }
}
