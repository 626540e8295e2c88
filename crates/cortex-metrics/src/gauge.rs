//! Gauges: values that go up and down, as `i64` or `f64`.

use std::sync::atomic::{AtomicI64, AtomicU64};

use prometheus_client::metrics::gauge::Gauge as RawGauge;

use crate::encoding::{LabelSet, MetricWriter};
use crate::metric::{Metric, MetricType, sealed};

/// Defines a gauge type over one prometheus-client atomic gauge: the two
/// gauges differ only in their number type and how a sample is written.
macro_rules! gauge_type {
    (
        $(#[$doc:meta])*
        $name:ident($number:ty, $atomic:ty, $kind:literal, $write:ident)
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default)]
        pub struct $name {
            raw: RawGauge<$number, $atomic>,
        }

        impl $name {
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
            pub fn inc_by(&self, v: $number) {
                self.raw.inc_by(v);
            }

            /// Subtracts `v`.
            #[inline]
            pub fn dec_by(&self, v: $number) {
                self.raw.dec_by(v);
            }

            /// Replaces the value.
            #[inline]
            pub fn set(&self, v: $number) {
                self.raw.set(v);
            }

            /// The current value.
            pub fn get(&self) -> $number {
                self.raw.get()
            }
        }

        impl sealed::Sealed for $name {}

        impl Metric for $name {
            const TYPE: MetricType = MetricType::Gauge;
            const KIND: &'static str = $kind;
            const SUFFIXES: &'static [&'static str] = &[];
            type Layout = ();

            fn new_series((): &()) -> Self {
                Self::default()
            }

            fn encode(&self, name: &str, labels: LabelSet<'_>, writer: &mut MetricWriter<'_>) {
                writer.$write(name, "", labels, self.get());
            }
        }
    };
}

gauge_type! {
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
    Gauge(i64, AtomicI64, "gauge (i64)", sample_i64)
}

gauge_type! {
    /// An `f64` value that goes up and down (Prometheus `gauge`).
    ///
    /// Cheap to clone: all clones share one atomic.
    ///
    /// ```
    /// let registry = cortex_metrics::MetricsRegistry::new();
    /// let temp = registry.gauge_f64("room_temperature_celsius", "Temperature.")?;
    /// temp.set(21.5);
    /// temp.inc_by(0.25);
    /// assert_eq!(temp.get(), 21.75);
    /// # Ok::<(), cortex_metrics::MetricsError>(())
    /// ```
    GaugeF64(f64, AtomicU64, "gauge (f64)", sample_f64_plain)
}

impl Gauge {
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
