//! The adapter's response future, and the shape policy futures take for it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Response;
use pin_project_lite::pin_project;

use super::body::ResilienceBody;
use super::rejection::{insert_rate_limit_headers, rejection_response};
use crate::ResilienceError;
use crate::ratelimit::RateLimitDecision;

pin_project! {
    /// Response future of [`HttpService`](super::HttpService): the policy's
    /// response, or its rejection as a response; the inner service's own
    /// errors pass through.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        rate_limit: Option<RateLimitDecision>,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) const fn new(inner: F, rate_limit: Option<RateLimitDecision>) -> Self {
        Self { inner, rate_limit }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("http::ResponseFuture")
            .field("rate_limit", &self.rate_limit)
            .finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResilienceBody<B>>, ResilienceError<E>>>,
{
    type Output = Result<Response<ResilienceBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = match ready!(this.inner.poll(cx)) {
            Ok(response) => response,
            Err(error) => rejection_response(error)?,
        };
        if let Some(decision) = this.rate_limit {
            insert_rate_limit_headers(response.headers_mut(), decision);
        }
        Poll::Ready(Ok(response))
    }
}

pin_project! {
    /// A policy service's own future, its response body wrapped in
    /// [`ResilienceBody`]: the [`PolicyService::Future`](super::PolicyService::Future)
    /// of every policy that answers without buffering.
    pub struct PolicyFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F> PolicyFuture<F> {
    pub(crate) const fn new(inner: F) -> Self {
        Self { inner }
    }
}

impl<F: fmt::Debug> fmt::Debug for PolicyFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PolicyFuture").field(&self.inner).finish()
    }
}

impl<F, B, E> Future for PolicyFuture<F>
where
    F: Future<Output = Result<Response<B>, ResilienceError<E>>>,
{
    type Output = Result<Response<ResilienceBody<B>>, ResilienceError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(
            ready!(self.project().inner.poll(cx))
                .map(|response| response.map(ResilienceBody::inner)),
        )
    }
}
