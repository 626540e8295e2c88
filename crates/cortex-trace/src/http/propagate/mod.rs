//! Client-side tracing: [`PropagateLayer`] opens a CLIENT span per outgoing
//! request, child of the current OpenTelemetry context, and injects its
//! `traceparent`/`tracestate` into the request headers (replacing any
//! already there), so the callee's server span becomes its child.
//!
//! Put it on the client's service stack (a `tower` HTTP client, hyper-util's
//! legacy client behind `ServiceBuilder`...). 4xx and 5xx responses and
//! transport errors mark the span as an error, as client spans should.
//!
//! ```
//! use cortex_trace::http::PropagateLayer;
//! use opentelemetry_sdk::trace::SdkTracerProvider;
//! use tower::{Layer, service_fn};
//!
//! let provider = SdkTracerProvider::builder().build();
//! let client = PropagateLayer::new(&provider).layer(service_fn(|request: http::Request<()>| async move {
//!     // `request` now carries a traceparent for a fresh CLIENT span.
//!     Ok::<_, std::convert::Infallible>(http::Response::new(()))
//! }));
//! # let _ = client;
//! ```

mod future;
mod layer;
mod service;

pub use future::PropagateFuture;
pub use layer::PropagateLayer;
pub use service::Propagate;
