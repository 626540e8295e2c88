//! [`PipelineLayer`], and the pipeline's two layer entry points.

use tower_layer::Layer;

use super::policy::Pipeline;
use super::service::PipelineService;
use crate::http::HttpLayer;

impl<C: Clone, P: Clone> Pipeline<C, P> {
    /// A tower layer running each call through the pipeline; requests
    /// must be `Clone` if a retry is configured.
    pub fn layer(&self) -> PipelineLayer<C, P> {
        PipelineLayer {
            pipeline: self.clone(),
        }
    }

    /// The tower layer for HTTP: policy errors become 503/429/504
    /// responses, and only idempotent requests with a small, known-length
    /// body are retried ([`HttpLayer::methods`],
    /// [`HttpLayer::max_replay_body`]); others run once, still under every
    /// other policy.
    pub fn http_layer(&self) -> HttpLayer<PipelineLayer<C, P>> {
        HttpLayer::new(self.layer())
    }
}

/// Runs requests through a [`Pipeline`]; see [`Pipeline::layer`].
#[derive(Debug, Clone)]
pub struct PipelineLayer<C, P> {
    pipeline: Pipeline<C, P>,
}

impl<S, C: Clone, P: Clone> Layer<S> for PipelineLayer<C, P> {
    type Service = PipelineService<S, C, P>;

    fn layer(&self, inner: S) -> Self::Service {
        PipelineService::new(inner, self.pipeline.clone())
    }
}
