//! Histograms: observations counted into cumulative buckets.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::MetricsError;
use crate::encoding::{Format, LabelSet, MetricWriter};
use crate::metric::{Metric, MetricType, sealed};

/// The OpenTelemetry HTTP duration buckets, in seconds: the default layout.
pub const DEFAULT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Validated histogram bucket upper bounds (`le` values), shared by every
/// series of a family. `+Inf` is implicit.
///
/// ```
/// use cortex_metrics::Buckets;
///
/// let sizes = Buckets::exponential(100.0, 10.0, 5)?; // 100, 1k, 10k, 100k, 1M
/// assert_eq!(sizes.bounds().len(), 5);
/// assert!(Buckets::new([1.0, 0.5]).is_err()); // not increasing
/// # Ok::<(), cortex_metrics::MetricsError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets {
    bounds: Arc<[f64]>,
}

impl Buckets {
    /// Validates `bounds`: non-empty, finite, strictly increasing. A trailing
    /// `+Inf` is accepted and dropped (it is always present).
    pub fn new(bounds: impl IntoIterator<Item = f64>) -> Result<Self, MetricsError> {
        let mut bounds: Vec<f64> = bounds.into_iter().collect();
        if bounds.last() == Some(&f64::INFINITY) {
            bounds.pop();
        }
        if bounds.is_empty() {
            return Err(MetricsError::InvalidBuckets {
                reason: "at least one finite bucket bound is required",
            });
        }
        if bounds.iter().any(|b| !b.is_finite()) {
            return Err(MetricsError::InvalidBuckets {
                reason: "bucket bounds must be finite numbers",
            });
        }
        if bounds.windows(2).any(|w| w[0] >= w[1]) {
            return Err(MetricsError::InvalidBuckets {
                reason: "bucket bounds must be strictly increasing",
            });
        }
        Ok(Self {
            bounds: bounds.into(),
        })
    }

    /// `count` bounds: `start`, `start * factor`, `start * factor^2`...
    pub fn exponential(start: f64, factor: f64, count: usize) -> Result<Self, MetricsError> {
        if start.is_nan() || factor.is_nan() || start <= 0.0 || factor <= 1.0 {
            return Err(MetricsError::InvalidBuckets {
                reason: "exponential buckets need start > 0 and factor > 1",
            });
        }
        Self::new(std::iter::successors(Some(start), |b| Some(b * factor)).take(count))
    }

    /// `count` bounds: `start`, `start + width`, `start + 2 * width`...
    pub fn linear(start: f64, width: f64, count: usize) -> Result<Self, MetricsError> {
        if width.is_nan() || width <= 0.0 {
            return Err(MetricsError::InvalidBuckets {
                reason: "linear buckets need width > 0",
            });
        }
        Self::new((0..count).map(|i| width.mul_add(i as f64, start)))
    }

    /// The finite upper bounds, ascending.
    pub fn bounds(&self) -> &[f64] {
        &self.bounds
    }
}

impl Default for Buckets {
    /// [`DEFAULT_BUCKETS`].
    fn default() -> Self {
        Self {
            bounds: DEFAULT_BUCKETS.into(),
        }
    }
}

/// Observations counted into cumulative buckets, with `_sum` and `_count`
/// (Prometheus `histogram`).
///
/// Lock-free: an observation is one binary search and two atomic adds, so
/// concurrent observers never wait for each other or for a scrape. `_count`
/// is derived from the buckets at scrape time, so it always equals the
/// `+Inf` bucket.
///
/// ```
/// let registry = cortex_metrics::MetricsRegistry::new();
/// let latency = registry.histogram("db_query_duration_seconds", "Query latency.", cortex_metrics::DEFAULT_BUCKETS)?;
/// latency.observe(0.042);
/// {
///     let _timer = latency.start_timer(); // observes the elapsed seconds on drop
/// }
/// assert_eq!(latency.count(), 2);
/// # Ok::<(), cortex_metrics::MetricsError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Histogram {
    core: Arc<HistogramCore>,
}

#[derive(Debug)]
struct HistogramCore {
    buckets: Buckets,
    /// Non-cumulative counts; the last slot is the `+Inf` overflow bucket.
    counts: Box<[AtomicU64]>,
    /// The sum of observations, as `f64` bits.
    sum_bits: AtomicU64,
    /// The latest exemplar per bucket, allocated on the first exemplar.
    exemplars: OnceLock<Box<[Mutex<Option<StoredExemplar>>]>>,
}

/// The trace behind an observation, exposed as an OpenMetrics exemplar on
/// the observation's bucket so a latency spike links to its trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exemplar {
    /// The W3C trace id.
    pub trace_id: u128,
    /// The span id.
    pub span_id: u64,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct StoredExemplar {
    pub(crate) trace_id: u128,
    pub(crate) span_id: u64,
    pub(crate) value: f64,
    /// Seconds since the Unix epoch.
    pub(crate) timestamp: f64,
}

impl Histogram {
    /// A standalone histogram (not registered anywhere) with `buckets`.
    pub fn new(buckets: Buckets) -> Self {
        let counts = (0..=buckets.bounds.len())
            .map(|_| AtomicU64::new(0))
            .collect();
        Self {
            core: Arc::new(HistogramCore {
                buckets,
                counts,
                sum_bits: AtomicU64::new(0f64.to_bits()),
                exemplars: OnceLock::new(),
            }),
        }
    }

    /// Records one observation.
    ///
    /// `NaN` is counted in the `+Inf` bucket (so `_count` still says it
    /// happened) but kept out of `_sum`, which would otherwise stay `NaN`
    /// forever and be rejected by OpenMetrics parsers.
    #[inline]
    pub fn observe(&self, value: f64) {
        self.observe_at(value);
    }

    /// Records one observation and remembers `exemplar` as the latest one
    /// of its bucket (shown in OpenMetrics output only). Exemplars are best
    /// effort: under contention on the same bucket one may be skipped, the
    /// observation never is.
    ///
    /// ```
    /// use cortex_metrics::{Exemplar, Format, MetricsRegistry};
    ///
    /// let registry = MetricsRegistry::new();
    /// let latency = registry.histogram("rpc_seconds", "RPC latency.", &[0.1, 1.0])?;
    /// latency.observe_with_exemplar(0.042, Exemplar { trace_id: 0x4bf9, span_id: 0xf0 });
    /// let text = registry.encode(Format::OpenMetrics);
    /// assert!(text.contains(r#"rpc_seconds_bucket{le="0.1"} 1 # {trace_id="00000000000000000000000000004bf9",span_id="00000000000000f0"} 0.042 "#));
    /// # Ok::<(), cortex_metrics::MetricsError>(())
    /// ```
    pub fn observe_with_exemplar(&self, value: f64, exemplar: Exemplar) {
        let index = self.observe_at(value);
        let slots = self.core.exemplars.get_or_init(|| {
            (0..self.core.counts.len())
                .map(|_| Mutex::new(None))
                .collect()
        });
        if let Ok(mut slot) = slots[index].try_lock() {
            let timestamp = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            *slot = Some(StoredExemplar {
                trace_id: exemplar.trace_id,
                span_id: exemplar.span_id,
                value,
                timestamp,
            });
        }
    }

    /// Counts `value` and returns its bucket index.
    #[inline]
    fn observe_at(&self, value: f64) -> usize {
        let bounds = self.core.buckets.bounds();
        if value.is_nan() {
            self.core.counts[bounds.len()].fetch_add(1, Ordering::Relaxed);
            return bounds.len();
        }
        let index = bounds.partition_point(|bound| *bound < value);
        self.core.counts[index].fetch_add(1, Ordering::Relaxed);
        // A CAS loop: std has no atomic f64 add. Contention only delays
        // concurrent observers of the same series by a retry.
        let mut current = self.core.sum_bits.load(Ordering::Relaxed);
        loop {
            let next = (f64::from_bits(current) + value).to_bits();
            match self.core.sum_bits.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => current = actual,
            }
        }
        index
    }

    /// Starts a [`HistogramTimer`] that observes the elapsed seconds when
    /// dropped (or when [`HistogramTimer::observe_duration`] is called).
    pub fn start_timer(&self) -> HistogramTimer {
        HistogramTimer {
            histogram: Some(self.clone()),
            start: Instant::now(),
        }
    }

    /// The number of observations so far.
    pub fn count(&self) -> u64 {
        self.core
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// The sum of observations so far.
    pub fn sum(&self) -> f64 {
        f64::from_bits(self.core.sum_bits.load(Ordering::Relaxed))
    }

    /// The bucket layout.
    pub fn buckets(&self) -> &Buckets {
        &self.core.buckets
    }

    /// Cumulative counts, one per finite bound, then `+Inf`.
    pub fn cumulative_counts(&self) -> Vec<u64> {
        let mut total = 0;
        self.core
            .counts
            .iter()
            .map(|c| {
                total += c.load(Ordering::Relaxed);
                total
            })
            .collect()
    }
}

impl sealed::Sealed for Histogram {}

impl Metric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
    const KIND: &'static str = "histogram";
    const SUFFIXES: &'static [&'static str] = &["_bucket", "_sum", "_count", "_created"];
    type Layout = Buckets;

    fn new_series(layout: &Buckets) -> Self {
        Self::new(layout.clone())
    }

    fn encode(&self, name: &str, labels: LabelSet<'_>, writer: &mut MetricWriter<'_>) {
        let bounds = self.core.buckets.bounds();
        let mut cumulative = 0u64;
        let exemplars = self.core.exemplars.get();
        for (index, count) in self.core.counts.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            let le = bounds.get(index).copied().unwrap_or(f64::INFINITY);
            let exemplar = exemplars
                .and_then(|slots| *slots[index].lock().unwrap_or_else(PoisonError::into_inner));
            writer.bucket_sample(name, labels, le, cumulative, exemplar.as_ref());
        }
        // OpenMetrics treats `_sum` as a counter: it must not be NaN or
        // negative, and must be left out when buckets can be negative.
        let sum = self.sum();
        let sum_is_counter_like = sum >= 0.0 && bounds.first().is_none_or(|b| *b >= 0.0);
        if writer.format() == Format::Prometheus || sum_is_counter_like {
            writer.sample_f64(name, "_sum", labels, None, sum);
        }
        writer.sample_u64(name, "_count", labels, None, cumulative);
    }
}

/// Observes the seconds elapsed since its creation into a [`Histogram`] when
/// dropped. Made by [`Histogram::start_timer`].
#[derive(Debug)]
#[must_use = "the timer observes when dropped; binding it to `_` drops it at once"]
pub struct HistogramTimer {
    histogram: Option<Histogram>,
    start: Instant,
}

impl HistogramTimer {
    /// Observes now and returns the elapsed seconds.
    pub fn observe_duration(mut self) -> f64 {
        self.record().unwrap_or_default()
    }

    /// Drops the timer without observing anything.
    pub fn discard(mut self) {
        self.histogram = None;
    }

    fn record(&mut self) -> Option<f64> {
        let histogram = self.histogram.take()?;
        let seconds = self.start.elapsed().as_secs_f64();
        histogram.observe(seconds);
        Some(seconds)
    }
}

impl Drop for HistogramTimer {
    fn drop(&mut self) {
        self.record();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_whose_bound_is_not_smaller() {
        let h = Histogram::new(Buckets::new([1.0, 2.0, 5.0]).unwrap());
        for v in [0.5, 1.0, 1.5, 2.0, 7.0, f64::NAN, f64::INFINITY, -3.0] {
            h.observe(v);
        }
        // le=1: 0.5, 1.0, -3.0 | le=2: +1.5, 2.0 | le=5: nothing | +Inf: 7, NaN, inf
        assert_eq!(h.cumulative_counts(), vec![3, 5, 5, 8]);
        assert_eq!(h.count(), 8);
        // NaN is counted but kept out of the sum.
        let finite = Histogram::new(Buckets::new([1.0]).unwrap());
        finite.observe(0.5);
        finite.observe(f64::NAN);
        assert_eq!(finite.count(), 2);
        assert_eq!(finite.sum(), 0.5);
    }

    #[test]
    fn invalid_buckets_are_rejected_with_a_reason() {
        assert!(Buckets::new([]).is_err());
        assert!(Buckets::new([f64::INFINITY]).is_err());
        assert!(Buckets::new([1.0, f64::NAN]).is_err());
        assert!(Buckets::new([1.0, 1.0]).is_err());
        assert!(Buckets::new([2.0, 1.0]).is_err());
        assert!(Buckets::exponential(0.0, 2.0, 3).is_err());
        assert!(Buckets::linear(0.0, 0.0, 3).is_err());
        assert_eq!(Buckets::new([1.0, f64::INFINITY]).unwrap().bounds(), &[1.0]);
        assert_eq!(
            Buckets::linear(1.0, 2.0, 3).unwrap().bounds(),
            &[1.0, 3.0, 5.0]
        );
    }

    #[test]
    fn openmetrics_leaves_out_a_sum_that_is_not_counter_like() {
        let registry = crate::MetricsRegistry::new();
        let h = registry.histogram("temp", "", &[-10.0, 0.0, 10.0]).unwrap();
        h.observe(-5.0);
        let om = registry.encode(Format::OpenMetrics);
        assert!(!om.contains("temp_sum"), "{om}");
        assert!(om.contains("temp_count 1\n"), "{om}");
        let text = registry.encode(Format::Prometheus);
        assert!(text.contains("temp_sum -5.0\n"), "{text}");
    }

    #[test]
    fn timer_observes_once_and_discard_observes_nothing() {
        let h = Histogram::new(Buckets::default());
        let seconds = h.start_timer().observe_duration();
        assert!(seconds >= 0.0);
        h.start_timer().discard();
        drop(h.start_timer());
        assert_eq!(h.count(), 2);
    }

    #[test]
    fn concurrent_observers_lose_no_observation() {
        let h = Histogram::new(Buckets::default());
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for i in 0..10_000 {
                        h.observe(f64::from(i % 7) * 0.01);
                    }
                });
            }
        });
        assert_eq!(h.count(), 40_000);
        let expected: f64 = 4.0 * (0..10_000).map(|i| f64::from(i % 7) * 0.01).sum::<f64>();
        assert!((h.sum() - expected).abs() < 1e-6);
    }
}
