//! The one way a Cortex component exports its series.

use crate::{MetricsError, MetricsRegistry};

/// A component that exports Prometheus series into a [`MetricsRegistry`].
///
/// Every Cortex component with series implements this one trait: the
/// health registry, the compression layers, each resilience policy and the
/// policy registry, the actor system, the worker pool, the wasm host.
/// [`http::HttpMetricsLayer`](crate::http::HttpMetricsLayer) is the one
/// exception by design: it *is* the metrics, so its constructor takes the
/// registry.
///
/// The contract every implementation keeps:
///
/// - **Registration is the only fallible step.** It fails only when a name
///   the component needs is already taken by an incompatible metric
///   ([`MetricsError::Conflict`]); recording afterwards never fails.
/// - **Order does not matter.** A component can be registered before or
///   after it is cloned into a router or starts working; every clone
///   (they share state) records from then on.
/// - **Registering again is harmless.** A second call with the same
///   registry returns `Ok` and adds no series. Values recorded per event
///   (histograms, counters bumped on the hot path) go to the first
///   registry; scrape-time values are read by every registry the component
///   was registered with.
/// - **Names follow one scheme**: `cortex_<component>_<what>_<unit>`,
///   counters end in `_total`, durations are `_seconds` histograms.
///
/// ```
/// use cortex_metrics::{Format, MetricsError, MetricsRegistry, RegisterMetrics};
///
/// /// A job queue that exports its depth.
/// #[derive(Clone, Default)]
/// struct Jobs {
///     depth: std::sync::Arc<std::sync::atomic::AtomicI64>,
/// }
///
/// impl RegisterMetrics for Jobs {
///     fn register_metrics(&self, registry: &MetricsRegistry) -> Result<(), MetricsError> {
///         let gauge = registry.gauge("app_jobs_queued", "Jobs waiting to run.")?;
///         gauge.set(self.depth.load(std::sync::atomic::Ordering::Relaxed));
///         Ok(())
///     }
/// }
///
/// let registry = MetricsRegistry::new();
/// Jobs::default().register_metrics(&registry)?;
/// assert!(registry.encode(Format::Prometheus).contains("app_jobs_queued 0\n"));
/// # Ok::<(), MetricsError>(())
/// ```
pub trait RegisterMetrics {
    /// Registers this component's series with `registry`.
    fn register_metrics(&self, registry: &MetricsRegistry) -> Result<(), MetricsError>;
}

impl<T: RegisterMetrics + ?Sized> RegisterMetrics for &T {
    fn register_metrics(&self, registry: &MetricsRegistry) -> Result<(), MetricsError> {
        (**self).register_metrics(registry)
    }
}

impl<T: RegisterMetrics + ?Sized> RegisterMetrics for std::sync::Arc<T> {
    fn register_metrics(&self, registry: &MetricsRegistry) -> Result<(), MetricsError> {
        (**self).register_metrics(registry)
    }
}
