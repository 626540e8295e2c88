//! [`CacheBody`]: a stored body, the inner body, or the inner body with
//! the frames already read while trying to store it.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use pin_project_lite::pin_project;

pin_project! {
    #[project = KindProj]
    enum Kind<B>
    where
        B: Body,
    {
        Full { data: Option<Bytes> },
        Inner { #[pin] body: B },
        Partial {
            prefix: VecDeque<Frame<Bytes>>,
            error: Option<B::Error>,
            body: Option<Pin<Box<B>>>,
        },
    }
}

pin_project! {
    /// The response body of [`ResponseCacheService`](super::ResponseCacheService):
    /// a stored body (hits, and the miss that stored it), the inner
    /// service's body untouched (bypassed requests), or, for a response
    /// that turned out too large to store, the frames read so far followed
    /// by the rest of the inner body, streamed.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use cortex_resilience::CacheBody;
    /// use http_body::Body;
    /// use http_body_util::{BodyExt, Empty};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let body = CacheBody::<Empty<Bytes>>::full(Bytes::from_static(b"stored"));
    /// assert_eq!(body.size_hint().exact(), Some(6));
    /// assert_eq!(body.collect().await.unwrap().to_bytes(), "stored");
    /// # }
    /// ```
    pub struct CacheBody<B>
    where
        B: Body,
    {
        #[pin]
        kind: Kind<B>,
    }
}

impl<B: Body> fmt::Debug for CacheBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            Kind::Full { .. } => "CacheBody::Full",
            Kind::Inner { .. } => "CacheBody::Inner",
            Kind::Partial { .. } => "CacheBody::Partial",
        })
    }
}

impl<B: Body> CacheBody<B> {
    /// A complete body, in memory.
    pub fn full(data: Bytes) -> Self {
        Self {
            kind: Kind::Full {
                data: (!data.is_empty()).then_some(data),
            },
        }
    }

    /// The inner service's body, untouched.
    pub const fn inner(body: B) -> Self {
        Self {
            kind: Kind::Inner { body },
        }
    }
}

impl<B> Body for CacheBody<B>
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
            KindProj::Full { data } => Poll::Ready(data.take().map(|data| Ok(Frame::data(data)))),
            KindProj::Inner { body } => body.poll_frame(cx),
            KindProj::Partial {
                prefix,
                error,
                body,
            } => {
                if let Some(frame) = prefix.pop_front() {
                    return Poll::Ready(Some(Ok(frame)));
                }
                if let Some(error) = error.take() {
                    *body = None;
                    return Poll::Ready(Some(Err(error)));
                }
                match body {
                    Some(inner) => inner.as_mut().poll_frame(cx),
                    None => Poll::Ready(None),
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full { data } => data.is_none(),
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Partial {
                prefix,
                error,
                body,
            } => {
                prefix.is_empty()
                    && error.is_none()
                    && body.as_ref().is_none_or(|body| body.is_end_stream())
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            Kind::Inner { body } => body.size_hint(),
            Kind::Partial { prefix, body, .. } => {
                let read: u64 = prefix
                    .iter()
                    .filter_map(Frame::data_ref)
                    .map(|data| data.len() as u64)
                    .sum();
                let rest = body
                    .as_ref()
                    .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint());
                let mut hint = SizeHint::new();
                hint.set_lower(rest.lower() + read);
                if let Some(upper) = rest.upper() {
                    hint.set_upper(upper + read);
                }
                hint
            }
        }
    }
}

/// A response body read for storing: all of it, or what was read before
/// it proved too large (or failed, or had trailers), as a body that
/// replays those frames and streams the rest.
pub(crate) enum Buffered<B: Body> {
    Complete(Bytes),
    /// `too_large`: over the limit (rather than failed or with trailers).
    Partial {
        body: CacheBody<B>,
        too_large: bool,
    },
}

/// Reads `body` into memory if it is at most `max` bytes. A body that
/// says it is longer is not read at all.
pub(crate) async fn buffer<B>(body: B, max: u64) -> Buffered<B>
where
    B: Body<Data = Bytes>,
{
    let partial = |prefix, error, body, too_large| Buffered::Partial {
        body: CacheBody {
            kind: Kind::Partial {
                prefix,
                error,
                body,
            },
        },
        too_large,
    };
    if body.size_hint().lower() > max {
        return partial(VecDeque::new(), None, Some(Box::pin(body)), true);
    }
    let mut body = Box::pin(body);
    let mut prefix = VecDeque::new();
    let mut read = 0u64;
    loop {
        match body.frame().await {
            None => break,
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    read += data.len() as u64;
                    prefix.push_back(Frame::data(data));
                    if read > max {
                        return partial(prefix, None, Some(body), true);
                    }
                }
                // Trailers are not stored: pass the response through.
                Err(trailers) => {
                    prefix.push_back(trailers);
                    return partial(prefix, None, Some(body), false);
                }
            },
            Some(Err(error)) => return partial(prefix, Some(error), None, false),
        }
    }
    let data = if prefix.len() == 1 {
        prefix
            .pop_front()
            .and_then(|frame| frame.into_data().ok())
            .unwrap_or_default()
    } else {
        let mut all = BytesMut::with_capacity(usize::try_from(read).unwrap_or(0));
        for frame in prefix {
            if let Ok(data) = frame.into_data() {
                all.extend_from_slice(&data);
            }
        }
        all.freeze()
    };
    Buffered::Complete(data)
}
