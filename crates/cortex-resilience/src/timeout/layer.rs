//! [`TimeoutLayer`], and the timeout's two layer entry points.

use tower_layer::Layer;

use super::policy::Timeout;
use super::service::TimeoutService;
use crate::http::HttpLayer;

impl Timeout {
    /// A tower layer applying this limit to every call.
    pub fn layer(&self) -> TimeoutLayer {
        TimeoutLayer {
            timeout: self.clone(),
        }
    }

    /// [`layer`](Self::layer) answering timeouts with 504 responses.
    pub fn http_layer(&self) -> HttpLayer<TimeoutLayer> {
        HttpLayer::new(self.layer())
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
        TimeoutService::new(inner, self.timeout.clone())
    }
}
