//! cortex-metrics' own hot paths (peer comparisons live in
//! `crates/cortex-bench`): `cargo bench -p cortex-metrics`.

use std::hint::black_box;

use cortex_metrics::{DEFAULT_BUCKETS, Format, MetricsRegistry};
use criterion::{Criterion, criterion_group, criterion_main};

fn hot_paths(c: &mut Criterion) {
    let registry = MetricsRegistry::new();
    let counter = registry.counter("c_total", "").unwrap();
    c.bench_function("counter_inc", |b| b.iter(|| black_box(&counter).inc()));

    let family = registry
        .counter_family("f", "", ["method", "route"])
        .unwrap();
    c.bench_function("family_lookup_inc_2_labels", |b| {
        b.iter(|| {
            family
                .with_labels([black_box("GET"), black_box("/api/users/{id}")])
                .inc()
        })
    });

    let histogram = registry.histogram("h", "", DEFAULT_BUCKETS).unwrap();
    c.bench_function("histogram_observe", |b| {
        b.iter(|| histogram.observe(black_box(0.3)))
    });

    let timer_histogram = histogram.clone();
    c.bench_function("histogram_timer", |b| {
        b.iter(|| drop(black_box(timer_histogram.start_timer())))
    });

    let overflow = MetricsRegistry::builder().max_series_per_family(1).build();
    let capped = overflow.counter_family("capped", "", ["id"]).unwrap();
    capped.with_labels(["first"]).inc();
    c.bench_function("family_overflow_lookup", |b| {
        b.iter(|| capped.with_labels([black_box("another")]).inc())
    });
}

fn encoding(c: &mut Criterion) {
    let registry = MetricsRegistry::new();
    for f in 0..200 {
        let family = registry
            .counter_family(&format!("family_{f}"), "A family.", ["route"])
            .unwrap();
        for s in 0..20 {
            family.with_labels([&format!("/route/{s}")]).inc();
        }
    }
    c.bench_function("encode_200x20_text", |b| {
        b.iter(|| black_box(registry.encode(Format::Prometheus)))
    });
    c.bench_function("encode_200x20_openmetrics", |b| {
        b.iter(|| black_box(registry.encode(Format::OpenMetrics)))
    });
}

criterion_group!(benches, hot_paths, encoding);
criterion_main!(benches);
