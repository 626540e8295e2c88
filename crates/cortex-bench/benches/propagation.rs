//! W3C trace-context extract + inject: cortex-trace's propagator vs
//! opentelemetry_sdk's `TraceContextPropagator`, through the same
//! `http::HeaderMap` carrier.

use std::hint::black_box;

use cortex_trace::{HeaderExtractor, HeaderInjector};
use criterion::{Criterion, criterion_group, criterion_main};
use http::HeaderMap;
use opentelemetry::propagation::TextMapPropagator;

fn incoming() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .unwrap(),
    );
    headers.insert(
        "tracestate",
        "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7".parse().unwrap(),
    );
    headers
}

fn bench_one(c: &mut Criterion, group: &str, id: &str, propagator: &dyn TextMapPropagator) {
    let headers = incoming();
    c.benchmark_group(group).bench_function(id, |b| {
        b.iter(|| {
            let cx = propagator.extract(&HeaderExtractor(black_box(&headers)));
            let mut outgoing = HeaderMap::new();
            propagator.inject_context(&cx, &mut HeaderInjector(&mut outgoing));
            black_box(outgoing)
        })
    });
}

fn propagation(c: &mut Criterion) {
    let group = "traceparent_tracestate_extract_inject";
    bench_one(
        c,
        group,
        "cortex",
        &cortex_trace::TraceContextPropagator::new(),
    );
    bench_one(
        c,
        group,
        "opentelemetry_sdk",
        &opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
}

criterion_group!(benches, propagation);
criterion_main!(benches);
