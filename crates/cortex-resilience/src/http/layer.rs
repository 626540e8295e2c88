//! [`HttpLayer`]: a policy's tower layer, answering over HTTP.

use tower_layer::Layer;

use super::policy::HttpOptions;
use super::replay::IdempotentMethods;
use super::service::HttpService;

/// Applies a policy's tower layer `L` and answers its rejections with
/// responses; what every `http_layer()` returns. See the [module
/// docs](super).
///
/// The settings below concern only some policies and are ignored by the
/// others.
#[derive(Debug, Clone)]
pub struct HttpLayer<L> {
    layer: L,
    options: HttpOptions,
}

impl<L> HttpLayer<L> {
    /// Wraps `layer`, the tower layer of a Cortex policy (such as
    /// `breaker.layer().classify(my_classifier)`), with the default
    /// settings.
    pub fn new(layer: L) -> Self {
        Self {
            layer,
            options: HttpOptions::default(),
        }
    }

    /// Retrying policies: the methods that may be sent more than once.
    /// Default the idempotent ones ([`IdempotentMethods::default`]).
    #[must_use]
    pub fn methods(mut self, methods: IdempotentMethods) -> Self {
        self.options.methods = methods;
        self
    }

    /// Retrying policies: the largest request body buffered so that it
    /// can be sent again. Requests with a larger body, or one of unknown
    /// length, are sent once, unbuffered. Default 64 KiB.
    #[must_use]
    pub fn max_replay_body(mut self, bytes: usize) -> Self {
        self.options.max_replay_body = bytes;
        self
    }

    /// Rate limiters: whether allowed responses carry the `RateLimit-*`
    /// headers too (rejections always do). Default true.
    #[must_use]
    pub fn headers_on_success(mut self, on: bool) -> Self {
        self.options.headers_on_success = on;
        self
    }

    /// The wrapped policy layer.
    pub fn get_ref(&self) -> &L {
        &self.layer
    }

    /// Changes the wrapped policy layer, keeping the settings.
    pub(crate) fn map<L2>(self, map: impl FnOnce(L) -> L2) -> HttpLayer<L2> {
        HttpLayer {
            layer: map(self.layer),
            options: self.options,
        }
    }
}

impl<S, L: Layer<S>> Layer<S> for HttpLayer<L> {
    type Service = HttpService<L::Service>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpService::with_options(self.layer.layer(inner), self.options.clone())
    }
}
