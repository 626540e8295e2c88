//! Server and client spans, checked through the SDK's in-memory exporter.

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use cortex_trace::http::{HttpTraceLayer, PropagateLayer};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use opentelemetry::trace::{SpanKind, Status, TraceId};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tower::{Layer, ServiceExt, service_fn};

const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn provider() -> (SdkTracerProvider, InMemorySpanExporter) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    (provider, exporter)
}

fn app(provider: &SdkTracerProvider) -> Router {
    let client_provider = provider.clone();
    Router::new()
        .route("/users/{id}", get(|| async { "user" }))
        .route("/boom", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route("/teapot", get(|| async { StatusCode::IM_A_TEAPOT }))
        .route(
            "/panic",
            get(|| async {
                if true {
                    panic!("handler bug");
                }
                "never"
            }),
        )
        .route(
            "/fan-out",
            get(move || {
                let provider = client_provider.clone();
                async move {
                    // An outgoing call through the client layer, to a fake
                    // downstream that echoes the traceparent it received.
                    let downstream = service_fn(|request: Request<()>| async move {
                        let seen = request.headers()["traceparent"]
                            .to_str()
                            .unwrap()
                            .to_owned();
                        Ok::<_, std::convert::Infallible>(http::Response::new(seen))
                    });
                    let client = PropagateLayer::new(&provider).layer(downstream);
                    let request = Request::get("http://inventory.internal:8080/stock?token=s3cret")
                        .body(())
                        .unwrap();
                    client.oneshot(request).await.unwrap().into_body()
                }
            }),
        )
        .layer(HttpTraceLayer::new(provider))
}

async fn call(app: &Router, request: Request<Body>) -> (StatusCode, String) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

fn finished(exporter: &InMemorySpanExporter) -> Vec<SpanData> {
    exporter.get_finished_spans().unwrap()
}

#[tokio::test]
async fn continues_the_callers_trace_with_a_server_span() {
    let (provider, exporter) = provider();
    let app = app(&provider);
    let mut request = Request::get("/users/7")
        .header("traceparent", PARENT)
        .header("tracestate", "congo=t61rcWkgMzE")
        .header("user-agent", "curl/8.5")
        .body(Body::empty())
        .unwrap();
    // What `into_make_service_with_connect_info` puts on every request.
    let peer: std::net::SocketAddr = "203.0.113.9:51000".parse().unwrap();
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(peer));
    assert_eq!(call(&app, request).await.0, StatusCode::OK);

    let spans = finished(&exporter);
    assert_eq!(spans.len(), 1);
    let span = &spans[0];
    assert_eq!(span.name, "GET /users/{id}");
    assert_eq!(span.span_kind, SpanKind::Server);
    assert_eq!(
        span.span_context.trace_id(),
        TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()
    );
    assert_eq!(span.parent_span_id.to_string(), "00f067aa0ba902b7");
    assert_eq!(
        span.span_context.trace_state().header(),
        "congo=t61rcWkgMzE"
    );
    assert_eq!(span.status, Status::Unset);
    for (key, value) in [
        ("http.request.method", Value::from("GET")),
        ("http.route", Value::from("/users/{id}")),
        ("url.path", Value::from("/users/7")),
        ("http.response.status_code", Value::from(200_i64)),
        ("user_agent.original", Value::from("curl/8.5")),
        ("client.address", Value::from("203.0.113.9")),
        ("client.port", Value::from(51_000_i64)),
    ] {
        assert_eq!(attribute(span, key), Some(&value), "{key}");
    }
}

#[tokio::test]
async fn an_invalid_traceparent_starts_a_new_trace() {
    let (provider, exporter) = provider();
    let app = app(&provider);
    for bad in [
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "garbage",
    ] {
        let request = Request::get("/users/1")
            .header("traceparent", bad)
            .body(Body::empty())
            .unwrap();
        call(&app, request).await;
    }
    let oversized = "a".repeat(8 * 1024 + 1);
    let request = Request::get("/users/1")
        .header("traceparent", PARENT)
        .header("traceparent", PARENT)
        .header("tracestate", oversized.as_str())
        .body(Body::empty())
        .unwrap();
    call(&app, request).await;
    let spans = finished(&exporter);
    assert_eq!(spans.len(), 4);
    for span in spans {
        assert_ne!(
            span.span_context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(span.parent_span_id, opentelemetry::trace::SpanId::INVALID);
        assert_eq!(span.span_context.trace_state().header(), "");
    }
}

#[tokio::test]
async fn server_errors_panics_and_unmatched_routes() {
    let (provider, exporter) = provider();
    let app = app(&provider);
    call(&app, Request::get("/boom").body(Body::empty()).unwrap()).await;
    call(&app, Request::get("/teapot").body(Body::empty()).unwrap()).await;
    call(&app, Request::get("/nope").body(Body::empty()).unwrap()).await;
    let panicked = tokio::spawn(
        app.clone()
            .oneshot(Request::get("/panic").body(Body::empty()).unwrap()),
    )
    .await;
    assert!(panicked.unwrap_err().is_panic());

    let spans = finished(&exporter);
    let by_name = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("{name}: {spans:?}"))
    };
    assert_eq!(by_name("GET /boom").status, Status::error(""));
    assert_eq!(
        attribute(by_name("GET /boom"), "error.type"),
        Some(&Value::from("500"))
    );
    assert_eq!(
        by_name("GET /teapot").status,
        Status::Unset,
        "4xx is not a server error"
    );
    let unmatched = spans.iter().find(|s| s.name == "GET").unwrap();
    assert_eq!(attribute(unmatched, "http.route"), None);
    let panic = by_name("GET /panic");
    assert!(matches!(panic.status, Status::Error { .. }));
    assert_eq!(attribute(panic, "error.type"), Some(&Value::from("panic")));
}

#[tokio::test]
async fn outgoing_calls_carry_a_child_client_span() {
    let (provider, exporter) = provider();
    let app = app(&provider);
    let request = Request::get("/fan-out")
        .header("traceparent", PARENT)
        .body(Body::empty())
        .unwrap();
    let (_, downstream_saw) = call(&app, request).await;

    let spans = finished(&exporter);
    let server = spans
        .iter()
        .find(|s| s.span_kind == SpanKind::Server)
        .unwrap();
    let client = spans
        .iter()
        .find(|s| s.span_kind == SpanKind::Client)
        .unwrap();
    assert_eq!(
        client.span_context.trace_id(),
        server.span_context.trace_id()
    );
    assert_eq!(client.parent_span_id, server.span_context.span_id());
    // The downstream saw the CLIENT span as its parent, fresh per call.
    let expected = format!(
        "00-{}-{}-01",
        client.span_context.trace_id(),
        client.span_context.span_id()
    );
    assert_eq!(downstream_saw, expected);
    assert_eq!(
        attribute(client, "url.full"),
        Some(&Value::from("http://inventory.internal:8080/stock"))
    );
    assert_eq!(
        attribute(client, "server.port"),
        Some(&Value::from(8080_i64))
    );
    assert!(
        client
            .attributes
            .contains(&KeyValue::new("http.response.status_code", 200_i64))
    );
}
