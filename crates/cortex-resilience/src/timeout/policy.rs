//! [`Timeout`]: the policy users hold, its builder and its plain async API.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::config::{TimeoutConfig, TimeoutStats};
use crate::{ConfigError, ResilienceError};

/// A per-call time limit. Cheap to clone; clones share counters.
#[derive(Clone)]
pub struct Timeout {
    shared: Arc<Shared>,
}

struct Shared {
    name: Arc<str>,
    config: TimeoutConfig,
    timed_out: AtomicU64,
}

impl fmt::Debug for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("name", &self.shared.name)
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Timeout`].
#[derive(Debug)]
#[must_use]
pub struct TimeoutBuilder {
    name: Arc<str>,
    config: TimeoutConfig,
}

impl TimeoutBuilder {
    /// Replaces the whole configuration.
    pub fn config(mut self, config: TimeoutConfig) -> Self {
        self.config = config;
        self
    }

    /// The limit per call. Default 1 s.
    pub fn timeout_duration(mut self, limit: Duration) -> Self {
        self.config.timeout_duration = limit;
        self
    }

    /// Validates and builds.
    pub fn build(self) -> Result<Timeout, ConfigError> {
        self.config.validate(&self.name)?;
        Ok(Timeout {
            shared: Arc::new(Shared {
                name: self.name,
                config: self.config,
                timed_out: AtomicU64::new(0),
            }),
        })
    }
}

impl Timeout {
    /// A builder with the default limit (1 s).
    pub fn builder(name: impl Into<Arc<str>>) -> TimeoutBuilder {
        TimeoutBuilder {
            name: name.into(),
            config: TimeoutConfig::default(),
        }
    }

    /// A timeout from a configuration.
    pub fn from_config(
        name: impl Into<Arc<str>>,
        config: TimeoutConfig,
    ) -> Result<Self, ConfigError> {
        Self::builder(name).config(config).build()
    }

    /// The timeout's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The address of the shared state: the same for every clone.
    pub(crate) fn id(&self) -> usize {
        Arc::as_ptr(&self.shared).addr()
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &TimeoutConfig {
        &self.shared.config
    }

    /// The limit and the calls cancelled so far.
    pub fn stats(&self) -> TimeoutStats {
        TimeoutStats {
            name: self.shared.name.to_string(),
            timeout_duration: self.shared.config.timeout_duration,
            timed_out_calls_total: self.shared.timed_out.load(Ordering::Relaxed),
        }
    }

    /// Runs `call`, cancelling it after the limit.
    pub async fn execute<T, E, F, Fut>(&self, call: F) -> Result<T, ResilienceError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.run_once(|| async { call().await.map_err(ResilienceError::Inner) })
            .await
    }

    pub(crate) async fn run_once<T, E, F, Fut>(&self, call: F) -> Result<T, ResilienceError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, ResilienceError<E>>>,
    {
        match tokio::time::timeout(self.shared.config.timeout_duration, call()).await {
            Ok(result) => result,
            Err(_elapsed) => Err(self.shared.elapsed()),
        }
    }

    /// The limit per call.
    #[inline]
    pub(super) fn duration(&self) -> Duration {
        self.shared.config.timeout_duration
    }

    /// Counts a call cancelled at the limit.
    #[cold]
    pub(super) fn elapsed<E>(&self) -> ResilienceError<E> {
        self.shared.elapsed()
    }
}

impl Shared {
    #[cold]
    fn elapsed<E>(&self) -> ResilienceError<E> {
        self.timed_out.fetch_add(1, Ordering::Relaxed);
        ResilienceError::Timeout
    }
}
