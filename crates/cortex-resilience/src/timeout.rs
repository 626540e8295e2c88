//! Timeout: cancel a call that takes too long (resilience4j's
//! `TimeLimiter`).
//!
//! ```
//! use std::time::Duration;
//! use cortex_resilience::{ResilienceError, Timeout};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let timeout = Timeout::builder("search")
//!     .timeout_duration(Duration::from_millis(100))
//!     .build()
//!     .unwrap();
//! let slow = timeout
//!     .execute(|| async {
//!         tokio::time::sleep(Duration::from_secs(1)).await;
//!         Ok::<_, ()>("late")
//!     })
//!     .await;
//! assert_eq!(slow, Err(ResilienceError::Timeout));
//! assert_eq!(timeout.stats().timed_out_calls_total, 1);
//! # }
//! ```
//!
//! The timed-out future is dropped, which cancels it. A fallback value is
//! a [`Fallback`](crate::Fallback) around the timeout.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use serde::{Deserialize, Serialize};
use tokio::time::Sleep;
use tower_layer::Layer;
use tower_service::Service;

use crate::{ConfigError, ResilienceError};

/// Timeout settings, with resilience4j's default.
///
/// ```
/// use std::time::Duration;
/// use cortex_resilience::TimeoutConfig;
///
/// let config: TimeoutConfig = serde_json::from_str(r#"{ "timeout_duration": "250ms" }"#).unwrap();
/// assert_eq!(config.timeout_duration, Duration::from_millis(250));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimeoutConfig {
    /// The limit per call; must be positive. 1 s.
    #[serde(with = "crate::duration")]
    pub timeout_duration: Duration,
}

impl Default for TimeoutConfig {
    fn default() -> Self {
        Self {
            timeout_duration: Duration::from_secs(1),
        }
    }
}

impl TimeoutConfig {
    /// Checks every field of the timeout named `name`; `build()` calls this.
    fn validate(&self, name: &str) -> Result<(), ConfigError> {
        if self.timeout_duration.is_zero() {
            return Err(ConfigError::new(
                "Timeout",
                name,
                "timeout_duration",
                "must be positive",
            ));
        }
        Ok(())
    }
}

/// A snapshot of a [`Timeout`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimeoutStats {
    /// The timeout's name.
    pub name: String,
    /// The limit (as `"250ms"`, `"2s"`... in JSON, like the config).
    #[serde(serialize_with = "crate::duration::serialize")]
    pub timeout_duration: Duration,
    /// Calls cancelled at the limit since creation.
    pub timed_out_calls_total: u64,
}

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

    /// A tower layer applying this limit to every call.
    pub fn layer(&self) -> TimeoutLayer {
        TimeoutLayer {
            timeout: self.clone(),
        }
    }

    /// [`layer`](Self::layer) answering timeouts with 504 responses.
    pub fn http_layer(&self) -> crate::http::HttpLayer<TimeoutLayer> {
        crate::http::HttpLayer::new(self.layer())
    }
}

impl Shared {
    #[cold]
    fn elapsed<E>(&self) -> ResilienceError<E> {
        self.timed_out.fetch_add(1, Ordering::Relaxed);
        ResilienceError::Timeout
    }
}

/// Applies a [`Timeout`] to services.
#[derive(Debug, Clone)]
pub struct TimeoutLayer {
    timeout: Timeout,
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = TimeoutService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TimeoutService {
            inner,
            timeout: self.timeout.clone(),
        }
    }
}

/// A service whose calls are limited by a [`Timeout`].
#[derive(Debug, Clone)]
pub struct TimeoutService<S> {
    inner: S,
    timeout: Timeout,
}

impl<S, Req> Service<Req> for TimeoutService<S>
where
    S: Service<Req>,
{
    type Response = S::Response;
    type Error = ResilienceError<S::Error>;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(ResilienceError::Inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        ResponseFuture {
            inner: self.inner.call(request),
            sleep: tokio::time::sleep(self.timeout.shared.config.timeout_duration),
            timeout: self.timeout.clone(),
        }
    }
}

pin_project! {
    /// Response future of [`TimeoutService`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        #[pin]
        sleep: Sleep,
        timeout: Timeout,
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("timeout::ResponseFuture")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
{
    type Output = Result<T, ResilienceError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(result) = this.inner.poll(cx) {
            return Poll::Ready(result.map_err(ResilienceError::Inner));
        }
        match this.sleep.poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(this.timeout.shared.elapsed())),
            Poll::Pending => Poll::Pending,
        }
    }
}
