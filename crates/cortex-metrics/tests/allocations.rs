//! Heap allocations per request of `HttpMetricsLayer` (#16): a count, not
//! a time, so a regression fails CI on any machine, however loaded.
//!
//! The route is measured without the layer and with it, in the same test;
//! the assertion is on the difference (the layer's own cost), so an axum
//! or hyper upgrade that changes the baseline does not break it. Counts are
//! per thread (`allocation_counter`) on a current-thread runtime, so other
//! tests running at the same time are not counted.
//!
//! `cargo test -p cortex-metrics --test allocations -- --nocapture` prints
//! the numbers.

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use cortex_metrics::MetricsRegistry;
use cortex_metrics::http::HttpMetricsLayer;
use cortex_testing::{REQUESTS, WARM_UP, cost, report, runtime};
use http::{Request, Response, StatusCode, header};

/// `HttpMetricsLayer`'s allocations per request, over what the same route
/// allocates without it. All three are axum's, for any `Router::layer`
/// whose service wraps the response body: the layered route's boxed
/// service cloned per request (32 B), the layered future boxed, and the
/// wrapped body boxed into `axum::body::Body`. The layer itself allocates
/// nothing per request: its guard and the cloned `MatchedPath` (an
/// `Arc<str>`) live in the future and body, and the series of a label set
/// already seen are found, not created. Lowering it is welcome; raising it
/// needs a reason.
const HTTP_METRICS_LAYER: i64 = 3;

#[test]
fn http_metrics_layer() {
    let rt = runtime();
    let registry = MetricsRegistry::new();
    let bare = served(routes());
    let layered = served(routes().layer(HttpMetricsLayer::new(&registry).unwrap()));
    let request = || Request::get("/api/echo/42").body(Body::empty()).unwrap();
    let without = cost(&rt, &bare, request, ok);
    let with = cost(&rt, &layered, request, ok);
    let layer = report("HttpMetricsLayer", without, with);
    assert_eq!(
        layer, HTTP_METRICS_LAYER,
        "HttpMetricsLayer allocations per request"
    );
    // The layer did record: warm-up and counted requests alike.
    let text = registry.encode(cortex_metrics::Format::Prometheus);
    let count = format!(
        "http_server_request_duration_seconds_count{{http_request_method=\"GET\",http_route=\"/api/echo/{{id}}\",http_response_status_code=\"200\",url_scheme=\"http\"}} {}\n",
        WARM_UP + REQUESTS
    );
    assert!(text.contains(&count), "{text}");
}

/// One route answering a small JSON body, from a static string: the
/// handler itself allocates nothing.
fn routes() -> Router {
    Router::new().route(
        "/api/echo/{id}",
        get(|| async {
            (
                [(header::CONTENT_TYPE, "application/json")],
                r#"{"id":"42"}"#,
            )
        }),
    )
}

/// `router` as `axum::serve` runs it: `into_make_service` calls
/// `with_state(())`, which turns each handler into its route once; a
/// router called without it does that again on every request.
fn served(router: Router) -> Router {
    router.with_state(())
}

fn ok<B>(response: &Response<B>) {
    assert_eq!(response.status(), StatusCode::OK);
}
