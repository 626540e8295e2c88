//! Per-request cost of `HttpMetricsLayer` over a bare axum router: the same
//! request through both, same run; the difference is the layer's overhead.

use std::hint::black_box;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use cortex_metrics::MetricsRegistry;
use cortex_metrics::http::HttpMetricsLayer;
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;

fn routes() -> Router {
    Router::new()
        .route("/", get(|| async { "index" }))
        .route("/api/users/{id}", get(|| async { "user" }))
}

fn request_cost(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("http_request");

    let bare = routes();
    // What axum charges for *any* `Router::layer` (an extra boxed route
    // per endpoint), so the report can separate it from our own cost.
    let noop = routes().layer(tower::util::MapResponseLayer::new(
        |response: axum::response::Response| response,
    ));
    let registry = MetricsRegistry::new();
    let measured = routes().layer(HttpMetricsLayer::new(&registry).unwrap());

    for (name, app) in [
        ("bare-axum", bare),
        ("noop-layer", noop),
        ("cortex-metrics-layer", measured),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let request = Request::get("/api/users/42").body(Body::empty()).unwrap();
                    let response = app.clone().oneshot(request).await.unwrap();
                    black_box(response.into_body().collect().await.unwrap());
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, request_cost);
criterion_main!(benches);
