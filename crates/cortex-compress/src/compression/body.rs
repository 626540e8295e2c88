use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::codec::Compressor;
use crate::frame::{BoxError, bytes_frame};

pin_project! {
    /// The response body of [`Compression`](crate::Compression): the inner
    /// body compressed frame by frame, flushed whenever the inner body has
    /// nothing ready (so server-sent events and slow streams arrive
    /// promptly), with trailers forwarded after the compressed data. Memory
    /// is one output chunk plus the codec's window, whatever the body size.
    pub struct CompressionBody<B> {
        #[pin]
        inner: B,
        state: State,
        counters: Counters,
    }
}

/// Byte counters when the `metrics` feature is on; nothing otherwise
/// (`pin_project_lite` does not allow `cfg` on fields).
#[cfg(feature = "metrics")]
type Counters = Option<crate::metrics::ByteCounters>;
#[cfg(not(feature = "metrics"))]
type Counters = ();

enum State {
    /// Not compressed: frames pass through unchanged.
    Identity,
    Compressing(Box<Compressor>),
    /// Compressed data is done; trailers (if any) go next.
    Trailers(Option<HeaderMap>),
    Done,
}

impl<B> CompressionBody<B> {
    pub(crate) fn identity(inner: B) -> Self {
        Self {
            inner,
            state: State::Identity,
            counters: Counters::default(),
        }
    }

    pub(crate) fn compressed(inner: B, compressor: Compressor) -> Self {
        Self {
            inner,
            state: State::Compressing(Box::new(compressor)),
            counters: Counters::default(),
        }
    }

    #[cfg(feature = "metrics")]
    pub(crate) fn count_into(&mut self, counters: crate::metrics::ByteCounters) {
        self.counters = Some(counters);
    }
}

impl<B> std::fmt::Debug for CompressionBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            State::Identity => "identity",
            State::Compressing(_) => "compressing",
            State::Trailers(_) => "trailers",
            State::Done => "done",
        };
        f.debug_struct("CompressionBody")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

impl<B> Body for CompressionBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        loop {
            match this.state {
                State::Identity => {
                    let frame = ready!(this.inner.as_mut().poll_frame(cx));
                    return Poll::Ready(bytes_frame(frame));
                }
                State::Compressing(compressor) => {
                    let polled = this.inner.as_mut().poll_frame(cx);
                    let output = match polled {
                        Poll::Pending => {
                            // The source is waiting: ship what we have.
                            let flushed = compressor.flush()?;
                            if flushed.is_empty() {
                                return Poll::Pending;
                            }
                            flushed
                        }
                        Poll::Ready(Some(Err(error))) => {
                            *this.state = State::Done;
                            return Poll::Ready(Some(Err(error.into())));
                        }
                        Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                            Ok(mut data) => {
                                let data = data.copy_to_bytes(data.remaining());
                                #[cfg(feature = "metrics")]
                                if let Some(counters) = this.counters {
                                    counters.uncompressed.inc_by(data.len() as u64);
                                }
                                compressor.encode(&data)?
                            }
                            Err(frame) => {
                                let finished = compressor.finish()?;
                                *this.state = State::Trailers(frame.into_trailers().ok());
                                finished
                            }
                        },
                        Poll::Ready(None) => {
                            let finished = compressor.finish()?;
                            *this.state = State::Trailers(None);
                            finished
                        }
                    };
                    if !output.is_empty() {
                        #[cfg(feature = "metrics")]
                        if let Some(counters) = this.counters {
                            counters.compressed.inc_by(output.len() as u64);
                        }
                        return Poll::Ready(Some(Ok(Frame::data(output))));
                    }
                }
                State::Trailers(trailers) => {
                    let trailers = trailers.take();
                    *this.state = State::Done;
                    if let Some(trailers) = trailers {
                        return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                    }
                }
                State::Done => return Poll::Ready(None),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self.state {
            State::Identity => self.inner.is_end_stream(),
            State::Done => true,
            State::Compressing(_) | State::Trailers(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Identity => self.inner.size_hint(),
            _ => SizeHint::default(),
        }
    }
}
