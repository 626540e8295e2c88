//! Request replay, shared by every policy that sends a request more than
//! once (a retry, a pipeline with a retry): which requests may be
//! repeated, and buffering their bodies so that each attempt gets a copy.
//!
//! A request is replayed only if its method is idempotent
//! ([`IdempotentMethods`]) and its body is empty or of a known length up
//! to the bound ([`HttpLayer::max_replay_body`](super::HttpLayer::max_replay_body));
//! anything else is sent once, never buffered whole.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, request::Parts};
use http_body::Body;
use http_body_util::{BodyExt, Limited};

use super::body::ResilienceBody;
use crate::boxed::BoxError;

/// Request bodies up to this size are buffered so they can be replayed.
pub(crate) const DEFAULT_MAX_REPLAY_BODY: usize = 64 * 1024;

/// The methods that are ever repeated, RFC 9110 §9.2.2's idempotent ones
/// in order, then the others.
const STANDARD: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::OPTIONS,
    Method::TRACE,
    Method::PUT,
    Method::DELETE,
    Method::POST,
    Method::PATCH,
    Method::CONNECT,
];

/// GET, HEAD, OPTIONS, TRACE, PUT, DELETE.
const IDEMPOTENT: u16 = 0b11_1111;

/// The methods a retrying policy may repeat over HTTP. Default: the
/// idempotent ones of RFC 9110 §9.2.2 (GET, HEAD, OPTIONS, TRACE, PUT,
/// DELETE).
///
/// ```
/// use cortex_resilience::IdempotentMethods;
/// use http::Method;
///
/// assert!(IdempotentMethods::default().contains(&Method::PUT));
/// assert!(!IdempotentMethods::default().contains(&Method::POST));
/// assert!(IdempotentMethods::only([Method::GET]).contains(&Method::GET));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentMethods {
    methods: Methods,
}

/// Standard methods as a bit set (cloned with every service, so no
/// allocation); extension methods as a shared list.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Methods {
    Standard(u16),
    Listed(Arc<[Method]>),
}

fn bit(method: &Method) -> Option<u16> {
    STANDARD
        .iter()
        .position(|standard| standard == method)
        .map(|index| 1 << index)
}

impl Default for IdempotentMethods {
    fn default() -> Self {
        Self {
            methods: Methods::Standard(IDEMPOTENT),
        }
    }
}

impl IdempotentMethods {
    /// Exactly these methods.
    pub fn only(methods: impl IntoIterator<Item = Method>) -> Self {
        let methods: Vec<Method> = methods.into_iter().collect();
        let standard = methods
            .iter()
            .map(bit)
            .try_fold(0, |mask, bit| bit.map(|bit| mask | bit));
        Self {
            methods: match standard {
                Some(mask) => Methods::Standard(mask),
                None => Methods::Listed(methods.into()),
            },
        }
    }

    /// Whether `method` may be repeated.
    pub fn contains(&self, method: &Method) -> bool {
        match &self.methods {
            Methods::Standard(mask) => bit(method).is_some_and(|bit| mask & bit != 0),
            Methods::Listed(methods) => methods.contains(method),
        }
    }
}

/// A request ready for one or more attempts.
pub(crate) enum Prepared<B> {
    /// Buffered: every attempt gets a copy.
    Replay(Replay),
    /// Not repeatable: one attempt with the original.
    Once(Request<B>),
    /// The body broke off while it was being buffered.
    Unreadable,
}

/// A buffered request.
pub(crate) struct Replay {
    parts: Parts,
    body: Bytes,
}

impl Replay {
    /// A fresh copy of the request, for one attempt.
    pub(crate) fn request<B: From<Bytes>>(&self) -> Request<B> {
        Request::from_parts(self.parts.clone(), B::from(self.body.clone()))
    }
}

/// Buffers the body of a request that `methods` allows to repeat, if it is
/// empty or of a known length up to `max_body`; anything else passes
/// through once.
pub(crate) async fn prepare<B>(
    request: Request<B>,
    methods: &IdempotentMethods,
    max_body: usize,
) -> Prepared<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    if !methods.contains(request.method()) {
        return Prepared::Once(request);
    }
    let hint = request.body().size_hint();
    if request.body().is_end_stream() || hint.exact() == Some(0) {
        let (parts, _) = request.into_parts();
        return Prepared::Replay(Replay {
            parts,
            body: Bytes::new(),
        });
    }
    let known_small = hint
        .exact()
        .and_then(|length| usize::try_from(length).ok())
        .is_some_and(|length| length <= max_body);
    if !known_small {
        return Prepared::Once(request);
    }
    let (parts, body) = request.into_parts();
    match Limited::new(body, max_body).collect().await {
        Ok(collected) => Prepared::Replay(Replay {
            parts,
            body: collected.to_bytes(),
        }),
        Err(_) => Prepared::Unreadable,
    }
}

/// 400 for a request whose body broke off while being buffered, as RFC
/// 9457 `application/problem+json` like every other rejection.
pub(crate) fn unreadable_body<RB>() -> Response<ResilienceBody<RB>> {
    let details = problem_details::ProblemDetails::from_status_code(StatusCode::BAD_REQUEST)
        .with_type(problem_details::ProblemType::default())
        .with_detail("request body could not be read");
    let body = problem_details::JsonProblemDetails::from(details)
        .to_body_string()
        .map(Bytes::from)
        .unwrap_or_default();
    let mut response = Response::new(ResilienceBody::rejection(body));
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(problem_details::JsonProblemDetails::<()>::CONTENT_TYPE),
    );
    response
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use http_body::{Frame, SizeHint};
    use http_body_util::{Empty, Full};

    use super::*;

    fn request<B>(method: Method, body: B) -> Request<B> {
        Request::builder()
            .method(method)
            .uri("/orders")
            .header("x-trace", "1")
            .body(body)
            .unwrap()
    }

    async fn prepare_default<B>(request: Request<B>, max_body: usize) -> Prepared<B>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        prepare(request, &IdempotentMethods::default(), max_body).await
    }

    #[tokio::test]
    async fn small_bodies_of_idempotent_requests_are_replayed_whole() {
        let body = Full::new(Bytes::from_static(b"hello"));
        let Prepared::Replay(replay) = prepare_default(request(Method::PUT, body), 5).await else {
            panic!("a 5-byte PUT within a 5-byte bound is replayed");
        };
        for _ in 0..2 {
            let attempt: Request<Full<Bytes>> = replay.request();
            assert_eq!(attempt.method(), Method::PUT);
            assert_eq!(attempt.uri(), "/orders");
            assert_eq!(attempt.headers()["x-trace"], "1");
            let bytes = attempt.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&bytes[..], b"hello");
        }
        let empty = prepare_default(request(Method::GET, Empty::<Bytes>::new()), 0).await;
        assert!(
            matches!(empty, Prepared::Replay(_)),
            "an empty body is free"
        );
    }

    #[tokio::test]
    async fn bodies_over_the_replay_bound_are_sent_once() {
        let body = Full::new(Bytes::from(vec![b'x'; 11]));
        let prepared = prepare_default(request(Method::PUT, body), 10).await;
        let Prepared::Once(request) = prepared else {
            panic!("11 bytes over a 10-byte bound are not buffered");
        };
        assert_eq!(request.body().size_hint().exact(), Some(11), "untouched");
    }

    #[tokio::test]
    async fn non_idempotent_methods_are_sent_once() {
        for method in [Method::POST, Method::PATCH, Method::CONNECT] {
            let body = Full::new(Bytes::from_static(b"{}"));
            let prepared = prepare_default(request(method.clone(), body), 1024).await;
            assert!(matches!(prepared, Prepared::Once(_)), "{method}");
        }
        let only_get = IdempotentMethods::only([Method::GET]);
        let put = request(Method::PUT, Empty::<Bytes>::new());
        assert!(matches!(
            prepare(put, &only_get, 1024).await,
            Prepared::Once(_)
        ));
        let custom = Method::from_bytes(b"PURGE").unwrap();
        let listed = IdempotentMethods::only([Method::GET, custom.clone()]);
        assert!(listed.contains(&custom) && listed.contains(&Method::GET));
        assert!(!listed.contains(&Method::PUT));
    }

    /// A body of unknown length, or one that fails.
    struct Stream {
        fail: bool,
        exact: Option<u64>,
    }

    impl Body for Stream {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            Poll::Ready(Some(if self.fail {
                Err(std::io::Error::other("connection reset"))
            } else {
                Ok(Frame::data(Bytes::from_static(b"chunk")))
            }))
        }

        fn size_hint(&self) -> SizeHint {
            self.exact.map_or_else(SizeHint::new, SizeHint::with_exact)
        }
    }

    #[tokio::test]
    async fn unknown_lengths_pass_once_and_broken_bodies_are_unreadable() {
        let unknown = Stream {
            fail: false,
            exact: None,
        };
        let prepared = prepare_default(request(Method::PUT, unknown), 1024).await;
        assert!(matches!(prepared, Prepared::Once(_)));
        let broken = Stream {
            fail: true,
            exact: Some(5),
        };
        let prepared = prepare_default(request(Method::PUT, broken), 1024).await;
        assert!(matches!(prepared, Prepared::Unreadable));
        let response = unreadable_body::<()>();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            response.headers()[http::header::CONTENT_TYPE],
            "application/problem+json"
        );
    }
}
