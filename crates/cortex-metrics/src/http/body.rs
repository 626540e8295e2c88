use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Buf;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::future::RequestGuard;

pin_project! {
    /// The response body of [`HttpMetrics`](super::HttpMetrics): streams the
    /// inner body unchanged, counting bytes, and records the request when
    /// it ends or is dropped.
    pub struct ResponseBody<B> {
        #[pin]
        inner: B,
        guard: Option<RequestGuard>,
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn new(inner: B, guard: Option<RequestGuard>) -> Self {
        Self { inner, guard }
    }
}

impl<B: std::fmt::Debug> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let frame = ready!(this.inner.as_mut().poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let (Some(data), Some(guard)) = (frame.data_ref(), this.guard.as_mut()) {
                    guard.response_bytes += data.remaining() as u64;
                }
                if this.inner.is_end_stream() {
                    this.guard.take();
                }
            }
            Some(Err(_)) => {
                if let Some(mut guard) = this.guard.take() {
                    guard.error_type = Some(super::error_type::RESPONSE_BODY_ERROR);
                }
            }
            None => {
                this.guard.take();
            }
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
