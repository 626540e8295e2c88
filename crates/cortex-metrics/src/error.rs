//! The one error type of this crate.

/// Why a metric could not be registered.
///
/// Registration is the only fallible step: once you hold a [`Counter`],
/// [`Gauge`] or [`Histogram`](crate::Histogram) handle, recording never fails
/// and never panics.
///
/// [`Counter`]: crate::Counter
/// [`Gauge`]: crate::Gauge
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// A metric or label name does not match the Prometheus grammar
    /// (`[a-zA-Z_:][a-zA-Z0-9_:]*` for metrics, `[a-zA-Z_][a-zA-Z0-9_]*` for
    /// labels) or uses a reserved name (`__` prefix, `le` on a histogram).
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The offending name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A metric with this name exists with another type, label set or
    /// bucket layout.
    #[error("metric {name:?} is already registered as {existing}, not {requested}")]
    Conflict {
        /// The metric's name.
        name: String,
        /// What is registered under the name.
        existing: String,
        /// What was asked for.
        requested: String,
    },
    /// Histogram buckets are empty, not finite or not strictly increasing.
    #[error("invalid histogram buckets: {reason}")]
    InvalidBuckets {
        /// What is wrong with them.
        reason: &'static str,
    },
}
