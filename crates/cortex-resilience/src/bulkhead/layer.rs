//! [`BulkheadLayer`], and the bulkhead's two layer entry points.

use tower_layer::Layer;

use super::policy::Bulkhead;
use super::service::BulkheadService;
use crate::http::HttpLayer;

impl Bulkhead {
    /// A tower layer whose services share this bulkhead. Queued calls wait
    /// inside the response future, never in `poll_ready`.
    pub fn layer(&self) -> BulkheadLayer {
        BulkheadLayer {
            bulkhead: self.clone(),
        }
    }

    /// [`layer`](Self::layer) answering rejections with 503 responses.
    pub fn http_layer(&self) -> HttpLayer<BulkheadLayer> {
        HttpLayer::new(self.layer())
    }
}

/// Wraps services in a shared [`Bulkhead`].
#[derive(Debug, Clone)]
pub struct BulkheadLayer {
    bulkhead: Bulkhead,
}

impl<S> Layer<S> for BulkheadLayer {
    type Service = BulkheadService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BulkheadService::new(inner, self.bulkhead.clone())
    }
}
