//! Collectors: metrics computed at scrape time.

use std::collections::HashSet;

use crate::encoding::{LabelSet, MetricWriter};
use crate::metric::MetricType;
use crate::name::{validate_label_name, validate_metric_name};

/// Produces samples when the registry is scraped, for values that live
/// elsewhere (the process table, a connection pool's own counters...).
///
/// ```
/// use cortex_metrics::{Collector, CollectorOutput, Format, MetricsRegistry};
///
/// struct Uptime(std::time::Instant);
///
/// impl Collector for Uptime {
///     fn collect(&self, out: &mut CollectorOutput<'_, '_>) {
///         out.gauge("app_uptime_seconds", "Seconds since start.", self.0.elapsed().as_secs_f64());
///     }
/// }
///
/// let registry = MetricsRegistry::new();
/// registry.register_collector(Uptime(std::time::Instant::now()));
/// assert!(registry.encode(Format::Prometheus).contains("app_uptime_seconds "));
/// ```
pub trait Collector: Send + Sync + 'static {
    /// Writes this collector's samples.
    fn collect(&self, out: &mut CollectorOutput<'_, '_>);
}

/// Where a [`Collector`] writes its samples. Each call writes one unlabelled
/// family; an invalid or already-taken name is skipped with a `tracing`
/// warning rather than corrupting the exposition.
#[derive(Debug)]
pub struct CollectorOutput<'w, 'o> {
    writer: &'w mut MetricWriter<'o>,
    taken: &'w mut HashSet<Box<str>>,
}

impl<'w, 'o> CollectorOutput<'w, 'o> {
    pub(crate) fn new(writer: &'w mut MetricWriter<'o>, taken: &'w mut HashSet<Box<str>>) -> Self {
        Self { writer, taken }
    }

    /// Claims `name` (and `suffixed`) for this scrape; false if taken.
    fn claim(&mut self, name: &str, suffixed: Option<&str>) -> bool {
        if self.taken.contains(name) || suffixed.is_some_and(|s| self.taken.contains(s)) {
            tracing::warn!(
                name,
                "collector metric name is already taken in this scrape; skipped"
            );
            return false;
        }
        self.taken.insert(name.into());
        if let Some(suffixed) = suffixed {
            self.taken.insert(suffixed.into());
        }
        true
    }

    /// A counter family with one sample. `name` may end in `_total`.
    pub fn counter(&mut self, name: &str, help: &str, value: f64) {
        let base = name.strip_suffix("_total").unwrap_or(name);
        if valid(base) && self.claim(base, Some(&format!("{base}_total"))) {
            self.writer.family_header(base, help, MetricType::Counter);
            self.writer
                .sample_f64(base, "_total", LabelSet::Empty, None, value);
        }
    }

    /// A gauge family with one sample.
    pub fn gauge(&mut self, name: &str, help: &str, value: f64) {
        if valid(name) && self.claim(name, None) {
            self.writer.family_header(name, help, MetricType::Gauge);
            self.writer
                .sample_f64(name, "", LabelSet::Empty, None, value);
        }
    }

    /// A labelled counter family: one sample per `(label values, value)`.
    /// Every sample must carry one value per name in `label_names`; samples
    /// that do not are skipped with a warning. `name` may end in `_total`.
    ///
    /// ```
    /// use cortex_metrics::{Collector, CollectorOutput, Format, MetricsRegistry};
    ///
    /// struct Calls;
    /// impl Collector for Calls {
    ///     fn collect(&self, out: &mut CollectorOutput<'_, '_>) {
    ///         out.counter_family(
    ///             "app_calls_total",
    ///             "Calls by kind.",
    ///             &["kind"],
    ///             [(&["ok"][..], 3.0), (&["failed"][..], 1.0)],
    ///         );
    ///     }
    /// }
    /// let registry = MetricsRegistry::new();
    /// registry.register_collector(Calls);
    /// assert!(registry.encode(Format::Prometheus).contains("app_calls_total{kind=\"failed\"} 1"));
    /// ```
    pub fn counter_family<'s>(
        &mut self,
        name: &str,
        help: &str,
        label_names: &[&str],
        samples: impl IntoIterator<Item = (&'s [&'s str], f64)>,
    ) {
        let base = name.strip_suffix("_total").unwrap_or(name);
        if valid(base)
            && valid_labels(label_names)
            && self.claim(base, Some(&format!("{base}_total")))
        {
            self.writer.family_header(base, help, MetricType::Counter);
            self.labelled_samples(base, "_total", label_names, samples);
        }
    }

    /// A labelled gauge family: one sample per `(label values, value)`.
    /// Every sample must carry one value per name in `label_names`; samples
    /// that do not are skipped with a warning.
    pub fn gauge_family<'s>(
        &mut self,
        name: &str,
        help: &str,
        label_names: &[&str],
        samples: impl IntoIterator<Item = (&'s [&'s str], f64)>,
    ) {
        if valid(name) && valid_labels(label_names) && self.claim(name, None) {
            self.writer.family_header(name, help, MetricType::Gauge);
            self.labelled_samples(name, "", label_names, samples);
        }
    }

    fn labelled_samples<'s>(
        &mut self,
        name: &str,
        suffix: &str,
        label_names: &[&str],
        samples: impl IntoIterator<Item = (&'s [&'s str], f64)>,
    ) {
        for (values, value) in samples {
            if values.len() != label_names.len() {
                tracing::warn!(
                    name,
                    "collector sample has the wrong number of label values; skipped"
                );
                continue;
            }
            let labels = LabelSet::Borrowed {
                names: label_names,
                values,
            };
            self.writer.sample_f64(name, suffix, labels, None, value);
        }
    }
}

fn valid_labels(names: &[&str]) -> bool {
    names.iter().all(|name| match validate_label_name(name) {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(%error, "collector produced an invalid label name; skipped");
            false
        }
    })
}

fn valid(name: &str) -> bool {
    match validate_metric_name(name) {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(%error, "collector produced an invalid metric name; skipped");
            false
        }
    }
}
