//! The known HTTP methods override the conventions require of
//! instrumentation that turns methods into `_OTHER`
//! (`HttpTraceLayer::known_methods`, `PropagateLayer::known_methods`): the
//! list replaces the defaults entirely, is case-sensitive, and names spans
//! and `http.request.method` with the configured method's own name.

use std::convert::Infallible;

use axum::Router;
use axum::body::Body;
use axum::routing::any;
use cortex_trace::http::{HttpTraceLayer, PropagateLayer};
use http::{Method, Request, Response};
use http_body_util::BodyExt;
use opentelemetry::Value;
use opentelemetry::trace::SpanKind;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tower::{Layer, ServiceExt, service_fn};

fn tracing() -> (SdkTracerProvider, InMemorySpanExporter) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    (provider, exporter)
}

fn purge() -> Method {
    Method::from_bytes(b"PURGE").unwrap()
}

async fn serve(layer: HttpTraceLayer, method: Method, exporter: &InMemorySpanExporter) -> SpanData {
    let app = Router::new()
        .route("/cache/{key}", any(|| async { "ok" }))
        .layer(layer);
    let request = Request::builder()
        .method(method)
        .uri("/cache/logo")
        .body(Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    response.into_body().collect().await.unwrap();
    let mut spans = exporter.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 1, "{spans:#?}");
    exporter.reset();
    spans.pop().unwrap()
}

fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

fn method_attribute(span: &SpanData) -> Option<String> {
    attribute(span, "http.request.method").map(Value::to_string)
}

fn original_attribute(span: &SpanData) -> Option<String> {
    attribute(span, "http.request.method_original").map(Value::to_string)
}

#[tokio::test]
async fn a_configured_custom_method_names_the_span_and_the_method_attribute() {
    let (provider, exporter) = tracing();
    let layer = HttpTraceLayer::new(&provider).known_methods([Method::GET, purge()]);
    let span = serve(layer, purge(), &exporter).await;
    assert_eq!(span.name, "PURGE /cache/{key}");
    assert_eq!(method_attribute(&span).as_deref(), Some("PURGE"));
    assert_eq!(original_attribute(&span), None);
}

#[tokio::test]
async fn a_custom_method_is_other_without_an_override() {
    let (provider, exporter) = tracing();
    let span = serve(HttpTraceLayer::new(&provider), purge(), &exporter).await;
    assert_eq!(span.name, "HTTP /cache/{key}");
    assert_eq!(method_attribute(&span).as_deref(), Some("_OTHER"));
    assert_eq!(original_attribute(&span).as_deref(), Some("PURGE"));
}

#[tokio::test]
async fn a_default_method_left_out_of_the_override_becomes_other() {
    let (provider, exporter) = tracing();
    let layer = HttpTraceLayer::new(&provider).known_methods([Method::GET, purge()]);
    let span = serve(layer, Method::DELETE, &exporter).await;
    assert_eq!(span.name, "HTTP /cache/{key}");
    assert_eq!(method_attribute(&span).as_deref(), Some("_OTHER"));
    assert_eq!(original_attribute(&span).as_deref(), Some("DELETE"));
}

#[tokio::test]
async fn the_override_is_full_not_added_to_the_defaults() {
    let (provider, exporter) = tracing();
    let layer = HttpTraceLayer::new(&provider).known_methods([purge()]);
    for method in [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::OPTIONS,
        Method::TRACE,
        Method::PATCH,
    ] {
        let span = serve(layer.clone(), method.clone(), &exporter).await;
        assert_eq!(
            method_attribute(&span).as_deref(),
            Some("_OTHER"),
            "{method}"
        );
        assert_eq!(original_attribute(&span).as_deref(), Some(method.as_str()));
    }
    let span = serve(layer, purge(), &exporter).await;
    assert_eq!(method_attribute(&span).as_deref(), Some("PURGE"));
}

#[tokio::test]
async fn known_methods_are_case_sensitive() {
    let (provider, exporter) = tracing();
    let layer = HttpTraceLayer::new(&provider).known_methods([purge()]);
    let span = serve(layer, Method::from_bytes(b"purge").unwrap(), &exporter).await;
    assert_eq!(method_attribute(&span).as_deref(), Some("_OTHER"));
    assert_eq!(original_attribute(&span).as_deref(), Some("purge"));
}

#[tokio::test]
async fn an_override_after_cloning_leaves_the_clone_alone() {
    let (provider, exporter) = tracing();
    let defaults = HttpTraceLayer::new(&provider);
    let custom = defaults.clone().known_methods([purge()]);
    let span = serve(defaults, Method::GET, &exporter).await;
    assert_eq!(method_attribute(&span).as_deref(), Some("GET"));
    let span = serve(custom, Method::GET, &exporter).await;
    assert_eq!(method_attribute(&span).as_deref(), Some("_OTHER"));
}

async fn send_through_client(layer: PropagateLayer, method: Method) {
    let client = layer.layer(service_fn(|_: Request<()>| async {
        Ok::<_, Infallible>(Response::new(()))
    }));
    let request = Request::builder()
        .method(method)
        .uri("http://cdn.example.com/logo.png")
        .body(())
        .unwrap();
    client.oneshot(request).await.unwrap();
}

#[tokio::test]
async fn the_client_layer_uses_the_configured_methods_too() {
    let (provider, exporter) = tracing();
    let layer = PropagateLayer::new(&provider).known_methods([Method::GET, purge()]);
    send_through_client(layer.clone(), purge()).await;
    send_through_client(layer, Method::POST).await;
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 2, "{spans:#?}");
    assert!(spans.iter().all(|s| s.span_kind == SpanKind::Client));
    assert_eq!(spans[0].name, "PURGE");
    assert_eq!(method_attribute(&spans[0]).as_deref(), Some("PURGE"));
    assert_eq!(original_attribute(&spans[0]), None);
    assert_eq!(spans[1].name, "HTTP");
    assert_eq!(method_attribute(&spans[1]).as_deref(), Some("_OTHER"));
    assert_eq!(original_attribute(&spans[1]).as_deref(), Some("POST"));
}
