//! Gauges: values that go up and down, as `i64` or `f64`.

use std::sync::atomic::{AtomicI64, AtomicU64};

use prometheus_client::metrics::gauge::Gauge as RawGauge;

use crate::encoding::{LabelSet, MetricWriter};
use crate::metric::{Metric, MetricType, sealed};

/// An `i64` value that goes up and down (Prometheus `gauge`).
///
/// Cheap to clone: all clones share one atomic.
///
/// ```
/// let registry = cortex_metrics::MetricsRegistry::new();
/// let queue = registry.gauge("queue_depth", "Jobs waiting.")?;
/// queue.inc_by(3);
/// queue.dec();
/// assert_eq!(queue.get(), 2);
/// queue.set(-1);
/// assert_eq!(queue.get(), -1);
/// # Ok::<(), cortex_metrics::MetricsError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Gauge {
    raw: RawGauge<i64, AtomicI64>,
}

impl Gauge {
    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.raw.inc();
    }

    /// Subtracts one.
    #[inline]
    pub fn dec(&self) {
        self.raw.dec();
    }

    /// Adds `v`.
    #[inline]
    pub fn inc_by(&self, v: i64) {
        self.raw.inc_by(v);
    }

    /// Subtracts `v`.
    #[inline]
    pub fn dec_by(&self, v: i64) {
        self.raw.dec_by(v);
    }

    /// Replaces the value.
    #[inline]
    pub fn set(&self, v: i64) {
        self.raw.set(v);
    }

    /// The current value.
    pub fn get(&self) -> i64 {
        self.raw.get()
    }

    /// Adds one now and subtracts it when the returned guard is dropped:
    /// an in-flight count that stays right when a future is cancelled or a
    /// handler panics.
    ///
    /// ```
    /// let registry = cortex_metrics::MetricsRegistry::new();
    /// let in_flight = registry.gauge("jobs_in_flight", "Jobs running.")?;
    /// {
    ///     let _job = in_flight.inc_guard();
    ///     assert_eq!(in_flight.get(), 1);
    /// }
    /// assert_eq!(in_flight.get(), 0);
    /// # Ok::<(), cortex_metrics::MetricsError>(())
    /// ```
    pub fn inc_guard(&self) -> GaugeGuard {
        self.inc();
        GaugeGuard {
            gauge: self.clone(),
        }
    }
}

/// Decrements its [`Gauge`] when dropped. Made by [`Gauge::inc_guard`].
#[derive(Debug)]
#[must_use = "the guard decrements when dropped; binding it to `_` drops it at once"]
pub struct GaugeGuard {
    gauge: Gauge,
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

impl sealed::Sealed for Gauge {}

impl Metric for Gauge {
    const TYPE: MetricType = MetricType::Gauge;
    const KIND: &'static str = "gauge (i64)";
    const SUFFIXES: &'static [&'static str] = &[];
    type Layout = ();

    fn new_series((): &()) -> Self {
        Self::default()
    }

    fn encode(&self, name: &str, labels: LabelSet<'_>, writer: &mut MetricWriter<'_>) {
        writer.sample_i64(name, "", labels, self.get());
    }
}

/// An `f64` value that goes up and down (Prometheus `gauge`).
///
/// ```
/// let registry = cortex_metrics::MetricsRegistry::new();
/// let temp = registry.gauge_f64("room_temperature_celsius", "Temperature.")?;
/// temp.set(21.5);
/// temp.inc_by(0.25);
/// assert_eq!(temp.get(), 21.75);
/// # Ok::<(), cortex_metrics::MetricsError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct GaugeF64 {
    raw: RawGauge<f64, AtomicU64>,
}

impl GaugeF64 {
    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.raw.inc();
    }

    /// Subtracts one.
    #[inline]
    pub fn dec(&self) {
        self.raw.dec();
    }

    /// Adds `v`.
    #[inline]
    pub fn inc_by(&self, v: f64) {
        self.raw.inc_by(v);
    }

    /// Subtracts `v`.
    #[inline]
    pub fn dec_by(&self, v: f64) {
        self.raw.dec_by(v);
    }

    /// Replaces the value.
    #[inline]
    pub fn set(&self, v: f64) {
        self.raw.set(v);
    }

    /// The current value.
    pub fn get(&self) -> f64 {
        self.raw.get()
    }
}

impl sealed::Sealed for GaugeF64 {}

impl Metric for GaugeF64 {
    const TYPE: MetricType = MetricType::Gauge;
    const KIND: &'static str = "gauge (f64)";
    const SUFFIXES: &'static [&'static str] = &[];
    type Layout = ();

    fn new_series((): &()) -> Self {
        Self::default()
    }

    fn encode(&self, name: &str, labels: LabelSet<'_>, writer: &mut MetricWriter<'_>) {
        writer.sample_f64(name, "", labels, None, self.get());
    }
}
