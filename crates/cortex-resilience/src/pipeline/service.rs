//! [`PipelineService`]: a service behind every policy of a pipeline, over
//! tower (cloning the request) and over HTTP (replaying a buffered
//! request).

use std::sync::Mutex;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use super::policy::Pipeline;
use crate::boxed::{BoxError, BoxFuture};
use crate::http::{
    HttpOptions, PolicyService, Prepared, ResilienceBody, Sealed, prepare, unreadable_body,
};
use crate::ratelimit::RateLimitDecision;
use crate::retry::call_ready;
use crate::{Classify, ResilienceError, ShouldRetry};

/// A service behind a [`Pipeline`]; see [`Pipeline::layer`] and
/// [`Pipeline::http_layer`].
#[derive(Debug, Clone)]
pub struct PipelineService<S, C, P> {
    inner: S,
    pipeline: Pipeline<C, P>,
}

impl<S, C, P> PipelineService<S, C, P> {
    /// Runs the calls of `inner` through `pipeline`.
    pub const fn new(inner: S, pipeline: Pipeline<C, P>) -> Self {
        Self { inner, pipeline }
    }

    /// The pipeline of this service.
    pub fn pipeline(&self) -> &Pipeline<C, P> {
        &self.pipeline
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The ready service, for a call that outlives this borrow; a clone
    /// stays behind.
    fn take_ready(&mut self) -> S
    where
        S: Clone,
    {
        let clone = self.inner.clone();
        std::mem::replace(&mut self.inner, clone)
    }
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
        let service = self.take_ready();
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

impl<S, C, P> Sealed for PipelineService<S, C, P> {}

impl<S, C, P, B, RB> PolicyService<B> for PipelineService<S, C, P>
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
    type ResponseBody = RB;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<ResilienceBody<RB>>, ResilienceError<S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(
        &mut self,
        request: Request<B>,
        options: &HttpOptions,
    ) -> (Self::Future, Option<RateLimitDecision>) {
        let service = self.take_ready();
        let pipeline = self.pipeline.clone();
        let options = options.clone();
        let future = Box::pin(async move {
            let prepared = if pipeline.retries() {
                prepare(request, &options.methods, options.max_replay_body).await
            } else {
                Prepared::Once(request)
            };
            let response = match prepared {
                Prepared::Unreadable => return Ok(unreadable_body()),
                Prepared::Replay(replay) => {
                    pipeline
                        .run_pipeline(
                            || {
                                let mut service = service.clone();
                                let request = replay.request();
                                async move { call_ready(&mut service, request).await }
                            },
                            true,
                        )
                        .await?
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
                        .await?
                }
            };
            Ok(response.map(ResilienceBody::inner))
        });
        (future, None)
    }
}
