//! What a [`Server`](crate::Server), its accept loop and its connections
//! share: the health registry to drain and the series to record.

use std::sync::OnceLock;

use crate::connection::CloseReason;

/// Shared by every clone of a `Server` and by the running loop, so
/// `register_metrics` and `health` may be called before or after cloning.
#[derive(Debug, Default)]
pub(crate) struct ServerState {
    #[cfg(feature = "health")]
    pub(crate) health: OnceLock<cortex_health::HealthRegistry>,
    #[cfg(feature = "metrics")]
    pub(crate) metrics: OnceLock<crate::metrics::ServerMetrics>,
    /// Kept for the metrics registered after `serve` started.
    max_connections: OnceLock<usize>,
}

// Without the features, the hooks below have nothing to call.
#[cfg_attr(
    not(all(feature = "health", feature = "metrics")),
    allow(clippy::unused_self)
)]
impl ServerState {
    pub(crate) fn set_max_connections(&self, max: usize) {
        let _ = self.max_connections.set(max);
        #[cfg(feature = "metrics")]
        if let Some(metrics) = self.metrics.get() {
            metrics.max_connections(max);
        }
    }

    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn max_connections(&self) -> Option<usize> {
        self.max_connections.get().copied()
    }

    pub(crate) fn start_draining(&self) {
        #[cfg(feature = "health")]
        if let Some(health) = self.health.get() {
            health.set_draining();
        }
    }

    pub(crate) fn opened(&self) {
        #[cfg(feature = "metrics")]
        if let Some(metrics) = self.metrics.get() {
            metrics.opened();
        }
    }

    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn closed(&self, reason: CloseReason) {
        #[cfg(feature = "metrics")]
        if let Some(metrics) = self.metrics.get() {
            metrics.closed(reason.as_str());
        }
    }

    pub(crate) fn closed_aborted(&self) {
        #[cfg(feature = "metrics")]
        if let Some(metrics) = self.metrics.get() {
            metrics.closed("aborted");
        }
    }

    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn accept_error(&self, fd_limit: bool) {
        #[cfg(feature = "metrics")]
        if let Some(metrics) = self.metrics.get() {
            metrics.accept_error(if fd_limit { "fd_limit" } else { "other" });
        }
    }
}
