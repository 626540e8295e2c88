use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::header::ACCEPT_ENCODING;
use http::{HeaderValue, Response, StatusCode};
use pin_project_lite::pin_project;

use super::body::DecompressionResponseBody;
use crate::Encoding;

pin_project! {
    /// The response future of [`Decompression`](super::Decompression).
    #[project = FutureProj]
    // The variants' docs describe their single field.
    #[allow(missing_docs)]
    pub enum DecompressionFuture<F> {
        /// The inner service is handling the request.
        Inner { #[pin] future: F },
        /// The request was refused (unsupported coding).
        Rejected { response: Option<Response<()>> },
    }
}

impl<F> std::fmt::Debug for DecompressionFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DecompressionFuture")
    }
}

impl<F, B, E> Future for DecompressionFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<DecompressionResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            FutureProj::Inner { future } => {
                let response = ready!(future.poll(cx))?;
                Poll::Ready(Ok(
                    response.map(|inner| DecompressionResponseBody::Inner { inner })
                ))
            }
            FutureProj::Rejected { response } => {
                let response = response.take().unwrap_or_else(unsupported);
                Poll::Ready(Ok(response.map(|()| DecompressionResponseBody::Empty)))
            }
        }
    }
}

/// The 415 answer to a coding this layer cannot decode, listing what it can.
pub(super) fn unsupported() -> Response<()> {
    let mut response = Response::new(());
    *response.status_mut() = StatusCode::UNSUPPORTED_MEDIA_TYPE;
    let mut accepted: Vec<&str> = [
        Encoding::Gzip,
        Encoding::Brotli,
        Encoding::Zstd,
        Encoding::Deflate,
    ]
    .into_iter()
    .filter(|e| e.is_enabled())
    .map(Encoding::as_str)
    .collect();
    accepted.push("identity");
    if let Ok(value) = HeaderValue::from_str(&accepted.join(", ")) {
        response.headers_mut().insert(ACCEPT_ENCODING, value);
    }
    response
}
