//! `TracingBuilder` configuration: each head sampler as the spec defines
//! it, the `OTEL_*` variables' defaults and bad values, exporter
//! construction errors, and the console exporter's output.

use cortex_trace::{Exporter, MemoryExporter, Sampling, TracingBuilder};
use opentelemetry::trace::{
    Span, SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, Tracer,
    TracerProvider,
};
use opentelemetry::{Context, KeyValue};

/// A lookup over fixed pairs, in place of the process environment.
fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |key| {
        pairs
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| (*v).to_owned())
    }
}

/// Ends one root span and one child of a sampled remote parent; returns
/// the names the exporter received.
fn root_and_remote_child(sampling: Sampling) -> Vec<String> {
    let exporter = MemoryExporter::new();
    let guard = TracingBuilder::from_env(|_| None)
        .sampling(sampling)
        .exporter(Exporter::Memory(exporter.clone()))
        .build()
        .unwrap();
    let tracer = guard.provider().tracer("t");
    tracer.start("root").end();
    let remote = SpanContext::new(
        TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
        SpanId::from_hex("00f067aa0ba902b7").unwrap(),
        TraceFlags::SAMPLED,
        true,
        TraceState::NONE,
    );
    let parent = Context::new().with_remote_span_context(remote);
    tracer.start_with_context("child", &parent).end();
    exporter
        .spans()
        .iter()
        .map(|s| s.name.to_string())
        .collect()
}

#[test]
fn parent_based_always_off_drops_roots_but_follows_a_sampled_caller() {
    assert_eq!(
        root_and_remote_child(Sampling::ParentBasedAlwaysOff),
        ["child"]
    );
}

#[test]
fn parent_based_ratio_samples_roots_by_ratio_and_follows_the_caller() {
    assert_eq!(
        root_and_remote_child(Sampling::ParentBasedTraceIdRatio(0.0)),
        ["child"]
    );
    assert_eq!(
        root_and_remote_child(Sampling::ParentBasedTraceIdRatio(1.0)),
        ["root", "child"]
    );
}

#[test]
fn a_plain_ratio_sampler_ignores_the_callers_decision() {
    assert!(root_and_remote_child(Sampling::TraceIdRatio(0.0)).is_empty());
    assert_eq!(
        root_and_remote_child(Sampling::TraceIdRatio(1.0)),
        ["root", "child"]
    );
}

#[test]
fn the_default_sampler_is_parent_based_always_on() {
    assert_eq!(
        root_and_remote_child(Sampling::ParentBasedAlwaysOn),
        ["root", "child"]
    );
    assert_eq!(
        Sampling::from_env_values(" parentbased_always_off ", None),
        Some(Sampling::ParentBasedAlwaysOff)
    );
    assert_eq!(
        Sampling::from_env_values("always_on", None),
        Some(Sampling::AlwaysOn)
    );
    // A ratio outside 0..=1 or missing is the spec's default of 1.0.
    assert_eq!(
        Sampling::from_env_values("parentbased_traceidratio", Some("-0.5")),
        Some(Sampling::ParentBasedTraceIdRatio(1.0))
    );
    assert_eq!(
        Sampling::from_env_values("traceidratio", None),
        Some(Sampling::TraceIdRatio(1.0))
    );
}

#[test]
fn blank_variables_count_as_unset() {
    let builder = TracingBuilder::from_env(env(&[
        ("OTEL_SERVICE_NAME", "  "),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
        ("RUST_LOG", " "),
    ]));
    let shown = format!("{builder:?}");
    assert!(shown.contains("service_name: None"), "{shown}");
    assert!(shown.contains("exporter: None"), "{shown}");
    assert!(shown.contains("log_filter: None"), "{shown}");
}

#[test]
fn an_unsupported_exporter_name_exports_nothing() {
    let builder = TracingBuilder::from_env(env(&[
        ("OTEL_TRACES_EXPORTER", "zipkin"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
    ]));
    assert!(format!("{builder:?}").contains("exporter: None"));
    // And it still builds: an unknown exporter is a warning, not an error.
    let guard = builder.build().unwrap();
    guard.provider().tracer("t").start("dropped").end();
    assert_eq!(guard.export_failures(), 0);
}

#[cfg(feature = "otlp")]
#[test]
fn otlp_without_an_endpoint_uses_the_specs_default_port_per_protocol() {
    let http = TracingBuilder::from_env(env(&[("OTEL_TRACES_EXPORTER", "otlp")]));
    assert!(
        format!("{http:?}").contains(r#"OtlpHttp { endpoint: "http://localhost:4318" }"#),
        "{http:?}"
    );
    let grpc = TracingBuilder::from_env(env(&[
        ("OTEL_TRACES_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", " grpc "),
    ]));
    assert!(
        format!("{grpc:?}").contains(r#"OtlpGrpc { endpoint: "http://localhost:4317" }"#),
        "{grpc:?}"
    );
    let explicit = TracingBuilder::from_env(env(&[
        ("OTEL_TRACES_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:9999"),
    ]));
    assert!(
        format!("{explicit:?}").contains(r#"OtlpHttp { endpoint: "http://collector:9999" }"#),
        "{explicit:?}"
    );
}

/// Built without `otlp`, an OTLP configuration from the environment is a
/// warning and no exporter, not a build failure.
#[cfg(not(feature = "otlp"))]
#[test]
fn without_the_otlp_feature_an_otlp_endpoint_exports_nothing() {
    let builder = TracingBuilder::from_env(env(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
        ("OTEL_TRACES_EXPORTER", "otlp"),
    ]));
    assert!(
        format!("{builder:?}").contains("exporter: None"),
        "{builder:?}"
    );
    let guard = builder.build().unwrap();
    guard.provider().tracer("t").start("dropped").end();
    assert_eq!(guard.export_failures(), 0);
}

#[cfg(feature = "otlp")]
#[tokio::test]
async fn grpc_inside_a_runtime_builds_and_shuts_down_without_a_collector() {
    let guard = TracingBuilder::from_env(|_| None)
        .exporter(Exporter::OtlpGrpc {
            endpoint: "http://127.0.0.1:4317".to_owned(),
        })
        .build()
        .unwrap();
    // The tonic channel connects lazily: no collector is needed to build.
    assert_eq!(guard.export_failures(), 0);
    drop(guard);
}

#[cfg(feature = "otlp")]
#[tokio::test]
async fn a_grpc_endpoint_that_is_not_a_uri_is_an_exporter_error() {
    let error = TracingBuilder::from_env(|_| None)
        .exporter(Exporter::OtlpGrpc {
            endpoint: "not a uri".to_owned(),
        })
        .build()
        .unwrap_err();
    assert!(
        matches!(error, cortex_trace::TraceError::Exporter(_)),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with("cannot build the span exporter"),
        "{error}"
    );
}

#[test]
fn clearing_the_memory_exporter_forgets_earlier_spans_in_every_clone() {
    let exporter = MemoryExporter::new();
    let guard = TracingBuilder::from_env(|_| None)
        .exporter(Exporter::Memory(exporter.clone()))
        .build()
        .unwrap();
    let tracer = guard.provider().tracer("t");
    tracer.start("before").end();
    let other_handle = exporter.clone();
    other_handle.clear();
    assert!(exporter.spans().is_empty());
    tracer.start("after").end();
    assert_eq!(exporter.spans().len(), 1);
    assert_eq!(exporter.spans()[0].name, "after");
}

/// Set in the child process of the console test.
const CONSOLE_CHILD: &str = "CORTEX_TRACE_CONSOLE_EXPORTER_CHILD";

#[test]
fn the_console_exporter_writes_one_json_line_per_span() {
    if std::env::var_os(CONSOLE_CHILD).is_some() {
        // In the child: stdout is a pipe the parent reads.
        let guard = TracingBuilder::from_env(|_| None)
            .service_name("console")
            .exporter(Exporter::Stdout)
            .build()
            .unwrap();
        let mut span = guard.provider().tracer("t").start("checkout");
        span.set_attribute(KeyValue::new("order.id", 42));
        span.end();
        assert_eq!(guard.export_failures(), 0);
        return;
    }
    // The exporter writes to the process's real stdout, which the test
    // harness does not capture: run this test again in a child process.
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "the_console_exporter_writes_one_json_line_per_span",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CONSOLE_CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    // The harness's own "test ... " prefix shares the line with the span.
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|line| line.find('{').map(|start| &line[start..]))
        .map(|json| serde_json::from_str(json).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let span = &lines[0];
    assert_eq!(span["name"], "checkout");
    assert_eq!(span["kind"], "Internal");
    assert_eq!(span["parent_span_id"], "0000000000000000");
    assert_eq!(span["attributes"]["order.id"], "42");
    assert_eq!(span["trace_id"].as_str().unwrap().len(), 32);
    assert_eq!(span["span_id"].as_str().unwrap().len(), 16);
    assert!(span["duration_seconds"].as_f64().unwrap() >= 0.0);
}
