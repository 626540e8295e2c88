//! W3C-correct distributed tracing for tower and axum services, on
//! OpenTelemetry.
//!
//! What is here so far:
//!
//! - [`TraceContextPropagator`]: W3C Trace Context Level 2 as an
//!   OpenTelemetry `TextMapPropagator` that reads *every* value of a header
//!   (duplicated `traceparent` → new trace; several `tracestate` headers →
//!   one list), sends the Level-2 `random` flag as received (and sets it on
//!   traces started here), and never panics on any input.
//! - [`Traceparent`] and [`Tracestate`]: the two headers' grammars, owned
//!   here rather than delegated to the SDK's Level 1 `TraceState`, with
//!   typed errors ([`TraceparentError`], [`TracestateError`]);
//!   [`IncomingTraceContext`] keeps what a request arrived with, so the
//!   outgoing `tracestate` is the received list (mutated only by the
//!   spec's rules) while the SDK's `SpanContext` gets what it accepts.
//! - [`HeaderExtractor`] / [`HeaderInjector`]: `http::HeaderMap` carriers.
//! - [`http::HttpTraceLayer`] (server) and [`http::PropagateLayer`]
//!   (client): SERVER/CLIENT spans with OpenTelemetry HTTP semantic
//!   conventions, on an explicitly passed tracer provider.
//! - [`Tracing::builder`]: service name, sampler, exporter (OTLP gRPC or
//!   HTTP/protobuf, stdout, in-memory), optional tail sampling, from code
//!   or the standard `OTEL_*` variables; a guard that flushes on drop; an
//!   opt-in log subscriber with `trace_id`/`span_id` on every line.
//! - [`TailSamplingProcessor`]: the adaptive policy — keep every trace that
//!   failed or was slow plus a probability sample of the rest, decided when
//!   the local root ends, in bounded memory, with an optional rate cap.
//!
//! # Example
//!
//! ```
//! use cortex_trace::{HeaderExtractor, TraceContextPropagator};
//! use opentelemetry::propagation::TextMapPropagator;
//! use opentelemetry::trace::TraceContextExt;
//!
//! let mut headers = http::HeaderMap::new();
//! headers.insert(
//!     "traceparent",
//!     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap(),
//! );
//! let cx = TraceContextPropagator::new().extract(&HeaderExtractor(&headers));
//! assert_eq!(
//!     cx.span().span_context().trace_id().to_string(),
//!     "4bf92f3577b34da6a3ce929d0e0e4736"
//! );
//! ```
//!
//! # Conformance
//!
//! The Level 2 claim is measured against the W3C suite's own cases: all 41
//! test methods of w3c/trace-context `test/test.py` (at `SPEC_LEVEL=2
//! STRICT_LEVEL=2`) are ported, one test each, in
//! `examples/trace-conformance/tests/w3c_suite/` and pass
//! (`cargo test -p trace-conformance --test w3c_suite`). `docs/trace.md`
//! says how to run the Python suite itself against that example.
//!
//! # Feature flags
//!
//! | feature | default | enables |
//! |---|---|---|
//! | `otlp` | yes | OTLP exporters (gRPC via tonic, HTTP/protobuf via blocking reqwest; plain HTTP, no TLS stack) |
//!
//! # Minimum supported Rust version
//!
//! The workspace's `rust-version` (1.88).

mod error;
mod export;
pub mod http;
mod logs;
mod propagation;
mod setup;
mod tail;
mod traceparent;
mod tracestate;

pub use error::TraceError;
pub use export::MemoryExporter;
pub use logs::{LogFormat, TraceIdFormat};
pub use propagation::{
    HeaderExtractor, HeaderInjector, IncomingTraceContext, TRACEPARENT, TRACESTATE,
    TraceContextPropagator,
};
pub use setup::{Exporter, Sampling, Tracing, TracingBuilder, TracingGuard};
pub use tail::{TailSampling, TailSamplingProcessor, TailStats};
pub use traceparent::{RANDOM_FLAG, Traceparent, TraceparentError};
pub use tracestate::{MAX_MEMBERS, Tracestate, TracestateError, parse_tracestate};

/// Compiles the code blocks of `docs/trace.md` as doctests, so the guide stays true.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/trace.md")]
pub struct TraceGuideDoctests;
