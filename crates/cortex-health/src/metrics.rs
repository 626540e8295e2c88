//! Check status and duration as Prometheus metrics (feature `metrics`).

use cortex_metrics::{
    DEFAULT_BUCKETS, GaugeF64Family, HistogramFamily, MetricsError, MetricsRegistry,
};

use crate::check::HealthCheckResult;

#[derive(Debug, Clone)]
pub(crate) struct HealthMetrics {
    status: GaugeF64Family<1>,
    duration: HistogramFamily<1>,
}

impl HealthMetrics {
    pub(crate) fn new(registry: &MetricsRegistry) -> Result<Self, MetricsError> {
        Ok(Self {
            status: registry.gauge_f64_family(
                "cortex_health_check_status",
                "Last result of each health check: 1 up, 0.5 degraded, 0 down.",
                ["check"],
            )?,
            duration: registry.histogram_family(
                "cortex_health_check_duration_seconds",
                "Duration of health check runs.",
                ["check"],
                DEFAULT_BUCKETS,
            )?,
        })
    }

    pub(crate) fn record(&self, check: &str, result: &HealthCheckResult) {
        self.status
            .with_labels([check])
            .set(result.status.as_gauge());
        self.duration
            .with_labels([check])
            .observe(result.duration.as_secs_f64());
    }
}
