//! Hot-path metric operations and encoding: cortex-metrics vs raw
//! prometheus-client vs the prometheus crate, same settings, same run.

use std::collections::BTreeMap;
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

/// A scrape of 2,500 samples, the size the seeds name for `/metrics`:
/// 50 counter families x 20 label sets (1,000), 24 gauge families x 20
/// (480) and 3 histogram families x 20 label sets x 17 lines (14 buckets,
/// `+Inf`, `_sum`, `_count`: 1,020). Each scrape goes through an axum
/// router (`oneshot`, body collected) with cortex-compress's
/// `CompressionLayer` in front, once plain and once with
/// `Accept-Encoding: br`: cortex's own endpoint vs a handler that encodes
/// a prometheus-client registry holding the same samples (text format, the
/// default of each). Body sizes go to `target/scrape-sizes.json`.
fn scrape(c: &mut Criterion) {
    use axum::routing::get;
    use http::{Request, header};
    use http_body_util::BodyExt;
    use prometheus_client::metrics::gauge::Gauge as PcGauge;
    use std::sync::Arc;
    use tower::{Layer, ServiceExt};

    const COUNTERS: usize = 50;
    const GAUGES: usize = 24;
    const HISTOGRAMS: usize = 3;
    const LABEL_SETS: usize = 20;

    let registry = cortex_metrics::MetricsRegistry::new();
    let mut pc_registry = prometheus_client::registry::Registry::default();
    type Labels = Vec<(String, String)>;
    let labels = |s: usize| -> Labels {
        vec![
            ("method".to_owned(), ["GET", "POST"][s % 2].to_owned()),
            ("route".to_owned(), format!("/api/resource_{s}/{{id}}")),
        ]
    };
    for f in 0..COUNTERS {
        let ours = registry
            .counter_family(
                &format!("cortex_family_{f}_total"),
                "A counter family.",
                ["method", "route"],
            )
            .unwrap();
        let peer: PcFamily<Labels, PcCounter> = PcFamily::default();
        for s in 0..LABEL_SETS {
            let l = labels(s);
            ours.with_labels([&l[0].1, &l[1].1])
                .inc_by((s * 1_000 + f) as u64);
            peer.get_or_create(&l).inc_by((s * 1_000 + f) as u64);
        }
        pc_registry.register(format!("cortex_family_{f}"), "A counter family.", peer);
    }
    for f in 0..GAUGES {
        let ours = registry
            .gauge_family(&format!("cortex_gauge_{f}"), "A gauge family.", ["pool"])
            .unwrap();
        let peer: PcFamily<Vec<(String, String)>, PcGauge> = PcFamily::default();
        for s in 0..LABEL_SETS {
            let pool = format!("pool-{s}");
            ours.with_labels([&pool]).set((s * 3) as i64);
            peer.get_or_create(&vec![("pool".to_owned(), pool)])
                .set((s * 3) as i64);
        }
        pc_registry.register(format!("cortex_gauge_{f}"), "A gauge family.", peer);
    }
    for f in 0..HISTOGRAMS {
        let ours = registry
            .histogram_family(
                &format!("cortex_latency_{f}_seconds"),
                "A histogram family.",
                ["method", "route"],
                BUCKETS,
            )
            .unwrap();
        let peer: PcFamily<Labels, PcHistogram> =
            PcFamily::new_with_constructor(|| PcHistogram::new(BUCKETS.iter().copied()));
        for s in 0..LABEL_SETS {
            let l = labels(s);
            let ours = ours.with_labels([&l[0].1, &l[1].1]);
            let theirs = peer.get_or_create(&l);
            for i in 0..50 {
                let value = f64::from(i) * 0.0173 * (s + 1) as f64;
                ours.observe(value);
                theirs.observe(value);
            }
        }
        pc_registry.register(
            format!("cortex_latency_{f}_seconds"),
            "A histogram family.",
            peer,
        );
    }
    let pc_registry = Arc::new(pc_registry);

    let compression = cortex_compress::CompressionLayer::new();
    let ours_app = compression.layer(registry.router::<()>());
    let peer_app = compression.layer(axum::Router::new().route(
        "/metrics",
        get(move || {
            let pc_registry = Arc::clone(&pc_registry);
            async move {
                let mut out = String::with_capacity(64 * 1024);
                prometheus_client::encoding::text::encode(&mut out, &pc_registry).unwrap();
                (
                    [(
                        header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    out,
                )
            }
        }),
    ));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    async fn scrape_once<S>(app: S, encoding: Option<&str>) -> usize
    where
        S: tower::Service<
                Request<axum::body::Body>,
                Response = http::Response<cortex_compress::CompressionBody<axum::body::Body>>,
                Error = std::convert::Infallible,
            >,
    {
        let mut request = Request::get("/metrics");
        if let Some(encoding) = encoding {
            request = request.header(header::ACCEPT_ENCODING, encoding);
        }
        let response = app
            .oneshot(request.body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap();
        assert!(response.status().is_success());
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .len()
    }
    let mut sizes = BTreeMap::new();
    let mut group = c.benchmark_group("scrape_2500_samples");
    for (who, app) in [("cortex", &ours_app), ("prometheus-client", &peer_app)] {
        for (coding, encoding) in [("plain", None), ("br", Some("br"))] {
            let bytes = runtime.block_on(scrape_once(app.clone(), encoding));
            sizes.insert(format!("{who}/{coding}"), bytes);
            group.bench_function(format!("{who}/{coding}"), |b| {
                b.iter(|| black_box(runtime.block_on(scrape_once(app.clone(), encoding))))
            });
        }
    }
    group.finish();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/scrape-sizes.json");
    let _ = std::fs::write(path, serde_json::to_string_pretty(&sizes).unwrap());
}

criterion_group!(
    benches,
    counter_inc,
    family_lookup_inc,
    histogram_observe,
    encode,
    scrape
);
criterion_main!(benches);
