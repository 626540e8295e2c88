//! The registry: get-or-create metrics by name, and encode them all.

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};

use crate::MetricsError;
use crate::collector::{Collector, CollectorOutput};
use crate::counter::Counter;
use crate::encoding::{Format, MetricWriter};
use crate::family::{DEFAULT_MAX_SERIES, ErasedFamily, Family, describe};
use crate::gauge::{Gauge, GaugeF64};
use crate::histogram::{Buckets, Histogram};
use crate::metric::Metric;
use crate::name::{validate_label_name, validate_metric_name};

/// A counter family's base name: exposed as `cortex_metrics_overflow_total`.
const OVERFLOW_TOTAL: &str = "cortex_metrics_overflow";

/// A set of metrics that are exposed together.
///
/// A value, not a global: cheap to [`Clone`] (an `Arc` inside) and shared
/// by cloning. Every `counter`/`gauge`/`histogram` call is *get-or-create*:
/// asking again for the same name, type and labels returns a handle to the
/// same metric, so libraries can ask for what they need without
/// coordinating. Asking with another type, label set or bucket layout is a
/// [`MetricsError::Conflict`]; a name outside the Prometheus grammar is a
/// [`MetricsError::InvalidName`]. Nothing here panics.
///
/// Counter names may be given with or without `_total`: the family's name
/// is the base name and samples are always exposed as `<base>_total`.
///
/// ```
/// use cortex_metrics::{Format, MetricsRegistry, DEFAULT_BUCKETS};
///
/// let registry = MetricsRegistry::new();
/// let orders = registry.counter("shop_orders_total", "Orders placed.")?;
/// let latency = registry.histogram_family(
///     "shop_checkout_duration_seconds",
///     "Checkout latency.",
///     ["payment"],
///     DEFAULT_BUCKETS,
/// )?;
/// orders.inc();
/// latency.with_labels(["card"]).observe(0.3);
///
/// let text = registry.encode(Format::Prometheus);
/// assert!(text.contains("shop_orders_total 1\n"));
/// assert!(text.contains("shop_checkout_duration_seconds_count{payment=\"card\"} 1\n"));
/// // Same name, other type: a typed error, not a panic.
/// assert!(registry.gauge("shop_orders", "Oops.").is_err());
/// # Ok::<(), cortex_metrics::MetricsError>(())
/// ```
#[derive(Clone)]
pub struct MetricsRegistry {
    inner: Arc<RegistryInner>,
}

struct RegistryInner {
    max_series_per_family: usize,
    families: RwLock<Families>,
    collectors: RwLock<Vec<Arc<dyn Collector>>>,
    /// Collectors added under a key (`shared_collector`), for lookup.
    collector_keys: std::sync::Mutex<HashMap<Box<str>, Arc<dyn Any + Send + Sync>>>,
    overflow_total: Family<Counter, 1>,
}

#[derive(Default)]
struct Families {
    /// Family name -> index into `ordered`.
    by_name: HashMap<Box<str>, usize>,
    /// Every name a family's exposition uses (its name plus its type's
    /// suffixes: `x_total`, `x_bucket`...) -> the family's index, so that
    /// a gauge `x_count` cannot shadow histogram `x`'s samples.
    taken: HashMap<Box<str>, usize>,
    /// Registration order, which is exposition order.
    ordered: Vec<Arc<dyn ErasedFamily>>,
}

impl Families {
    fn insert<M: Metric>(&mut self, name: &str, family: Arc<dyn ErasedFamily>) {
        let index = self.ordered.len();
        self.ordered.push(family);
        self.by_name.insert(name.into(), index);
        for reserved in reserved_names::<M>(name) {
            self.taken.insert(reserved.into(), index);
        }
    }

    /// The family whose exposition already uses one of `name`'s names.
    fn collision<M: Metric>(&self, name: &str) -> Option<&Arc<dyn ErasedFamily>> {
        reserved_names::<M>(name)
            .find_map(|reserved| self.taken.get(reserved.as_str()))
            .map(|&index| &self.ordered[index])
    }
}

fn reserved_names<M: Metric>(name: &str) -> impl Iterator<Item = String> + '_ {
    std::iter::once(name.to_owned()).chain(M::SUFFIXES.iter().map(move |s| format!("{name}{s}")))
}

impl std::fmt::Debug for MetricsRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let families = self
            .inner
            .families
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("MetricsRegistry")
            .field("families", &families.ordered.len())
            .field("max_series_per_family", &self.inner.max_series_per_family)
            .finish_non_exhaustive()
    }
}

impl Default for MetricsRegistry {
    fn default() -> Self {
        Self::new()
    }
}

/// Builds a [`MetricsRegistry`] with non-default settings.
#[derive(Debug, Clone)]
#[must_use]
pub struct MetricsRegistryBuilder {
    max_series_per_family: usize,
}

impl MetricsRegistryBuilder {
    /// The cardinality guard's cap for every family of this registry
    /// (default [`DEFAULT_MAX_SERIES`]). Zero is raised to one.
    pub fn max_series_per_family(mut self, max: usize) -> Self {
        self.max_series_per_family = max.max(1);
        self
    }

    /// Builds the registry.
    pub fn build(self) -> MetricsRegistry {
        // The overflow counter has one series per family, so its own
        // cardinality is bounded by the number of families.
        let overflow_total = Family::new(
            OVERFLOW_TOTAL,
            "Lookups of new label sets redirected to a family's overflow series by the cardinality guard.",
            ["metric"],
            (),
            usize::MAX,
            None,
        );
        let mut families = Families::default();
        families.insert::<Counter>(OVERFLOW_TOTAL, Arc::new(overflow_total.clone()));
        MetricsRegistry {
            inner: Arc::new(RegistryInner {
                max_series_per_family: self.max_series_per_family,
                families: RwLock::new(families),
                collectors: RwLock::new(Vec::new()),
                collector_keys: std::sync::Mutex::default(),
                overflow_total,
            }),
        }
    }
}

impl MetricsRegistry {
    /// An empty registry with default settings.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder for non-default settings.
    pub fn builder() -> MetricsRegistryBuilder {
        MetricsRegistryBuilder {
            max_series_per_family: DEFAULT_MAX_SERIES,
        }
    }

    /// Whether `self` and `other` are clones of one registry (they share
    /// every metric). Components that keep per-registry state use it to
    /// tell registries apart.
    ///
    /// ```
    /// use cortex_metrics::MetricsRegistry;
    ///
    /// let registry = MetricsRegistry::new();
    /// assert!(registry.same_as(&registry.clone()));
    /// assert!(!registry.same_as(&MetricsRegistry::new()));
    /// ```
    pub fn same_as(&self, other: &MetricsRegistry) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Gets or creates an unlabelled counter.
    pub fn counter(&self, name: &str, help: &str) -> Result<Counter, MetricsError> {
        Ok(self.counter_family(name, help, [])?.with_labels([]))
    }

    /// Gets or creates an unlabelled `i64` gauge.
    pub fn gauge(&self, name: &str, help: &str) -> Result<Gauge, MetricsError> {
        Ok(self.gauge_family(name, help, [])?.with_labels([]))
    }

    /// Gets or creates an unlabelled `f64` gauge.
    pub fn gauge_f64(&self, name: &str, help: &str) -> Result<GaugeF64, MetricsError> {
        Ok(self.gauge_f64_family(name, help, [])?.with_labels([]))
    }

    /// Gets or creates an unlabelled histogram with these bucket bounds
    /// (pass [`DEFAULT_BUCKETS`](crate::DEFAULT_BUCKETS) for the OpenTelemetry
    /// HTTP layout).
    pub fn histogram(
        &self,
        name: &str,
        help: &str,
        buckets: &[f64],
    ) -> Result<Histogram, MetricsError> {
        Ok(self
            .histogram_family(name, help, [], buckets)?
            .with_labels([]))
    }

    /// Gets or creates a counter family with `N` labels.
    pub fn counter_family<const N: usize>(
        &self,
        name: &str,
        help: &str,
        label_names: [&str; N],
    ) -> Result<Family<Counter, N>, MetricsError> {
        let base = name.strip_suffix("_total").unwrap_or(name);
        self.family(base, help, label_names, ())
    }

    /// Gets or creates an `i64` gauge family with `N` labels.
    pub fn gauge_family<const N: usize>(
        &self,
        name: &str,
        help: &str,
        label_names: [&str; N],
    ) -> Result<Family<Gauge, N>, MetricsError> {
        self.family(name, help, label_names, ())
    }

    /// Gets or creates an `f64` gauge family with `N` labels.
    pub fn gauge_f64_family<const N: usize>(
        &self,
        name: &str,
        help: &str,
        label_names: [&str; N],
    ) -> Result<Family<GaugeF64, N>, MetricsError> {
        self.family(name, help, label_names, ())
    }

    /// Gets or creates a histogram family with `N` labels. The bounds must be
    /// non-empty, finite and strictly increasing (`+Inf` is implicit).
    pub fn histogram_family<const N: usize>(
        &self,
        name: &str,
        help: &str,
        label_names: [&str; N],
        buckets: &[f64],
    ) -> Result<Family<Histogram, N>, MetricsError> {
        let buckets = Buckets::new(buckets.iter().copied())?;
        if label_names.contains(&"le") {
            return Err(MetricsError::InvalidName {
                name: "le".to_owned(),
                reason: "`le` is reserved for histogram buckets",
            });
        }
        self.family(name, help, label_names, buckets)
    }

    /// Adds a [`Collector`] whose samples are produced at scrape time (after
    /// the registered families, in registration order). A family name a
    /// collector emits that is already taken — by a registered metric or an
    /// earlier collector (say, the same collector registered twice) — is
    /// skipped with a warning, so the exposition stays valid.
    pub fn register_collector(&self, collector: impl Collector) {
        self.inner
            .collectors
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::new(collector));
    }

    /// Adds `collector` unless a collector was already added under `key`;
    /// returns whether it was added. Components use it so that
    /// [`RegisterMetrics::register_metrics`](crate::RegisterMetrics) can be
    /// called twice without duplicating their series (the key names the
    /// component instance, e.g. `"cortex_actor/<address of its state>"`).
    pub fn register_collector_once(&self, key: &str, collector: impl Collector) -> bool {
        let mut added = false;
        let _ = self.shared_collector(key, || {
            added = true;
            collector
        });
        added
    }

    /// The collector added under `key`, adding `make()`'s the first time:
    /// per-registry state for components whose instances all export into
    /// the same families (a family may appear only once per scrape), so
    /// they share one collector per registry instead of a global table.
    /// Fails with [`MetricsError::Conflict`] when `key` holds a collector of
    /// another type.
    ///
    /// ```
    /// use std::sync::Mutex;
    /// use cortex_metrics::{Collector, CollectorOutput, Format, MetricsRegistry};
    ///
    /// #[derive(Default)]
    /// struct Pools(Mutex<Vec<(&'static str, f64)>>);
    /// impl Collector for Pools {
    ///     fn collect(&self, out: &mut CollectorOutput<'_, '_>) {
    ///         let pools: Vec<([&str; 1], f64)> =
    ///             self.0.lock().unwrap().iter().map(|(name, size)| ([*name], *size)).collect();
    ///         let samples = pools.iter().map(|(labels, size)| (&labels[..], *size));
    ///         out.gauge_family("app_pool_size", "Pool sizes.", &["pool"], samples);
    ///     }
    /// }
    ///
    /// let registry = MetricsRegistry::new();
    /// for pool in ["db", "cache"] {
    ///     let pools = registry.shared_collector("app_pools", Pools::default)?;
    ///     pools.0.lock().unwrap().push((pool, 4.0));
    /// }
    /// let text = registry.encode(Format::Prometheus);
    /// assert!(text.contains("app_pool_size{pool=\"cache\"} 4"));
    /// # Ok::<(), cortex_metrics::MetricsError>(())
    /// ```
    pub fn shared_collector<C: Collector>(
        &self,
        key: &str,
        make: impl FnOnce() -> C,
    ) -> Result<Arc<C>, MetricsError> {
        let mut keys = self
            .inner
            .collector_keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(existing) = keys.get(key) {
            return Arc::clone(existing)
                .downcast::<C>()
                .map_err(|_| MetricsError::Conflict {
                    name: key.to_owned(),
                    existing: "a collector of another type".to_owned(),
                    requested: std::any::type_name::<C>().to_owned(),
                });
        }
        let collector = Arc::new(make());
        keys.insert(
            key.into(),
            Arc::clone(&collector) as Arc<dyn Any + Send + Sync>,
        );
        self.inner
            .collectors
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::clone(&collector) as Arc<dyn Collector>);
        Ok(collector)
    }

    /// Encodes every metric in `format`.
    pub fn encode(&self, format: Format) -> String {
        let mut out = String::with_capacity(4096);
        self.encode_to(&mut out, format);
        out
    }

    /// Appends every metric, encoded in `format`, to `out`.
    pub fn encode_to(&self, out: &mut String, format: Format) {
        // Snapshot the list so registrations never wait for a scrape.
        let families = self
            .inner
            .families
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .ordered
            .clone();
        let collectors = self
            .inner
            .collectors
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut writer = MetricWriter::new(out, format);
        for family in &families {
            family.encode(&mut writer);
        }
        if !collectors.is_empty() {
            // Names collectors may not reuse: every registered family's, and
            // (added as they go) each other's. A duplicate family would make
            // the whole scrape invalid, so it is skipped instead.
            let mut taken: HashSet<Box<str>> = self
                .inner
                .families
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .taken
                .keys()
                .cloned()
                .collect();
            for collector in &collectors {
                collector.collect(&mut CollectorOutput::new(&mut writer, &mut taken));
            }
        }
        writer.finish();
    }

    fn family<M: Metric, const N: usize>(
        &self,
        name: &str,
        help: &str,
        label_names: [&str; N],
        layout: M::Layout,
    ) -> Result<Family<M, N>, MetricsError> {
        validate_metric_name(name)?;
        for (i, label) in label_names.iter().enumerate() {
            validate_label_name(label)?;
            if label_names[..i].contains(label) {
                return Err(MetricsError::InvalidName {
                    name: (*label).to_owned(),
                    reason: "label names must be unique within a metric",
                });
            }
        }
        if let Some(found) = self.lookup::<M, N>(name, &label_names, &layout) {
            return found;
        }
        let mut families = self
            .inner
            .families
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(&index) = families.by_name.get(name) {
            let existing = Arc::clone(&families.ordered[index]);
            drop(families);
            return downcast(&*existing, name, &label_names, &layout);
        }
        if let Some(existing) = families.collision::<M>(name) {
            return Err(MetricsError::Conflict {
                name: name.to_owned(),
                existing: format!("a sample name of {}", existing.describe()),
                requested: describe::<M>(&label_names, &layout),
            });
        }
        let family = Family::<M, N>::new(
            name,
            help,
            label_names,
            layout,
            self.inner.max_series_per_family,
            Some(self.inner.overflow_total.with_labels([name])),
        );
        families.insert::<M>(name, Arc::new(family.clone()));
        Ok(family)
    }

    fn lookup<M: Metric, const N: usize>(
        &self,
        name: &str,
        label_names: &[&str; N],
        layout: &M::Layout,
    ) -> Option<Result<Family<M, N>, MetricsError>> {
        let families = self
            .inner
            .families
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let existing = &families.ordered[*families.by_name.get(name)?];
        Some(downcast(&**existing, name, label_names, layout))
    }
}

fn downcast<M: Metric, const N: usize>(
    existing: &dyn ErasedFamily,
    name: &str,
    label_names: &[&str; N],
    layout: &M::Layout,
) -> Result<Family<M, N>, MetricsError> {
    let conflict = || MetricsError::Conflict {
        name: name.to_owned(),
        existing: existing.describe(),
        requested: describe::<M>(label_names, layout),
    };
    let family = existing
        .as_any()
        .downcast_ref::<Family<M, N>>()
        .ok_or_else(conflict)?;
    let same_labels = family
        .label_names()
        .iter()
        .zip(label_names)
        .all(|(a, b)| **a == **b);
    if !same_labels || family.layout() != layout {
        return Err(conflict());
    }
    Ok(family.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Constant;
    impl Collector for Constant {
        fn collect(&self, out: &mut CollectorOutput<'_, '_>) {
            out.gauge("constant", "A constant.", 1.0);
        }
    }

    #[derive(Debug, Default)]
    struct Other;
    impl Collector for Other {
        fn collect(&self, _: &mut CollectorOutput<'_, '_>) {}
    }

    #[test]
    fn a_shared_collector_is_one_per_key_and_type_checked() {
        let registry = MetricsRegistry::new();
        let first = registry.shared_collector("k", || Constant).unwrap();
        let again = registry.shared_collector("k", || Constant).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        let err = registry.shared_collector("k", Other::default).unwrap_err();
        assert!(matches!(err, MetricsError::Conflict { .. }), "{err}");
        // Dropping the registry drops the collector: no global keeps it.
        drop(registry);
        assert_eq!(Arc::strong_count(&first), 2);
        drop(again);
        assert_eq!(Arc::strong_count(&first), 1);
    }

    #[test]
    fn a_keyed_collector_is_added_once() {
        let registry = MetricsRegistry::new();
        assert!(registry.register_collector_once("c/1", Constant));
        assert!(!registry.register_collector_once("c/1", Constant));
        let text = registry.encode(Format::Prometheus);
        assert_eq!(text.matches("# HELP constant ").count(), 1, "{text}");
        // Another key is another collector; its duplicate family is skipped
        // at scrape time, so the exposition stays valid.
        assert!(registry.register_collector_once("c/2", Constant));
        let text = registry.encode(Format::Prometheus);
        assert_eq!(text.matches("# HELP constant ").count(), 1, "{text}");
    }

    #[test]
    fn get_or_create_returns_the_same_metric() {
        let registry = MetricsRegistry::new();
        let a = registry.counter("hits_total", "Hits.").unwrap();
        let b = registry.counter("hits", "Hits.").unwrap();
        a.inc();
        b.inc();
        assert_eq!(a.get(), 2);
        let clone = registry.clone();
        assert_eq!(clone.counter("hits_total", "").unwrap().get(), 2);
    }

    #[test]
    fn conflicting_type_labels_or_buckets_are_typed_errors() {
        let registry = MetricsRegistry::new();
        registry.counter_family("c", "", ["a"]).unwrap();
        let err = registry.gauge("c", "").unwrap_err();
        assert!(matches!(err, MetricsError::Conflict { .. }), "{err}");
        assert!(err.to_string().contains("counter"), "{err}");
        assert!(matches!(
            registry.counter_family("c", "", ["b"]),
            Err(MetricsError::Conflict { .. })
        ));
        assert!(matches!(
            registry.counter_family("c", "", ["a", "b"]),
            Err(MetricsError::Conflict { .. })
        ));
        registry.gauge("g", "").unwrap();
        assert!(matches!(
            registry.gauge_f64("g", ""),
            Err(MetricsError::Conflict { .. })
        ));
        registry.histogram("h", "", &[1.0, 2.0]).unwrap();
        assert!(matches!(
            registry.histogram("h", "", &[1.0, 3.0]),
            Err(MetricsError::Conflict { .. })
        ));
        assert!(registry.histogram("h", "", &[1.0, 2.0]).is_ok());
    }

    #[test]
    fn families_whose_sample_names_would_collide_are_conflicts() {
        let registry = MetricsRegistry::new();
        registry.histogram("latency", "", &[1.0]).unwrap();
        for taken in ["latency_count", "latency_sum", "latency_bucket"] {
            let err = registry.gauge(taken, "").unwrap_err();
            assert!(
                matches!(err, MetricsError::Conflict { .. }),
                "{taken}: {err}"
            );
        }
        registry.counter("jobs", "").unwrap();
        assert!(matches!(
            registry.gauge("jobs_total", ""),
            Err(MetricsError::Conflict { .. })
        ));
        // The other direction: a gauge first, then a histogram that would
        // emit its name as a sample.
        registry.gauge("size_sum", "").unwrap();
        assert!(matches!(
            registry.histogram("size", "", &[1.0]),
            Err(MetricsError::Conflict { .. })
        ));
        assert!(matches!(
            registry.counter("cortex_metrics_overflow", ""),
            Err(MetricsError::Conflict { .. })
        ));
    }

    #[test]
    fn invalid_names_and_buckets_are_typed_errors() {
        let registry = MetricsRegistry::new();
        assert!(matches!(
            registry.counter("bad-name", ""),
            Err(MetricsError::InvalidName { .. })
        ));
        assert!(matches!(
            registry.counter_family("ok", "", ["bad label"]),
            Err(MetricsError::InvalidName { .. })
        ));
        assert!(matches!(
            registry.counter_family("ok", "", ["a", "a"]),
            Err(MetricsError::InvalidName { .. })
        ));
        assert!(matches!(
            registry.histogram_family("h", "", ["le"], &[1.0]),
            Err(MetricsError::InvalidName { .. })
        ));
        assert!(matches!(
            registry.histogram("h", "", &[]),
            Err(MetricsError::InvalidBuckets { .. })
        ));
        assert!(matches!(
            registry.histogram("h", "", &[2.0, 1.0]),
            Err(MetricsError::InvalidBuckets { .. })
        ));
        // Nothing was registered by the failed calls.
        assert!(registry.counter_family("ok", "", ["fine"]).is_ok());
        assert!(registry.histogram("h", "", &[1.0]).is_ok());
    }
}
