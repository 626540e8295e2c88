//! The value types a family can hold, behind one sealed trait.

use crate::encoding::{LabelSet, MetricWriter};

/// The Prometheus type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MetricType {
    /// A monotonically increasing total.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Observations counted into cumulative buckets, with a sum and a count.
    Histogram,
}

impl MetricType {
    /// The name used on `# TYPE` lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

impl std::fmt::Display for MetricType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub(crate) mod sealed {
    pub trait Sealed {}
}

/// A metric value that can live in a [`Family`](crate::Family): [`Counter`],
/// [`Gauge`], [`GaugeF64`] or [`Histogram`].
///
/// The trait is sealed; it exists so families can be generic.
///
/// [`Counter`]: crate::Counter
/// [`Gauge`]: crate::Gauge
/// [`GaugeF64`]: crate::GaugeF64
/// [`Histogram`]: crate::Histogram
pub trait Metric: sealed::Sealed + Clone + Send + Sync + 'static {
    /// The Prometheus type of this metric.
    const TYPE: MetricType;
    /// A short description for conflict errors (`"gauge (f64)"`).
    #[doc(hidden)]
    const KIND: &'static str;
    /// Suffixes this type appends to the family name in samples (or
    /// reserves, like OpenMetrics' `_created`); used to refuse families whose
    /// sample names would collide.
    #[doc(hidden)]
    const SUFFIXES: &'static [&'static str];
    /// What every series of a family shares (histogram buckets), or `()`.
    #[doc(hidden)]
    type Layout: Clone + PartialEq + Send + Sync + std::fmt::Debug + 'static;
    #[doc(hidden)]
    fn new_series(layout: &Self::Layout) -> Self;
    #[doc(hidden)]
    fn encode(&self, name: &str, labels: LabelSet<'_>, writer: &mut MetricWriter<'_>);
}
