//! The facade's HTTP layers as one tower [`Layer`]: [`CortexLayer`].
//!
//! [`CortexBuilder::mount`](crate::CortexBuilder::mount) wraps a router's
//! routes in the configured trace, metrics, compression and decompression
//! layers with a single `Router::layer` call. axum boxes every route again
//! for each `Router::layer` and, per request, clones that box, boxes its
//! future and boxes the response body (three allocations and about 1,000
//! instructions a request each), so one call for the whole stack
//! instead of one per component is what keeps the stack close to bare axum.
//! [`CortexBuilder::mount_unlayered`](crate::CortexBuilder::mount_unlayered)
//! hands the same layer back, for a service with layers of its own to apply
//! all of them in one `Router::layer` too:
//!
//! ```
//! use axum::Router;
//! use axum::routing::get;
//! use cortex::Cortex;
//! use cortex::metrics::MetricsRegistry;
//! use tower::ServiceBuilder;
//!
//! let routes: Router = Router::new().route("/", get(|| async { "hi" }));
//! let (routes, cortex_layer) = Cortex::builder()
//!     .metrics(MetricsRegistry::new())
//!     .mount_unlayered(routes)?;
//! // Yours around the facade's, in one `Router::layer`.
//! let app: Router = routes.layer(
//!     ServiceBuilder::new()
//!         .map_request(|request: axum::extract::Request| request)
//!         .layer(cortex_layer),
//! );
//! # Ok::<(), cortex::Error>(())
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::http::{Request, Response};
use http_body_util::Either;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

/// The facade's HTTP layers, outermost first: the trace span, metrics,
/// compression, decompression; those not configured are left out. Made by
/// [`CortexBuilder::mount_unlayered`](crate::CortexBuilder::mount_unlayered).
#[derive(Debug, Clone, Default)]
pub struct CortexLayer {
    #[cfg(feature = "trace")]
    pub(crate) trace: Option<cortex_trace::http::HttpTraceLayer>,
    #[cfg(feature = "metrics")]
    pub(crate) metrics: Option<cortex_metrics::http::HttpMetricsLayer>,
    #[cfg(feature = "compress")]
    pub(crate) compression: Option<cortex_compress::CompressionLayer>,
    #[cfg(feature = "compress")]
    pub(crate) decompression: Option<cortex_compress::DecompressionLayer>,
}

impl CortexLayer {
    /// Whether no layer is configured (then the layer changes nothing, and
    /// `mount` does not apply it).
    pub fn is_empty(&self) -> bool {
        let empty = true;
        #[cfg(feature = "trace")]
        let empty = empty && self.trace.is_none();
        #[cfg(feature = "metrics")]
        let empty = empty && self.metrics.is_none();
        #[cfg(feature = "compress")]
        let empty = empty && self.compression.is_none() && self.decompression.is_none();
        empty
    }
}

#[cfg(feature = "trace")]
type TraceLevel<S> = Optional<cortex_trace::http::HttpTrace<S>, S>;
#[cfg(not(feature = "trace"))]
type TraceLevel<S> = S;
#[cfg(feature = "metrics")]
type MetricsLevel<S> = Optional<cortex_metrics::http::HttpMetrics<S>, S>;
#[cfg(not(feature = "metrics"))]
type MetricsLevel<S> = S;
#[cfg(feature = "compress")]
type CompressionLevel<S> = Optional<cortex_compress::Compression<S>, S>;
#[cfg(not(feature = "compress"))]
type CompressionLevel<S> = S;
#[cfg(feature = "compress")]
type DecompressionLevel<S> = Optional<cortex_compress::Decompression<S>, S>;
#[cfg(not(feature = "compress"))]
type DecompressionLevel<S> = S;

/// The service [`CortexLayer`] makes: each configured layer around the
/// next, an unconfigured one passed through.
pub type CortexService<S> = TraceLevel<MetricsLevel<CompressionLevel<DecompressionLevel<S>>>>;

impl<S> Layer<S> for CortexLayer {
    type Service = CortexService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        #[cfg(feature = "compress")]
        let inner = Optional::new(self.decompression.as_ref(), inner);
        #[cfg(feature = "compress")]
        let inner = Optional::new(self.compression.as_ref(), inner);
        #[cfg(feature = "metrics")]
        let inner = Optional::new(self.metrics.as_ref(), inner);
        #[cfg(feature = "trace")]
        let inner = Optional::new(self.trace.as_ref(), inner);
        inner
    }
}

/// A layer's service, or its inner service alone when the layer is not
/// configured. The response body is [`Either`]: the layer's body on the
/// left, the inner one on the right. Unlike `tower::util::Either`, the two
/// sides may answer different body types, as every HTTP layer that wraps
/// the body does.
#[derive(Debug, Clone)]
pub enum Optional<A, B> {
    /// The layer is configured: its service.
    On(A),
    /// It is not: the inner service.
    Off(B),
}

impl<A, B> Optional<A, B> {
    #[cfg(any(feature = "trace", feature = "metrics", feature = "compress"))]
    fn new<L>(layer: Option<&L>, inner: B) -> Self
    where
        L: Layer<B, Service = A>,
    {
        match layer {
            Some(layer) => Self::On(layer.layer(inner)),
            None => Self::Off(inner),
        }
    }
}

impl<A, B, ReqBody, LeftBody, RightBody> Service<Request<ReqBody>> for Optional<A, B>
where
    A: Service<Request<ReqBody>, Response = Response<LeftBody>>,
    B: Service<Request<ReqBody>, Response = Response<RightBody>, Error = A::Error>,
{
    type Response = Response<Either<LeftBody, RightBody>>;
    type Error = A::Error;
    type Future = OptionalFuture<A::Future, B::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match self {
            Self::On(service) => service.poll_ready(cx),
            Self::Off(service) => service.poll_ready(cx),
        }
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        match self {
            Self::On(service) => OptionalFuture::On {
                future: service.call(request),
            },
            Self::Off(service) => OptionalFuture::Off {
                future: service.call(request),
            },
        }
    }
}

pin_project! {
    /// The response future of [`Optional`].
    #[project = OptionalFutureProjection]
    #[derive(Debug)]
    // Each variant's one field is the future it names; pin-project-lite
    // takes no doc comment on a variant's field.
    #[allow(missing_docs)]
    pub enum OptionalFuture<A, B> {
        /// The layer's future.
        On { #[pin] future: A },
        /// The inner service's future.
        Off { #[pin] future: B },
    }
}

impl<A, B, LeftBody, RightBody, E> Future for OptionalFuture<A, B>
where
    A: Future<Output = Result<Response<LeftBody>, E>>,
    B: Future<Output = Result<Response<RightBody>, E>>,
{
    type Output = Result<Response<Either<LeftBody, RightBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            OptionalFutureProjection::On { future } => future
                .poll(cx)
                .map(|result| result.map(|response| response.map(Either::Left))),
            OptionalFutureProjection::Off { future } => future
                .poll(cx)
                .map(|result| result.map(|response| response.map(Either::Right))),
        }
    }
}
