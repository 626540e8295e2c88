//! The crate's error type.

/// Why tracing could not be set up: building the tracer provider
/// ([`TracingBuilder::build`](crate::TracingBuilder::build)) or installing
/// the log subscriber
/// ([`TracingGuard::install_subscriber`](crate::TracingGuard::install_subscriber)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    /// The OTLP gRPC exporter needs a tokio runtime to be built in.
    #[error("the OTLP gRPC exporter must be built inside a tokio runtime")]
    NoRuntime,
    /// The exporter rejected its configuration.
    #[error("cannot build the span exporter: {0}")]
    Exporter(String),
    /// The log filter does not parse.
    #[error("invalid log filter: {0}")]
    Filter(String),
    /// A global `tracing` subscriber is already installed.
    #[error("a global tracing subscriber is already installed")]
    SubscriberAlreadySet,
}
