use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};

use async_compression::codecs::DecodeV2;
use async_compression::core::util::{PartialBuffer, WriteBuffer};
use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{Full, Limited};
use pin_project_lite::pin_project;

use super::config::Limits;
use crate::{BoxError, Encoding};

/// Output is produced in chunks of at most this size.
const CHUNK: usize = 16 * 1024;
/// The ratio limit applies once this much has been decompressed.
const RATIO_GRACE: u64 = 1024 * 1024;

pin_project! {
    /// A request body decoded as it streams, within the layer's limits.
    pub struct DecompressionBody<B> {
        #[pin]
        inner: B,
        decoder: Box<dyn DecodeV2 + Send>,
        // Compressed input not yet consumed by the decoder.
        pending: Bytes,
        buffer: Vec<u8>,
        compressed: u64,
        decompressed: u64,
        limits: Limits,
        state: State,
        trailers: Option<http::HeaderMap>,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Reading,
    /// The compressed stream ended before the inner body: the rest of the
    /// body is read (data ignored, as decoders conventionally do) so its
    /// trailers still arrive.
    Draining,
    /// The inner body ended; the decoder is being finished.
    Finishing,
    Done,
}

impl<B> DecompressionBody<B> {
    /// `Err(inner)` when the coding's cargo feature is off.
    #[allow(unreachable_code, unused_variables)]
    pub(crate) fn new(inner: B, encoding: Encoding, limits: Limits) -> Result<Self, B> {
        #[allow(unused_imports)] // unused when every codec feature is off
        use async_compression::codecs;
        let decoder: Box<dyn DecodeV2 + Send> = match encoding {
            #[cfg(feature = "gzip")]
            Encoding::Gzip => Box::new(codecs::GzipDecoder::new()),
            #[cfg(feature = "deflate")]
            Encoding::Deflate => Box::new(codecs::ZlibDecoder::new()),
            #[cfg(feature = "br")]
            Encoding::Brotli => Box::new(codecs::BrotliDecoder::new()),
            #[cfg(feature = "zstd")]
            Encoding::Zstd => Box::new(codecs::ZstdDecoder::new()),
            #[allow(unreachable_patterns)]
            _ => return Err(inner),
        };
        Ok(Self {
            inner,
            decoder,
            pending: Bytes::new(),
            buffer: vec![0; CHUNK],
            compressed: 0,
            decompressed: 0,
            limits,
            state: State::Reading,
            trailers: None,
        })
    }
}

impl<B> std::fmt::Debug for DecompressionBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecompressionBody")
            .field("compressed", &self.compressed)
            .field("decompressed", &self.decompressed)
            .finish_non_exhaustive()
    }
}

/// `http_body_util::LengthLimitError` can only be made by its own crate;
/// a zero-limit `Limited` body produces one, and it is what axum's
/// extractors turn into 413.
fn length_limit_error() -> BoxError {
    let mut limited = Limited::new(Full::new(Bytes::from_static(b"x")), 0);
    let mut cx = Context::from_waker(Waker::noop());
    match Pin::new(&mut limited).poll_frame(&mut cx) {
        Poll::Ready(Some(Err(error))) => error,
        _ => "request body exceeds the decompression limit".into(),
    }
}

impl<B> Body for DecompressionBody<B>
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
            match *this.state {
                State::Done => {
                    return Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))));
                }
                State::Finishing => {
                    let mut output = WriteBuffer::new_initialized(this.buffer);
                    let done = this.decoder.finish(&mut output)?;
                    let produced = Bytes::copy_from_slice(output.written());
                    if done {
                        *this.state = State::Done;
                    }
                    if !produced.is_empty() {
                        *this.decompressed += produced.len() as u64;
                        if *this.decompressed > this.limits.max_size {
                            *this.state = State::Done;
                            return Poll::Ready(Some(Err(length_limit_error())));
                        }
                        return Poll::Ready(Some(Ok(Frame::data(produced))));
                    }
                    if !done {
                        // Ended: polling again must not finish the decoder twice.
                        *this.state = State::Done;
                        *this.trailers = None;
                        return Poll::Ready(Some(Err("truncated compressed request body".into())));
                    }
                }
                State::Draining => match ready!(this.inner.as_mut().poll_frame(cx)) {
                    Some(Ok(frame)) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            *this.trailers = Some(trailers);
                            *this.state = State::Finishing;
                        }
                    }
                    Some(Err(error)) => {
                        *this.state = State::Done;
                        return Poll::Ready(Some(Err(error.into())));
                    }
                    None => *this.state = State::Finishing,
                },
                State::Reading if this.pending.is_empty() => {
                    match ready!(this.inner.as_mut().poll_frame(cx)) {
                        Some(Ok(frame)) => match frame.into_data() {
                            Ok(mut data) => {
                                let data = data.copy_to_bytes(data.remaining());
                                *this.compressed += data.len() as u64;
                                *this.pending = data;
                            }
                            Err(frame) => {
                                // Trailers end the data; they follow the
                                // decoded data out.
                                *this.trailers = frame.into_trailers().ok();
                                *this.state = State::Finishing;
                            }
                        },
                        Some(Err(error)) => {
                            *this.state = State::Done;
                            return Poll::Ready(Some(Err(error.into())));
                        }
                        None => *this.state = State::Finishing,
                    }
                }
                State::Reading => {
                    let mut input = PartialBuffer::new(&this.pending[..]);
                    let mut output = WriteBuffer::new_initialized(this.buffer);
                    let ended = this.decoder.decode(&mut input, &mut output)?;
                    let consumed = input.written_len();
                    let produced = BytesMut::from(output.written()).freeze();
                    this.pending.advance(consumed);
                    if ended {
                        this.pending.clear();
                        *this.state = State::Draining;
                    }
                    if produced.is_empty() {
                        if consumed == 0 && !ended {
                            // No progress on non-empty input: never spin.
                            *this.state = State::Done;
                            return Poll::Ready(Some(
                                Err("corrupt compressed request body".into()),
                            ));
                        }
                        continue;
                    }
                    *this.decompressed += produced.len() as u64;
                    let over_size = *this.decompressed > this.limits.max_size;
                    let over_ratio = *this.decompressed > RATIO_GRACE
                        && *this.decompressed
                            > this
                                .limits
                                .max_ratio
                                .saturating_mul((*this.compressed).max(1));
                    if over_size || over_ratio {
                        *this.state = State::Done;
                        return Poll::Ready(Some(Err(length_limit_error())));
                    }
                    return Poll::Ready(Some(Ok(Frame::data(produced))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.state == State::Done && self.trailers.is_none()
    }
}

pin_project! {
    /// The request body the inner service sees: as sent, or decoded.
    #[project = RequestBodyProj]
    // The variants' docs describe their single field.
    #[allow(missing_docs)]
    pub enum DecompressionRequestBody<B> {
        /// Not compressed.
        Identity { #[pin] inner: B },
        /// Decoded within limits.
        Decoded { #[pin] inner: DecompressionBody<B> },
    }
}

impl<B> std::fmt::Debug for DecompressionRequestBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Identity { .. } => f.write_str("DecompressionRequestBody::Identity"),
            Self::Decoded { inner } => inner.fmt(f),
        }
    }
}

impl<B> Body for DecompressionRequestBody<B>
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
        match self.project() {
            RequestBodyProj::Identity { inner } => {
                Poll::Ready(crate::bytes_frame(ready!(inner.poll_frame(cx))))
            }
            RequestBodyProj::Decoded { inner } => inner.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Identity { inner } => inner.is_end_stream(),
            Self::Decoded { inner } => inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Identity { inner } => inner.size_hint(),
            Self::Decoded { .. } => SizeHint::default(),
        }
    }
}

pin_project! {
    /// The response body of [`Decompression`](super::Decompression): the
    /// inner service's, or the `application/problem+json` body of the
    /// layer's own 413 or 415.
    #[project = ResponseBodyProj]
    // The variants' docs describe their single field.
    #[allow(missing_docs)]
    pub enum DecompressionResponseBody<B> {
        /// The inner service's body.
        Inner { #[pin] inner: B },
        /// The layer's refusal: one problem+json chunk, `None` once sent.
        Rejection { body: Option<Bytes> },
    }
}

impl<B> std::fmt::Debug for DecompressionResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DecompressionResponseBody")
    }
}

impl<B> Body for DecompressionResponseBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project() {
            ResponseBodyProj::Inner { inner } => {
                let frame = ready!(inner.poll_frame(cx));
                Poll::Ready(frame.map(|frame| frame.map_err(Into::into)))
            }
            ResponseBodyProj::Rejection { body } => {
                Poll::Ready(body.take().map(|body| Ok(Frame::data(body))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Inner { inner } => inner.is_end_stream(),
            Self::Rejection { body } => body.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Inner { inner } => inner.size_hint(),
            Self::Rejection { body } => {
                SizeHint::with_exact(body.as_ref().map_or(0, |body| body.len() as u64))
            }
        }
    }
}
