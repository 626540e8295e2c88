use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, ready};

use http::{Response, StatusCode};
use opentelemetry::context::WithContext;
use opentelemetry::trace::{Status, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use pin_project_lite::pin_project;

use super::body::ResponseBody;
use super::error_type;

pin_project! {
    /// The response future of [`HttpTrace`](super::HttpTrace).
    pub struct ResponseFuture<F> {
        #[pin]
        inner: WithContext<F>,
        guard: Option<SpanGuard>,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: WithContext<F>, guard: SpanGuard) -> Self {
        Self {
            inner,
            guard: Some(guard),
        }
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let mut guard = this.guard.take();
        match result {
            Ok(response) => {
                if let Some(guard) = &mut guard {
                    guard.record_status(response.status());
                }
                Poll::Ready(Ok(response.map(|body| ResponseBody::new(body, guard))))
            }
            Err(error) => {
                if let Some(guard) = &mut guard {
                    guard.fail(error_type::SERVICE_ERROR);
                }
                Poll::Ready(Err(error))
            }
        }
    }
}

/// Owns the server span's context and ends the span when dropped: after
/// the body, on a dropped future (client gone), or while a panic unwinds.
pub(crate) struct SpanGuard {
    cx: Context,
    outcome_known: bool,
}

impl SpanGuard {
    pub(crate) fn new(cx: Context) -> Self {
        Self {
            cx,
            outcome_known: false,
        }
    }

    fn record_status(&mut self, status: StatusCode) {
        self.outcome_known = true;
        let span = self.cx.span();
        span.set_attribute(KeyValue::new(
            "http.response.status_code",
            i64::from(status.as_u16()),
        ));
        // Server spans: 5xx is our failure; 4xx is the caller's, so Unset.
        if status.is_server_error() {
            span.set_attribute(KeyValue::new("error.type", status.as_str().to_owned()));
            span.set_status(Status::error(""));
        }
    }

    /// Ends the request as failed with `error_type` (the span's status
    /// description too).
    pub(super) fn fail(&mut self, error_type: &'static str) {
        self.outcome_known = true;
        let span = self.cx.span();
        span.set_attribute(KeyValue::new("error.type", error_type));
        span.set_status(Status::error(error_type));
    }
}

impl Drop for SpanGuard {
    fn drop(&mut self) {
        if !self.outcome_known {
            if std::thread::panicking() {
                self.fail(error_type::PANIC);
            } else {
                // The client went away before a response existed.
                self.cx
                    .span()
                    .set_attribute(KeyValue::new("error.type", error_type::CANCELLED));
            }
        }
        self.cx.span().end();
    }
}
