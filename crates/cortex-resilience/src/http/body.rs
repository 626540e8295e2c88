//! The response body of the HTTP adapter: the inner body, or a
//! rejection's short text.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

pin_project! {
    #[project = BodyProj]
    enum BodyKind<B> {
        Inner { #[pin] body: B },
        Rejection { text: Option<Bytes> },
    }
}

pin_project! {
    /// Either the inner response body or the short text of a rejection.
    pub struct ResilienceBody<B> {
        #[pin]
        kind: BodyKind<B>,
    }
}

impl<B> fmt::Debug for ResilienceBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            BodyKind::Inner { .. } => "ResilienceBody::Inner",
            BodyKind::Rejection { .. } => "ResilienceBody::Rejection",
        })
    }
}

impl<B> ResilienceBody<B> {
    /// The inner service's body.
    pub const fn inner(body: B) -> Self {
        Self {
            kind: BodyKind::Inner { body },
        }
    }

    pub(crate) const fn rejection(text: Bytes) -> Self {
        Self {
            kind: BodyKind::Rejection { text: Some(text) },
        }
    }
}

impl<B> Body for ResilienceBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            BodyProj::Inner { body } => body.poll_frame(cx),
            BodyProj::Rejection { text } => {
                Poll::Ready(text.take().map(|text| Ok(Frame::data(text))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            BodyKind::Inner { body } => body.is_end_stream(),
            BodyKind::Rejection { text } => text.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            BodyKind::Inner { body } => body.size_hint(),
            BodyKind::Rejection { text } => {
                SizeHint::with_exact(text.as_ref().map_or(0, |text| text.len() as u64))
            }
        }
    }
}
