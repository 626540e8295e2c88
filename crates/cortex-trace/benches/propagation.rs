//! `traceparent`/`tracestate` extract + inject: ours vs the SDK's
//! `TraceContextPropagator` (`cargo bench -p cortex-trace`). The
//! side-by-side table lives in `crates/cortex-bench`.

use std::hint::black_box;

use cortex_trace::{HeaderExtractor, HeaderInjector, TraceContextPropagator};
use criterion::{Criterion, criterion_group, criterion_main};
use http::HeaderMap;
use opentelemetry::propagation::TextMapPropagator;

fn propagation(c: &mut Criterion) {
    let mut incoming = HeaderMap::new();
    incoming.insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .unwrap(),
    );
    incoming.insert(
        "tracestate",
        "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7".parse().unwrap(),
    );
    let ours = TraceContextPropagator::new();
    c.bench_function("extract_inject", |b| {
        b.iter(|| {
            let cx = ours.extract(&HeaderExtractor(black_box(&incoming)));
            let mut outgoing = HeaderMap::new();
            ours.inject_context(&cx, &mut HeaderInjector(&mut outgoing));
            black_box(outgoing)
        })
    });
}

criterion_group!(benches, propagation);
criterion_main!(benches);
