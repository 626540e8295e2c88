use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::Response;
use pin_project_lite::pin_project;

use super::body::DecompressionResponseBody;

pin_project! {
    /// The response future of [`Decompression`](super::Decompression).
    #[project = FutureProj]
    // The variants' docs describe their single field.
    #[allow(missing_docs)]
    pub enum DecompressionFuture<F> {
        /// The inner service is handling the request.
        Inner { #[pin] future: F },
        /// The request was refused (unsupported coding, declared length
        /// over the limit) with a problem+json response.
        Rejected { response: Option<Response<Bytes>> },
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
                let response = response
                    .take()
                    .expect("DecompressionFuture polled after completion");
                Poll::Ready(Ok(response.map(|body| {
                    DecompressionResponseBody::Rejection { body: Some(body) }
                })))
            }
        }
    }
}
