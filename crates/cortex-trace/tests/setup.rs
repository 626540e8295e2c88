//! The tracer setup end to end: in-memory export, OTLP/HTTP to a fake
//! collector on loopback, and a collector outage counted, not hidden.
// The fake collector and its imports serve the OTLP tests only.
#![cfg_attr(not(feature = "otlp"), allow(unused_imports))]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use cortex_trace::{Exporter, MemoryExporter, Sampling, TailSampling, Tracing};
use opentelemetry::trace::{Span, Tracer, TracerProvider};

#[test]
fn spans_reach_the_memory_exporter_with_the_service_name() {
    let exporter = MemoryExporter::new();
    let guard = Tracing::builder()
        .service_name("checkout")
        .exporter(Exporter::Memory(exporter.clone()))
        .build()
        .unwrap();
    guard.provider().tracer("t").start("work").end();
    assert_eq!(exporter.spans().len(), 1);
    assert_eq!(exporter.spans()[0].name, "work");
    drop(guard);
}

#[test]
fn sampling_off_exports_nothing_and_tail_sampling_keeps_errors() {
    let exporter = MemoryExporter::new();
    let guard = Tracing::builder()
        .sampling(Sampling::AlwaysOff)
        .exporter(Exporter::Memory(exporter.clone()))
        .build()
        .unwrap();
    guard.provider().tracer("t").start("work").end();
    assert!(exporter.spans().is_empty());

    let tail = MemoryExporter::new();
    let guard = Tracing::builder()
        .sampling(Sampling::AlwaysOn)
        .tail_sampling(TailSampling::new().ratio(0.0))
        .exporter(Exporter::Memory(tail.clone()))
        .build()
        .unwrap();
    let tracer = guard.provider().tracer("t");
    tracer.start("fine").end();
    let mut failing = tracer.start("failing");
    failing.set_status(opentelemetry::trace::Status::error("boom"));
    failing.end();
    let names: Vec<_> = tail.spans().iter().map(|s| s.name.to_string()).collect();
    assert_eq!(names, vec!["failing"]);
}

/// A fake OTLP/HTTP collector on its own runtime thread; records the
/// content type of each POST to /v1/traces.
#[cfg(feature = "otlp")]
fn fake_collector() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let recorded = Arc::clone(&seen);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let app = axum::Router::new().route(
                "/v1/traces",
                axum::routing::post(move |headers: http::HeaderMap, body: axum::body::Bytes| {
                    let recorded = Arc::clone(&recorded);
                    async move {
                        let content_type = headers
                            .get("content-type")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        assert!(!body.is_empty());
                        recorded.lock().unwrap().push(content_type);
                        "ok"
                    }
                }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    (rx.recv().unwrap(), seen)
}

#[cfg(feature = "otlp")]
#[test]
fn otlp_http_exports_protobuf_without_a_runtime() {
    let (collector, seen) = fake_collector();
    let guard = Tracing::builder()
        .service_name("hub")
        .exporter(Exporter::OtlpHttp {
            endpoint: format!("http://{collector}"),
        })
        .build()
        .unwrap();
    guard.provider().tracer("t").start("exported").end();
    guard.provider().force_flush().unwrap();
    assert_eq!(guard.export_failures(), 0);
    drop(guard);
    let seen = seen.lock().unwrap();
    assert!(!seen.is_empty(), "the collector received the batch");
    assert_eq!(seen[0], "application/x-protobuf");
}

#[cfg(feature = "otlp")]
#[test]
fn a_collector_outage_is_counted_not_a_panic() {
    // Bind and drop: nothing listens on this port now.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let guard = Tracing::builder()
        .exporter(Exporter::OtlpHttp {
            endpoint: format!("http://{closed}"),
        })
        .build()
        .unwrap();
    guard.provider().tracer("t").start("lost").end();
    let _ = guard.provider().force_flush();
    assert!(guard.export_failures() >= 1);
}
