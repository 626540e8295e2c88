//! The service side of the W3C trace-context test suite
//! (<https://github.com/w3c/trace-context/tree/main/test>).
//!
//! The harness POSTs to `/test` a JSON array of `{"url": ..., "arguments":
//! [...]}`. For each element, in order and before replying, the service
//! POSTs `arguments` as JSON to `url`, carrying the propagated context: the
//! incoming trace continues (same trace id, `tracestate`, flags), with a
//! fresh parent id per outgoing call (each call is its own CLIENT span).
//! Then it replies 200.
//!
//! The suite's 41 cases (`SPEC_LEVEL=2 STRICT_LEVEL=2`) are ported into
//! this crate's `tests/w3c_suite/`; to run the Python suite itself, start
//! `cargo run -p trace-conformance` and, in the suite's `test/` folder,
//! `SPEC_LEVEL=2 STRICT_LEVEL=2 python3 test.py http://127.0.0.1:5000/test`
//! (see docs/trace.md).
//!
//! ```
//! use opentelemetry_sdk::trace::SdkTracerProvider;
//!
//! let provider = SdkTracerProvider::builder().build();
//! let app = trace_conformance::app(&provider);
//! # let _ = app;
//! ```

use axum::body::Bytes;
use axum::routing::post;
use axum::{Json, Router};
use cortex_trace::http::{HttpTraceLayer, PropagateLayer};
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde::Deserialize;
use serde_json::Value;
use tower::{Layer, ServiceExt};

/// One instruction of a test case.
#[derive(Debug, Deserialize)]
struct Step {
    url: String,
    #[serde(default)]
    arguments: Value,
}

/// The router: `POST /test`, traced by [`HttpTraceLayer`].
pub fn app(provider: &SdkTracerProvider) -> Router {
    let client = PropagateLayer::new(provider)
        .layer(Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>());
    Router::new()
        .route(
            "/test",
            post(move |Json(steps): Json<Vec<Step>>| {
                let client = client.clone();
                async move {
                    for step in steps {
                        call(client.clone(), step).await;
                    }
                    StatusCode::OK
                }
            }),
        )
        .layer(HttpTraceLayer::new(provider))
}

/// Failures of the harness's callback servers are logged, not fatal: the
/// harness judges by what it received.
async fn call<C>(client: C, step: Step)
where
    C: tower::Service<Request<Full<Bytes>>, Response = http::Response<hyper::body::Incoming>>,
    C::Error: std::fmt::Display,
{
    let body = Full::new(Bytes::from(step.arguments.to_string()));
    let request = match Request::post(&step.url)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
    {
        Ok(request) => request,
        Err(error) => {
            tracing::warn!(url = %step.url, %error, "invalid callback url");
            return;
        }
    };
    match client.oneshot(request).await {
        Ok(response) => {
            let _ = response.into_body().collect().await;
        }
        Err(error) => tracing::warn!(url = %step.url, %error, "callback failed"),
    }
}
