use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, ready};

use http::Response;
use opentelemetry::trace::{Status, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use pin_project_lite::pin_project;

pin_project! {
    /// The response future of [`Propagate`](super::Propagate); ends the CLIENT span when the
    /// response head arrives, the call fails, or the future is dropped.
    pub struct PropagateFuture<F> {
        #[pin]
        inner: F,
        cx: Option<Context>,
    }

    impl<F> PinnedDrop for PropagateFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(cx) = this.project().cx.take() {
                cx.span().set_attribute(KeyValue::new("error.type", "cancelled"));
                cx.span().end();
            }
        }
    }
}

impl<F> std::fmt::Debug for PropagateFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PropagateFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for PropagateFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        if let Some(span_cx) = this.cx.take() {
            let span = span_cx.span();
            match &result {
                Ok(response) => {
                    let status = response.status();
                    span.set_attribute(KeyValue::new(
                        "http.response.status_code",
                        i64::from(status.as_u16()),
                    ));
                    if status.is_client_error() || status.is_server_error() {
                        span.set_attribute(KeyValue::new("error.type", status.as_str().to_owned()));
                        span.set_status(Status::error(""));
                    }
                }
                Err(_) => {
                    span.set_attribute(KeyValue::new("error.type", "transport"));
                    span.set_status(Status::error("transport error"));
                }
            }
            span.end();
        }
        Poll::Ready(result)
    }
}

impl<F> PropagateFuture<F> {
    pub(crate) fn new(inner: F, cx: Context) -> Self {
        Self {
            inner,
            cx: Some(cx),
        }
    }
}
