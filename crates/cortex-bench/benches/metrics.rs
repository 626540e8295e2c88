//! Hot-path metric operations and encoding: cortex-metrics vs raw
//! prometheus-client vs the prometheus crate, same settings, same run.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use prometheus_client::metrics::counter::Counter as PcCounter;
use prometheus_client::metrics::family::Family as PcFamily;
use prometheus_client::metrics::histogram::Histogram as PcHistogram;

const BUCKETS: &[f64] = cortex_metrics::DEFAULT_BUCKETS;

fn counter_inc(c: &mut Criterion) {
    let mut group = c.benchmark_group("counter_inc");
    let registry = cortex_metrics::MetricsRegistry::new();
    let ours = registry.counter("requests_total", "Requests.").unwrap();
    group.bench_function("cortex", |b| b.iter(|| black_box(&ours).inc()));

    let pc: PcCounter = PcCounter::default();
    group.bench_function("prometheus-client", |b| b.iter(|| black_box(&pc).inc()));

    let prom = prometheus::IntCounter::new("requests_total", "Requests.").unwrap();
    group.bench_function("prometheus", |b| b.iter(|| black_box(&prom).inc()));
    group.finish();
}

fn family_lookup_inc(c: &mut Criterion) {
    let mut group = c.benchmark_group("family_2_labels_lookup_inc");
    let method = "GET";
    let route = "/api/users/{id}";

    let registry = cortex_metrics::MetricsRegistry::new();
    let ours = registry
        .counter_family("requests_total", "Requests.", ["method", "route"])
        .unwrap();
    // A family with realistic occupancy, so the lookup is not trivially a
    // one-entry table.
    for i in 0..50 {
        ours.with_labels(["POST", &format!("/route/{i}")]).inc();
    }
    group.bench_function("cortex", |b| {
        b.iter(|| {
            ours.with_labels([black_box(method), black_box(route)])
                .inc()
        })
    });

    // prometheus-client's cheapest label set: static string pairs, no
    // allocation per lookup.
    let pc: PcFamily<[(&'static str, &'static str); 2], PcCounter> = PcFamily::default();
    let fillers: Vec<&'static str> = (0..50)
        .map(|i| &*Box::leak(format!("/route/{i}").into_boxed_str()))
        .collect();
    for filler in &fillers {
        pc.get_or_create(&[("method", "POST"), ("route", filler)])
            .inc();
    }
    group.bench_function("prometheus-client", |b| {
        b.iter(|| {
            pc.get_or_create(&[("method", black_box(method)), ("route", black_box(route))])
                .inc()
        })
    });

    let prom = prometheus::IntCounterVec::new(
        prometheus::Opts::new("requests_total", "Requests."),
        &["method", "route"],
    )
    .unwrap();
    for i in 0..50 {
        prom.with_label_values(&["POST", &format!("/route/{i}")])
            .inc();
    }
    group.bench_function("prometheus", |b| {
        b.iter(|| {
            prom.with_label_values(&[black_box(method), black_box(route)])
                .inc()
        })
    });
    group.finish();
}

fn histogram_observe(c: &mut Criterion) {
    let mut group = c.benchmark_group("histogram_observe");
    let registry = cortex_metrics::MetricsRegistry::new();
    let ours = registry
        .histogram("latency_seconds", "Latency.", BUCKETS)
        .unwrap();
    let mut value = 0.0_f64;
    group.bench_function("cortex", |b| {
        b.iter(|| {
            value = (value + 0.0137) % 12.0;
            ours.observe(black_box(value));
        })
    });

    let pc = PcHistogram::new(BUCKETS.iter().copied());
    group.bench_function("prometheus-client", |b| {
        b.iter(|| {
            value = (value + 0.0137) % 12.0;
            pc.observe(black_box(value));
        })
    });

    let prom = prometheus::Histogram::with_opts(
        prometheus::HistogramOpts::new("latency_seconds", "Latency.").buckets(BUCKETS.to_vec()),
    )
    .unwrap();
    group.bench_function("prometheus", |b| {
        b.iter(|| {
            value = (value + 0.0137) % 12.0;
            prom.observe(black_box(value));
        })
    });
    group.finish();
}

const FAMILIES: usize = 200;
const SERIES: usize = 20;

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode_200_families_x_20_series");

    let registry = cortex_metrics::MetricsRegistry::new();
    for f in 0..FAMILIES {
        let family = registry
            .counter_family(
                &format!("family_{f}_total"),
                "A family.",
                ["method", "route"],
            )
            .unwrap();
        for s in 0..SERIES {
            family
                .with_labels(["GET", &format!("/route/{s}")])
                .inc_by(s as u64);
        }
    }
    group.bench_function("cortex", |b| {
        b.iter(|| black_box(registry.encode(cortex_metrics::Format::OpenMetrics)))
    });
    group.bench_function("cortex-text-0.0.4", |b| {
        b.iter(|| black_box(registry.encode(cortex_metrics::Format::Prometheus)))
    });

    let mut pc_registry = prometheus_client::registry::Registry::default();
    for f in 0..FAMILIES {
        let family: PcFamily<Vec<(String, String)>, PcCounter> = PcFamily::default();
        for s in 0..SERIES {
            family
                .get_or_create(&vec![
                    ("method".to_owned(), "GET".to_owned()),
                    ("route".to_owned(), format!("/route/{s}")),
                ])
                .inc_by(s as u64);
        }
        pc_registry.register(format!("family_{f}"), "A family.", family);
    }
    group.bench_function("prometheus-client", |b| {
        b.iter(|| {
            let mut out = String::with_capacity(4096);
            prometheus_client::encoding::text::encode(&mut out, &pc_registry).unwrap();
            black_box(out)
        })
    });

    let prom_registry = prometheus::Registry::new();
    for f in 0..FAMILIES {
        let family = prometheus::IntCounterVec::new(
            prometheus::Opts::new(format!("family_{f}_total"), "A family."),
            &["method", "route"],
        )
        .unwrap();
        for s in 0..SERIES {
            family
                .with_label_values(&["GET", &format!("/route/{s}")])
                .inc_by(s as u64);
        }
        prom_registry.register(Box::new(family)).unwrap();
    }
    group.bench_function("prometheus", |b| {
        b.iter(|| {
            use prometheus::Encoder;
            let mut out = Vec::with_capacity(4096);
            prometheus::TextEncoder::new()
                .encode(&prom_registry.gather(), &mut out)
                .unwrap();
            black_box(out)
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    counter_inc,
    family_lookup_inc,
    histogram_observe,
    encode
);
criterion_main!(benches);
