//! Heap allocations per request of `HttpTraceLayer` (#16), sampled and
//! unsampled: a count, not a time, so a regression fails CI on any
//! machine, however loaded.
//!
//! The route is measured without the layer and with it, in the same test;
//! the assertion is on the difference (the layer's own cost), so an axum
//! or hyper upgrade that changes the baseline does not break it. Counts are
//! per thread (`allocation_counter`) on a current-thread runtime, so other
//! tests running at the same time are not counted. The provider has no
//! span processor, as in the loadtest's `trace-*` variants: what is counted
//! is the layer and the SDK's span, not an exporter.
//!
//! `cargo test -p cortex-trace --test allocations -- --nocapture` prints
//! the numbers.

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use cortex_testing::{cost, report, runtime};
use cortex_trace::http::HttpTraceLayer;
use http::header::HeaderName;
use http::{Request, Response, StatusCode, header};
use opentelemetry::Context;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};

/// `HttpTraceLayer`'s allocations per request with every trace sampled,
/// over what the same route allocates without it. Three are axum's, for
/// any `Router::layer` whose service wraps the response body (the layered
/// route's boxed service cloned per request, the layered future boxed, the
/// wrapped body boxed into `axum::body::Body`). Six are the span's
/// (`src/http/service.rs`, `start_server_span`, and `src/http/state.rs`,
/// `LayerTracer::start`): its name (one, sized up front; `format!` made
/// two), the attribute `Vec`, owned copies of `url.path` and `http.route`,
/// the SDK span boxed by `Context::with_span`, and the context's `Arc`.
/// The SDK's provider keeps its concrete tracer, so the span is not boxed
/// a second time behind `BoxedTracer` (it was: 10). No exporter, so
/// nothing on the span's end. Lowering it is welcome; raising it needs a
/// reason.
const SAMPLED: i64 = 9;

/// The same with no trace sampled (`always_off`): one fewer than sampled.
/// The name and attributes are still built, since a sampler may decide on
/// them, but a span that does not record goes into the context as its
/// span context alone, with nothing boxed (it was 10). Lowering it is
/// welcome; raising it needs a reason.
const UNSAMPLED: i64 = 8;

#[test]
fn http_trace_layer_sampled() {
    let layer = layer_cost("HttpTraceLayer (always_on)", Sampler::AlwaysOn, "1");
    assert_eq!(
        layer, SAMPLED,
        "sampled HttpTraceLayer allocations per request"
    );
}

#[test]
fn http_trace_layer_unsampled() {
    let layer = layer_cost("HttpTraceLayer (always_off)", Sampler::AlwaysOff, "0");
    assert_eq!(
        layer, UNSAMPLED,
        "unsampled HttpTraceLayer allocations per request"
    );
}

fn layer_cost(name: &str, sampler: Sampler, expected: &'static str) -> i64 {
    let rt = runtime();
    let provider = SdkTracerProvider::builder().with_sampler(sampler).build();
    let bare = served(routes());
    let layered = served(routes().layer(HttpTraceLayer::new(&provider)));
    let request = || Request::get("/api/echo/42").body(Body::empty()).unwrap();
    let without = cost(&rt, &bare, request, sampled("0"));
    let with = cost(&rt, &layered, request, sampled(expected));
    report(name, without, with)
}

/// One route answering a small JSON body, from a static string, and
/// `x-sampled: 1` if its request's trace is sampled (`0` if not, or if
/// there is none): the handler itself allocates nothing.
fn routes() -> Router {
    Router::new().route(
        "/api/echo/{id}",
        get(|| async {
            let sampled = Context::map_current(|cx| cx.span().span_context().is_sampled());
            (
                [
                    (header::CONTENT_TYPE, "application/json"),
                    (X_SAMPLED, if sampled { "1" } else { "0" }),
                ],
                r#"{"id":"42"}"#,
            )
        }),
    )
}

const X_SAMPLED: HeaderName = HeaderName::from_static("x-sampled");

fn sampled(expected: &'static str) -> impl Fn(&Response<Body>) {
    move |response| {
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[X_SAMPLED], expected);
    }
}

/// `router` as `axum::serve` runs it: `into_make_service` calls
/// `with_state(())`, which turns each handler into its route once; a
/// router called without it does that again on every request.
fn served(router: Router) -> Router {
    router.with_state(())
}
