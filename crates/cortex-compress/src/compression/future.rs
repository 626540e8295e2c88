use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::header::{ACCEPT_RANGES, CONTENT_ENCODING, CONTENT_LENGTH, ETAG, VARY};
use http::{HeaderMap, HeaderValue, Response};
use http_body::Body;
use pin_project_lite::pin_project;

use super::body::CompressionBody;
use super::config::Config;
use super::predicate::skip_reason;
use crate::codec::Compressor;
use crate::encoding::Negotiated;

pin_project! {
    /// The response future of [`Compression`](crate::Compression).
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        negotiated: Option<Negotiated>,
        config: Arc<Config>,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, negotiated: Option<Negotiated>, config: Arc<Config>) -> Self {
        Self {
            inner,
            negotiated,
            config,
        }
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("negotiated", &self.negotiated)
            .finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
{
    type Output = Result<Response<CompressionBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.inner.poll(cx))?;
        let (mut parts, body) = response.into_parts();
        let config = &**this.config;
        let identity = |parts, body| {
            Poll::Ready(Ok(Response::from_parts(
                parts,
                CompressionBody::identity(body),
            )))
        };
        let Some(negotiated) = *this.negotiated else {
            record_decision(config, "head");
            return identity(parts, body);
        };
        let exact = body.size_hint().exact();
        if let Some(reason) = skip_reason(parts.status, &parts.headers, exact, config) {
            record_decision(config, reason);
            return identity(parts, body);
        }
        // From here the client's Accept-Encoding decides the bytes, so
        // caches must key on it whether or not we compress this time.
        add_vary_accept_encoding(&mut parts.headers);
        let Negotiated::Encode(encoding) = negotiated else {
            record_decision(config, "identity");
            return identity(parts, body);
        };
        let Some(compressor) = Compressor::new(encoding, config.levels) else {
            record_decision(config, "identity");
            return identity(parts, body);
        };
        record_decision(config, encoding.as_str());
        parts.headers.insert(
            CONTENT_ENCODING,
            HeaderValue::from_static(encoding.as_str()),
        );
        parts.headers.remove(CONTENT_LENGTH);
        parts.headers.remove(ACCEPT_RANGES);
        weaken_etag(&mut parts.headers);
        #[cfg_attr(not(feature = "metrics"), allow(unused_mut))]
        let mut body = CompressionBody::compressed(body, compressor);
        #[cfg(feature = "metrics")]
        if let Some(metrics) = config.metrics.get() {
            body.count_into(metrics.bytes(encoding));
        }
        Poll::Ready(Ok(Response::from_parts(parts, body)))
    }
}

#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
fn record_decision(config: &Config, decision: &str) {
    #[cfg(feature = "metrics")]
    if let Some(metrics) = config.metrics.get() {
        metrics.decision(decision);
    }
}

/// Appends `Accept-Encoding` to `Vary` unless it (or `*`) is already there.
fn add_vary_accept_encoding(headers: &mut HeaderMap) {
    let present = headers
        .get_all(VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|token| token == "*" || token.eq_ignore_ascii_case("accept-encoding"));
    if !present {
        headers.append(VARY, HeaderValue::from_static("Accept-Encoding"));
    }
}

/// A strong validator promises byte-identical bodies, which a re-encoded
/// body no longer is.
fn weaken_etag(headers: &mut HeaderMap) {
    let weakened = headers
        .get(ETAG)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.starts_with('"'))
        .and_then(|v| HeaderValue::from_str(&format!("W/{v}")).ok());
    if let Some(weak) = weakened {
        headers.insert(ETAG, weak);
    }
}
