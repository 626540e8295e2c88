//! Span start + end per request: cortex-trace's `HttpTraceLayer` vs
//! tower-http's `TraceLayer` bridged to OpenTelemetry by
//! tracing-opentelemetry, with sampling on and off, over the same axum
//! router and an SDK provider with no exporter (so only the tracing path is
//! measured).

use std::hint::black_box;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use cortex_trace::http::HttpTraceLayer;
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use http_body_util::BodyExt;
use opentelemetry::trace::TracerProvider;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tower::ServiceExt;
use tracing_subscriber::layer::SubscriberExt;

fn routes() -> Router {
    Router::new().route("/api/users/{id}", get(|| async { "user" }))
}

fn provider(sampled: bool) -> SdkTracerProvider {
    let sampler = if sampled {
        Sampler::AlwaysOn
    } else {
        Sampler::AlwaysOff
    };
    SdkTracerProvider::builder().with_sampler(sampler).build()
}

fn run(runtime: &tokio::runtime::Runtime, app: &Router) {
    runtime.block_on(async {
        let request = Request::get("/api/users/42")
            .header(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )
            .body(Body::empty())
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        black_box(response.into_body().collect().await.unwrap());
    });
}

fn http_trace(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for sampled in [true, false] {
        let group_name = if sampled {
            "http_trace_sampled"
        } else {
            "http_trace_unsampled"
        };
        let mut group = c.benchmark_group(group_name);

        let ours_provider = provider(sampled);
        let ours = routes().layer(HttpTraceLayer::new(&ours_provider));
        group.bench_function("cortex", |b| b.iter(|| run(&runtime, &ours)));

        let peer_provider = provider(sampled);
        let dispatch = tracing::Dispatch::new(
            tracing_subscriber::registry()
                .with(tracing_opentelemetry::layer().with_tracer(peer_provider.tracer("bench"))),
        );
        let peer = routes().layer(tower_http::trace::TraceLayer::new_for_http());
        group.bench_function("tower-http+tracing-opentelemetry", |b| {
            let _guard = tracing::dispatcher::set_default(&dispatch);
            b.iter(|| run(&runtime, &peer))
        });
        group.finish();
    }
}

criterion_group!(benches, http_trace);
criterion_main!(benches);
