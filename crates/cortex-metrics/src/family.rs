//! Labelled families with a cardinality guard.

use std::any::Any;
use std::sync::{Arc, OnceLock};

use crate::counter::Counter;
use crate::encoding::{LabelSet, MetricWriter};
use crate::label_table::LabelTable;
use crate::metric::Metric;

/// The label that marks the cardinality guard's overflow series, as the
/// OpenTelemetry SDK spec names it (`otel.metric.overflow`).
pub(crate) const OVERFLOW_LABEL: &str = "otel_metric_overflow";

/// The default series cap per family.
pub const DEFAULT_MAX_SERIES: usize = 10_000;

/// A metric family: one metric name, `N` label names, and one series of `M`
/// per distinct label-value combination.
///
/// Cheap to clone; clones share the series. The label count is part of the
/// type, so a lookup with the wrong number of values does not compile.
///
/// # Cardinality guard
///
/// A family holds at most [`max_series`](Self::max_series) series (default
/// [`DEFAULT_MAX_SERIES`]). Past the cap, every new label combination is
/// folded into one overflow series labelled `otel_metric_overflow="true"`
/// and each such redirected lookup increments
/// `cortex_metrics_overflow_total{metric="<family>"}`, so memory stays
/// bounded whatever values arrive, and the loss is visible.
///
/// ```
/// use cortex_metrics::MetricsRegistry;
///
/// let registry = MetricsRegistry::new();
/// let requests = registry.counter_family("app_requests", "Requests.", ["method", "route"])?;
/// requests.with_labels(["GET", "/users/{id}"]).inc();
/// requests.with_labels(["GET", "/users/{id}"]).inc();
/// assert_eq!(requests.with_labels(["GET", "/users/{id}"]).get(), 2);
/// assert_eq!(requests.len(), 1);
/// # Ok::<(), cortex_metrics::MetricsError>(())
/// ```
pub struct Family<M: Metric, const N: usize> {
    inner: Arc<FamilyInner<M, N>>,
}

/// A family of [`Counter`]s with `N` labels.
pub type CounterFamily<const N: usize> = Family<Counter, N>;
/// A family of [`Gauge`](crate::Gauge)s with `N` labels.
pub type GaugeFamily<const N: usize> = Family<crate::Gauge, N>;
/// A family of [`GaugeF64`](crate::GaugeF64)s with `N` labels.
pub type GaugeF64Family<const N: usize> = Family<crate::GaugeF64, N>;
/// A family of [`Histogram`](crate::Histogram)s with `N` labels.
pub type HistogramFamily<const N: usize> = Family<crate::Histogram, N>;

struct FamilyInner<M: Metric, const N: usize> {
    name: Box<str>,
    help: Box<str>,
    label_names: [Box<str>; N],
    layout: M::Layout,
    table: LabelTable<M, N>,
    overflow_series: OnceLock<M>,
    overflow_total: Option<Counter>,
}

impl<M: Metric, const N: usize> Clone for Family<M, N> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<M: Metric, const N: usize> std::fmt::Debug for Family<M, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Family")
            .field("name", &self.inner.name)
            .field("type", &M::KIND)
            .field("label_names", &self.inner.label_names)
            .field("series", &self.len())
            .field("max_series", &self.max_series())
            .finish()
    }
}

impl<M: Metric, const N: usize> Family<M, N> {
    pub(crate) fn new(
        name: &str,
        help: &str,
        label_names: [&str; N],
        layout: M::Layout,
        max_series: usize,
        overflow_total: Option<Counter>,
    ) -> Self {
        Self {
            inner: Arc::new(FamilyInner {
                name: name.into(),
                help: help.into(),
                label_names: label_names.map(Box::from),
                layout,
                table: LabelTable::new(max_series),
                overflow_series: OnceLock::new(),
                overflow_total,
            }),
        }
    }

    /// The series for these label values, created on first use.
    ///
    /// Values are free-form UTF-8 (escaped on exposition). A hit takes a
    /// shared lock and allocates nothing; a miss takes the write lock once.
    /// Past the series cap, returns the overflow series (see the type docs).
    #[inline]
    pub fn with_labels(&self, values: [&str; N]) -> M {
        let inner = &*self.inner;
        inner
            .table
            .with(values, || M::new_series(&inner.layout), M::clone)
            .unwrap_or_else(|| self.overflow())
    }

    /// Removes the series for these label values; returns whether it existed.
    ///
    /// Handles to it keep working but are no longer exported.
    pub fn remove(&self, values: [&str; N]) -> bool {
        self.inner.table.remove(values)
    }

    /// Removes every series (the overflow series stays).
    pub fn clear(&self) {
        self.inner.table.clear();
    }

    /// The number of distinct label sets held (the overflow series excluded).
    pub fn len(&self) -> usize {
        self.inner.table.len()
    }

    /// Whether no series exists yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The family's metric name (a counter's without `_total`).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The label names, in order.
    pub fn label_names(&self) -> &[Box<str>; N] {
        &self.inner.label_names
    }

    /// The series cap of the cardinality guard.
    pub fn max_series(&self) -> usize {
        self.inner.table.max_entries()
    }

    #[cold]
    fn overflow(&self) -> M {
        if let Some(total) = &self.inner.overflow_total {
            total.inc();
        }
        self.inner
            .overflow_series
            .get_or_init(|| {
                tracing::warn!(
                    metric = &*self.inner.name,
                    max_series = self.max_series(),
                    "metric family reached its series cap; new label sets go to the overflow series"
                );
                M::new_series(&self.inner.layout)
            })
            .clone()
    }

    pub(crate) fn layout(&self) -> &M::Layout {
        &self.inner.layout
    }
}

/// What the registry needs from a family without knowing `M` and `N`.
pub(crate) trait ErasedFamily: Send + Sync + 'static {
    fn encode(&self, writer: &mut MetricWriter<'_>);
    fn as_any(&self) -> &dyn Any;
    fn describe(&self) -> String;
}

impl<M: Metric, const N: usize> ErasedFamily for Family<M, N> {
    fn encode(&self, writer: &mut MetricWriter<'_>) {
        let inner = &*self.inner;
        writer.family_header(&inner.name, &inner.help, M::TYPE);
        inner.table.for_each(|values, metric| {
            let labels = LabelSet::Pairs {
                names: &inner.label_names,
                values,
            };
            metric.encode(&inner.name, labels, writer);
        });
        if let Some(overflow) = inner.overflow_series.get() {
            overflow.encode(&inner.name, LabelSet::Overflow, writer);
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn describe(&self) -> String {
        describe::<M>(
            &self.inner.label_names.each_ref().map(|n| &**n),
            self.layout(),
        )
    }
}

pub(crate) fn describe<M: Metric>(label_names: &[&str], layout: &M::Layout) -> String {
    let mut text = format!("{} with labels {label_names:?}", M::KIND);
    let layout = format!("{layout:?}");
    if layout != "()" {
        text.push_str(" and ");
        text.push_str(&layout);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MetricsRegistry;

    #[test]
    fn distinct_label_sets_get_distinct_series() {
        let family: CounterFamily<2> = Family::new("x", "", ["a", "b"], (), 100, None);
        family.with_labels(["1", "2"]).inc();
        family.with_labels(["2", "1"]).inc_by(5);
        family.with_labels(["1", "2"]).inc();
        assert_eq!(family.len(), 2);
        assert_eq!(family.with_labels(["1", "2"]).get(), 2);
        assert_eq!(family.with_labels(["2", "1"]).get(), 5);
    }

    #[test]
    fn new_label_sets_past_the_cap_go_to_one_overflow_series_and_are_counted() {
        let registry = MetricsRegistry::builder().max_series_per_family(3).build();
        let family = registry.counter_family("capped", "help", ["id"]).unwrap();
        for i in 0..1_000 {
            family.with_labels([&i.to_string()]).inc();
        }
        assert_eq!(family.len(), 3);
        // Existing series keep working past the cap.
        family.with_labels(["0"]).inc();
        assert_eq!(family.with_labels(["0"]).get(), 2);
        let text = registry.encode(crate::Format::Prometheus);
        assert!(
            text.contains("capped_total{otel_metric_overflow=\"true\"} 997\n"),
            "{text}"
        );
        assert!(
            text.contains("cortex_metrics_overflow_total{metric=\"capped\"} 997\n"),
            "{text}"
        );
    }

    #[test]
    fn remove_keeps_the_index_consistent() {
        let family: GaugeFamily<1> = Family::new("g", "", ["k"], (), 100, None);
        for k in ["a", "b", "c", "d"] {
            family.with_labels([k]).set(1);
        }
        assert!(family.remove(["a"]));
        assert!(!family.remove(["a"]));
        assert_eq!(family.len(), 3);
        // "d" was moved into "a"'s slot; it must still be found, not recreated.
        assert_eq!(family.with_labels(["d"]).get(), 1);
        assert_eq!(family.with_labels(["b"]).get(), 1);
        assert_eq!(family.len(), 3);
        assert_eq!(family.with_labels(["a"]).get(), 0);
        family.clear();
        assert!(family.is_empty());
    }

    #[test]
    fn concurrent_lookups_create_each_series_exactly_once() {
        let family: CounterFamily<1> = Family::new("c", "", ["k"], (), 10_000, None);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for i in 0..2_000 {
                        family.with_labels([&(i % 500).to_string()]).inc();
                    }
                });
            }
        });
        assert_eq!(family.len(), 500);
        let total: u64 = (0..500)
            .map(|i| family.with_labels([&i.to_string()]).get())
            .sum();
        assert_eq!(total, 8_000);
    }
}
