use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::extract::MatchedPath;
use http::{Response, StatusCode};
use pin_project_lite::pin_project;

use super::body::ResponseBody;
use super::scheme::SCHEME_LABELS;
use super::state::HttpMetricsState;
use super::{UNMATCHED_ROUTE, error_type};

pin_project! {
    /// The response future of [`HttpMetrics`](super::HttpMetrics).
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        guard: Option<RequestGuard>,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, guard: RequestGuard) -> Self {
        Self {
            inner,
            guard: Some(guard),
        }
    }
}

impl<F: std::fmt::Debug> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let mut guard = this.guard.take();
        match result {
            Ok(response) => {
                if let Some(guard) = &mut guard {
                    guard.status = Some(response.status());
                }
                Poll::Ready(Ok(response.map(|body| ResponseBody::new(body, guard))))
            }
            Err(error) => {
                // The server turns a service error into a dropped connection
                // or a 500; count it as the latter.
                if let Some(guard) = &mut guard {
                    guard.status = Some(StatusCode::INTERNAL_SERVER_ERROR);
                    guard.error_type = Some(error_type::SERVICE_ERROR);
                }
                Poll::Ready(Err(error))
            }
        }
    }
}

/// Everything needed to record one request; records when dropped, so a
/// completed body, a dropped future, a dropped body and a panic unwinding
/// through the handler all end in exactly one observation.
pub(crate) struct RequestGuard {
    pub(crate) state: Arc<HttpMetricsState>,
    /// Index of the method's label (`HttpMetricsState::method_label`).
    pub(crate) method: usize,
    /// Index into `SCHEME_LABELS`.
    pub(crate) scheme: usize,
    pub(crate) route: Option<MatchedPath>,
    pub(crate) start: Instant,
    pub(crate) status: Option<StatusCode>,
    /// Why the request failed, when the status alone does not say it (see
    /// [`error_type`](super::error_type)).
    pub(crate) error_type: Option<&'static str>,
    pub(crate) request_bytes: Option<u64>,
    pub(crate) response_bytes: u64,
    /// The sampled trace this request belongs to, for the duration exemplar.
    pub(crate) exemplar: Option<crate::Exemplar>,
}

/// nginx's "client closed request": the client left before a response.
const CLIENT_CLOSED_REQUEST: u16 = 499;

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.state.active(self.method, self.scheme).dec();
        let status = self.status.unwrap_or_else(|| {
            let (code, error) = if std::thread::panicking() {
                (
                    StatusCode::INTERNAL_SERVER_ERROR.as_u16(),
                    error_type::PANIC,
                )
            } else {
                (CLIENT_CLOSED_REQUEST, error_type::CANCELLED)
            };
            self.error_type = Some(error);
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        });
        let route = self
            .route
            .as_ref()
            .map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
        // A 5xx is a failure by itself: its code is the error type.
        let error = match self.error_type {
            Some(error) => error,
            None if status.is_server_error() => status.as_str(),
            None => "",
        };
        let labels = [
            self.state.method_label(self.method),
            route,
            status.as_str(),
            SCHEME_LABELS[self.scheme],
            error,
        ];
        self.state.record(
            labels,
            self.start.elapsed().as_secs_f64(),
            self.request_bytes,
            self.response_bytes,
            self.exemplar,
        );
    }
}
