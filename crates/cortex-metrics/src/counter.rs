//! Counters: monotonically increasing totals.

use prometheus_client::metrics::counter::Counter as RawCounter;

use crate::encoding::{LabelSet, MetricWriter};
use crate::metric::{Metric, MetricType, sealed};

/// A monotonically increasing `u64` total (Prometheus `counter`).
///
/// Cheap to clone: all clones share one atomic, built on
/// `prometheus_client`'s counter. It has no way to go down; a counter resets
/// only when the process restarts, which Prometheus' `rate()` understands.
///
/// ```
/// let registry = cortex_metrics::MetricsRegistry::new();
/// let jobs = registry.counter("jobs_processed", "Jobs processed.")?;
/// jobs.inc();
/// jobs.inc_by(4);
/// assert_eq!(jobs.get(), 5);
/// # Ok::<(), cortex_metrics::MetricsError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Counter {
    raw: RawCounter<u64>,
}

impl Counter {
    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.raw.inc();
    }

    /// Adds `v`.
    #[inline]
    pub fn inc_by(&self, v: u64) {
        self.raw.inc_by(v);
    }

    /// The current total.
    pub fn get(&self) -> u64 {
        self.raw.get()
    }
}

impl sealed::Sealed for Counter {}

impl Metric for Counter {
    const TYPE: MetricType = MetricType::Counter;
    const KIND: &'static str = "counter";
    const SUFFIXES: &'static [&'static str] = &["_total", "_created"];
    type Layout = ();

    fn new_series((): &()) -> Self {
        Self::default()
    }

    fn encode(&self, name: &str, labels: LabelSet<'_>, writer: &mut MetricWriter<'_>) {
        writer.sample_u64(name, "_total", labels, None, self.get());
    }
}
