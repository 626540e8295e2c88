//! [`RetryLayer`], and the retry's two layer entry points.

use tower_layer::Layer;

use super::policy::Retry;
use super::predicate::{DefaultRetryPredicate, HttpRetryPredicate};
use super::service::RetryService;
use crate::http::HttpLayer;

impl Retry {
    /// A tower layer retrying per [`DefaultRetryPredicate`]; requests must
    /// be `Clone`. For HTTP use [`http_layer`](Self::http_layer).
    pub fn layer(&self) -> RetryLayer<DefaultRetryPredicate> {
        RetryLayer::new(self.clone(), DefaultRetryPredicate)
    }

    /// The tower layer for HTTP: retries idempotent requests whose body
    /// can be replayed (see [`HttpLayer::methods`] and
    /// [`HttpLayer::max_replay_body`]) on 429/502/503/504 and errors,
    /// honouring `Retry-After` ([`HttpRetryPredicate`]); a rejection it
    /// ends with is answered as a response.
    pub fn http_layer(&self) -> HttpLayer<RetryLayer<HttpRetryPredicate>> {
        HttpLayer::new(RetryLayer::new(self.clone(), HttpRetryPredicate::default()))
    }
}

/// Retries calls of the services it wraps; see [`Retry::layer`].
#[derive(Debug, Clone)]
pub struct RetryLayer<P> {
    retry: Retry,
    predicate: P,
}

impl<P> RetryLayer<P> {
    /// A layer over `retry` deciding with `predicate`.
    pub const fn new(retry: Retry, predicate: P) -> Self {
        Self { retry, predicate }
    }

    /// The same policy with another predicate.
    pub fn predicate<P2>(self, predicate: P2) -> RetryLayer<P2> {
        RetryLayer {
            retry: self.retry,
            predicate,
        }
    }
}

impl<P> HttpLayer<RetryLayer<P>> {
    /// The same policy with another predicate (instead of
    /// [`HttpRetryPredicate::default`]).
    #[must_use]
    pub fn predicate<P2>(self, predicate: P2) -> HttpLayer<RetryLayer<P2>> {
        self.map(|layer| layer.predicate(predicate))
    }
}

impl<S, P: Clone> Layer<S> for RetryLayer<P> {
    type Service = RetryService<S, P>;

    fn layer(&self, inner: S) -> Self::Service {
        RetryService::new(inner, self.retry.clone(), self.predicate.clone())
    }
}
