use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::future::SpanGuard;

pin_project! {
    /// The response body of [`HttpTrace`](super::HttpTrace): streams the
    /// inner body unchanged and ends the span when it ends or is dropped.
    pub struct ResponseBody<B> {
        #[pin]
        inner: B,
        guard: Option<SpanGuard>,
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn new(inner: B, guard: Option<SpanGuard>) -> Self {
        Self { inner, guard }
    }
}

impl<B> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody").finish_non_exhaustive()
    }
}

impl<B: Body> Body for ResponseBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let frame = ready!(this.inner.as_mut().poll_frame(cx));
        let finished = match &frame {
            Some(Ok(_)) => this.inner.is_end_stream(),
            Some(Err(_)) => {
                // The status went out, but the response did not: a failed
                // request (the conventions' "network error ... body").
                if let Some(guard) = this.guard.as_mut() {
                    guard.fail(super::error_type::RESPONSE_BODY_ERROR);
                }
                true
            }
            None => true,
        };
        if finished {
            this.guard.take();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
