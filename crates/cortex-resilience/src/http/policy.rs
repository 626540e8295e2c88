//! What the adapter asks of a policy: [`PolicyService`], and the
//! [`HttpOptions`] that the layer hands to every service it makes.

use std::future::Future;
use std::task::{Context, Poll};

use http::{Request, Response};

use super::body::ResilienceBody;
use super::replay::{DEFAULT_MAX_REPLAY_BODY, IdempotentMethods};
use crate::ResilienceError;
use crate::ratelimit::RateLimitDecision;

pub(crate) mod sealed {
    /// Only this crate's policy services are [`PolicyService`](super::PolicyService)s.
    pub trait Sealed {}
}

/// The service of a policy's tower layer, as the HTTP adapter
/// ([`HttpService`](super::HttpService)) drives it: every Cortex policy
/// service implements it, with request type `http::Request<B>`. Sealed.
///
/// Its methods are the adapter's business; what matters to users is which
/// layers [`HttpLayer`](super::HttpLayer) accepts: those of
/// [`CircuitBreaker`](crate::CircuitBreaker), [`Bulkhead`](crate::Bulkhead),
/// [`Timeout`](crate::Timeout), [`RateLimiter`](crate::RateLimiter),
/// [`KeyedRateLimiter`](crate::KeyedRateLimiter), [`Retry`](crate::Retry)
/// and [`Pipeline`](crate::Pipeline).
pub trait PolicyService<B>: sealed::Sealed {
    /// The wrapped service's response body.
    type ResponseBody;
    /// The wrapped service's own error.
    type Error;
    /// One call under the policy: the response (maybe one the policy made,
    /// such as a 400 for a body that could not be buffered), or the error.
    type Future: Future<
        Output = Result<Response<ResilienceBody<Self::ResponseBody>>, ResilienceError<Self::Error>>,
    >;

    /// Whether the wrapped service is ready.
    #[doc(hidden)]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>>;

    /// Starts one call; a rate limiter also returns its decision, for the
    /// `RateLimit-*` headers.
    #[doc(hidden)]
    fn call(
        &mut self,
        request: Request<B>,
        options: &HttpOptions,
    ) -> (Self::Future, Option<RateLimitDecision>);
}

/// The HTTP settings of an [`HttpLayer`](super::HttpLayer), set with its
/// builder methods; cheap to clone (every service carries a copy).
#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub(crate) methods: IdempotentMethods,
    pub(crate) max_replay_body: usize,
    pub(crate) headers_on_success: bool,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            methods: IdempotentMethods::default(),
            max_replay_body: DEFAULT_MAX_REPLAY_BODY,
            headers_on_success: true,
        }
    }
}
